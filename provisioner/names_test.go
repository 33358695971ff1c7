package provisioner

import (
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
)

func claimNamed(ns, name, uid string) *v1.PersistentVolumeClaim {
	return &v1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(uid)}}
}

// The claim's volume name is the volume service's (volume.Name); the
// forms are tested there. Here: the claim's fields reach it.
func TestVolumeName(t *testing.T) {
	uid := "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
	c := claimNamed("ns1", "data-web-0", uid)
	if got := VolumeName("", c, "pvc-"+uid); got != "vol_pvc-"+uid {
		t.Errorf("no prefix: %q", got)
	}
	if got := VolumeName("dept-dev", c, "pvc-"+uid); got != "dept-dev_ns1_data-web-0_0f1e2d3c" {
		t.Errorf("prefix: %q", got)
	}
}

func TestEndpointsName(t *testing.T) {
	uid := "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
	tests := []struct {
		name, prefix, claim, want string
	}{
		{"in-tree name", "", "data-web-0", "glusterfs-dynamic-data-web-0"},
		{"custom prefix", "myprefix", "data", "myprefix-data"},
		{"dotted claim", "", "a.b", "glusterfs-dynamic-a-b-0f1e2d3c"},
		{"long claim", "", strings.Repeat("y", 80), "glusterfs-dynamic-" + strings.Repeat("y", 63-18-9) + "-0f1e2d3c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := claimNamed("ns1", tt.claim, uid)
			got := EndpointsName(tt.prefix, c)
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			for _, n := range []string{got, AlternateEndpointsName(tt.prefix, c)} {
				if errs := validation.IsDNS1035Label(n); len(errs) > 0 {
					t.Errorf("%q is not a Service name: %v", n, errs)
				}
			}
			if AlternateEndpointsName(tt.prefix, c) == got {
				t.Errorf("alternate name equals the name")
			}
		})
	}
}
