//go:build tools

// Package tools pins k8s.io/kubernetes for the test component builds: the
// control plane, kubectl and the real node's kubelet. Importing the
// commands keeps go.mod and go.sum complete for them (go mod tidy reads
// every build tag), so a build never has to write them.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
