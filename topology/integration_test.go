package topology

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heketi/heketi/pkg/glusterfs/api"

	"github.com/glusterkube/glusterkube/internal/heketi"
	"github.com/glusterkube/glusterkube/internal/testenv"
)

// Integration tests here start heketi servers of their own (mock
// executor, fresh DB); no Kubernetes is needed.
func TestMain(m *testing.M) { os.Exit(testenv.Main(m, testenv.Options{})) }

func newHeketiClient(t testing.TB, h *testenv.Heketi, tweak func(*heketi.Config)) *heketi.Client {
	t.Helper()
	cfg := heketi.Config{URL: h.URL, Timeout: 30 * time.Second}
	if h.AdminKey != "" {
		cfg.User, cfg.Key = "admin", h.AdminKey
	}
	if tweak != nil {
		tweak(&cfg)
	}
	c, err := heketi.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// load plans and applies topo, failing the test on any error.
func load(t testing.TB, c Heketi, topo *Topology) *Report {
	t.Helper()
	ctx := context.Background()
	p, err := MakePlan(ctx, c, topo)
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	rep, err := Apply(ctx, c, p, Options{})
	if err != nil {
		var buf bytes.Buffer
		_ = rep.WriteSummary(&buf)
		t.Fatalf("load: %v\n%s", err, buf.String())
	}
	return rep
}

func planCounts(t testing.TB, c Heketi, topo *Topology) (Counts, *Plan) {
	t.Helper()
	p, err := MakePlan(context.Background(), c, topo)
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	return p.Counts(), p
}

func topologyInfo(t testing.TB, c *heketi.Client) *api.TopologyInfoResponse {
	t.Helper()
	info, err := c.TopologyInfo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// stateSummary is heketi's state without ids: cluster flags, nodes and
// devices as a comparable value.
func stateSummary(t testing.TB, c *heketi.Client) string {
	t.Helper()
	var buf bytes.Buffer
	if err := EncodeJSON(&buf, Export(topologyInfo(t, c))); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func readExample(t testing.TB, name string) *Topology {
	t.Helper()
	topo, _, err := ReadFile(filepath.Join("..", "examples", name), nil)
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

func TestIntegrationLoadAndReload(t *testing.T) {
	h := testenv.NewHeketi(t, testenv.HeketiOptions{Auth: true})
	c := newHeketiClient(t, h, nil)
	topo := readExample(t, "topology.json")

	rep := load(t, c, topo)
	if got := rep.Count(Done); got != 1+3+3 {
		t.Errorf("first load did %d operations, want 7", got)
	}
	info := topologyInfo(t, c)
	if len(info.ClusterList) != 1 || len(info.ClusterList[0].Nodes) != 3 {
		t.Fatalf("heketi holds %+v, want 1 cluster of 3 nodes", info)
	}
	for _, n := range info.ClusterList[0].Nodes {
		if len(n.DevicesInfo) != 1 || n.DevicesInfo[0].Name != "/dev/sdb" || n.Zone != 1 {
			t.Errorf("node %v: devices %+v zone %d", n.Hostnames.Manage, n.DevicesInfo, n.Zone)
		}
	}
	before := stateSummary(t, c)

	// Re-load is a no-op: nothing planned, nothing done, nothing changed.
	counts, _ := planCounts(t, c, topo)
	if counts.Changes() != 0 || counts.Differences != 0 || counts.NodesPresent != 3 || counts.DevicesPresent != 3 {
		t.Errorf("re-plan = %+v, want no changes", counts)
	}
	rep = load(t, c, topo)
	if len(rep.Results) != 0 {
		t.Errorf("re-load ran %d operations: %+v", len(rep.Results), rep.Results)
	}
	if after := stateSummary(t, c); after != before {
		t.Errorf("re-load changed heketi:\n%s\n%s", before, after)
	}
}

func TestIntegrationMixedDevicesTwoClusters(t *testing.T) {
	h := testenv.NewHeketi(t, testenv.HeketiOptions{})
	c := newHeketiClient(t, h, nil)
	doc := `{"clusters": [
  {"nodes": [
    {"node": {"hostnames": {"manage": ["a-1"], "storage": ["10.1.0.1"]}, "zone": 1, "tags": {"rack": "r1"}},
     "devices": ["/dev/sdb", {"name": "/dev/sdc", "tags": {"ssd": "true"}}, {"name": "/dev/sdd", "destroydata": true}]},
    {"node": {"hostnames": {"manage": ["a-2"], "storage": ["10.1.0.2"]}, "zone": 2}, "devices": ["/dev/sdb"]},
    {"node": {"hostnames": {"manage": ["a-3"], "storage": ["10.1.0.3"]}, "zone": 3}, "devices": [{"name": "/dev/sdb"}]}
  ]},
  {"block": false, "nodes": [
    {"node": {"hostnames": {"manage": ["b-1"], "storage": ["10.2.0.1"]}, "zone": 1}, "devices": ["/dev/vdb"]},
    {"node": {"hostnames": {"manage": ["b-2"], "storage": ["10.2.0.2"]}, "zone": 1}, "devices": ["/dev/vdb"]},
    {"node": {"hostnames": {"manage": ["b-3"], "storage": ["10.2.0.3"]}, "zone": 1}, "devices": ["/dev/vdb", "/dev/vdc"]}
  ]}
]}`
	topo := mustLoad(t, "two.json", doc)
	load(t, c, topo)

	info := topologyInfo(t, c)
	if len(info.ClusterList) != 2 {
		t.Fatalf("heketi has %d clusters, want 2", len(info.ClusterList))
	}
	byManage := map[string]api.NodeInfoResponse{}
	clusterOf := map[string]api.Cluster{}
	for _, cl := range info.ClusterList {
		for _, n := range cl.Nodes {
			byManage[manage0(&n)] = n
			clusterOf[manage0(&n)] = cl
		}
	}
	if clusterOf["a-1"].Id == clusterOf["b-1"].Id {
		t.Errorf("both file clusters went into heketi cluster %s", clusterOf["a-1"].Id)
	}
	if cb := clusterOf["b-1"]; cb.Block || !cb.File {
		t.Errorf("cluster b flags = %+v, want file only", cb.ClusterFlags)
	}
	if ca := clusterOf["a-1"]; !ca.Block || !ca.File {
		t.Errorf("cluster a flags = %+v, want block and file", ca.ClusterFlags)
	}
	a1 := byManage["a-1"]
	if !reflect.DeepEqual(a1.Tags, map[string]string{"rack": "r1"}) {
		t.Errorf("a-1 tags = %v", a1.Tags)
	}
	devs := map[string]api.DeviceInfoResponse{}
	for _, d := range a1.DevicesInfo {
		devs[d.Name] = d
	}
	if len(devs) != 3 || !reflect.DeepEqual(devs["/dev/sdc"].Tags, map[string]string{"ssd": "true"}) {
		t.Errorf("a-1 devices = %+v", a1.DevicesInfo)
	}
	if n := len(byManage["b-3"].DevicesInfo); n != 2 {
		t.Errorf("b-3 has %d devices, want 2", n)
	}
	if counts, _ := planCounts(t, c, topo); counts.Changes() != 0 || counts.Differences != 0 {
		t.Errorf("re-plan = %+v, want no changes", counts)
	}
}

func TestIntegrationYAMLAndJSONSameState(t *testing.T) {
	var states []string
	for _, name := range []string{"topology.json", "topology.yaml"} {
		h := testenv.NewHeketi(t, testenv.HeketiOptions{})
		c := newHeketiClient(t, h, nil)
		load(t, c, readExample(t, name))
		states = append(states, stateSummary(t, c))
	}
	if states[0] != states[1] {
		t.Errorf("JSON and YAML loads differ:\n%s\n%s", states[0], states[1])
	}
}

func TestIntegrationRoundTrip(t *testing.T) {
	h := testenv.NewHeketi(t, testenv.HeketiOptions{})
	c := newHeketiClient(t, h, nil)
	load(t, c, mustLoad(t, "t.json", bigDoc(5, 3)))
	for _, format := range []string{"show.json", "show.yaml"} {
		var buf bytes.Buffer
		exported := Export(topologyInfo(t, c))
		var err error
		if strings.HasSuffix(format, ".yaml") {
			err = EncodeYAML(&buf, exported)
		} else {
			err = EncodeJSON(&buf, exported)
		}
		if err != nil {
			t.Fatal(err)
		}
		back, _, err := Load(format, buf.Bytes())
		if err != nil {
			t.Fatalf("%s does not load: %v", format, err)
		}
		counts, p := planCounts(t, c, back)
		if counts.Changes() != 0 || counts.Differences != 0 || counts.NodesPresent != 5 || counts.DevicesPresent != 15 {
			var text bytes.Buffer
			_ = p.WriteText(&text)
			t.Errorf("%s: plan against the same heketi = %+v\n%s", format, counts, text.String())
		}
	}
}

// TestIntegrationPartialFailureThenRerun: a node whose storage address
// heketi gives to another node fails with heketi's own message, the rest
// loads, and a re-run after the conflict is gone finishes the remainder.
func TestIntegrationPartialFailureThenRerun(t *testing.T) {
	h := testenv.NewHeketi(t, testenv.HeketiOptions{})
	c := newHeketiClient(t, h, nil)
	ctx := context.Background()
	topo := readExample(t, "topology.json")

	// Plan first, then someone adds a node holding node-2's storage
	// address out of band: heketi itself refuses node-2.
	p, err := MakePlan(ctx, c, topo)
	if err != nil {
		t.Fatal(err)
	}
	other, err := c.ClusterCreate(ctx, &api.ClusterCreateRequest{ClusterFlags: api.ClusterFlags{Block: true, File: true}})
	if err != nil {
		t.Fatal(err)
	}
	intruder, err := c.NodeAdd(ctx, &api.NodeAddRequest{Zone: 1, ClusterId: other.Id,
		Hostnames: api.HostAddresses{Manage: []string{"intruder"}, Storage: []string{"10.0.0.12"}}})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Apply(ctx, c, p, Options{})
	if err == nil {
		t.Fatal("load succeeded despite the conflict")
	}
	fails := rep.Failures()
	if len(fails) != 2 || fails[0].Node != "node-2" {
		t.Fatalf("failures = %+v, want node-2's node add and its device", fails)
	}
	var nodeFail Result
	for _, f := range fails {
		if f.Op == OpNodeAdd {
			nodeFail = f
		}
	}
	if nodeFail.Status != Failed || !strings.Contains(nodeFail.Error, "Hostname 10.0.0.12 already used by node with id "+intruder.Id) || !strings.Contains(nodeFail.Hint, "remove that node") {
		t.Errorf("node-2 failure = %+v; want heketi's message and a hint", nodeFail)
	}
	if rep.Count(Done) != 1+2+2 {
		t.Errorf("done = %d, want the cluster, 2 nodes and their 2 devices", rep.Count(Done))
	}

	// The plan now sees the conflict before any call.
	counts, _ := planCounts(t, c, topo)
	if counts.Conflicts != 1 || counts.NodesPresent != 2 || counts.NodesToAdd != 0 {
		t.Errorf("plan with the intruder = %+v, want 1 conflict", counts)
	}

	// Remove the intruder; the re-run finishes node-2 only.
	if err := c.NodeState(ctx, intruder.Id, &api.StateRequest{State: api.EntryStateOffline}); err != nil {
		t.Fatal(err)
	}
	if err := c.NodeDelete(ctx, intruder.Id); err != nil {
		t.Fatal(err)
	}
	if err := c.ClusterDelete(ctx, other.Id); err != nil {
		t.Fatal(err)
	}
	rep = load(t, c, topo)
	if rep.Count(Done) != 2 {
		t.Errorf("re-run did %d operations, want node-2 and its device: %+v", rep.Count(Done), rep.Results)
	}
	info := topologyInfo(t, c)
	if len(info.ClusterList) != 1 || len(info.ClusterList[0].Nodes) != 3 {
		t.Errorf("after the re-run heketi holds %d clusters, want 1 of 3 nodes", len(info.ClusterList))
	}
}

// TestIntegrationServerStopsMidLoad: heketi goes away in the middle of a
// load; the load reports what did not happen, and after heketi is back a
// re-run completes it with no duplicate or leaked object.
func TestIntegrationServerStopsMidLoad(t *testing.T) {
	h := testenv.NewHeketi(t, testenv.HeketiOptions{})
	c := newHeketiClient(t, h, func(cfg *heketi.Config) {
		cfg.Retries, cfg.RetryMax = 2, 50*time.Millisecond
	})
	ctx := context.Background()
	const nodes, devices = 30, 4
	topo := mustLoad(t, "big.json", bigDoc(nodes, devices))
	p, err := MakePlan(ctx, c, topo)
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	rep, err := Apply(ctx, c, p, Options{Parallel: 4, Progress: func(_ Result, done, _ int) {
		if done == 25 {
			once.Do(func() { _ = h.Stop() })
		}
	}})
	if err == nil {
		t.Fatal("load succeeded although heketi stopped")
	}
	t.Logf("with heketi stopped after 25 operations: %d done, %d failed, %d skipped", rep.Count(Done), rep.Count(Failed), rep.Count(Skipped))
	var sum bytes.Buffer
	_ = rep.WriteSummary(&sum)
	t.Logf("summary:\n%s", sum.String())
	if rep.Count(Done) < 25 || rep.Count(Done) >= 1+nodes+nodes*devices {
		t.Errorf("done = %d, want some but not all", rep.Count(Done))
	}
	for _, f := range rep.Failures() {
		if f.Status == Failed && f.Hint == "" {
			t.Errorf("failure without a hint: %+v", f)
		}
	}

	if err := h.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	load(t, c, topo)
	info := topologyInfo(t, c)
	if len(info.ClusterList) != 1 {
		t.Fatalf("heketi has %d clusters after the re-run, want 1", len(info.ClusterList))
	}
	if n := len(info.ClusterList[0].Nodes); n != nodes {
		t.Errorf("heketi has %d nodes, want %d", n, nodes)
	}
	for _, n := range info.ClusterList[0].Nodes {
		seen := map[string]bool{}
		for _, d := range n.DevicesInfo {
			if seen[d.Name] {
				t.Errorf("device %s twice on %s", d.Name, manage0(&n))
			}
			seen[d.Name] = true
		}
		if len(seen) != devices {
			t.Errorf("node %s has %d devices, want %d", manage0(&n), len(seen), devices)
		}
	}
	if counts, _ := planCounts(t, c, topo); counts.Changes() != 0 {
		t.Errorf("after the re-run the plan still has changes: %+v", counts)
	}
}

func TestIntegrationUserKeyGetsAHint(t *testing.T) {
	h := testenv.NewHeketi(t, testenv.HeketiOptions{Auth: true})
	c := newHeketiClient(t, h, func(cfg *heketi.Config) { cfg.User, cfg.Key = "user", h.UserKey })
	_, err := MakePlan(context.Background(), c, readExample(t, "topology.json"))
	if err == nil || !heketi.IsAdminRequired(err) {
		t.Fatalf("plan with the user key: err = %v, want admin required", err)
	}
}
