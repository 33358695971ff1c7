//go:build tools

// Package tools pins the heketi module so that `go build
// github.com/heketi/heketi` and `.../client/cli/go` resolve here.
package tools
