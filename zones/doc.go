// Package zones joins the two ideas of a zone: Kubernetes labels a Node
// with its zone (topology.kubernetes.io/zone, on older clusters
// failure-domain.beta.kubernetes.io/zone), heketi knows a number per node,
// which its strict zone checking keeps apart within a replica set.
//
// A storage node's zone is its Node's zone label. Check matches heketi's
// nodes (or a topology file's) to the Nodes and reports where the numbers
// disagree with the labels: two Kubernetes zones sharing a heketi zone,
// one Kubernetes zone split over several, storage nodes whose Node has no
// zone. When asked — never by itself — Fix makes heketi follow the labels:
// new nodes are added with the number of their zone, nodes heketi holds
// with the wrong number are re-added when they hold no bricks (heketi has
// no call to change a node's zone in place), and every node carries its
// Kubernetes zone in the tag volume.ZoneTag, which placement selects on.
package zones
