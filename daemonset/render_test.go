package daemonset

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"
)

var update = flag.Bool("update", false, "rewrite examples/glusterfs-daemonset.yaml from the default render")

const examplePath = "../examples/glusterfs-daemonset.yaml"

// The seed's host paths, mount points and read-only flags.
var seedMounts = map[string]struct {
	host     string
	readOnly bool
}{
	"/var/lib/heketi":          {"/var/lib/heketi", false},
	"/run/lvm":                 {"/run/lvm", false},
	"/etc/glusterfs":           {"/etc/glusterfs", false},
	"/var/log/glusterfs":       {"/var/log/glusterfs", false},
	"/var/lib/glusterd":        {"/var/lib/glusterd", false},
	"/mnt/host-dev":            {"/dev", false},
	"/var/lib/misc/glusterfsd": {"/var/lib/misc/glusterfsd", false},
	"/sys/class":               {"/sys/class", false},
	"/sys/module":              {"/sys/module", false},
	"/sys/fs/cgroup":           {"/sys/fs/cgroup", true},
	"/etc/ssl":                 {"/etc/ssl", true},
	"/usr/lib/modules":         {"/usr/lib/modules", true},
}

func TestRenderDefaultsFaithfulToSeed(t *testing.T) {
	m, err := Render(Values{})
	if err != nil {
		t.Fatal(err)
	}
	ds := m.DaemonSet
	if ds.APIVersion != "apps/v1" || ds.Kind != "DaemonSet" || ds.Name != "glusterfs" || ds.Namespace != DefaultNamespace {
		t.Errorf("object = %s %s %s/%s", ds.APIVersion, ds.Kind, ds.Namespace, ds.Name)
	}
	if ds.Spec.UpdateStrategy.Type != "OnDelete" {
		t.Errorf("updateStrategy = %q, want OnDelete", ds.Spec.UpdateStrategy.Type)
	}
	for k, v := range ds.Spec.Selector.MatchLabels {
		if ds.Spec.Template.Labels[k] != v {
			t.Errorf("selector %s=%s does not select the template labels %v", k, v, ds.Spec.Template.Labels)
		}
	}
	pod := ds.Spec.Template.Spec
	if !pod.HostNetwork {
		t.Error("hostNetwork is off")
	}
	if pod.NodeSelector["storagenode"] != "glusterfs" || len(pod.NodeSelector) != 1 {
		t.Errorf("nodeSelector = %v", pod.NodeSelector)
	}
	c := container(&pod)
	if c.Image != "gluster/gluster-centos:latest" || c.ImagePullPolicy != corev1.PullIfNotPresent {
		t.Errorf("image = %s (%s)", c.Image, c.ImagePullPolicy)
	}
	if c.SecurityContext == nil || !ptr.Deref(c.SecurityContext.Privileged, false) {
		t.Error("container is not privileged")
	}
	if c.Resources.Requests.Cpu().String() != "100m" || c.Resources.Requests.Memory().String() != "100Mi" {
		t.Errorf("requests = %v", c.Resources.Requests)
	}
	for _, p := range []*corev1.Probe{c.ReadinessProbe, c.LivenessProbe} {
		if p == nil || p.Exec == nil || p.InitialDelaySeconds != 40 || p.PeriodSeconds != 25 || p.TimeoutSeconds != 3 || p.FailureThreshold != 50 {
			t.Fatalf("probe = %+v", p)
		}
		if !strings.Contains(strings.Join(p.Exec.Command, " "), "status-probe.sh") {
			t.Errorf("probe command = %v", p.Exec.Command)
		}
	}
	vols := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		vols[v.Name] = v
	}
	seen := 0
	for _, vm := range c.VolumeMounts {
		want, ok := seedMounts[vm.MountPath]
		if !ok {
			continue
		}
		seen++
		v := vols[vm.Name]
		if v.HostPath == nil || v.HostPath.Path != want.host {
			t.Errorf("mount %s: volume %s = %+v, want hostPath %s", vm.MountPath, vm.Name, v.VolumeSource, want.host)
		}
		if vm.ReadOnly != want.readOnly {
			t.Errorf("mount %s readOnly = %v, want %v", vm.MountPath, vm.ReadOnly, want.readOnly)
		}
	}
	if seen != len(seedMounts) {
		t.Errorf("found %d of the seed's %d host path mounts", seen, len(seedMounts))
	}
	if m.Namespace == nil || m.Namespace.Name != DefaultNamespace {
		t.Errorf("namespace object = %+v", m.Namespace)
	}
}

func TestRenderValues(t *testing.T) {
	cpu := resource.MustParse("250m")
	m, err := Render(Values{
		Name:              "gfs",
		Namespace:         "storage",
		CreateNamespace:   ptr.To(false),
		Image:             "example.com/gluster:9.6",
		ImagePullPolicy:   corev1.PullAlways,
		NodeSelector:      map[string]string{"example.com/gluster": "yes"},
		Resources:         &corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: cpu}},
		Tolerations:       []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "storage", Effect: corev1.TaintEffectNoSchedule}},
		PriorityClassName: "system-node-critical",
	})
	if err != nil {
		t.Fatal(err)
	}
	ds := m.DaemonSet
	pod := ds.Spec.Template.Spec
	c := container(&pod)
	switch {
	case m.Namespace != nil:
		t.Error("namespace rendered although createNamespace is false")
	case ds.Name != "gfs" || ds.Namespace != "storage":
		t.Errorf("name = %s/%s", ds.Namespace, ds.Name)
	case c.Image != "example.com/gluster:9.6" || c.ImagePullPolicy != corev1.PullAlways:
		t.Errorf("image = %s %s", c.Image, c.ImagePullPolicy)
	case pod.NodeSelector["example.com/gluster"] != "yes":
		t.Errorf("nodeSelector = %v", pod.NodeSelector)
	case c.Resources.Requests.Cpu().String() != "250m" || c.Resources.Requests.Memory().Sign() != 0:
		t.Errorf("resources = %v", c.Resources)
	case len(pod.Tolerations) != 1 || pod.PriorityClassName != "system-node-critical":
		t.Errorf("tolerations = %v, priority = %q", pod.Tolerations, pod.PriorityClassName)
	}
}

func TestRenderRejectsBadValues(t *testing.T) {
	big, small := resource.MustParse("2"), resource.MustParse("1")
	tests := []struct {
		name string
		v    Values
		want string
	}{
		{"bad name", Values{Name: "Gluster_FS"}, `name "Gluster_FS"`},
		{"bad namespace", Values{Namespace: "a.b"}, `namespace "a.b"`},
		{"image with space", Values{Image: "gluster centos"}, `image "gluster centos"`},
		{"pull policy", Values{ImagePullPolicy: "Sometimes"}, `imagePullPolicy "Sometimes"`},
		{"empty node selector", Values{NodeSelector: map[string]string{}}, "nodeSelector is empty"},
		{"bad selector value", Values{NodeSelector: map[string]string{"storagenode": "a b"}}, `nodeSelector storagenode value "a b"`},
		{"toleration effect", Values{Tolerations: []corev1.Toleration{{Key: "k", Operator: "Exists", Effect: "Never"}}}, `tolerations[0]: effect "Never"`},
		{"request over limit", Values{Resources: &corev1.ResourceRequirements{Requests: corev1.ResourceList{"cpu": big}, Limits: corev1.ResourceList{"cpu": small}}}, "cpu request 2 exceeds its limit 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Render(tt.v)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestParseToleration(t *testing.T) {
	tests := []struct {
		in      string
		want    corev1.Toleration
		wantErr bool
	}{
		{in: "dedicated=storage:NoSchedule", want: corev1.Toleration{Key: "dedicated", Operator: "Equal", Value: "storage", Effect: "NoSchedule"}},
		{in: "example.com/gluster:NoExecute", want: corev1.Toleration{Key: "example.com/gluster", Operator: "Exists", Effect: "NoExecute"}},
		{in: "dedicated", want: corev1.Toleration{Key: "dedicated", Operator: "Exists"}},
		{in: ":NoSchedule", wantErr: true},
		{in: "k=v:Sometimes", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseToleration(tt.in)
		if (err != nil) != tt.wantErr || !tt.wantErr && got != tt.want {
			t.Errorf("ParseToleration(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

func TestLoadValues(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "values.yaml")
	os.WriteFile(good, []byte("image: example.com/gluster:9\nresources:\n  requests:\n    cpu: 1\ntolerations:\n- key: dedicated\n  operator: Exists\n"), 0o644)
	v, err := LoadValues(good)
	if err != nil {
		t.Fatal(err)
	}
	if v.Image != "example.com/gluster:9" || v.Resources.Requests.Cpu().String() != "1" || len(v.Tolerations) != 1 {
		t.Errorf("values = %+v", v)
	}
}

// Every problem in a values file is reported at once, with its position.
func TestLoadValuesErrors(t *testing.T) {
	tests := []struct {
		name, content string
		want          []string
	}{
		{"typo", "imagee: x\n", []string{":1:1: unknown field \"imagee\"", `did you mean "image"?`}},
		{"bad quantity", "resources:\n  requests:\n    cpu: lots\n", []string{":2:3: resources: quantities must match"}},
		{"wrong shape", "tolerations: {a: 1}\n", []string{":1:14: tolerations: cannot unmarshal object"}},
		{"all at once", "imagee: x\nnodeSelectr: {a: b}\ncreateNamespace: maybe\n", []string{":1:1:", ":2:1:", `did you mean "nodeSelector"?`, ":3:18: createNamespace"}},
		{"not a mapping", "- image: x\n", []string{":1:1: a values file is a mapping"}},
		{"syntax", "image: [x\n", []string{"values file", "did not find expected"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "values.yaml")
			if err := os.WriteFile(path, []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := LoadValues(path)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error does not name the file: %v", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

// The example in examples/ is exactly the default render.
func TestExampleIsDefaultRender(t *testing.T) {
	m, err := Render(Values{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.YAML()
	if err != nil {
		t.Fatal(err)
	}
	want := append([]byte(exampleHeader), b...)
	if *update {
		if err := os.WriteFile(examplePath, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the default render; run go test ./daemonset -run TestExampleIsDefaultRender -update", examplePath)
	}
	for _, bad := range []string{"status:", "creationTimestamp"} {
		if bytes.Contains(b, []byte(bad)) {
			t.Errorf("render contains %q", bad)
		}
	}
}

const exampleHeader = "# Rendered by `glusterkube daemonset render` (defaults). Apply with\n# `kubectl apply --server-side -f glusterfs-daemonset.yaml` or `glusterkube daemonset apply`.\n"
