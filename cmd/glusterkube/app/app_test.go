package app

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"k8s.io/klog/v2"
)

func TestMainExitCodes(t *testing.T) {
	t.Setenv("HEKETI_CLI_SERVER", "")
	t.Setenv("KUBECONFIG", "")
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string // substring of stdout
		wantErr  string // substring of stderr
	}{
		{name: "version", args: []string{"version"}, wantCode: ExitOK, wantOut: "glusterkube " + Version},
		{name: "no command", args: nil, wantCode: ExitUsage, wantErr: "needs a command"},
		{name: "unknown command", args: []string{"frobnicate"}, wantCode: ExitUsage, wantErr: `unknown command "frobnicate"`},
		{name: "help", args: []string{"--help"}, wantCode: ExitOK, wantOut: "topology"},
		{name: "subcommand help", args: []string{"version", "--help"}, wantCode: ExitOK, wantOut: "Usage:"},
		{name: "unknown flag", args: []string{"version", "--bogus"}, wantCode: ExitUsage, wantErr: "unknown flag: --bogus"},
		{name: "extra argument", args: []string{"version", "extra"}, wantCode: ExitUsage, wantErr: "unexpected arguments: extra"},
		{name: "csi: unknown service", args: []string{"csi", "--services=node,frobnicate"}, wantCode: ExitUsage, wantErr: `--services: unknown service "frobnicate"`},
		{name: "csi: tcp endpoint", args: []string{"csi", "--services=node", "--endpoint=tcp://127.0.0.1:1"}, wantCode: ExitUsage, wantErr: "only unix:///path sockets"},
		{name: "csi: controller without a heketi server", args: []string{"csi", "--services=controller"}, wantCode: ExitUsage, wantErr: "pass --heketi-url or set HEKETI_CLI_SERVER"},
		{name: "csi: bad mount time-out", args: []string{"csi", "--services=node", "--endpoint=unix:///tmp/x.sock", "--mount-timeout=0s"}, wantCode: ExitUsage, wantErr: "--mount-timeout must be positive"},
		{name: "mounter: relative folder", args: []string{"mounter", "--allowed-dir=var/lib/kubelet"}, wantCode: ExitUsage, wantErr: "--allowed-dir must be an absolute path"},
		{name: "migrate: bad claim", args: []string{"migrate", "plan", "data-web-0"}, wantCode: ExitUsage, wantErr: `claim "data-web-0": want NAMESPACE/NAME`},
		{name: "migrate: bad selector", args: []string{"migrate", "apply", "--selector", "a=(b"}, wantCode: ExitUsage, wantErr: "--selector"},
		{name: "migrate: bad output", args: []string{"migrate", "plan", "-o", "yaml"}, wantCode: ExitUsage, wantErr: "want text or json"},
		{name: "migrate: parallel", args: []string{"migrate", "apply", "--parallel", "0"}, wantCode: ExitUsage, wantErr: "--parallel must be at least 1"},
		{name: "migrate: subcommands", args: []string{"migrate", "--help"}, wantCode: ExitOK, wantOut: "restore"},
		{name: "provisioner: bad in-tree setting", args: []string{"provisioner", "--serve-intree-classes", "sometimes"}, wantCode: ExitUsage, wantErr: "--serve-intree-classes"},
		{name: "run: bad in-tree setting", args: []string{"run", "--serve-intree-classes", "maybe"}, wantCode: ExitUsage, wantErr: "--serve-intree-classes"},
		{name: "no heketi server", args: []string{"topology", "plan", "-f", "../../../examples/topology.json"}, wantCode: ExitUsage, wantErr: "HEKETI_CLI_SERVER"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := Main(tc.args, strings.NewReader(""), &out, &errOut)
			if code != tc.wantCode {
				t.Fatalf("exit code %d, want %d\nstdout: %s\nstderr: %s", code, tc.wantCode, out.String(), errOut.String())
			}
			if !strings.Contains(out.String(), tc.wantOut) {
				t.Errorf("stdout %q does not contain %q", out.String(), tc.wantOut)
			}
			if !strings.Contains(errOut.String(), tc.wantErr) {
				t.Errorf("stderr %q does not contain %q", errOut.String(), tc.wantErr)
			}
		})
	}
}

func TestHelpPrintedOnce(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := Main([]string{"topology", "load", "--help"}, strings.NewReader(""), &out, &errOut); code != ExitOK {
		t.Fatalf("exit code %d; stderr: %s", code, errOut.String())
	}
	if n := strings.Count(out.String(), "Usage:"); n != 1 {
		t.Errorf("usage printed %d times:\n%s", n, out.String())
	}
	if errOut.Len() != 0 {
		t.Errorf("stderr not empty: %q", errOut.String())
	}
	if !strings.HasSuffix(out.String(), "\n") {
		t.Errorf("usage does not end in a newline")
	}
}

func TestHeketiConfigFromEnvironment(t *testing.T) {
	tests := []struct {
		name     string
		g        Globals
		env      map[string]string
		wantURL  string
		wantUser string
		wantKey  string
		wantErr  string
	}{
		{name: "flags win", g: Globals{HeketiURL: "http://a:8080", HeketiUser: "admin", HeketiKey: "k"}, env: map[string]string{"HEKETI_CLI_SERVER": "http://b:8080"}, wantURL: "http://a:8080", wantUser: "admin", wantKey: "k"},
		{name: "environment like heketi-cli", env: map[string]string{"HEKETI_CLI_SERVER": "http://b:8080", "HEKETI_CLI_USER": "admin", "HEKETI_CLI_KEY": "s"}, wantURL: "http://b:8080", wantUser: "admin", wantKey: "s"},
		{name: "key alone means admin", g: Globals{HeketiURL: "http://a:8080", HeketiKey: "k"}, wantURL: "http://a:8080", wantUser: "admin", wantKey: "k"},
		{name: "no server", wantErr: "--heketi-url"},
		{name: "key and key file", g: Globals{HeketiURL: "http://a", HeketiKey: "k", HeketiKeyFile: "/x"}, wantErr: "mutually exclusive"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := tc.g
			g.Getenv = func(k string) string { return tc.env[k] }
			cfg, err := g.HeketiConfig()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.URL != tc.wantURL || cfg.User != tc.wantUser || cfg.Key != tc.wantKey {
				t.Fatalf("got %q %q %q", cfg.URL, cfg.User, cfg.Key)
			}
		})
	}
}

// A log line reaches the command's error stream once, whatever its
// severity.
func TestLogLinePrintedOnce(t *testing.T) {
	var buf bytes.Buffer
	setupLogging(0, &buf)
	t.Cleanup(func() { setupLogging(0, &bytes.Buffer{}) })
	klog.ErrorS(errors.New("boom"), "Conversion stopped")
	klog.Warning("a warning")
	klog.InfoS("an info")
	klog.Flush()
	for _, msg := range []string{"Conversion stopped", "a warning", "an info"} {
		if n := strings.Count(buf.String(), msg); n != 1 {
			t.Errorf("%q logged %d times:\n%s", msg, n, buf.String())
		}
	}
}
