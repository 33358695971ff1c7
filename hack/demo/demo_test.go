package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/glusterkube/glusterkube/internal/testenv"
)

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
