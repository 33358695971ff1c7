package topology_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/glusterkube/glusterkube/cmd/glusterkube/app"
	"github.com/glusterkube/glusterkube/internal/testenv"
	"github.com/glusterkube/glusterkube/topology"
)

// run runs the glusterkube command line and returns its exit code and
// output.
func run(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = app.Main(args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

func example(name string) string { return filepath.Join("..", "examples", name) }

func TestCLIValidate(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("clusters:\n- nodes:\n  - node: {hostname: {manage: [a]}, zone: 0}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		args     []string
		stdin    string
		code     int
		inStdout string
		inStderr string
	}{
		{"valid JSON", []string{"topology", "validate", "-f", example("topology.json")}, "", 0, "valid: 1 cluster(s), 3 node(s), 3 device(s)", ""},
		{"valid YAML from stdin", []string{"topology", "validate", "-f", "-"}, mustRead(t, example("topology.yaml")), 0, "<stdin>: valid", ""},
		{"errors exit 1 with positions", []string{"topology", "validate", "-f", bad}, "", 1, "", bad + ":3:12: clusters[0].nodes[0].node.hostname: unknown field \"hostname\""},
		{"zone error listed too", []string{"topology", "validate", "-f", bad}, "", 1, "", bad + ":3:43: clusters[0].nodes[0].node.zone: zone must be ≥ 1, got 0"},
		{"nothing sent", []string{"topology", "validate", "-f", bad}, "", 1, "", "nothing was sent to heketi"},
		{"no file is a usage error", []string{"topology", "validate"}, "", 2, "", "--file (-f) is required"},
		{"bad output is a usage error", []string{"topology", "validate", "-f", bad, "-o", "xml"}, "", 2, "", `--output "xml"`},
		{"missing file", []string{"topology", "validate", "-f", "/nonexistent.json"}, "", 1, "", "no such file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := run(t, tc.stdin, tc.args...)
			if code != tc.code || !strings.Contains(out, tc.inStdout) || !strings.Contains(errOut, tc.inStderr) {
				t.Errorf("exit %d (want %d)\nstdout:\n%s\nstderr:\n%s", code, tc.code, out, errOut)
			}
		})
	}

	code, out, _ := run(t, "", "topology", "validate", "-f", bad, "-o", "json")
	var report struct {
		OK          bool
		Diagnostics []map[string]any
	}
	if err := json.Unmarshal([]byte(out), &report); err != nil || code != 1 || report.OK || len(report.Diagnostics) == 0 {
		t.Errorf("validate -o json: exit %d, %v, %s", code, err, out)
	}
	errs := 0
	for _, d := range report.Diagnostics {
		if d["line"] == nil || d["path"] == nil || d["message"] == nil {
			t.Errorf("diagnostic JSON = %v", d)
		}
		if d["severity"] == "error" {
			errs++
		}
	}
	if errs != 3 {
		t.Errorf("validate -o json lists %d errors, want 3: %s", errs, out)
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestCLIInvalidFileSendsNothing(t *testing.T) {
	// No server at this URL: a call would fail differently.
	code, _, errOut := run(t, `{"clusters": []}`, "topology", "load", "-f", "-", "--heketi-url", "http://127.0.0.1:1")
	if code != 1 || !strings.Contains(errOut, "no clusters") || strings.Contains(errOut, "connection refused") {
		t.Errorf("exit %d, stderr:\n%s", code, errOut)
	}
}

func TestIntegrationCLI(t *testing.T) {
	h := testenv.NewHeketi(t, testenv.HeketiOptions{Auth: true})
	keyFile := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(keyFile, []byte(h.AdminKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	hk := []string{"--heketi-url", h.URL, "--heketi-user", "admin", "--heketi-key-file", keyFile}
	args := func(a ...string) []string { return append(a, hk...) }

	code, out, errOut := run(t, "", args("topology", "plan", "-f", example("topology.yaml"))...)
	if code != 0 || !strings.Contains(out, "Plan: 1 cluster, 3 nodes and 3 devices to add") {
		t.Fatalf("plan: exit %d\n%s\n%s", code, out, errOut)
	}

	code, out, errOut = run(t, "", args("topology", "load", "-f", example("topology.json"))...)
	if code != 0 || strings.Count(out, "\nok ") < 6 || !strings.Contains(out, "1 cluster created, 3 nodes and 3 devices added") {
		t.Fatalf("load: exit %d\n%s\n%s", code, out, errOut)
	}

	code, out, errOut = run(t, "", args("topology", "load", "-f", example("topology.json"), "-o", "json")...)
	var rep topology.ReportJSON
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 0 || !rep.OK || len(rep.Results) != 0 {
		t.Fatalf("re-load -o json: exit %d, %v\n%s\n%s", code, err, out, errOut)
	}

	// show → load → plan: zero changes, in both formats.
	for _, format := range []string{"json", "yaml"} {
		code, shown, errOut := run(t, "", args("topology", "show", "-o", format)...)
		if code != 0 {
			t.Fatalf("show -o %s: exit %d\n%s", format, code, errOut)
		}
		code, out, errOut = run(t, shown, args("topology", "plan", "-f", "-", "-o", "json")...)
		var plan topology.PlanJSON
		if err := json.Unmarshal([]byte(out), &plan); err != nil || code != 0 {
			t.Fatalf("plan of shown %s: exit %d, %v\n%s\n%s", format, code, err, out, errOut)
		}
		if plan.Counts.Changes() != 0 || plan.Counts.Differences != 0 || plan.Counts.NodesPresent != 3 {
			t.Errorf("round trip via %s: %+v\n%s", format, plan.Counts, shown)
		}
	}
	code, out, _ = run(t, "", args("topology", "show", "-o", "table")...)
	if code != 0 || strings.Count(out, "/dev/sdb") != 3 {
		t.Errorf("show -o table: exit %d\n%s", code, out)
	}

	// A conflicting file: load fails with exit 1 and says why.
	conflict := strings.ReplaceAll(mustRead(t, example("topology.json")), "node-", "other-")
	code, out, _ = run(t, conflict, args("topology", "load", "-f", "-")...)
	if code != 1 || !strings.Contains(out, "storage hostname 10.0.0.11 is already used by heketi node") || !strings.Contains(out, "hint:") {
		t.Errorf("conflicting load: exit %d\n%s", code, out)
	}
}
