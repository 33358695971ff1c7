//go:build tools

// Package tools pins k8s.io/kubernetes for the control-plane builds.
package tools
