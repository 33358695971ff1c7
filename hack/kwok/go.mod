// Module kwok builds sigs.k8s.io/kwok (v0.8.0), which fakes kubelets for the
// test environment's nodes and pods.
module github.com/glusterkube/glusterkube/hack/kwok

go 1.26.0

require sigs.k8s.io/kwok v0.8.0
