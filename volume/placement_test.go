package volume

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/heketi/heketi/pkg/glusterfs/api"
)

// zoned makes n usable nodes per zone in cluster c; heketi zone numbers
// follow the zones' order (1, 2, ...) unless hz maps a zone otherwise.
func zoned(c string, n int, zones []string, hz map[string]int) []zoneNode {
	var out []zoneNode
	for i, z := range zones {
		num := i + 1
		if v, ok := hz[z]; ok {
			num = v
		}
		for j := 0; j < n; j++ {
			out = append(out, zoneNode{ID: fmt.Sprintf("%s-%s-%d", c, z, j), Cluster: c, HeketiZone: num, Zone: z, Usable: true})
		}
	}
	return out
}

func TestDecide(t *testing.T) {
	abc := zoned("c1", 3, []string{"zone-a", "zone-b", "zone-c"}, nil)
	abcd := zoned("c1", 3, []string{"zone-a", "zone-b", "zone-c", "zone-d"}, nil)
	ab := zoned("c1", 3, []string{"zone-a", "zone-b"}, nil)
	untagged := func(nodes []zoneNode) []zoneNode {
		out := slices.Clone(nodes)
		for i := range out {
			out[i].Zone = ""
		}
		return out
	}
	smallA := append(zoned("c1", 2, []string{"zone-a"}, nil), zoned("c1", 3, []string{"zone-b", "zone-c"}, map[string]int{"zone-b": 2, "zone-c": 3})...)
	offlineA := slices.Clone(abc)
	offlineA[0].Usable = false
	oneHeketiZone := zoned("c1", 3, []string{"zone-a", "zone-b", "zone-c"}, map[string]int{"zone-a": 1, "zone-b": 1, "zone-c": 1})
	twoClusters := append(zoned("c1", 3, []string{"zone-a", "zone-b"}, nil), zoned("c2", 3, []string{"zone-a", "zone-b", "zone-c"}, nil)...)

	tests := []struct {
		name   string
		params map[string]string
		topo   Topology
		nodes  []zoneNode
		want   *Placement
		errHas []string
	}{
		{name: "spread asked", params: map[string]string{"placement": "spread"}, nodes: abc,
			want: &Placement{Mode: PlacementSpread, Zones: []string{"zone-a", "zone-b", "zone-c"}, Options: []string{"user.heketi.zone-checking strict"}}},
		{name: "default spreads over enough zones", nodes: abc,
			want: &Placement{Mode: PlacementSpread, Zones: []string{"zone-a", "zone-b", "zone-c"}, Options: []string{"user.heketi.zone-checking strict"}}},
		{name: "default spreads even with a selected node", nodes: abc, topo: Topology{Preferred: []string{"zone-b"}},
			want: &Placement{Mode: PlacementSpread, Zones: []string{"zone-a", "zone-b", "zone-c"}, Options: []string{"user.heketi.zone-checking strict"}}},
		{name: "default with too few zones and no zone asked is heketi's own", nodes: ab, want: &Placement{}},
		{name: "default with too few zones and a selected node is local", nodes: ab, topo: Topology{Preferred: []string{"zone-b"}},
			want: &Placement{Mode: PlacementLocal, Zone: "zone-b", Options: []string{"user.heketi.zone-checking none", "user.heketi.device-tag-match glusterkube.zone=zone:b"}}},
		{name: "default with one allowed zone is local there", nodes: abc, topo: Topology{Allowed: []string{"zone-c"}},
			want: &Placement{Mode: PlacementLocal, Zone: "zone-c", Options: []string{"user.heketi.zone-checking none", "user.heketi.device-tag-match glusterkube.zone=zone:c"}}},
		{name: "default with two allowed zones and no zone chosen fails", nodes: abc, topo: Topology{Allowed: []string{"zone-a", "zone-b"}},
			errHas: []string{"zone-a, zone-b", "a replica-3 volume needs to spread (3)", "no single zone is chosen"}},
		{name: "local in the selected node's zone", params: map[string]string{"placement": "local"}, nodes: abc, topo: Topology{Preferred: []string{"zone-a"}},
			want: &Placement{Mode: PlacementLocal, Zone: "zone-a", Options: []string{"user.heketi.zone-checking none", "user.heketi.device-tag-match glusterkube.zone=zone:a"}}},
		{name: "local in the one allowed zone", params: map[string]string{"placement": "local"}, nodes: abc, topo: Topology{Allowed: []string{"zone-b"}},
			want: &Placement{Mode: PlacementLocal, Zone: "zone-b", Options: []string{"user.heketi.zone-checking none", "user.heketi.device-tag-match glusterkube.zone=zone:b"}}},
		{name: "local without a zone", params: map[string]string{"placement": "local"}, nodes: abc,
			errHas: []string{`StorageClass "gold"`, "placement: local needs one zone", "WaitForFirstConsumer", "allowedTopologies naming one zone"}},
		{name: "local in a zone with too few nodes", params: map[string]string{"placement": "local"}, nodes: smallA, topo: Topology{Preferred: []string{"zone-a"}},
			errHas: []string{"zone zone-a has 2 storage nodes", "a replica-3 volume needs 3"}},
		{name: "local counts only usable nodes", params: map[string]string{"placement": "local"}, nodes: offlineA, topo: Topology{Preferred: []string{"zone-a"}},
			errHas: []string{"zone zone-a has 2 storage nodes"}},
		{name: "local in a zone without storage", params: map[string]string{"placement": "local"}, nodes: abc, topo: Topology{Preferred: []string{"zone-x"}},
			errHas: []string{"zone zone-x has 0 storage nodes"}},
		{name: "local in a zone not allowed", params: map[string]string{"placement": "local"}, nodes: abc, topo: Topology{Allowed: []string{"zone-a"}, Preferred: []string{"zone-b"}},
			errHas: []string{"zone zone-b", "not one of the zones allowed (zone-a)"}},
		{name: "local replica 2 fits 2 nodes", params: map[string]string{"placement": "local", "volumetype": "replicate:2"}, nodes: smallA, topo: Topology{Preferred: []string{"zone-a"}},
			want: &Placement{Mode: PlacementLocal, Zone: "zone-a", Options: []string{"user.heketi.zone-checking none", "user.heketi.device-tag-match glusterkube.zone=zone:a"}}},
		{name: "spread over too few zones", params: map[string]string{"placement": "spread"}, nodes: ab,
			errHas: []string{"placement: spread", "a replica-3 volume needs storage nodes in 3 zones", "only 2 zones have them (zone-a: 3 nodes, zone-b: 3 nodes)"}},
		{name: "spread within allowed zones too few", params: map[string]string{"placement": "spread"}, nodes: abc, topo: Topology{Allowed: []string{"zone-a", "zone-b"}},
			errHas: []string{"needs storage nodes in 3 zones of the zones allowed (zone-a, zone-b)", "only 2 zones have them"}},
		{name: "spread disperse counts data and redundancy", params: map[string]string{"placement": "spread", "volumetype": "disperse:4:2"}, nodes: abcd,
			errHas: []string{"a disperse 4+2 volume needs storage nodes in 6 zones", "only 4 zones"}},
		{name: "spread leaves out the one zone not allowed", params: map[string]string{"placement": "spread"}, nodes: abcd, topo: Topology{Allowed: []string{"zone-a", "zone-b", "zone-c"}},
			want: &Placement{Mode: PlacementSpread, Zones: []string{"zone-a", "zone-b", "zone-c"}, Options: []string{"user.heketi.zone-checking strict", "user.heketi.device-tag-match glusterkube.zone!=zone:d"}}},
		{name: "spread cannot leave out two zones", params: map[string]string{"placement": "spread", "volumetype": "replicate:2"}, nodes: abcd, topo: Topology{Allowed: []string{"zone-a", "zone-b"}},
			errHas: []string{"leave out 2 zones with storage nodes (zone-c, zone-d)", "one tag rule per volume"}},
		{name: "spread needs heketi zones that match", params: map[string]string{"placement": "spread"}, nodes: oneHeketiZone,
			errHas: []string{"zones zone-a, zone-b, zone-c are in 1 heketi zone", "strict zone checking needs 3", SettingZonesFromNodes}},
		{name: "distributed volume spreads over one zone", params: map[string]string{"placement": "spread", "volumetype": "none"}, nodes: zoned("c1", 1, []string{"zone-a"}, nil),
			want: &Placement{Mode: PlacementSpread, Zones: []string{"zone-a"}, Options: []string{"user.heketi.zone-checking strict"}}},
		{name: "no zones known: default is heketi's own", nodes: untagged(abc), want: &Placement{}},
		{name: "no zones known: local says how to get them", params: map[string]string{"placement": "local"}, nodes: untagged(abc), topo: Topology{Preferred: []string{"zone-a"}},
			errHas: []string{"placement: local needs the Kubernetes zones", "glusterkube.zone", SettingZonesFromNodes}},
		{name: "the class's own heketi options win", params: map[string]string{"volumeoptions": "user.heketi.zone-checking none"}, nodes: abc, want: &Placement{}},
		{name: "spread only in the cluster that fits", params: map[string]string{"placement": "spread"}, nodes: twoClusters,
			want: &Placement{Mode: PlacementSpread, Zones: []string{"zone-a", "zone-b", "zone-c"}, Clusters: []string{"c2"}, Options: []string{"user.heketi.zone-checking strict"}}},
		{name: "spread in the class's clusters only", params: map[string]string{"placement": "spread", "clusterid": strings.Repeat("c", 32)}, nodes: abc,
			errHas: []string{"needs the Kubernetes zones"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := ParseClass("gold", tt.params)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Decide("gold", cfg, tt.topo, tt.nodes)
			if tt.errHas != nil {
				if err == nil {
					t.Fatalf("placed %+v, want an error", got)
				}
				if !IsPlacement(err) {
					t.Errorf("error %v is not a placement error", err)
				}
				for _, w := range tt.errHas {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Mode != tt.want.Mode || got.Zone != tt.want.Zone || !slices.Equal(got.Zones, tt.want.Zones) ||
				!slices.Equal(got.Clusters, tt.want.Clusters) || !slices.Equal(got.Options, tt.want.Options) {
				t.Errorf("placed %+v, want %+v", got, tt.want)
			}
		})
	}
}

// heketiTagRule is heketi v10's parser of user.heketi.device-tag-match
// (apps/glusterfs/tag_matching_rule.go), copied: the rules placement
// writes must pass it, or heketi fails the volume.
var heketiTagRule = regexp.MustCompile(`^([a-zA-Z0-9.-_]+)(\!?=)([a-zA-Z0-9.-_]+)$`)

func TestZoneTagRules(t *testing.T) {
	for _, zone := range []string{"zone-a", "us-east-1a", "europe-west4-b", "eu_de.2", "Z"} {
		if err := CheckZoneName(zone); err != nil {
			t.Fatal(err)
		}
		for _, rule := range []string{localZoneRule(zone), ZoneTag + "!=" + ZoneTagValue(zone)} {
			m := heketiTagRule.FindStringSubmatch(rule)
			if m == nil || m[1] != ZoneTag || ZoneFromTag(m[3]) != zone {
				t.Errorf("heketi reads rule %q as %q", rule, m)
			}
		}
		if got := zoneOfOptions([]string{"user.heketi.zone-checking none", OptionDeviceTagMatch + " " + localZoneRule(zone)}); got != zone {
			t.Errorf("zone of a local volume in %s read back as %q", zone, got)
		}
	}
	// Why the tag is not the zone name itself.
	if heketiTagRule.MatchString(ZoneTag + "=us-east-1a") {
		t.Error("heketi's rule parser accepts '-' now; ZoneTagValue could keep names as they are")
	}
	if zoneOfOptions([]string{OptionDeviceTagMatch + " " + ZoneTag + "!=zone:a"}) != "" {
		t.Error("a spread volume's exclusion rule read as a local zone")
	}
	for _, bad := range []string{"", "zone a", "zone:a", strings.Repeat("z", 64)} {
		if CheckZoneName(bad) == nil {
			t.Errorf("zone %q accepted", bad)
		}
	}
}

func TestSetSize(t *testing.T) {
	for _, tt := range []struct {
		d    api.VolumeDurabilityInfo
		want int
	}{
		{api.VolumeDurabilityInfo{Type: api.DurabilityReplicate, Replicate: api.ReplicaDurability{Replica: 3}}, 3},
		{api.VolumeDurabilityInfo{Type: api.DurabilityEC, Disperse: api.DisperseDurability{Data: 4, Redundancy: 2}}, 6},
		{api.VolumeDurabilityInfo{Type: api.DurabilityDistributeOnly}, 1},
	} {
		if got := SetSize(tt.d); got != tt.want {
			t.Errorf("SetSize(%+v) = %d, want %d", tt.d, got, tt.want)
		}
	}
}
