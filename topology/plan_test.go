package topology

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/heketi/heketi/pkg/glusterfs/api"
)

func mustLoad(t testing.TB, name, data string) *Topology {
	t.Helper()
	topo, _, err := Load(name, []byte(data))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return topo
}

func hnode(id, manage, storage string, zone int, devs ...string) api.NodeInfoResponse {
	n := api.NodeInfoResponse{State: api.EntryStateOnline}
	n.Id = id
	n.Zone = zone
	n.Hostnames.Manage = []string{manage}
	n.Hostnames.Storage = []string{storage}
	for i, d := range devs {
		var di api.DeviceInfoResponse
		di.Id = id + "-d" + string(rune('0'+i))
		di.Name = d
		di.State = api.EntryStateOnline
		n.DevicesInfo = append(n.DevicesInfo, di)
	}
	return n
}

func hcluster(id string, nodes ...api.NodeInfoResponse) api.Cluster {
	return api.Cluster{Id: id, Nodes: nodes, ClusterFlags: api.ClusterFlags{Block: true, File: true}}
}

func TestPlanAgainst(t *testing.T) {
	file := jsonDoc(
		jnode("node-1", "10.0.0.11", `"/dev/sdb", "/dev/sdc"`),
		jnode("node-2", "10.0.0.12", `"/dev/sdb"`),
		jnode("node-3", "10.0.0.13", `{"name": "/dev/sdb", "destroydata": true}`))
	topo := mustLoad(t, "t.json", file)

	tests := []struct {
		name      string
		cur       *api.TopologyInfoResponse
		want      Counts
		clusterID string
		action    Action
		diffs     []string // substrings, in order
	}{
		{
			name:   "empty heketi: everything is created",
			cur:    &api.TopologyInfoResponse{},
			want:   Counts{ClustersToCreate: 1, NodesToAdd: 3, DevicesToAdd: 4},
			action: Create,
		},
		{
			name: "partly there: nodes by manage hostname, devices by name",
			cur: &api.TopologyInfoResponse{ClusterList: []api.Cluster{
				hcluster("c1", hnode("n1", "node-1", "10.0.0.11", 1, "/dev/sdb"), hnode("n2", "node-2", "10.0.0.12", 1, "/dev/sdb")),
			}},
			want:      Counts{ClustersPresent: 1, NodesToAdd: 1, DevicesToAdd: 2, NodesPresent: 2, DevicesPresent: 2},
			clusterID: "c1",
			action:    Exists,
		},
		{
			name: "all there: zero changes",
			cur: &api.TopologyInfoResponse{ClusterList: []api.Cluster{
				hcluster("c1", hnode("n1", "node-1", "10.0.0.11", 1, "/dev/sdb", "/dev/sdc"), hnode("n2", "node-2", "10.0.0.12", 1, "/dev/sdb"), hnode("n3", "node-3", "10.0.0.13", 1, "/dev/sdb")),
			}},
			want:      Counts{ClustersPresent: 1, NodesPresent: 3, DevicesPresent: 4},
			clusterID: "c1",
			action:    Exists,
		},
		{
			name: "differences are reported, not changed",
			cur: &api.TopologyInfoResponse{ClusterList: []api.Cluster{
				hcluster("c1",
					hnode("n1", "node-1", "10.0.0.99", 2, "/dev/sdb", "/dev/sdc", "/dev/sdz"),
					hnode("n2", "node-2", "10.0.0.12", 1, "/dev/sdb"),
					hnode("n3", "node-3", "10.0.0.13", 1, "/dev/sdb"),
					hnode("n4", "node-4", "10.0.0.14", 1)),
				hcluster("c2", hnode("n9", "other", "10.0.9.9", 1)),
			}},
			want:      Counts{ClustersPresent: 1, NodesPresent: 3, DevicesPresent: 4, Differences: 5},
			clusterID: "c1",
			action:    Exists,
			diffs: []string{
				"node node-1 is in zone 1 in the file but zone 2 in heketi",
				"storage hostnames [10.0.0.11] in the file but [10.0.0.99] in heketi",
				"device /dev/sdz (n1-d2) on node-1 is in heketi but not in the file",
				"node node-4 (n4) is in heketi cluster c1 but not in the file",
				"heketi cluster c2 (1 node, 0 volumes) is not in the file",
			},
		},
		{
			name: "a storage address another heketi node holds is a conflict",
			cur: &api.TopologyInfoResponse{ClusterList: []api.Cluster{
				hcluster("c2", hnode("n9", "intruder", "10.0.0.12", 1)),
			}},
			want:   Counts{ClustersToCreate: 1, NodesToAdd: 2, DevicesToAdd: 3, Conflicts: 1, Differences: 1},
			action: Create,
			diffs:  []string{"heketi cluster c2"},
		},
		{
			name: "an empty cluster left by an interrupted load is reused",
			cur: &api.TopologyInfoResponse{ClusterList: []api.Cluster{
				{Id: "empty", ClusterFlags: api.ClusterFlags{Block: true, File: true}},
			}},
			want:      Counts{ClustersPresent: 1, NodesToAdd: 3, DevicesToAdd: 4},
			clusterID: "empty",
			action:    Reuse,
		},
		{
			name: "an empty cluster with other flags is not reused",
			cur: &api.TopologyInfoResponse{ClusterList: []api.Cluster{
				{Id: "empty", ClusterFlags: api.ClusterFlags{Block: false, File: true}},
			}},
			want:   Counts{ClustersToCreate: 1, NodesToAdd: 3, DevicesToAdd: 4},
			action: Create,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := PlanAgainst(topo, tc.cur)
			if got := p.Counts(); got != tc.want {
				t.Errorf("Counts() = %+v, want %+v", got, tc.want)
			}
			if p.Clusters[0].ID != tc.clusterID || p.Clusters[0].Action != tc.action {
				t.Errorf("cluster = %q %s, want %q %s", p.Clusters[0].ID, p.Clusters[0].Action, tc.clusterID, tc.action)
			}
			if len(p.Differences) != len(tc.diffs) {
				t.Fatalf("differences = %+v, want %d", p.Differences, len(tc.diffs))
			}
			for i, d := range tc.diffs {
				if !strings.Contains(p.Differences[i].Message, d) {
					t.Errorf("difference %d = %q, want it to contain %q", i, p.Differences[i].Message, d)
				}
			}
			// Every request the plan would send passes heketi's own
			// validation (ClusterId and NodeId are filled at load time).
			for _, cp := range p.Clusters {
				for _, np := range cp.Nodes {
					req := np.Request
					req.ClusterId = strings.Repeat("a", 32)
					if err := req.Validate(); err != nil {
						t.Errorf("node %s request refused by heketi's validation: %v", np.Manage, err)
					}
					for _, dp := range np.Devices {
						dreq := api.DeviceAddRequest{Device: api.Device{Name: dp.Name, Tags: dp.Tags}, NodeId: strings.Repeat("b", 32), DestroyData: dp.DestroyData}
						if err := dreq.Validate(); err != nil {
							t.Errorf("device %s request refused: %v", dp.Name, err)
						}
					}
				}
			}
			var text, js bytes.Buffer
			if err := p.WriteText(&text); err != nil {
				t.Fatal(err)
			}
			if err := p.WriteJSON(&js); err != nil {
				t.Fatal(err)
			}
			var back PlanJSON
			if err := json.Unmarshal(js.Bytes(), &back); err != nil {
				t.Fatalf("plan JSON does not parse: %v\n%s", err, js.String())
			}
			if back.Counts != tc.want {
				t.Errorf("JSON counts = %+v, want %+v", back.Counts, tc.want)
			}
		})
	}
}

func TestPlanDestroyDataOnlyFromFile(t *testing.T) {
	topo := mustLoad(t, "t.json", jsonDoc(
		jnode("node-1", "10.0.0.11", `"/dev/sdb", {"name": "/dev/sdc", "destroydata": true}, {"name": "/dev/sdd", "destroydata": false}`),
		goodNode2, goodNode3))
	p := PlanAgainst(topo, nil)
	got := map[string]bool{}
	for _, d := range p.Clusters[0].Nodes[0].Devices {
		got[d.Name] = d.DestroyData
	}
	want := map[string]bool{"/dev/sdb": false, "/dev/sdc": true, "/dev/sdd": false}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("destroydata of %s = %v, want %v", k, got[k], v)
		}
	}
}

// TestExportRoundTrip: what Export writes loads again, in JSON and YAML,
// and plans as zero changes against the heketi it came from.
func TestExportRoundTrip(t *testing.T) {
	c1 := hcluster("c1",
		hnode("n2", "node-2", "10.0.0.12", 2, "/dev/sdc", "/dev/sdb"),
		hnode("n1", "node-1", "10.0.0.11", 1, "/dev/sdb"),
		hnode("n3", "node-3", "10.0.0.13", 3))
	c1.Nodes[0].Tags = map[string]string{"rack": "r2"}
	c1.Nodes[0].DevicesInfo[0].Tags = map[string]string{"ssd": "true"}
	c2 := hcluster("c2", hnode("m1", "m-1", "10.1.0.1", 1, "/dev/vdb"))
	c2.Block = false
	cur := &api.TopologyInfoResponse{ClusterList: []api.Cluster{c2, c1, {Id: "empty"}}}

	exported := Export(cur)
	for _, enc := range []struct {
		name string
		fn   func(*bytes.Buffer, *Topology) error
	}{
		{"show.json", func(b *bytes.Buffer, t *Topology) error { return EncodeJSON(b, t) }},
		{"show.yaml", func(b *bytes.Buffer, t *Topology) error { return EncodeYAML(b, t) }},
	} {
		t.Run(enc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := enc.fn(&buf, exported); err != nil {
				t.Fatal(err)
			}
			back, diags, err := Load(enc.name, buf.Bytes())
			if err != nil {
				t.Fatalf("exported file does not load: %v\n%s", err, buf.String())
			}
			for _, d := range diags {
				if !strings.Contains(d.Message, "node(s)") && !strings.Contains(d.Message, "no devices") {
					t.Errorf("unexpected diagnostic %s", d)
				}
			}
			p := PlanAgainst(back, cur)
			if c := p.Counts(); c.Changes() != 0 || c.Differences != 0 || c.Conflicts != 0 {
				t.Errorf("round trip plans changes: %+v\n%s", c, buf.String())
			}
		})
	}
}
