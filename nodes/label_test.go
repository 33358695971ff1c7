package nodes

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/heketi/heketi/pkg/glusterfs/api"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	corelisters "k8s.io/client-go/listers/core/v1"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
)

type fakeHeketi struct {
	info *api.TopologyInfoResponse
	err  error
}

func (f fakeHeketi) TopologyInfo(context.Context) (*api.TopologyInfoResponse, error) {
	return f.info, f.err
}

// heketiWithBricks is a heketi topology with one node, managed as manage,
// holding n bricks.
func heketiWithBricks(manage string, n int) *api.TopologyInfoResponse {
	hn := api.NodeInfoResponse{}
	hn.Id = "hnode-1"
	hn.Hostnames.Manage = []string{manage}
	d := api.DeviceInfoResponse{}
	d.Name = "/dev/vdb"
	for i := range n {
		d.Bricks = append(d.Bricks, api.BrickInfo{Id: "brick-" + string(rune('a'+i)), VolumeId: "vol-1"})
	}
	hn.DevicesInfo = []api.DeviceInfoResponse{d}
	return &api.TopologyInfoResponse{ClusterList: []api.Cluster{{Id: "c1", Nodes: []api.NodeInfoResponse{hn}}}}
}

func patches(cs *fake.Clientset) map[string]string {
	out := map[string]string{}
	for _, a := range cs.Actions() {
		if p, ok := a.(k8stesting.PatchAction); ok {
			out[p.GetName()] = string(p.GetPatch())
		}
	}
	return out
}

func nodeObjs(nodes ...corev1.Node) []runtime.Object {
	var out []runtime.Object
	for i := range nodes {
		out = append(out, &nodes[i])
	}
	return out
}

func TestLabel(t *testing.T) {
	labelled := map[string]string{"storagenode": "glusterfs", "glusterkube.io/zone": "1"}
	tests := []struct {
		name        string
		nodes       []corev1.Node
		opts        Options
		wantPatches map[string]string
		wantActions map[string]Action // Node -> action (matched and stale)
		wantErr     string
		problems    bool
	}{
		{
			name:        "labels matched Nodes with label and zone",
			nodes:       []corev1.Node{kubeNode("node-1", nil), kubeNode("node-2", nil), kubeNode("other", nil)},
			wantPatches: map[string]string{"node-1": `{"metadata":{"labels":{"glusterkube.io/zone":"1","storagenode":"glusterfs"}}}`, "node-2": `{"metadata":{"labels":{"glusterkube.io/zone":"2","storagenode":"glusterfs"}}}`},
			wantActions: map[string]Action{"node-1": Labelled, "node-2": Labelled},
		},
		{
			name:        "already labelled Nodes are not written",
			nodes:       []corev1.Node{kubeNode("node-1", labelled), kubeNode("node-2", map[string]string{"storagenode": "glusterfs", "glusterkube.io/zone": "2"})},
			wantPatches: map[string]string{},
			wantActions: map[string]Action{"node-1": Unchanged, "node-2": Unchanged},
		},
		{
			name:        "custom label and no zone label",
			nodes:       []corev1.Node{kubeNode("node-1", nil), kubeNode("node-2", nil)},
			opts:        Options{LabelKey: "example.com/gluster", LabelValue: "yes", ZoneLabel: "-"},
			wantPatches: map[string]string{"node-1": `{"metadata":{"labels":{"example.com/gluster":"yes"}}}`, "node-2": `{"metadata":{"labels":{"example.com/gluster":"yes"}}}`},
			wantActions: map[string]Action{"node-1": Labelled, "node-2": Labelled},
		},
		{
			name:        "dry run writes nothing",
			nodes:       []corev1.Node{kubeNode("node-1", nil), kubeNode("node-2", nil), kubeNode("old", labelled)},
			opts:        Options{DryRun: true, Prune: true, Heketi: fakeHeketi{info: &api.TopologyInfoResponse{}}},
			wantPatches: map[string]string{},
			wantActions: map[string]Action{"node-1": WouldLabel, "node-2": WouldLabel, "old": WouldPrune},
		},
		{
			name:        "stale Node only reported without prune",
			nodes:       []corev1.Node{kubeNode("node-1", labelled), kubeNode("node-2", nil), kubeNode("old", labelled)},
			wantPatches: map[string]string{"node-2": `{"metadata":{"labels":{"glusterkube.io/zone":"2","storagenode":"glusterfs"}}}`},
			wantActions: map[string]Action{"node-1": Unchanged, "node-2": Labelled, "old": Kept},
		},
		{
			name:        "prune removes label and zone from a Node without bricks",
			nodes:       []corev1.Node{kubeNode("node-1", labelled), kubeNode("node-2", nil), kubeNode("old", labelled)},
			opts:        Options{Prune: true, Heketi: fakeHeketi{info: heketiWithBricks("someone-else", 3)}},
			wantPatches: map[string]string{"node-2": `{"metadata":{"labels":{"glusterkube.io/zone":"2","storagenode":"glusterfs"}}}`, "old": `{"metadata":{"labels":{"glusterkube.io/zone":null,"storagenode":null}}}`},
			wantActions: map[string]Action{"node-1": Unchanged, "node-2": Labelled, "old": Pruned},
		},
		{
			name:        "prune refused while heketi holds bricks (matched by address)",
			nodes:       []corev1.Node{kubeNode("node-1", labelled), kubeNode("node-2", nil), kubeNode("old", labelled, "10.0.0.66")},
			opts:        Options{Prune: true, Heketi: fakeHeketi{info: heketiWithBricks("10.0.0.66", 2)}},
			wantPatches: map[string]string{"node-2": `{"metadata":{"labels":{"glusterkube.io/zone":"2","storagenode":"glusterfs"}}}`},
			wantActions: map[string]Action{"node-1": Unchanged, "node-2": Labelled, "old": Refused},
			problems:    true,
		},
		{
			name:    "heketi failure changes nothing",
			nodes:   []corev1.Node{kubeNode("node-1", nil), kubeNode("node-2", nil), kubeNode("old", labelled)},
			opts:    Options{Prune: true, Heketi: fakeHeketi{err: errors.New("connection refused")}},
			wantErr: "nothing was changed",
		},
		{
			name:    "prune without heketi is refused",
			nodes:   []corev1.Node{kubeNode("node-1", nil)},
			opts:    Options{Prune: true},
			wantErr: "prune needs a heketi server",
		},
		{
			name:    "invalid label key",
			nodes:   []corev1.Node{kubeNode("node-1", nil)},
			opts:    Options{LabelKey: "bad key!", LabelValue: "x"},
			wantErr: `label key "bad key!" is invalid`,
		},
		{
			name:        "a Node labelled with another value is not stale",
			nodes:       []corev1.Node{kubeNode("node-1", labelled), kubeNode("node-2", labelled), kubeNode("x", map[string]string{"storagenode": "ceph"})},
			opts:        Options{Prune: true, Heketi: fakeHeketi{info: &api.TopologyInfoResponse{}}},
			wantPatches: map[string]string{"node-2": `{"metadata":{"labels":{"glusterkube.io/zone":"2","storagenode":"glusterfs"}}}`},
			wantActions: map[string]Action{"node-1": Unchanged, "node-2": Labelled},
		},
	}
	tp := topo(topoNode("node-1", "", 1), topoNode("node-2", "", 2))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs := fake.NewClientset(nodeObjs(tt.nodes...)...)
			res, err := Label(context.Background(), cs, tp, tt.opts)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if p := patches(cs); len(p) > 0 {
					t.Fatalf("failed run patched %v", p)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := patches(cs)
			if len(got) != len(tt.wantPatches) {
				t.Errorf("patches = %v, want %v", got, tt.wantPatches)
			}
			for n, p := range tt.wantPatches {
				if got[n] != p {
					t.Errorf("patch of %s = %s, want %s", n, got[n], p)
				}
			}
			actions := map[string]Action{}
			for _, n := range res.Nodes {
				actions[n.Node] = n.Action
			}
			for _, s := range res.Stale {
				actions[s.Node] = s.Action
				if s.Action == Refused && len(s.Bricks) == 0 {
					t.Errorf("refused %s without naming bricks", s.Node)
				}
			}
			if len(actions) != len(tt.wantActions) {
				t.Errorf("actions = %v, want %v", actions, tt.wantActions)
			}
			for n, a := range tt.wantActions {
				if actions[n] != a {
					t.Errorf("action on %s = %q, want %q", n, actions[n], a)
				}
			}
			if res.Problems() != tt.problems {
				t.Errorf("Problems() = %v, want %v", res.Problems(), tt.problems)
			}
			// The patched objects really carry the labels.
			for n := range tt.wantPatches {
				node, err := cs.CoreV1().Nodes().Get(context.Background(), n, metav1.GetOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if actions[n] == Pruned {
					if _, ok := node.Labels["storagenode"]; ok {
						t.Errorf("%s still labelled after prune: %v", n, node.Labels)
					}
				} else if node.Labels[DefaultLabelKey] == "" && node.Labels["example.com/gluster"] == "" {
					t.Errorf("%s not labelled: %v", n, node.Labels)
				}
			}
		})
	}
}

func TestLabelPatchFailureReported(t *testing.T) {
	cs := fake.NewClientset(nodeObjs(kubeNode("node-1", nil), kubeNode("node-2", nil))...)
	cs.PrependReactor("patch", "nodes", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.(k8stesting.PatchAction).GetName() == "node-2" {
			return true, nil, errors.New("etcd on fire")
		}
		return false, nil, nil
	})
	res, err := Label(context.Background(), cs, topo(topoNode("node-1", "", 1), topoNode("node-2", "", 2)), Options{})
	if err == nil || !strings.Contains(err.Error(), "patch labels of Node node-2") {
		t.Fatalf("err = %v, want it to name node-2", err)
	}
	if res == nil || res.Nodes[0].Action != Labelled || res.Nodes[1].Action != Unchanged {
		t.Fatalf("result = %+v, want node-1 labelled and node-2 unchanged", res)
	}
}

// With a Lister (a controller's informer cache), Label reads the Nodes
// from it and sends the API server only the patches.
func TestLabelReadsNodesFromLister(t *testing.T) {
	cached := []corev1.Node{kubeNode("node-1", nil), kubeNode("node-2", nil)}
	indexer := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	for i := range cached {
		if err := indexer.Add(&cached[i]); err != nil {
			t.Fatal(err)
		}
	}
	// The API server knows the Nodes too (the patches need them), but
	// Label must not list them there.
	cs := fake.NewSimpleClientset(nodeObjs(cached...)...)
	res, err := Label(context.Background(), cs, topo(topoNode("node-1", "", 1), topoNode("node-2", "", 2)), Options{Lister: corelisters.NewNodeLister(indexer)})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Nodes) != 2 || res.Nodes[0].Action != Labelled || res.Nodes[1].Action != Labelled {
		t.Errorf("nodes = %+v, want both labelled", res.Nodes)
	}
	for _, a := range cs.Actions() {
		if a.GetVerb() != "patch" {
			t.Errorf("API call %s %s; want only patches", a.GetVerb(), a.GetResource().Resource)
		}
	}
	if cached[0].Labels != nil {
		t.Errorf("the cached Node was modified: %v", cached[0].Labels)
	}
}
