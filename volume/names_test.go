package volume

import (
	"strings"
	"testing"
)

func TestName(t *testing.T) {
	uid := "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
	tests := []struct {
		name, prefix, claim, want string
	}{
		{"no prefix derives from the PV", "", "data-web-0", "vol_pvc-" + uid},
		{"prefix", "dept-dev", "data-web-0", "dept-dev_ns1_data-web-0_0f1e2d3c"},
		{"dots become dashes", "p", "my.claim", "p_ns1_my-claim_0f1e2d3c"},
		{"long claim is cut", "p", strings.Repeat("x", 200), "p_ns1_" + strings.Repeat("x", maxVolumeNameLen-len("p_ns1_")-9) + "_0f1e2d3c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Name(tt.prefix, "ns1", tt.claim, uid, "pvc-"+uid)
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			if len(got) > maxVolumeNameLen {
				t.Errorf("too long: %d", len(got))
			}
		})
	}
}

func TestCSIName(t *testing.T) {
	uid := "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
	pv := "pvc-" + uid
	tests := []struct {
		name, prefix, csiName, ns, claim, want string
	}{
		{"external-provisioner name: same as the built-in provisioner's", "", pv, "", "", Name("", "ns1", "data", uid, pv)},
		{"prefix with claim metadata: same as the built-in provisioner's", "dept", pv, "ns1", "data", Name("dept", "ns1", "data", uid, pv)},
		{"prefix without claim metadata", "dept", pv, "", "", "dept_" + pv},
		{"plain name", "", "sanity-vol-1", "", "", "vol_sanity-vol-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := CSIName(tt.prefix, tt.csiName, tt.ns, tt.claim); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	// Names heketi would refuse or that are too long stay distinct and valid.
	seen := map[string]string{}
	for _, n := range []string{"a.b", "a-b", "a b", "a/b", strings.Repeat("z", 128), strings.Repeat("z", 127) + "y"} {
		got := CSIName("", n, "", "")
		if other, dup := seen[got]; dup {
			t.Errorf("%q and %q both become %q", n, other, got)
		}
		seen[got] = n
		if len(got) > maxVolumeNameLen || sanitizeVolumeName(got) != strings.ReplaceAll(got, "_", "-") {
			t.Errorf("%q -> %q: not a heketi name", n, got)
		}
	}
}
