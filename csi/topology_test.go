package csi

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	csipb "github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/glusterkube/glusterkube/volume"
	"github.com/glusterkube/glusterkube/volume/fakeheketi"
	"github.com/glusterkube/glusterkube/zones"
)

func zoneTopo(zones ...string) []*csipb.Topology {
	var out []*csipb.Topology
	for _, z := range zones {
		out = append(out, &csipb.Topology{Segments: map[string]string{TopologyKeyZone: z}})
	}
	return out
}

func TestNodeGetInfoZone(t *testing.T) {
	for _, tt := range []struct {
		name     string
		zone     ZoneSource
		want     map[string]string
		wantCode codes.Code
	}{
		{name: "zone from the Node", zone: FixedZone("zone-b"), want: map[string]string{TopologyKeyZone: "zone-b"}},
		{name: "Node without a zone", zone: FixedZone(""), want: nil},
		{name: "lookup fails", zone: func(context.Context) (string, error) { return "", errors.New("the API server is away") }, wantCode: codes.Unavailable},
		{name: "not a zone", zone: FixedZone("zone b"), wantCode: codes.FailedPrecondition},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n, err := newNodeServer(NodeConfig{NodeID: "n1", Mounter: &fakeMounter{}, Zone: tt.zone})
			if err != nil {
				t.Fatal(err)
			}
			info, err := n.NodeGetInfo(context.Background(), &csipb.NodeGetInfoRequest{})
			if tt.wantCode != codes.OK {
				wantStatus(t, err, tt.wantCode, "n1")
				return
			}
			if err != nil || info.GetAccessibleTopology() == nil || fmt.Sprint(info.GetAccessibleTopology().GetSegments()) != fmt.Sprint(tt.want) {
				t.Errorf("info %v %v, want segments %v", info, err, tt.want)
			}
		})
	}
}

func TestRequestTopology(t *testing.T) {
	for _, tt := range []struct {
		name      string
		req       *csipb.TopologyRequirement
		allowed   []string
		preferred []string
		errCode   codes.Code
	}{
		{name: "none"},
		{name: "requisite zones", req: &csipb.TopologyRequirement{Requisite: zoneTopo("b", "a", "b")}, allowed: []string{"a", "b"}},
		{name: "preferred in order", req: &csipb.TopologyRequirement{Requisite: zoneTopo("a", "b", "c"), Preferred: zoneTopo("c", "a")}, allowed: []string{"a", "b", "c"}, preferred: []string{"c", "a"}},
		{name: "a requisite without a zone allows all", req: &csipb.TopologyRequirement{Requisite: append(zoneTopo("a"), &csipb.Topology{})}},
		{name: "other keys are no zone", req: &csipb.TopologyRequirement{Requisite: []*csipb.Topology{{Segments: map[string]string{"kubernetes.io/hostname": "n1"}}}}},
		{name: "bad zone", req: &csipb.TopologyRequirement{Preferred: zoneTopo("a b")}, errCode: codes.InvalidArgument},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := requestTopology(tt.req)
			if tt.errCode != codes.OK {
				wantStatus(t, err, tt.errCode, "accessibility_requirements")
				return
			}
			if err != nil || !slices.Equal(got.Allowed, tt.allowed) || (got.Allowed == nil) != (tt.allowed == nil) || !slices.Equal(got.Preferred, tt.preferred) {
				t.Errorf("topology %+v %v, want allowed %q preferred %q", got, err, tt.allowed, tt.preferred)
			}
		})
	}
}

// CreateVolume honours the accessibility requirements through the volume
// service's placement, on the fake heketi whose three nodes are in zones
// a, b and c (one node each).
func TestControllerCreateVolumeTopology(t *testing.T) {
	for _, tt := range []struct {
		name        string
		params      map[string]string
		req         *csipb.TopologyRequirement
		wantTopo    []*csipb.Topology
		wantOptions []string
		errCode     codes.Code
		errHas      string
	}{
		{name: "default spreads; accessible from everywhere", req: &csipb.TopologyRequirement{Requisite: zoneTopo("zone-a", "zone-b", "zone-c"), Preferred: zoneTopo("zone-b")},
			wantOptions: []string{"user.heketi.zone-checking strict"}},
		{name: "local in the first preferred zone", params: map[string]string{"placement": "local", "volumetype": "none"},
			req:      &csipb.TopologyRequirement{Requisite: zoneTopo("zone-a", "zone-b", "zone-c"), Preferred: zoneTopo("zone-c", "zone-a")},
			wantTopo: zoneTopo("zone-c"), wantOptions: []string{"user.heketi.zone-checking none", "user.heketi.device-tag-match glusterkube.zone=zone:c"}},
		{name: "one requisite zone: local there", params: map[string]string{"volumetype": "none"}, req: &csipb.TopologyRequirement{Requisite: zoneTopo("zone-a")},
			wantTopo: zoneTopo("zone-a"), wantOptions: []string{"user.heketi.zone-checking none", "user.heketi.device-tag-match glusterkube.zone=zone:a"}},
		{name: "local replica 3 in a zone of one node", params: map[string]string{"placement": "local"}, req: &csipb.TopologyRequirement{Requisite: zoneTopo("zone-a", "zone-b"), Preferred: zoneTopo("zone-b")},
			errCode: codes.ResourceExhausted, errHas: "zone zone-b has 1 storage node"},
		{name: "spread within two requisite zones", params: map[string]string{"placement": "spread"}, req: &csipb.TopologyRequirement{Requisite: zoneTopo("zone-a", "zone-b")},
			errCode: codes.ResourceExhausted, errHas: "only 2 zones have them"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newCtrlFixture(t)
			f.fake.NodeTags = map[string]map[string]string{}
			for i, n := range fakeheketi.Nodes {
				f.fake.NodeTags[n.ID] = map[string]string{volume.ZoneTag: volume.ZoneTagValue(fmt.Sprintf("zone-%c", 'a'+i))}
			}
			req := createReq("pvc-1", 1, tt.params)
			req.AccessibilityRequirements = tt.req
			resp, err := f.c.CreateVolume(context.Background(), req)
			if tt.errCode != codes.OK {
				wantStatus(t, err, tt.errCode, tt.errHas)
				if n := f.fake.Count("volume_create"); n != 0 {
					t.Errorf("heketi asked for %d volumes", n)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := resp.GetVolume().GetAccessibleTopology(); fmt.Sprint(got) != fmt.Sprint(tt.wantTopo) {
				t.Errorf("accessible topology %v, want %v", got, tt.wantTopo)
			}
			if got := f.fake.Creates()[0].GlusterVolumeOptions; !slices.Equal(got, tt.wantOptions) {
				t.Errorf("heketi options %q, want %q", got, tt.wantOptions)
			}
			// The same call again: the same volume and topology.
			again, err := f.c.CreateVolume(context.Background(), req)
			if err != nil || again.GetVolume().GetVolumeId() != resp.GetVolume().GetVolumeId() || fmt.Sprint(again.GetVolume().GetAccessibleTopology()) != fmt.Sprint(tt.wantTopo) {
				t.Errorf("again: %v %v", again, err)
			}
			if tt.wantTopo != nil {
				// The name again, but requiring another zone.
				other := createReq("pvc-1", 1, tt.params)
				other.AccessibilityRequirements = &csipb.TopologyRequirement{Requisite: zoneTopo("zone-x")}
				_, err := f.c.CreateVolume(context.Background(), other)
				wantStatus(t, err, codes.AlreadyExists, "do not allow")
				if !strings.Contains(err.Error(), "zone-x") {
					t.Errorf("error %v does not name the zones asked for", err)
				}
			}
		})
	}
}

func TestNodeZoneFromTheNode(t *testing.T) {
	kube := fake.NewClientset(
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", Labels: map[string]string{zones.LabelZone: "zone-a"}}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "old", Labels: map[string]string{zones.LabelZoneBeta: "zone-b"}}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "bare"}})
	for node, want := range map[string]string{"n1": "zone-a", "old": "zone-b", "bare": ""} {
		if z, err := NodeZone(kube, node)(context.Background()); err != nil || z != want {
			t.Errorf("%s: zone %q %v, want %q", node, z, err, want)
		}
	}
	if _, err := NodeZone(kube, "gone")(context.Background()); err == nil {
		t.Error("a Node that does not exist has a zone")
	}
}

// A clone stays in its source's zone: asked for elsewhere it is refused
// before anything is cloned; asked for there, it says so.
func TestControllerCloneKeepsZone(t *testing.T) {
	f := newCtrlFixture(t)
	f.fake.NodeTags = map[string]map[string]string{}
	for i, n := range fakeheketi.Nodes {
		f.fake.NodeTags[n.ID] = map[string]string{volume.ZoneTag: volume.ZoneTagValue(fmt.Sprintf("zone-%c", 'a'+i))}
	}
	ctx := context.Background()
	params := map[string]string{"placement": "local", "volumetype": "none"}
	req := createReq("pvc-src", 1, params)
	req.AccessibilityRequirements = &csipb.TopologyRequirement{Preferred: zoneTopo("zone-c")}
	src, err := f.c.CreateVolume(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	clone := func(name string, requisite ...string) (*csipb.CreateVolumeResponse, error) {
		r := createReq(name, 1, params)
		r.VolumeContentSource = &csipb.VolumeContentSource{Type: &csipb.VolumeContentSource_Volume{Volume: &csipb.VolumeContentSource_VolumeSource{VolumeId: src.GetVolume().GetVolumeId()}}}
		r.AccessibilityRequirements = &csipb.TopologyRequirement{Requisite: zoneTopo(requisite...), Preferred: zoneTopo(requisite[0])}
		return f.c.CreateVolume(ctx, r)
	}
	_, err = clone("pvc-elsewhere", "zone-a")
	wantStatus(t, err, codes.ResourceExhausted, "is in zone zone-c")
	if n := f.fake.Count("volume_clone"); n != 0 {
		t.Errorf("%d clones made", n)
	}
	resp, err := clone("pvc-there", "zone-c", "zone-a")
	if err != nil || fmt.Sprint(resp.GetVolume().GetAccessibleTopology()) != fmt.Sprint(zoneTopo("zone-c")) {
		t.Errorf("clone in the source's zone: %v %v", resp, err)
	}
}
