package nodes

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/glusterkube/glusterkube/topology"
)

func kubeNode(name string, labels map[string]string, addrs ...string) corev1.Node {
	n := corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	for _, a := range addrs {
		typ := corev1.NodeInternalIP
		if a[0] < '0' || a[0] > '9' {
			typ = corev1.NodeHostName
		}
		n.Status.Addresses = append(n.Status.Addresses, corev1.NodeAddress{Type: typ, Address: a})
	}
	return n
}

func topoNode(manage, storage string, zone int) topology.Node {
	n := topology.Node{Node: topology.NodeInfo{Zone: zone, Hostnames: topology.Hostnames{Manage: []string{manage}}}}
	if storage != "" {
		n.Node.Hostnames.Storage = []string{storage}
	}
	return n
}

func topo(nodes ...topology.Node) *topology.Topology {
	return &topology.Topology{Clusters: []topology.Cluster{{Nodes: nodes}}}
}

func TestMatchNodes(t *testing.T) {
	tests := []struct {
		name          string
		topo          *topology.Topology
		nodes         []corev1.Node
		wantMatches   []Match
		wantUnmatched []string
		wantAmbiguous map[string][]string // topology name -> candidates
	}{
		{
			name:        "manage hostname is the Node name",
			topo:        topo(topoNode("node-1", "10.0.0.1", 1)),
			nodes:       []corev1.Node{kubeNode("node-1", nil, "10.0.0.9")},
			wantMatches: []Match{{Topology: "node-1", Path: "clusters[0].nodes[0]", Node: "node-1", By: ByName, Zone: 1}},
		},
		{
			name:        "Node name matched case-insensitively",
			topo:        topo(topoNode("Node-1.Example.com", "", 2)),
			nodes:       []corev1.Node{kubeNode("node-1.example.com", nil)},
			wantMatches: []Match{{Topology: "Node-1.Example.com", Path: "clusters[0].nodes[0]", Node: "node-1.example.com", By: ByName, Zone: 2}},
		},
		{
			name:        "manage hostname is the hostname label",
			topo:        topo(topoNode("host-a", "", 1)),
			nodes:       []corev1.Node{kubeNode("ip-10-0-0-1", map[string]string{hostnameLabel: "host-a"})},
			wantMatches: []Match{{Topology: "host-a", Path: "clusters[0].nodes[0]", Node: "ip-10-0-0-1", By: ByHostnameLabel, Zone: 1}},
		},
		{
			name:        "storage hostname is an InternalIP",
			topo:        topo(topoNode("gluster-a.storage", "10.0.0.7", 3)),
			nodes:       []corev1.Node{kubeNode("worker-7", nil, "10.0.0.7"), kubeNode("worker-8", nil, "10.0.0.8")},
			wantMatches: []Match{{Topology: "gluster-a.storage", Path: "clusters[0].nodes[0]", Node: "worker-7", By: ByAddress, Zone: 3}},
		},
		{
			name:        "name wins over an address of another Node",
			topo:        topo(topoNode("node-1", "10.0.0.2", 1)),
			nodes:       []corev1.Node{kubeNode("node-1", nil, "10.0.0.1"), kubeNode("node-2", nil, "10.0.0.2")},
			wantMatches: []Match{{Topology: "node-1", Path: "clusters[0].nodes[0]", Node: "node-1", By: ByName, Zone: 1}},
		},
		{
			name:          "no Node has the hostnames",
			topo:          topo(topoNode("ghost", "10.9.9.9", 1)),
			nodes:         []corev1.Node{kubeNode("node-1", nil, "10.0.0.1")},
			wantUnmatched: []string{"ghost"},
		},
		{
			name:          "address shared by two Nodes",
			topo:          topo(topoNode("gluster-x", "10.0.0.5", 1)),
			nodes:         []corev1.Node{kubeNode("a", nil, "10.0.0.5"), kubeNode("b", nil, "10.0.0.5")},
			wantAmbiguous: map[string][]string{"gluster-x": {"a", "b"}},
		},
		{
			name:          "two topology nodes claim one Node",
			topo:          topo(topoNode("x", "10.0.0.5", 1), topoNode("y", "10.0.0.5", 2), topoNode("node-3", "", 1)),
			nodes:         []corev1.Node{kubeNode("a", nil, "10.0.0.5"), kubeNode("node-3", nil)},
			wantMatches:   []Match{{Topology: "node-3", Path: "clusters[0].nodes[2]", Node: "node-3", By: ByName, Zone: 1}},
			wantAmbiguous: map[string][]string{"x": {"a"}, "y": {"a"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := MatchNodes(tt.topo, tt.nodes)
			if !reflect.DeepEqual(got.Matches, tt.wantMatches) && (len(got.Matches) > 0 || len(tt.wantMatches) > 0) {
				t.Errorf("matches = %+v, want %+v", got.Matches, tt.wantMatches)
			}
			var un []string
			for _, u := range got.Unmatched {
				un = append(un, u.Topology)
			}
			if !reflect.DeepEqual(un, tt.wantUnmatched) {
				t.Errorf("unmatched = %v, want %v", un, tt.wantUnmatched)
			}
			amb := map[string][]string{}
			for _, a := range got.Ambiguous {
				amb[a.Topology] = a.Candidates
				if a.Reason == "" {
					t.Errorf("ambiguous %s has no reason", a.Topology)
				}
			}
			if len(amb) > 0 || len(tt.wantAmbiguous) > 0 {
				if !reflect.DeepEqual(amb, tt.wantAmbiguous) {
					t.Errorf("ambiguous = %v, want %v", amb, tt.wantAmbiguous)
				}
			}
		})
	}
}
