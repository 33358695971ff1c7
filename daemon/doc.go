// Package daemon runs glusterkube's controllers together, as `glusterkube
// run` does: the storage controller (topology ConfigMap → heketi, storage
// node labels, GlusterFS DaemonSet) and the dynamic provisioner, behind one
// leader election, with /healthz, /readyz and /metrics on one address.
package daemon
