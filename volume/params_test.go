package volume

import (
	"strings"
	"testing"

	"github.com/heketi/heketi/pkg/glusterfs/api"
)

func TestParseClassValid(t *testing.T) {
	tests := []struct {
		name   string
		params map[string]string
		check  func(t *testing.T, c *ClassConfig)
	}{
		{"defaults", nil, func(t *testing.T, c *ClassConfig) {
			if c.GIDMin != 2000 || c.GIDMax != 2147483647 {
				t.Errorf("gid range %d..%d", c.GIDMin, c.GIDMax)
			}
			if c.Durability.Type != api.DurabilityReplicate || c.Durability.Replicate.Replica != 3 {
				t.Errorf("durability %+v", c.Durability)
			}
			if c.SnapFactor != 1 {
				t.Errorf("snapfactor %v", c.SnapFactor)
			}
		}},
		{"in-tree class", map[string]string{
			"resturl": "http://10.155.20.120:30001", "restauthenabled": "true", "restuser": "admin",
			"secretNamespace": "default", "secretName": "heketi-secret",
			"clusterid": "630372ccdc720a92c681fb928f27b53f,796e6db1981f369ea0340913eeea4c9a",
			"gidMin":    "40000", "gidMax": "50000", "volumetype": "disperse:4:2",
			"volumeoptions": "client.ssl on, server.ssl on", "volumenameprefix": "dept-dev",
			"snapfactor": "10", "customepnameprefix": "myprefix",
		}, func(t *testing.T, c *ClassConfig) {
			if c.URL != "http://10.155.20.120:30001" || c.User != "admin" || c.SecretName != "heketi-secret" || c.SecretNamespace != "default" {
				t.Errorf("connection %+v", c)
			}
			if len(c.Clusters) != 2 || c.GIDMin != 40000 || c.GIDMax != 50000 {
				t.Errorf("clusters/gids %+v", c)
			}
			if c.Durability.Type != api.DurabilityEC || c.Durability.Disperse.Data != 4 || c.Durability.Disperse.Redundancy != 2 {
				t.Errorf("durability %+v", c.Durability)
			}
			if len(c.VolumeOptions) != 2 || c.VolumeOptions[1] != "server.ssl on" {
				t.Errorf("options %q", c.VolumeOptions)
			}
			if c.NamePrefix != "dept-dev" || c.SnapFactor != 10 || c.EPNamePrefix != "myprefix" {
				t.Errorf("names %+v", c)
			}
		}},
		{"keys are case-insensitive", map[string]string{"RESTURL": "https://h:1", "VolumeType": "none"}, func(t *testing.T, c *ClassConfig) {
			if c.URL != "https://h:1" || c.Durability.Type != api.DurabilityDistributeOnly {
				t.Errorf("%+v", c)
			}
		}},
		{"replicate 2", map[string]string{"volumetype": "replicate:2"}, func(t *testing.T, c *ClassConfig) {
			if c.Durability.Replicate.Replica != 2 {
				t.Errorf("%+v", c.Durability)
			}
		}},
		{"volume source defaults to csi", nil, func(t *testing.T, c *ClassConfig) {
			if c.VolumeSource != VolumeSourceCSI {
				t.Errorf("volumesource %q", c.VolumeSource)
			}
		}},
		{"in-tree volume source", map[string]string{"volumesource": "GlusterFS"}, func(t *testing.T, c *ClassConfig) {
			if c.VolumeSource != VolumeSourceGlusterfs {
				t.Errorf("volumesource %q", c.VolumeSource)
			}
		}},
		{"the CSI external-provisioner's keys are skipped", map[string]string{
			"csi.storage.k8s.io/provisioner-secret-name": "s", "csi.storage.k8s.io/pvc/name": "data", "CSI.storage.k8s.io/fstype": "x",
		}, func(t *testing.T, c *ClassConfig) {}},
		{"placement spread", map[string]string{"placement": "Spread"}, func(t *testing.T, c *ClassConfig) {
			if c.Placement != PlacementSpread {
				t.Errorf("placement %q", c.Placement)
			}
		}},
		{"placement local", map[string]string{"placement": "local"}, func(t *testing.T, c *ClassConfig) {
			if c.Placement != PlacementLocal {
				t.Errorf("placement %q", c.Placement)
			}
		}},
		{"placement defaults to none given", nil, func(t *testing.T, c *ClassConfig) {
			if c.Placement != "" || c.ownPlacement {
				t.Errorf("placement %q own %v", c.Placement, c.ownPlacement)
			}
		}},
		{"heketi's own placement options without placement", map[string]string{"volumeoptions": "user.heketi.zone-checking strict"}, func(t *testing.T, c *ClassConfig) {
			if !c.ownPlacement {
				t.Error("zone checking in volumeoptions not seen")
			}
		}},
		{"restuserkey works but is deprecated", map[string]string{"restuser": "admin", "restuserkey": "s3cret"}, func(t *testing.T, c *ClassConfig) {
			if c.UserKey != "s3cret" || len(c.Deprecated) != 1 || strings.Contains(c.Deprecated[0], "s3cret") {
				t.Errorf("key %q deprecated %q", c.UserKey, c.Deprecated)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseClass("gold", tt.params)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

func TestParseClassInvalid(t *testing.T) {
	tests := []struct {
		name   string
		params map[string]string
		want   []string // substrings of the error
	}{
		{"unknown key", map[string]string{"replicas": "3"}, []string{`parameter replicas="3"`, "unknown parameter", "resturl"}},
		{"bad url", map[string]string{"resturl": "heketi:8080"}, []string{"resturl", "http://"}},
		{"bad bool", map[string]string{"restauthenabled": "yes please"}, []string{"restauthenabled", `"true" or "false"`}},
		{"bad cluster id", map[string]string{"clusterid": "abc"}, []string{"clusterid", "32 hex"}},
		{"empty cluster id", map[string]string{"clusterid": "630372ccdc720a92c681fb928f27b53f,"}, []string{"clusterid"}},
		{"gidMin not a number", map[string]string{"gidMin": "two thousand"}, []string{"gidMin", "integer from 2000"}},
		{"gidMin too low", map[string]string{"gidMin": "100"}, []string{"gidMin"}},
		{"gidMax too high", map[string]string{"gidMax": "2147483648"}, []string{"gidMax"}},
		{"gidMin above gidMax", map[string]string{"gidMin": "5000", "gidMax": "4000"}, []string{"gidMin", "gidMax=4000"}},
		{"volumetype unknown", map[string]string{"volumetype": "mirror:2"}, []string{"volumetype", "replicate:N"}},
		{"replicate without count", map[string]string{"volumetype": "replicate"}, []string{"volumetype"}},
		{"replicate zero", map[string]string{"volumetype": "replicate:0"}, []string{"volumetype"}},
		{"disperse short", map[string]string{"volumetype": "disperse:4"}, []string{"volumetype", "disperse:DATA:REDUNDANCY"}},
		{"none with count", map[string]string{"volumetype": "none:1"}, []string{"volumetype"}},
		{"volume option without value", map[string]string{"volumeoptions": "client.ssl"}, []string{"volumeoptions", "<option> <value>"}},
		{"prefix with underscore", map[string]string{"volumenameprefix": "a_b"}, []string{"volumenameprefix", "no '_'"}},
		{"snapfactor too small", map[string]string{"snapfactor": "0.5"}, []string{"snapfactor", "1 to 100"}},
		{"snapfactor not a number", map[string]string{"snapfactor": "lots"}, []string{"snapfactor"}},
		{"ep prefix invalid", map[string]string{"customepnameprefix": "My_Prefix"}, []string{"customepnameprefix", "DNS-1035"}},
		{"secret name without namespace", map[string]string{"secretName": "s"}, []string{"secretNamespace and secretName"}},
		{"secret and inline key", map[string]string{"secretName": "s", "secretNamespace": "n", "restuserkey": "k"}, []string{"drop restuserkey"}},
		{"auth off with credentials", map[string]string{"restauthenabled": "false", "restuser": "admin"}, []string{"restauthenabled"}},
		{"unknown volume source", map[string]string{"volumesource": "nfs"}, []string{"volumesource", `"csi"`, `"glusterfs"`}},
		{"URL with a user", map[string]string{"resturl": "http://admin@heketi:8080"}, []string{"resturl", "not an http(s) URL"}},
		{"a key that only looks like the CSI prefix", map[string]string{"csi.storage.k8s.io": "x"}, []string{"unknown parameter"}},
		{"unknown placement", map[string]string{"placement": "nearby"}, []string{`placement="nearby"`, `"spread"`, `"local"`}},
		{"placement and heketi's options", map[string]string{"placement": "spread", "volumeoptions": "user.heketi.device-tag-match disk=ssd"}, []string{"placement", "volumeoptions", "user.heketi.device-tag-match"}},
		{"same key twice", map[string]string{"resturl": "http://a:1", "RESTURL": "http://b:1"}, []string{"given twice"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseClass("gold", tt.params)
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			if !strings.Contains(msg, `StorageClass "gold"`) {
				t.Errorf("error does not name the class: %s", msg)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q lacks %q", msg, w)
				}
			}
			if strings.Contains(msg, "s3cret") {
				t.Errorf("error leaks a key: %s", msg)
			}
		})
	}
}
