package main

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/glusterkube/glusterkube/cmd/glusterkube/app"
	"github.com/glusterkube/glusterkube/internal/testenv"
)

// TestMain lets the test binary run as glusterkube: the demo starts the
// node's processes (mount service, CSI node plugin) by re-executing itself.
func TestMain(m *testing.M) {
	testenv.RunCommandIfAsked(func(args []string) int { return app.Main(args, os.Stdin, os.Stdout, os.Stderr) })
	os.Exit(m.Run())
}

// TestDemo runs `make demo` end to end and checks it leaves no process.
func TestDemo(t *testing.T) {
	if !testenv.Integration() {
		t.Skipf("integration test: run with `make test` or %s=1", testenv.IntegrationEnv)
	}
	t.Chdir("../..") // the demo runs from the repository root, as make demo does
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var out testenv.Buffer
	code := run(ctx, &out, false)
	testenv.StopAll()
	t.Log(out.String())
	if code != 0 {
		t.Fatalf("demo exited %d", code)
	}
	for _, want := range []string{
		"Nothing to do: heketi already holds the file's topology.",
		"rolled out",
		"4/4 claims Bound",
		"heketi holds 1 volume(s):",
		"Retain   Released  demo/keep-me",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	// A pod on a real node writes through GlusterFS where the machine can
	// run one; elsewhere the node plugin mounts as host processes where
	// glusterd runs, and the step says why not where it cannot.
	mount := "the line is on the brick: 68 bytes, written by the pod on real-node-1"
	if err := realNodeCheck(ctx); err != nil {
		mount = "the line is on the brick"
		if err := testenv.CanRunGlusterd(ctx); err != nil {
			mount = "(skipped: this machine cannot run glusterd"
		}
	}
	if !strings.Contains(out.String(), mount) {
		t.Errorf("demo output lacks %q", mount)
	}
	if strings.Contains(out.String(), "not built yet") || strings.Contains(out.String(), "FAILED") {
		t.Error("demo skipped or failed a step")
	}
	if left := testenv.Running(); len(left) > 0 {
		t.Errorf("processes left running: %v", left)
	}
	if left := children(); len(left) > 0 {
		t.Errorf("child processes left running: %v", left)
	}
}
