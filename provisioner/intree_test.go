package provisioner

import (
	"context"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/version"
	fakediscovery "k8s.io/client-go/discovery/fake"
	"k8s.io/client-go/kubernetes/fake"
)

// The version gate: in-tree classes are served by default from 1.26, the
// first release without the in-tree plugin, and never before unless the
// setting says so.
func TestServeInTree(t *testing.T) {
	v := func(git, major, minor string) *version.Info {
		return &version.Info{GitVersion: git, Major: major, Minor: minor}
	}
	for _, tc := range []struct {
		name    string
		mode    InTreeClasses
		server  *version.Info
		want    bool
		wantErr string
	}{
		{"auto on 1.25 leaves them to the controller-manager", InTreeAuto, v("v1.25.16", "1", "25"), false, ""},
		{"auto on 1.26 serves them", InTreeAuto, v("v1.26.0", "1", "26"), true, ""},
		{"auto on 1.37 serves them", InTreeAuto, v("v1.37.2", "1", "37"), true, ""},
		{"empty setting is auto", "", v("v1.30.1", "1", "30"), true, ""},
		{"auto on a pre-release 1.26", InTreeAuto, v("v1.26.0-rc.1", "1", "26"), true, ""},
		{"auto on a distribution's 1.25 with minor 25+", InTreeAuto, v("v1.25.3-gke.100+abc", "1", "25+"), false, ""},
		{"auto with only major and minor", InTreeAuto, v("weird", "1", "27+"), true, ""},
		{"auto on 2.0", InTreeAuto, v("v2.0.0", "2", "0"), true, ""},
		{"true on 1.24 serves them", InTreeOn, v("v1.24.0", "1", "24"), true, ""},
		{"false on 1.37 does not", InTreeOff, v("v1.37.2", "1", "37"), false, ""},
		{"true needs no version", InTreeOn, nil, true, ""},
		{"auto without a version is an error", InTreeAuto, nil, false, "needs the API server's version"},
		{"auto with an unparsable version", InTreeAuto, v("x", "one", "x"), false, "cannot parse"},
		{"unknown setting", "maybe", v("v1.37.2", "1", "37"), false, "unknown setting"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ServeInTree(tc.mode, tc.server)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ServeInTree(%q, %+v) = %v, %v; want %v", tc.mode, tc.server, got, err, tc.want)
			}
		})
	}
}

func TestParseInTreeClasses(t *testing.T) {
	for in, want := range map[string]InTreeClasses{"": InTreeAuto, "auto": InTreeAuto, "TRUE": InTreeOn, "false": InTreeOff, "off": InTreeOff} {
		if got, err := ParseInTreeClasses(in); err != nil || got != want {
			t.Errorf("ParseInTreeClasses(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParseInTreeClasses("sometimes"); err == nil || !strings.Contains(err.Error(), "auto, true, false") {
		t.Errorf("ParseInTreeClasses(sometimes) error = %v", err)
	}
}

// ResolveInTree asks the API server's version (auto) once and keeps the
// answer.
func TestResolveInTreeAsksTheServer(t *testing.T) {
	for _, tc := range []struct {
		minor string
		want  bool
	}{{"25", false}, {"26", true}} {
		kube := fake.NewClientset()
		kube.Discovery().(*fakediscovery.FakeDiscovery).FakedServerVersion = &version.Info{GitVersion: "v1." + tc.minor + ".0", Major: "1", Minor: tc.minor}
		p, err := New(Config{Kube: kube})
		if err != nil {
			t.Fatal(err)
		}
		if p.ServesInTree() {
			t.Fatal("ServesInTree before ResolveInTree")
		}
		if err := p.ResolveInTree(context.Background()); err != nil {
			t.Fatal(err)
		}
		if p.ServesInTree() != tc.want {
			t.Errorf("1.%s: ServesInTree = %v, want %v", tc.minor, !tc.want, tc.want)
		}
		n := len(kube.Actions())
		if err := p.ResolveInTree(context.Background()); err != nil || len(kube.Actions()) != n {
			t.Errorf("second ResolveInTree asked the server again (%d actions, was %d): %v", len(kube.Actions()), n, err)
		}
	}
}

func TestInTreeVolumeID(t *testing.T) {
	const id = "0123456789abcdef0123456789abcdef"
	pv := func(ann map[string]string, path string) *v1.PersistentVolume {
		return &v1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Annotations: ann},
			Spec: v1.PersistentVolumeSpec{PersistentVolumeSource: v1.PersistentVolumeSource{Glusterfs: &v1.GlusterfsPersistentVolumeSource{Path: path}}}}
	}
	for _, tc := range []struct {
		name string
		pv   *v1.PersistentVolume
		want string
	}{
		{"annotation", pv(map[string]string{AnnHeketiVolumeID: id}, "custom_ns_claim_x"), id},
		{"heketi's default name", pv(nil, "vol_"+id), id},
		{"custom name without annotation", pv(nil, "app_ns_claim_1234"), ""},
		{"vol_ without an id", pv(nil, "vol_data"), ""},
	} {
		if got := InTreeVolumeID(tc.pv); got != tc.want {
			t.Errorf("%s: InTreeVolumeID = %q, want %q", tc.name, got, tc.want)
		}
	}
}
