package zones

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/heketi/heketi/pkg/glusterfs/api"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/glusterkube/glusterkube/internal/heketi"
	"github.com/glusterkube/glusterkube/topology"
	"github.com/glusterkube/glusterkube/volume"
)

// world is a topology of storage nodes s1..sN, the heketi that holds some
// of them, and their Nodes.
type world struct {
	topo  *topology.Topology
	cur   *api.TopologyInfoResponse
	nodes []corev1.Node
}

// node describes one storage node: its Node's zone ("-": no Node), its
// number in the file, and in heketi (0: heketi does not hold it), its
// heketi zone tag and bricks.
type node struct {
	zone        string
	file, inHkt int
	tag         string
	bricks      int
}

func build(ns ...node) world {
	w := world{topo: &topology.Topology{Clusters: []topology.Cluster{{}}}, cur: &api.TopologyInfoResponse{ClusterList: []api.Cluster{{Id: "c1"}}}}
	for i, n := range ns {
		name := fmt.Sprintf("s%d", i+1)
		w.topo.Clusters[0].Nodes = append(w.topo.Clusters[0].Nodes, topology.Node{
			Node:    topology.NodeInfo{Zone: n.file, Hostnames: topology.Hostnames{Manage: []string{name}, Storage: []string{"10.0.0." + fmt.Sprint(i+1)}}},
			Devices: []topology.Device{{Name: "/dev/sdb"}},
		})
		if n.zone != "-" {
			labels := map[string]string{}
			if n.zone != "" {
				labels[LabelZone] = n.zone
			}
			w.nodes = append(w.nodes, corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}})
		}
		if n.inHkt > 0 {
			hn := api.NodeInfoResponse{State: api.EntryStateOnline}
			hn.Id, hn.Zone = "h"+name, n.inHkt
			hn.Hostnames.Manage, hn.Hostnames.Storage = []string{name}, []string{"10.0.0." + fmt.Sprint(i+1)}
			if n.tag != "" {
				hn.Tags = map[string]string{volume.ZoneTag: volume.ZoneTagValue(n.tag)}
			}
			d := api.DeviceInfoResponse{}
			d.Id, d.Name = "d"+name, "/dev/sdb"
			for b := 0; b < n.bricks; b++ {
				d.Bricks = append(d.Bricks, api.BrickInfo{Id: fmt.Sprintf("b%d", b)})
			}
			hn.DevicesInfo = []api.DeviceInfoResponse{d}
			w.cur.ClusterList[0].Nodes = append(w.cur.ClusterList[0].Nodes, hn)
		}
	}
	return w
}

func kinds(ps []Problem) []string {
	var out []string
	for _, p := range ps {
		out = append(out, string(p.Kind))
	}
	return out
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name    string
		nodes   []node
		kinds   []string
		msgs    []string
		numbers map[string]int
		agrees  bool
	}{
		{name: "agree", nodes: []node{{zone: "a", file: 1, inHkt: 1, tag: "a"}, {zone: "b", file: 2, inHkt: 2, tag: "b"}},
			kinds: nil, numbers: map[string]int{"a": 1, "b": 2}, agrees: true},
		{name: "two Kubernetes zones share a heketi zone", nodes: []node{{zone: "a", inHkt: 1, tag: "a"}, {zone: "a", inHkt: 1, tag: "a"}, {zone: "b", inHkt: 1, tag: "b"}},
			kinds: []string{"shared"}, msgs: []string{"heketi zone 1 holds storage nodes of 2 Kubernetes zones: a (s1, s2), b (s3)"},
			numbers: map[string]int{"a": 1, "b": 2}},
		{name: "one Kubernetes zone split", nodes: []node{{zone: "a", inHkt: 1, tag: "a"}, {zone: "a", inHkt: 3, tag: "a"}},
			kinds: []string{"split"}, msgs: []string{"Kubernetes zone a is split over 2 heketi zones: 1 (s1), 3 (s2)"},
			numbers: map[string]int{"a": 1}},
		{name: "file numbers count for nodes heketi lacks", nodes: []node{{zone: "a", file: 1}, {zone: "b", file: 1}},
			kinds: []string{"shared"}, numbers: map[string]int{"a": 1, "b": 2}},
		{name: "new zones avoid numbers heketi uses", nodes: []node{{zone: "a", inHkt: 2, tag: "a"}, {zone: "b", file: 2}, {zone: "", inHkt: 1}},
			kinds: []string{"shared", "no-zone"}, numbers: map[string]int{"a": 2, "b": 3}},
		{name: "no zone label, no Node, tags", nodes: []node{{zone: "a", inHkt: 1}, {zone: "", inHkt: 2, tag: "old"}, {zone: "-", file: 3}},
			kinds:  []string{"no-zone", "no-node", "tags", "tags"},
			msgs:   []string{"1 storage node's Node has no zone label", "1 storage node matches no Kubernetes Node, so its zone is unknown: s3", "s1 (none, want a)", "s2 (old)"},
			agrees: true, numbers: map[string]int{"a": 1}},
		{name: "no zones at all: nothing to say", nodes: []node{{zone: "", inHkt: 1}, {zone: "", inHkt: 1}}, agrees: true, numbers: map[string]int{}},
		{name: "majority keeps its number", nodes: []node{{zone: "a", inHkt: 2, tag: "a"}, {zone: "a", inHkt: 2, tag: "a"}, {zone: "a", inHkt: 1, tag: "a"}, {zone: "b", inHkt: 1, tag: "b"}},
			kinds: []string{"shared", "split"}, numbers: map[string]int{"a": 2, "b": 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := build(tt.nodes...)
			r := Check(w.topo, w.cur, w.nodes)
			if got := kinds(r.Problems); !slices.Equal(got, tt.kinds) {
				t.Errorf("problems %q, want %q: %+v", got, tt.kinds, r.Problems)
			}
			all := ""
			for _, p := range r.Problems {
				all += p.Message + "\n"
			}
			for _, m := range tt.msgs {
				if !strings.Contains(all, m) {
					t.Errorf("problems lack %q:\n%s", m, all)
				}
			}
			if fmt.Sprint(r.Numbers) != fmt.Sprint(tt.numbers) {
				t.Errorf("numbers %v, want %v", r.Numbers, tt.numbers)
			}
			if r.Agrees() != tt.agrees {
				t.Errorf("agrees %v, want %v", r.Agrees(), tt.agrees)
			}
		})
	}
}

func TestPlanAndRewrite(t *testing.T) {
	w := build(
		node{zone: "a", inHkt: 1, tag: "a"},            // right: nothing
		node{zone: "a", inHkt: 1},                      // tag missing
		node{zone: "b", inHkt: 1, tag: "b"},            // wrong number, empty: re-add
		node{zone: "b", inHkt: 1, tag: "b", bricks: 2}, // wrong number, bricks: refused
		node{zone: "c", file: 1},                       // new: Rewrite
		node{zone: "", inHkt: 4, tag: "zone-gone"},     // stale tag
		node{zone: "b", inHkt: 1, tag: "a", bricks: 1}, // refused, and its tag set
		node{zone: "a", inHkt: 1, tag: "a"},            // a ties with b for 1, and wins by name
	)
	r := Check(w.topo, w.cur, w.nodes)
	if fmt.Sprint(r.Numbers) != "map[a:1 b:2 c:3]" {
		t.Fatalf("numbers %v", r.Numbers)
	}
	var got []string
	for _, c := range Plan(r, w.topo, w.cur) {
		got = append(got, c.Manage+" "+string(c.Action))
	}
	want := []string{"s2 set-tag", "s3 re-add", "s4 refused", "s6 remove-tag", "s7 refused", "s7 set-tag"}
	if !slices.Equal(got, want) {
		t.Errorf("plan %q, want %q", got, want)
	}
	for _, c := range Plan(r, w.topo, w.cur) {
		if c.Manage == "s4" && !strings.Contains(c.String(), "holds 2 bricks") {
			t.Errorf("refusal %q does not say why", c)
		}
	}

	// A device heketi has and the file lacks would be lost: refused.
	w.cur.ClusterList[0].Nodes[2].DevicesInfo = append(w.cur.ClusterList[0].Nodes[2].DevicesInfo, api.DeviceInfoResponse{DeviceInfo: api.DeviceInfo{Device: api.Device{Name: "/dev/sdz"}}})
	for _, c := range Plan(Check(w.topo, w.cur, w.nodes), w.topo, w.cur) {
		if c.Manage == "s3" && (c.Action != Refused || !strings.Contains(c.Reason, "device /dev/sdz")) {
			t.Errorf("s3 with a device the file lacks: %s", c)
		}
	}

	Rewrite(w.topo, r)
	for i, want := range []int{1, 1, 2, 2, 3, 4, 2, 1} {
		n := w.topo.Clusters[0].Nodes[i]
		if i == 5 {
			want = 0 // no zone: the file's number stays
		}
		if n.Node.Zone != want {
			t.Errorf("s%d rewritten to zone %d, want %d", i+1, n.Node.Zone, want)
		}
	}
	if tag := w.topo.Clusters[0].Nodes[4].Node.Tags[volume.ZoneTag]; tag != "c" {
		t.Errorf("new node's tag %q", tag)
	}
	if !topology.ManagedTag(volume.ZoneTag) {
		t.Error("plan would compare the zone tag with the file's")
	}
}

type fakeHeketi struct {
	calls []string
	fail  map[string]error
}

func (f *fakeHeketi) call(s string) error {
	f.calls = append(f.calls, s)
	return f.fail[s]
}

func (f *fakeHeketi) NodeSetTags(_ context.Context, id string, req *api.TagsChangeRequest) error {
	return f.call(fmt.Sprintf("tags %s %s %v", id, req.Change, req.Tags))
}
func (f *fakeHeketi) DeviceState(_ context.Context, id string, req *api.StateRequest) error {
	return f.call(fmt.Sprintf("device %s %s", id, req.State))
}
func (f *fakeHeketi) DeviceDelete(_ context.Context, id string) error {
	return f.call("delete device " + id)
}
func (f *fakeHeketi) NodeDelete(_ context.Context, id string) error {
	return f.call("delete node " + id)
}

func TestFix(t *testing.T) {
	w := build(node{zone: "a", inHkt: 1}, node{zone: "a", inHkt: 1, tag: "a"}, node{zone: "b", inHkt: 1, tag: "b"}, node{zone: "b", inHkt: 1, bricks: 1})
	r := Check(w.topo, w.cur, w.nodes)
	f := &fakeHeketi{fail: map[string]error{}}
	done, err := Fix(context.Background(), f, Plan(r, w.topo, w.cur))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"tags hs1 update map[glusterkube.zone:a]",
		"device ds3 offline", "device ds3 failed", "delete device ds3", "delete node hs3",
		"tags hs4 update map[glusterkube.zone:b]",
	}
	if !slices.Equal(f.calls, want) {
		t.Errorf("calls\n%s\nwant\n%s", strings.Join(f.calls, "\n"), strings.Join(want, "\n"))
	}
	if len(done) != 4 || done[2].Action != Refused {
		t.Errorf("changes %v", done)
	}

	// A failure is reported and the rest goes on; a device already gone
	// (a re-run) is no failure.
	f = &fakeHeketi{fail: map[string]error{
		"tags hs1 update map[glusterkube.zone:a]": errors.New("heketi is away"),
		"device ds3 offline":                      &heketi.Error{Op: "device_state", Status: http.StatusNotFound, Message: "Id not found"},
	}}
	done, err = Fix(context.Background(), f, Plan(r, w.topo, w.cur))
	if err == nil || done[0].Error == "" || done[1].Error != "" {
		t.Errorf("err %v changes %v", err, done)
	}
}
