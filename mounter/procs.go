package mounter

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"time"
)

// The processes of a mount — mount, the mount.glusterfs helper and the
// glusterfs FUSE client with its auto_unmount watcher — all carry the
// mount point as a whole argument. They are found by it, among the
// processes of this PID namespace only. The mount service runs in the
// host's PID namespace (its DaemonSet's hostPID, which the FUSE clients
// need to see their callers' groups), where a target under the kubelet's
// folder is one pod's volume, mounted by the service alone. A node plugin
// that mounts itself (no mount service) is run with hostPID too, for the
// same groups (examples/csi/README.md): like the service it then sees the
// host's processes, and its targets are likewise mounted by it alone. One
// in a PID namespace of its own sees only its container's processes.

// targetProcs returns the pids of the processes in this PID namespace
// whose command line has target as one of its arguments.
func targetProcs(target string) []int {
	self, err := os.Readlink("/proc/self/ns/pid")
	if err != nil {
		return nil
	}
	entries, _ := os.ReadDir("/proc")
	want := []byte(target)
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		dir := filepath.Join("/proc", e.Name())
		if ns, err := os.Readlink(filepath.Join(dir, "ns", "pid")); err != nil || ns != self {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join(dir, "cmdline"))
		if err != nil || len(cmdline) == 0 {
			continue
		}
		if slices.ContainsFunc(bytes.Split(bytes.TrimRight(cmdline, "\x00"), []byte{0}), func(a []byte) bool { return bytes.Equal(a, want) }) {
			// /proc may be an outer namespace's (a PID namespace without
			// its own /proc), so ourselves is told by identity, not pid.
			if !isSelf(dir) {
				out = append(out, pid)
			}
		}
	}
	return out
}

// isSelf reports whether a /proc entry is this process (compared by the
// process's identity, not its pid, which may be another namespace's).
func isSelf(dir string) bool {
	a, err1 := os.Stat(dir)
	b, err2 := os.Stat("/proc/self")
	return err1 == nil && err2 == nil && os.SameFile(a, b)
}

// killTargetProcs SIGKILLs the processes of target and returns how many
// it signalled.
func killTargetProcs(target string) int {
	pids := targetProcs(target)
	for _, pid := range pids {
		_ = syscall.Kill(hostPid(pid), syscall.SIGKILL)
	}
	return len(pids)
}

// hostPid is the pid to signal for a /proc entry. /proc is this PID
// namespace's in a container; when it is an outer namespace's (a PID
// namespace sharing the host's /proc, as in tests), the pid to use is the
// innermost NSpid.
func hostPid(pid int) int {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return pid
	}
	for line := range bytes.SplitSeq(b, []byte{'\n'}) {
		if rest, ok := bytes.CutPrefix(line, []byte("NSpid:")); ok {
			f := bytes.Fields(rest)
			if len(f) > 0 {
				if n, err := strconv.Atoi(string(f[len(f)-1])); err == nil {
					return n
				}
			}
		}
	}
	return pid
}

// waitTargetProcs waits until no process of target is left, up to d, then
// kills what remains. It reports whether processes had to be killed.
func waitTargetProcs(target string, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for delay := 10 * time.Millisecond; time.Now().Before(deadline); delay = min(delay*2, 200*time.Millisecond) {
		if len(targetProcs(target)) == 0 {
			return false
		}
		time.Sleep(delay)
	}
	return killTargetProcs(target) > 0
}
