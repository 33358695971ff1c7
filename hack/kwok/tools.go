//go:build tools

// Package tools pins sigs.k8s.io/kwok.
package tools
