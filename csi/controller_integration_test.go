package csi

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	csipb "github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/heketi/heketi/pkg/glusterfs/api"
	"google.golang.org/grpc/codes"

	"github.com/glusterkube/glusterkube/internal/heketi"
	"github.com/glusterkube/glusterkube/internal/testenv"
	"github.com/glusterkube/glusterkube/volume"
)

// opCounter counts heketi calls by operation (the client's Observe hook).
type opCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *opCounter) observe(op string, _ time.Duration, _ error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[op]++
}

func (c *opCounter) get(op string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[op]
}

// realController runs a Controller whose default server is a heketi test
// server of the test's own (with auth: admin is the default user) holding
// one cluster.
func realController(t *testing.T) (*Controller, *testenv.Heketi, *heketi.Client, *opCounter) {
	t.Helper()
	hk := testenv.NewHeketi(t, testenv.HeketiOptions{Auth: true})
	admin, err := heketi.New(heketi.Config{URL: hk.URL, User: "admin", Key: hk.AdminKey})
	if err != nil {
		t.Fatal(err)
	}
	testenv.HeketiCluster(t, admin)
	calls := &opCounter{}
	c, err := NewController(ControllerConfig{Heketi: heketi.Config{URL: hk.URL, User: "admin", Key: hk.AdminKey, MaxInflight: 8, Observe: calls.observe}})
	if err != nil {
		t.Fatal(err)
	}
	return c, hk, admin, calls
}

func heketiVolumes(t *testing.T, h *heketi.Client) map[string]bool {
	t.Helper()
	l, err := h.VolumeList(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, id := range l.Volumes {
		out[id] = true
	}
	return out
}

// The controller's behaviour on the real heketi server: create is
// idempotent by name, another size is AlreadyExists, clone copies a
// volume, expansion grows it once, list pages through every volume once,
// capacity shrinks by what volumes take, delete twice is fine — and
// nothing is left behind.
func TestControllerRealHeketi(t *testing.T) {
	c, _, admin, calls := realController(t)
	ctx := context.Background()
	before := heketiVolumes(t, admin)
	if err := c.Probe(ctx); err != nil {
		t.Fatalf("probe: %v", err)
	}
	capBefore, err := c.GetCapacity(ctx, &csipb.GetCapacityRequest{})
	if err != nil || capBefore.GetAvailableCapacity() <= 0 {
		t.Fatalf("capacity: %v %v", capBefore, err)
	}

	a, err := c.CreateVolume(ctx, createReq("pvc-aaaa", 1, map[string]string{"volumetype": "replicate:3"}))
	if err != nil {
		t.Fatal(err)
	}
	va := a.GetVolume()
	again, err := c.CreateVolume(ctx, createReq("pvc-aaaa", 1, map[string]string{"volumetype": "replicate:3"}))
	if err != nil || again.GetVolume().GetVolumeId() != va.GetVolumeId() {
		t.Fatalf("same name again: %v %v", again, err)
	}
	_, err = c.CreateVolume(ctx, createReq("pvc-aaaa", 4, nil))
	wantStatus(t, err, codes.AlreadyExists, "exists with 1 GiB")
	if n := calls.get("volume_create"); n != 1 {
		t.Errorf("%d heketi creates for one name", n)
	}
	id, _ := volume.ParseID(va.GetVolumeId())
	info, err := admin.VolumeInfo(ctx, id.Heketi)
	if err != nil || info.Name != "vol_pvc-aaaa" || va.GetVolumeContext()[ContextVolume] != info.Name || len(info.Bricks) != 3 {
		t.Fatalf("heketi volume %+v %v, context %v", info, err, va.GetVolumeContext())
	}

	// Clone: heketi cannot grow one (a clone keeps its source's size).
	big := createReq("pvc-bbbb", 2, nil)
	big.VolumeContentSource = &csipb.VolumeContentSource{Type: &csipb.VolumeContentSource_Volume{Volume: &csipb.VolumeContentSource_VolumeSource{VolumeId: va.GetVolumeId()}}}
	_, err = c.CreateVolume(ctx, big)
	wantStatus(t, err, codes.InvalidArgument, "cannot grow a cloned volume")
	cr := createReq("pvc-bbbb", 1, nil)
	cr.VolumeContentSource = &csipb.VolumeContentSource{Type: &csipb.VolumeContentSource_Volume{Volume: &csipb.VolumeContentSource_VolumeSource{VolumeId: va.GetVolumeId()}}}
	b, err := c.CreateVolume(ctx, cr)
	if err != nil {
		t.Fatalf("clone: %v", err)
	}
	if _, err := c.CreateVolume(ctx, cr); err != nil {
		t.Fatalf("clone again: %v", err)
	}
	bid, _ := volume.ParseID(b.GetVolume().GetVolumeId())
	binfo, err := admin.VolumeInfo(ctx, bid.Heketi)
	if err != nil || binfo.Name != "vol_pvc-bbbb" || binfo.Size != 1 || binfo.Gid != info.Gid || calls.get("volume_clone") != 1 {
		t.Fatalf("clone in heketi: %+v %v (%d clones)", binfo, err, calls.get("volume_clone"))
	}

	// Expansion, asked twice: heketi grows once.
	for range 2 {
		resp, err := c.ControllerExpandVolume(ctx, &csipb.ControllerExpandVolumeRequest{VolumeId: va.GetVolumeId(), CapacityRange: &csipb.CapacityRange{RequiredBytes: 3 * volume.GiB}})
		if err != nil || resp.GetCapacityBytes() != 3*volume.GiB || resp.GetNodeExpansionRequired() {
			t.Fatalf("expand: %v %v", resp, err)
		}
	}
	if info, _ := admin.VolumeInfo(ctx, id.Heketi); info.Size != 3 || calls.get("volume_expand") != 1 {
		t.Errorf("heketi size %d after %d expands", info.Size, calls.get("volume_expand"))
	}

	// Validate, list, capacity.
	v, err := c.ValidateVolumeCapabilities(ctx, &csipb.ValidateVolumeCapabilitiesRequest{VolumeId: va.GetVolumeId(), VolumeCapabilities: createReq("x", 1, nil).VolumeCapabilities})
	if err != nil || v.GetConfirmed() == nil {
		t.Fatalf("validate: %v %v", v, err)
	}
	_, err = c.ValidateVolumeCapabilities(ctx, &csipb.ValidateVolumeCapabilitiesRequest{VolumeId: "ffffffffffffffffffffffffffffffff", VolumeCapabilities: createReq("x", 1, nil).VolumeCapabilities})
	wantStatus(t, err, codes.NotFound, "has no volume")
	listed, token := map[string]bool{}, ""
	for {
		resp, err := c.ListVolumes(ctx, &csipb.ListVolumesRequest{MaxEntries: 1, StartingToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range resp.GetEntries() {
			if listed[e.GetVolume().GetVolumeId()] {
				t.Errorf("%s listed twice", e.GetVolume().GetVolumeId())
			}
			listed[e.GetVolume().GetVolumeId()] = true
		}
		if token = resp.GetNextToken(); token == "" {
			break
		}
	}
	if !listed[va.GetVolumeId()] || !listed[b.GetVolume().GetVolumeId()] || len(listed) != len(before)+2 {
		t.Errorf("listed %v", listed)
	}
	capAfter, err := c.GetCapacity(ctx, &csipb.GetCapacityRequest{})
	if err != nil || capAfter.GetAvailableCapacity() >= capBefore.GetAvailableCapacity() {
		t.Errorf("capacity %d after volumes, %d before (%v)", capAfter.GetAvailableCapacity(), capBefore.GetAvailableCapacity(), err)
	}

	// Delete, twice each: nothing left.
	for _, vid := range []string{b.GetVolume().GetVolumeId(), va.GetVolumeId()} {
		for range 2 {
			if _, err := c.DeleteVolume(ctx, &csipb.DeleteVolumeRequest{VolumeId: vid}); err != nil {
				t.Fatalf("delete %s: %v", vid, err)
			}
		}
	}
	if after := heketiVolumes(t, admin); len(after) != len(before) {
		t.Errorf("%d heketi volumes after, %d before", len(after), len(before))
	}
}

// Bad input on the real server: clear errors, nothing created, nothing
// leaked.
func TestControllerRealHeketiBadInput(t *testing.T) {
	c, hk, admin, calls := realController(t)
	ctx := context.Background()
	before := heketiVolumes(t, admin)
	withSecrets := func(r *csipb.CreateVolumeRequest, s map[string]string) *csipb.CreateVolumeRequest {
		r.Secrets = s
		return r
	}
	withSource := func(r *csipb.CreateVolumeRequest, id string) *csipb.CreateVolumeRequest {
		r.VolumeContentSource = &csipb.VolumeContentSource{Type: &csipb.VolumeContentSource_Volume{Volume: &csipb.VolumeContentSource_VolumeSource{VolumeId: id}}}
		return r
	}
	tests := []struct {
		name string
		req  *csipb.CreateVolumeRequest
		code codes.Code
		msg  string
	}{
		{"unknown parameter", createReq("bad-1", 1, map[string]string{"replica": "3"}), codes.InvalidArgument, `parameter replica="3": unknown parameter`},
		{"malformed cluster id", createReq("bad-2", 1, map[string]string{"clusterid": "abc"}), codes.InvalidArgument, "32 hex digits"},
		{"no space", createReq("bad-3", 100000, nil), codes.ResourceExhausted, "No space"},
		{"wrong key in the secrets", withSecrets(createReq("bad-4", 1, map[string]string{"resturl": hk.URL}), map[string]string{"key": "wrong"}), codes.PermissionDenied, "rejected the credentials"},
		{"user key in the secrets", withSecrets(createReq("bad-5", 1, nil), map[string]string{"key": hk.UserKey, "user": "user"}), codes.PermissionDenied, "needs heketi's admin user"},
		{"missing source", withSource(createReq("bad-6", 1, nil), "ffffffffffffffffffffffffffffffff"), codes.NotFound, "source volume"},
		{"an unknown cluster", createReq("bad-7", 1, map[string]string{"clusterid": "ffffffffffffffffffffffffffffffff"}), codes.Internal, "ffffffffffffffffffffffffffffffff"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.CreateVolume(ctx, tt.req)
			wantStatus(t, err, tt.code, tt.msg)
		})
	}
	_, err := c.ControllerExpandVolume(ctx, &csipb.ControllerExpandVolumeRequest{VolumeId: "ffffffffffffffffffffffffffffffff", CapacityRange: &csipb.CapacityRange{RequiredBytes: volume.GiB}})
	wantStatus(t, err, codes.NotFound, "has no volume")
	if _, err := c.DeleteVolume(ctx, &csipb.DeleteVolumeRequest{VolumeId: "ffffffffffffffffffffffffffffffff"}); err != nil {
		t.Errorf("delete of a volume heketi does not know: %v", err)
	}
	if after := heketiVolumes(t, admin); len(after) != len(before) {
		t.Errorf("%d heketi volumes after bad input, %d before", len(after), len(before))
	}
	if n := calls.get("volume_expand"); n != 0 {
		t.Errorf("%d expands", n)
	}
}

// CreateVolume's topology on the real heketi server: six nodes in three
// zones (two each, tagged with their zone as glusterkube writes it, heketi
// zones to match). Spread volumes get a brick in each zone and no
// accessible topology; local ones all bricks in the first preferred zone
// and that zone as accessible topology; a zone too small is
// ResourceExhausted with heketi left as it was.
func TestControllerTopologyRealHeketi(t *testing.T) {
	hk := testenv.NewHeketi(t, testenv.HeketiOptions{})
	admin, err := heketi.New(heketi.Config{URL: hk.URL})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cl, err := admin.ClusterCreate(ctx, &api.ClusterCreateRequest{ClusterFlags: api.ClusterFlags{File: true}})
	if err != nil {
		t.Fatal(err)
	}
	zoneOfNode := map[string]string{}
	for zi, z := range []string{"zone-a", "zone-b", "zone-c"} {
		for i := 1; i <= 2; i++ {
			ip := fmt.Sprintf("10.66.%d.%d", zi+1, i)
			req := &api.NodeAddRequest{Zone: zi + 1, ClusterId: cl.Id, Tags: map[string]string{volume.ZoneTag: volume.ZoneTagValue(z)}}
			req.Hostnames.Manage, req.Hostnames.Storage = []string{ip}, []string{ip}
			n, err := admin.NodeAdd(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			zoneOfNode[n.Id] = z
			d := &api.DeviceAddRequest{NodeId: n.Id}
			d.Name = "/dev/sdb"
			if err := admin.DeviceAdd(ctx, d); err != nil {
				t.Fatal(err)
			}
		}
	}
	c, err := NewController(ControllerConfig{Heketi: heketi.Config{URL: hk.URL, MaxInflight: 8}})
	if err != nil {
		t.Fatal(err)
	}
	brickZones := func(volumeID string) []string {
		v, err := admin.VolumeInfo(ctx, volumeID)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, b := range v.Bricks {
			out = append(out, zoneOfNode[b.NodeId])
		}
		slices.Sort(out)
		return out
	}
	all := zoneTopo("zone-a", "zone-b", "zone-c")

	// Spread (the default: three zones for three bricks).
	req := createReq("pvc-spread", 1, map[string]string{"volumetype": "replicate:3"})
	req.AccessibilityRequirements = &csipb.TopologyRequirement{Requisite: all, Preferred: zoneTopo("zone-b", "zone-a", "zone-c")}
	resp, err := c.CreateVolume(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if got := brickZones(resp.GetVolume().GetVolumeId()); !slices.Equal(got, []string{"zone-a", "zone-b", "zone-c"}) {
		t.Errorf("spread bricks in %q", got)
	}
	if resp.GetVolume().GetAccessibleTopology() != nil {
		t.Errorf("spread volume accessible from %v only", resp.GetVolume().GetAccessibleTopology())
	}

	// Local in the first preferred zone, found again on a retry.
	req = createReq("pvc-local", 1, map[string]string{"volumetype": "replicate:2", "placement": "local"})
	req.AccessibilityRequirements = &csipb.TopologyRequirement{Requisite: all, Preferred: zoneTopo("zone-c", "zone-a")}
	resp, err = c.CreateVolume(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if got := brickZones(resp.GetVolume().GetVolumeId()); !slices.Equal(got, []string{"zone-c", "zone-c"}) {
		t.Errorf("local bricks in %q, want zone-c", got)
	}
	if got := fmt.Sprint(resp.GetVolume().GetAccessibleTopology()); got != fmt.Sprint(zoneTopo("zone-c")) {
		t.Errorf("local volume accessible from %s", got)
	}
	again, err := c.CreateVolume(ctx, req)
	if err != nil || again.GetVolume().GetVolumeId() != resp.GetVolume().GetVolumeId() || fmt.Sprint(again.GetVolume().GetAccessibleTopology()) != fmt.Sprint(zoneTopo("zone-c")) {
		t.Errorf("retry: %v %v", again, err)
	}

	// The one requisite zone (strict topology): local there.
	req = createReq("pvc-only-b", 1, map[string]string{"volumetype": "replicate:2"})
	req.AccessibilityRequirements = &csipb.TopologyRequirement{Requisite: zoneTopo("zone-b"), Preferred: zoneTopo("zone-b")}
	resp, err = c.CreateVolume(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if got := brickZones(resp.GetVolume().GetVolumeId()); !slices.Equal(got, []string{"zone-b", "zone-b"}) {
		t.Errorf("bricks in %q, want zone-b", got)
	}

	// A zone of two nodes cannot hold a replica-3 set.
	before := heketiVolumes(t, admin)
	req = createReq("pvc-too-big", 1, map[string]string{"volumetype": "replicate:3", "placement": "local"})
	req.AccessibilityRequirements = &csipb.TopologyRequirement{Requisite: all, Preferred: zoneTopo("zone-a")}
	_, err = c.CreateVolume(ctx, req)
	wantStatus(t, err, codes.ResourceExhausted, "zone zone-a has 2 storage nodes, and a replica-3 volume needs 3")
	if after := heketiVolumes(t, admin); len(after) != len(before) {
		t.Errorf("heketi holds %d volumes, had %d", len(after), len(before))
	}
}
