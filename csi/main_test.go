package csi_test

import (
	"os"
	"testing"

	"github.com/glusterkube/glusterkube/cmd/glusterkube/app"
	"github.com/glusterkube/glusterkube/internal/testenv"
)

// The integration tests run the real `glusterkube csi` and `glusterkube
// mounter` (this test binary, re-executed) as a kubelet would meet them:
// in glusterd's network namespace and a PID namespace of their own.
func TestMain(m *testing.M) {
	testenv.RunCommandIfAsked(func(args []string) int { return app.Main(args, os.Stdin, os.Stdout, os.Stderr) })
	os.Exit(testenv.Main(m, testenv.Options{Kube: true, Nodes: -1}))
}
