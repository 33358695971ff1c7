// Package daemonset renders, applies and watches the GlusterFS DaemonSet:
// glusterd in a privileged host-network pod on every storage node (the
// Nodes labelled by package nodes).
//
// The manifest is an embedded template faithful to gluster-kubernetes'
// DaemonSet (as apps/v1, with a selector and updateStrategy OnDelete,
// because restarting glusterd on many nodes at once loses quorum); Values
// set its name, namespace, image, node selector, resources, tolerations and
// priority class. Apply uses server-side apply with field manager
// glusterkube and reports what changed. Wait watches the DaemonSet, its
// pods, its storage Nodes and its ControllerRevisions through informers
// until every storage node runs a ready, up-to-date pod, and otherwise
// names each storage node without one and why.
package daemonset
