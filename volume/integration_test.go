package volume

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/heketi/heketi/pkg/glusterfs/api"

	"github.com/glusterkube/glusterkube/internal/heketi"
	"github.com/glusterkube/glusterkube/internal/testenv"
)

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, testenv.Options{Heketi: true}))
}

// realServer starts a heketi server of the test's own and returns a
// service whose default server it is.
func realServer(t *testing.T, opts testenv.HeketiOptions) (*testenv.Heketi, *heketi.Client, *Server) {
	t.Helper()
	testenv.Get(t)
	hk := testenv.NewHeketi(t, opts)
	cfg := heketi.Config{URL: hk.URL}
	if opts.Auth {
		cfg.User, cfg.Key = "admin", hk.AdminKey
	}
	hc, err := heketi.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	svc := New(Config{Default: cfg})
	cr, _ := svc.DefaultCredentials("")
	sv, err := svc.Server(cr)
	if err != nil {
		t.Fatal(err)
	}
	return hk, hc, sv
}

// TestCreateSeveralClustersNoDuplicate, on a real heketi with two
// clusters: heketi places a second volume of the same name in the other
// cluster when a request names both; so a retry whose first volume the
// service cannot see yet (heketi hides a create still running; here it
// was made behind the service's back) must not name both. It finds and
// reuses the first volume instead.
func TestCreateSeveralClustersNoDuplicate(t *testing.T) {
	_, hc, sv := realServer(t, testenv.HeketiOptions{})
	ctx := context.Background()
	a, b := testenv.HeketiCluster(t, hc), testenv.HeketiCluster(t, hc)
	create := func(name string, clusters ...string) (*api.VolumeInfoResponse, error) {
		req := &api.VolumeCreateRequest{Size: 1, Name: name, Clusters: clusters,
			Durability: api.VolumeDurabilityInfo{Type: api.DurabilityReplicate, Replicate: api.ReplicaDurability{Replica: 3}}}
		return hc.VolumeCreate(ctx, req)
	}
	named := func(name string) (clusters []string) {
		for _, c := range []string{a, b} {
			for _, v := range testenv.ClusterVolumes(t, hc, c) {
				if v.Name == name {
					clusters = append(clusters, c)
				}
			}
		}
		return clusters
	}

	// heketi's own behaviour, the reason for one cluster per request.
	if _, err := create("probe", a); err != nil {
		t.Fatal(err)
	}
	if v, err := create("probe", a, b); err != nil || v.Cluster != b {
		t.Fatalf("heketi with both clusters: %v %v; expected it to place a duplicate in %s", v, err, b)
	}
	if _, err := create("probe", a); !heketi.IsNameInUse(err) {
		t.Fatalf("heketi with one cluster: %v; want a name-in-use refusal", err)
	}

	params := map[string]string{"clusterid": a + "," + b}
	// A first volume builds the service's index of heketi.
	if _, err := sv.Create(ctx, createReq(t, "first", 1, params)); err != nil {
		t.Fatal(err)
	}
	earlier, err := create("data", a)
	if err != nil {
		t.Fatal(err)
	}
	vol, err := sv.Create(ctx, createReq(t, "data", 1, params))
	if err != nil {
		t.Fatal(err)
	}
	if got := named("data"); len(got) != 1 {
		t.Fatalf("heketi holds %d volumes named data (clusters %s), want 1", len(got), strings.Join(got, ", "))
	}
	if vol.ID != earlier.Id || !vol.Reused {
		t.Errorf("got heketi volume %s (reused %v), want the earlier attempt's %s", vol.ID, vol.Reused, earlier.Id)
	}

	// A cluster that refuses for another reason passes the volume on: a
	// class whose first cluster takes no file volumes uses the second.
	if err := hc.ClusterSetFlags(ctx, a, &api.ClusterSetFlagsRequest{ClusterFlags: api.ClusterFlags{File: false, Block: true}}); err != nil {
		t.Fatal(err)
	}
	big, err := sv.Create(ctx, createReq(t, "big", 1, map[string]string{"clusterid": a + "," + b, "volumetype": "replicate:3"}))
	if err != nil {
		t.Fatalf("create with the first cluster refusing file volumes: %v", err)
	}
	if big.Cluster != b {
		t.Errorf("volume in cluster %s, want %s", big.Cluster, b)
	}
}

// The pending-operation reads Expand relies on work against the real
// server (admin routes, JSON shape): a finished expansion is not pending,
// and Expand grows the volume once.
func TestExpandRealHeketi(t *testing.T) {
	_, hc, sv := realServer(t, testenv.HeketiOptions{Auth: true})
	ctx := context.Background()
	c := testenv.HeketiCluster(t, hc)
	v, err := hc.VolumeCreate(ctx, &api.VolumeCreateRequest{Size: 1, Clusters: []string{c},
		Durability: api.VolumeDurabilityInfo{Type: api.DurabilityReplicate, Replicate: api.ReplicaDurability{Replica: 3}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hc.VolumeExpand(ctx, v.Id, &api.VolumeExpandRequest{Size: 1}); err != nil {
		t.Fatal(err)
	}
	op, err := pendingOn(ctx, hc, v.Id, "expand-volume")
	if err != nil || op != "" {
		t.Fatalf("after a finished expansion: running=%q err=%v", op, err)
	}
	for range 2 { // the second call finds the size reached
		got, err := sv.Expand(ctx, v.Id, 4)
		if err != nil || got.SizeGiB != 4 {
			t.Fatalf("Expand: %+v %v", got, err)
		}
	}
	if info, _ := hc.VolumeInfo(ctx, v.Id); info.Size != 4 {
		t.Errorf("heketi size %d, want 4", info.Size)
	}
}

// On the real server: create is idempotent by name, the brick hosts come
// first, list pages in id order, capacity shrinks by what a volume takes,
// delete twice is fine, a missing volume is IsNotFound, no space is
// IsNoSpace and leaves nothing behind.
func TestServiceRealHeketi(t *testing.T) {
	_, hc, sv := realServer(t, testenv.HeketiOptions{})
	ctx := context.Background()
	c := testenv.HeketiCluster(t, hc)
	params := map[string]string{"clusterid": c}
	capBefore, err := sv.Capacity(ctx, mustParse(t, params))
	if err != nil || capBefore <= 0 {
		t.Fatalf("capacity %d %v", capBefore, err)
	}
	var vols []*Volume
	for _, n := range []string{"a", "b", "c"} {
		v, err := sv.Create(ctx, createReq(t, "vol_"+n, 2, params))
		if err != nil {
			t.Fatal(err)
		}
		if len(v.Hosts) != 3 || !strings.HasPrefix(v.Hosts[0], "10.") {
			t.Errorf("hosts %v", v.Hosts)
		}
		vols = append(vols, v)
	}
	again, err := sv.Create(ctx, createReq(t, "vol_a", 2, params))
	if err != nil || again.ID != vols[0].ID || !again.Reused {
		t.Fatalf("second create: %+v %v", again, err)
	}
	capAfter, err := sv.Capacity(ctx, mustParse(t, params))
	if err != nil {
		t.Fatal(err)
	}
	// Three 2 GiB replica-3 volumes with snapshot factor 1: 6 GiB of room
	// gone (heketi adds a little thin-pool metadata).
	if used := capBefore - capAfter; used < 6*GiB || used > 7*GiB {
		t.Errorf("capacity went from %d to %d GiB; want 6 GiB less", capBefore/GiB, capAfter/GiB)
	}

	p1, err := sv.List(ctx, "", 2)
	if err != nil || len(p1.Volumes) != 2 || p1.Next == "" {
		t.Fatalf("page 1: %+v %v", p1, err)
	}
	p2, err := sv.List(ctx, p1.Next, 2)
	if err != nil || len(p2.Volumes) != 1 || p2.Next != "" {
		t.Fatalf("page 2: %+v %v", p2, err)
	}
	seen := map[string]bool{}
	for _, v := range append(p1.Volumes, p2.Volumes...) {
		seen[v.ID] = true
	}
	if len(seen) != 3 {
		t.Errorf("pages hold %d distinct volumes", len(seen))
	}

	for range 2 {
		if err := sv.Delete(ctx, vols[0].ID, "vol_a"); err != nil {
			t.Fatalf("delete: %v", err)
		}
	}
	if _, err := sv.Get(ctx, vols[0].ID); !IsNotFound(err) {
		t.Errorf("get after delete: %v", err)
	}
	if _, err := sv.Expand(ctx, vols[0].ID, 5); !IsNotFound(err) {
		t.Errorf("expand after delete: %v", err)
	}

	before := len(testenv.ClusterVolumes(t, hc, c))
	_, err = sv.Create(ctx, createReq(t, "vol_huge", 100000, params))
	if !IsNoSpace(err) || IsOutcomeUnknown(err) {
		t.Fatalf("huge volume: %v (nospace=%v)", err, IsNoSpace(err))
	}
	if _, err := sv.Expand(ctx, vols[1].ID, 2000); !IsNoSpace(err) {
		t.Fatalf("huge expansion: %v", err)
	}
	if after := len(testenv.ClusterVolumes(t, hc, c)); after != before {
		t.Errorf("%d volumes after failed creates, want %d", after, before)
	}
}

// Clones on the real server (its mock executor patched by the test build
// to clone at all): a clone has its source's size and GID, a second Clone
// of the name finds it, and heketi's failure to grow a clone is worded
// for people and changes nothing.
func TestCloneRealHeketi(t *testing.T) {
	_, hc, sv := realServer(t, testenv.HeketiOptions{})
	ctx := context.Background()
	c := testenv.HeketiCluster(t, hc)
	src, err := sv.Create(ctx, createReq(t, "vol_src", 2, map[string]string{"clusterid": c}))
	if err != nil {
		t.Fatal(err)
	}
	clone, err := sv.Clone(ctx, CloneRequest{Name: "vol_copy", Source: src.ID, SizeGiB: 2})
	if err != nil {
		t.Fatal(err)
	}
	if clone.SizeGiB != 2 || clone.GID != src.GID || clone.Cluster != c || len(clone.Hosts) != 3 {
		t.Errorf("clone %+v of %+v", clone, src)
	}
	again, err := sv.Clone(ctx, CloneRequest{Name: "vol_copy", Source: src.ID, SizeGiB: 2})
	if err != nil || again.ID != clone.ID || !again.Reused {
		t.Fatalf("again: %+v %v", again, err)
	}
	_, err = sv.Expand(ctx, clone.ID, 3)
	if err == nil || !strings.Contains(err.Error(), "cannot expand volumes made by volume clone") || strings.Contains(err.Error(), "goroutine") {
		t.Fatalf("expanding a clone: %v", err)
	}
	if info, _ := hc.VolumeInfo(ctx, clone.ID); info.Size != 2 {
		t.Errorf("clone size %d after the failed expansion", info.Size)
	}
	for _, v := range []*Volume{clone, src} {
		if err := sv.Delete(ctx, v.ID, v.Name); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(testenv.ClusterVolumes(t, hc, c)); n != 0 {
		t.Errorf("%d volumes left", n)
	}
}

// Two processes on one heketi (glusterkube provisioner for the old
// classes and the CSI controller for the new, as the upgrade runs them)
// each keep a GID table: a GID one of them gave after the other indexed
// heketi must not be given again by the other.
func TestGIDsUniqueAcrossProcesses(t *testing.T) {
	hk, hc, a := realServer(t, testenv.HeketiOptions{})
	ctx := context.Background()
	params := map[string]string{"clusterid": testenv.HeketiCluster(t, hc)}
	// The second process: a service of its own on the same server.
	cfg := heketi.Config{URL: hk.URL}
	svc := New(Config{Default: cfg})
	cr, _ := svc.DefaultCredentials("")
	b, err := svc.Server(cr)
	if err != nil {
		t.Fatal(err)
	}
	gids := map[int64]string{}
	for _, step := range []struct {
		sv   *Server
		name string
	}{{a, "a0"}, {b, "b0"}, {a, "a1"}, {b, "b1"}, {b, "b2"}, {a, "a2"}} {
		v, err := step.sv.Create(ctx, createReq(t, step.name, 1, params))
		if err != nil {
			t.Fatal(err)
		}
		if other, ok := gids[v.GID]; ok {
			t.Fatalf("%s got GID %d, which %s holds", step.name, v.GID, other)
		}
		gids[v.GID] = step.name
	}
}
