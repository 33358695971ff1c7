package mounter

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLocalRefusesBadRequests: requests that could inject arguments into
// mount.glusterfs (a shell script), or reach outside the allowed folder,
// are refused before anything runs or is made.
func TestLocalRefusesBadRequests(t *testing.T) {
	dir := t.TempDir()
	l := NewLocal(LocalConfig{AllowedDir: dir})
	ok := MountRequest{Source: "127.0.0.1:/vol", Target: filepath.Join(dir, "t"), FSType: FSType}
	tests := []struct {
		name string
		mut  func(r *MountRequest)
		want string
	}{
		{"empty target", func(r *MountRequest) { r.Target = "" }, "target is empty"},
		{"relative target", func(r *MountRequest) { r.Target = "t" }, "absolute, clean path"},
		{"unclean target", func(r *MountRequest) { r.Target = dir + "/a/../t" }, "absolute, clean path"},
		{"target with a blank", func(r *MountRequest) { r.Target = dir + "/a b" }, "blanks, quotes or shell"},
		{"target outside the allowed folder", func(r *MountRequest) { r.Target = "/etc/x" }, "outside " + dir},
		{"other fs type", func(r *MountRequest) { r.FSType = "nfs" }, `file system type "nfs"`},
		{"source without volume", func(r *MountRequest) { r.Source = "127.0.0.1" }, "want server:/volume"},
		{"source with a command", func(r *MountRequest) { r.Source = "h:/v;reboot" }, "want server:/volume"},
		{"option with a blank", func(r *MountRequest) { r.Options = []string{"log-file=/a b"} }, "mount option"},
		{"option with a quote", func(r *MountRequest) { r.Options = []string{`x="y"`} }, "mount option"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := ok
			tc.mut(&r)
			err := l.Mount(context.Background(), r)
			if CodeOf(err) != Invalid || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v (%s), want Invalid with %q", err, CodeOf(err), tc.want)
			}
			if _, err := os.Stat(ok.Target); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the target was made: %v", err)
			}
		})
	}
	if err := l.Unmount(context.Background(), "/etc"); CodeOf(err) != Invalid {
		t.Errorf("unmount outside the allowed folder: %v", err)
	}
	// Nothing mounted: a success.
	if err := l.Unmount(context.Background(), filepath.Join(dir, "nothing")); err != nil {
		t.Errorf("unmount of nothing: %v", err)
	}
}

func TestMountErrorClasses(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "v.log")
	old := "[2026-12-02 02:55:58.8 +0000] E [x.c:1:f] 0-old: an error of an earlier mount\n"
	fresh := "[2026-12-02 02:55:58.886940 +0000] E [glusterfsd-mgmt.c:2170:mgmt_getspec_cbk] 0-glusterfs: failed to get the 'volume file' from server\n" +
		"[2026-12-02 02:55:58.887002 +0000] I [x.c:1:f] 0-mgmt: informational\n" +
		"[2026-12-02 02:55:58.887002 +0000] E [glusterfsd-mgmt.c:2371:mgmt_getspec_cbk] 0-mgmt: failed to fetch volume file (key:/nope)\n"
	if err := os.WriteFile(log, []byte(old+fresh), 0o644); err != nil {
		t.Fatal(err)
	}
	req := MountRequest{Source: "h:/nope", Target: "/t", FSType: FSType}
	mountUtils := errors.New("mount failed: exit status 1\nMounting command: mount\nMounting arguments: -t glusterfs h:/nope /t\nOutput: Mounting glusterfs on /t failed.\n")
	err := mountError(mountUtils, req, log, int64(len(old)))
	if CodeOf(err) != NotFound || !strings.Contains(err.Error(), "do not know volume nope") || strings.Contains(err.Error(), "earlier mount") ||
		!strings.Contains(err.Error(), "failed to fetch volume file (key:/nope)") || strings.Contains(err.Error(), "informational") {
		t.Errorf("unknown volume: %s: %v", CodeOf(err), err)
	}
	err = mountError(errors.New("mount failed: exit status 1\nOutput: Invalid option frobnicate\n"), req, "", 0)
	if CodeOf(err) != Invalid || !strings.Contains(err.Error(), "Invalid option frobnicate") {
		t.Errorf("invalid option: %s: %v", CodeOf(err), err)
	}
	if got := optionValue([]string{"ro", "a=b,log-file=/x.log"}, "log-file"); got != "/x.log" {
		t.Errorf("optionValue %q", got)
	}
}

// TestTargetProcs finds and kills the processes of a target, by its path
// among their arguments.
func TestTargetProcs(t *testing.T) {
	target := filepath.Join(t.TempDir(), "mnt")
	// A shell that forks nothing (a `sleep` loop would: for a moment each
	// second its child has the shell's arguments, target among them) and
	// waits on a pipe nobody writes to.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	cmd := exec.Command("sh", "-c", "read -r _", "sh", target)
	cmd.Stdin = r
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-done })
	if got := targetProcs(target); len(got) != 1 || got[0] != cmd.Process.Pid {
		t.Fatalf("targetProcs %v, want [%d]", got, cmd.Process.Pid)
	}
	if got := targetProcs(target + "x"); len(got) != 0 {
		t.Errorf("another path matched %v", got)
	}
	if n := killTargetProcs(target); n != 1 {
		t.Errorf("killed %d", n)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the process was not killed")
	}
}
