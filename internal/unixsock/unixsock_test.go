package unixsock

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPath(t *testing.T) {
	for in, want := range map[string]string{
		"unix:///var/lib/x/csi.sock": "/var/lib/x/csi.sock",
		"/run/a/../b.sock":           "/run/b.sock",
		"unix://relative.sock":       "",
		"tcp://127.0.0.1:10000":      "",
		"":                           "",
	} {
		got, err := Path(in)
		if (err != nil) != (want == "") || got != want {
			t.Errorf("Path(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestListen(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "sub", "s.sock")
	ln, err := Listen("unix://"+sock, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket %v %v, want mode 0600", fi, err)
	}
	if _, err := Listen("unix://"+sock, 0o600); err == nil || !strings.Contains(err.Error(), "another process is serving") {
		t.Errorf("a live socket: %v", err)
	}
	// A socket left by a killed process is replaced.
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	ln, err = Listen("unix://"+sock, 0o600)
	if err != nil {
		t.Fatalf("a stale socket: %v", err)
	}
	ln.Close()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Listen("unix://"+file, 0o600); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("a regular file: %v", err)
	}
}
