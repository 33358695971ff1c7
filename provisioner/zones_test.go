package provisioner

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"

	"github.com/glusterkube/glusterkube/volume"
	"github.com/glusterkube/glusterkube/volume/fakeheketi"
	"github.com/glusterkube/glusterkube/zones"
)

func zoneNode(name string, labels map[string]string) *v1.Node {
	return &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
}

// tagZones gives the fake heketi's three nodes the zones zone-a, zone-b
// and zone-c (one node each).
func tagZones(f *fixture) {
	f.heketi.NodeTags = map[string]map[string]string{}
	for i, n := range fakeheketi.Nodes {
		f.heketi.NodeTags[n.ID] = map[string]string{volume.ZoneTag: volume.ZoneTagValue(fmt.Sprintf("zone-%c", 'a'+i))}
	}
}

func TestProvisionZones(t *testing.T) {
	sel := func(values ...string) []v1.TopologySelectorTerm {
		return []v1.TopologySelectorTerm{{MatchLabelExpressions: []v1.TopologySelectorLabelRequirement{{Key: zones.LabelZone, Values: values}}}}
	}
	affinity := func(key, zone string) *v1.VolumeNodeAffinity { return zoneAffinity(key, zone) }
	tests := []struct {
		name     string
		params   map[string]string
		allowed  []v1.TopologySelectorTerm
		selected string
		// wantAffinity is the PV's node affinity (nil: none).
		wantAffinity *v1.VolumeNodeAffinity
		wantOptions  []string
		wantState    controller.ProvisioningState
		errHas       []string
	}{
		{name: "default spreads, no affinity", wantOptions: []string{"user.heketi.zone-checking strict"}},
		{name: "local in the selected node's zone", params: map[string]string{"placement": "local", "volumetype": "none"}, selected: "node-b",
			wantAffinity: affinity(zones.LabelZone, "zone-b"), wantOptions: []string{"user.heketi.zone-checking none", "user.heketi.device-tag-match glusterkube.zone=zone:b"}},
		{name: "local on an old node names the beta key", params: map[string]string{"placement": "local", "volumetype": "none"}, selected: "node-old",
			wantAffinity: affinity(zones.LabelZoneBeta, "zone-c"), wantOptions: []string{"user.heketi.zone-checking none", "user.heketi.device-tag-match glusterkube.zone=zone:c"}},
		{name: "allowedTopologies with one zone", params: map[string]string{"volumetype": "none"}, allowed: sel("zone-a"),
			wantAffinity: affinity(zones.LabelZone, "zone-a"), wantOptions: []string{"user.heketi.zone-checking none", "user.heketi.device-tag-match glusterkube.zone=zone:a"}},
		{name: "spread within allowed zones", params: map[string]string{"placement": "spread", "volumetype": "replicate:2"}, allowed: sel("zone-a", "zone-b"),
			wantOptions: []string{"user.heketi.zone-checking strict", "user.heketi.device-tag-match glusterkube.zone!=zone:c"}},
		{name: "local replica 3 in a zone of one node reschedules", params: map[string]string{"placement": "local"}, selected: "node-b",
			wantState: controller.ProvisioningReschedule, errHas: []string{"zone zone-b has 1 storage node", "a replica-3 volume needs 3"}},
		{name: "spread without enough zones", params: map[string]string{"placement": "spread", "volumetype": "replicate:3"}, allowed: sel("zone-a", "zone-b"),
			wantState: controller.ProvisioningFinished, errHas: []string{"needs storage nodes in 3 zones", "only 2 zones have them"}},
		{name: "allowedTopologies on another key", allowed: []v1.TopologySelectorTerm{{MatchLabelExpressions: []v1.TopologySelectorLabelRequirement{{Key: "kubernetes.io/hostname", Values: []string{"n1"}}}}},
			wantState: controller.ProvisioningNoChange, errHas: []string{`StorageClass "zoned"`, "allowedTopologies", `"kubernetes.io/hostname" is not a zone label`}},
		{name: "selected node gone", params: map[string]string{"placement": "local"}, selected: "node-gone",
			wantState: controller.ProvisioningReschedule, errHas: []string{"node-gone", "no longer exists"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t,
				zoneNode("node-b", map[string]string{zones.LabelZone: "zone-b", zones.LabelZoneBeta: "zone-b"}),
				zoneNode("node-old", map[string]string{zones.LabelZoneBeta: "zone-c"}))
			tagZones(f)
			sc := class("zoned", tt.params, v1.PersistentVolumeReclaimDelete)
			sc.AllowedTopologies = tt.allowed
			c := claim("ns", "data", "uid-1", "1Gi")
			opts := provisionOpts(sc, c)
			opts.SelectedNodeName = tt.selected
			pv, state, err := f.p.Provision(context.Background(), opts)
			if tt.errHas != nil {
				if err == nil {
					t.Fatalf("provisioned %v", pv)
				}
				for _, w := range tt.errHas {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
				if state != tt.wantState {
					t.Errorf("state %s, want %s", state, tt.wantState)
				}
				if n := f.heketi.Count("volume_create"); n != 0 {
					t.Errorf("heketi asked for %d volumes", n)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := f.heketi.Creates()[0].GlusterVolumeOptions; !slices.Equal(got, tt.wantOptions) {
				t.Errorf("heketi options %q, want %q", got, tt.wantOptions)
			}
			if fmt.Sprint(pv.Spec.NodeAffinity) != fmt.Sprint(tt.wantAffinity) {
				t.Errorf("node affinity %v, want %v", pv.Spec.NodeAffinity, tt.wantAffinity)
			}
		})
	}
}

func TestAllowedZones(t *testing.T) {
	term := func(exprs ...v1.TopologySelectorLabelRequirement) v1.TopologySelectorTerm {
		return v1.TopologySelectorTerm{MatchLabelExpressions: exprs}
	}
	req := func(key string, values ...string) v1.TopologySelectorLabelRequirement {
		return v1.TopologySelectorLabelRequirement{Key: key, Values: values}
	}
	for _, tt := range []struct {
		name   string
		terms  []v1.TopologySelectorTerm
		want   []string
		errHas string
	}{
		{name: "none", want: nil},
		{name: "one term", terms: []v1.TopologySelectorTerm{term(req(zones.LabelZone, "b", "a"))}, want: []string{"a", "b"}},
		{name: "terms are or-ed", terms: []v1.TopologySelectorTerm{term(req(zones.LabelZone, "a")), term(req(zones.LabelZoneBeta, "c"))}, want: []string{"a", "c"}},
		{name: "expressions of a term are and-ed", terms: []v1.TopologySelectorTerm{term(req(zones.LabelZone, "a", "b"), req(zones.LabelZoneBeta, "b", "c"))}, want: []string{"b"}},
		{name: "a term without expressions allows all", terms: []v1.TopologySelectorTerm{term(req(zones.LabelZone, "a")), term()}, want: nil},
		{name: "disjoint and-ed expressions", terms: []v1.TopologySelectorTerm{term(req(zones.LabelZone, "a"), req(zones.LabelZoneBeta, "b"))}, errHas: "no zone is allowed"},
		{name: "not a zone key", terms: []v1.TopologySelectorTerm{term(req("topology.kubernetes.io/region", "r1"))}, errHas: "is not a zone label"},
		{name: "not a zone name", terms: []v1.TopologySelectorTerm{term(req(zones.LabelZone, "zone a"))}, errHas: "not a label value"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := allowedZones(&storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "sc"}, AllowedTopologies: tt.terms})
			if tt.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errHas) || !volume.IsInvalid(err) {
					t.Fatalf("err %v, want an invalid-class error with %q", err, tt.errHas)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) || (got == nil) != (tt.want == nil) {
				t.Errorf("allowedZones = %q %v, want %q", got, err, tt.want)
			}
		})
	}
}
