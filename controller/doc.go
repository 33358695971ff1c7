// Package controller is the storage controller behind `glusterkube run`: it
// keeps heketi's topology, the storage-node labels and the GlusterFS
// DaemonSet in line with a topology file held in a ConfigMap, continuously.
//
// It is one reconcile function driven by informers (the ConfigMap and the
// Nodes) and a rate-limited workqueue with a single key: every event means
// "look again", and a reconcile is idempotent and cheap when nothing changed
// (one TopologyInfo call, no writes). A topology that fails validation is
// reported as a Warning Event on the ConfigMap and sends nothing to heketi.
// It only ever adds to heketi and never prunes node labels unless asked.
package controller
