// Package nodes maps the nodes of a heketi topology to Kubernetes Nodes and
// labels them as storage nodes, so the GlusterFS DaemonSet (package
// daemonset) runs exactly where heketi expects glusterd.
//
// Matching is deliberate and reported: a topology node matches the Node
// named like its manage hostname; else the Node whose kubernetes.io/hostname
// label equals a manage hostname; else the Node with a Hostname or
// InternalIP address equal to a manage or storage hostname. Topology nodes
// without a match, or with more than one, are reported by name and left
// alone.
//
// Labels are set and removed with JSON merge patches that touch only the
// keys glusterkube owns, never with a read-modify-write Update, so
// concurrent edits of a Node are not lost. Removing the label from a Node
// that left the topology (prune) is refused while heketi still holds bricks
// on it.
package nodes
