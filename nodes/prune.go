package nodes

import (
	"slices"
	"strings"

	"github.com/heketi/heketi/pkg/glusterfs/api"
	corev1 "k8s.io/api/core/v1"
)

// bricksByNode returns, for each of the given Nodes, the bricks heketi holds
// on it. A heketi node belongs to a Node when one of its manage or storage
// hostnames is one of the Node's identities (name, hostname label,
// Hostname/InternalIP address).
func bricksByNode(info *api.TopologyInfoResponse, nodes []*corev1.Node) map[string][]Brick {
	owner := map[string]string{} // identity -> Node name
	for _, n := range nodes {
		for _, id := range identities(n) {
			owner[id] = n.Name
		}
	}
	out := map[string][]Brick{}
	if info == nil {
		return out
	}
	for _, c := range info.ClusterList {
		for _, hn := range c.Nodes {
			node := ""
			for _, h := range append(slices.Clone([]string(hn.Hostnames.Manage)), hn.Hostnames.Storage...) {
				if o, ok := owner[strings.ToLower(h)]; ok {
					node = o
					break
				}
			}
			if node == "" {
				continue
			}
			for _, d := range hn.DevicesInfo {
				for _, b := range d.Bricks {
					out[node] = append(out[node], Brick{ID: b.Id, Volume: b.VolumeId, Device: d.Name, HeketiNode: hn.Id})
				}
			}
		}
	}
	return out
}
