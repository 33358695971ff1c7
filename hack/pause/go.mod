// Module pause builds the pause program of the test stack's real node: the
// pause container of every pod and the init of the node's PID namespace.
module github.com/glusterkube/glusterkube/hack/pause

go 1.26.0
