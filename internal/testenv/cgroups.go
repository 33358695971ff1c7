package testenv

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// A real node's kubelet puts its pods under a cgroup of its own (the
// kubelet's cgroupRoot): <the test binary's cgroup>/<node temp dir name>,
// in every cgroup hierarchy. Nested under the test binary's own cgroup (its
// memory cgroup on a v1 host, where the machine's process manager keeps
// each command's processes), what the node runs stays accounted where the
// test runs; named after the temp dir, two test binaries never share
// kubepods. The node's temp dir holds the list of what was made (file
// "cgroups"), so whoever removes the dir — Stop, the signal handler, or the
// sweep after a SIGKILL — removes the cgroups first (dirCleanups).

const cgroupsFile = "cgroups"

func init() { dirCleanups[realNodePrefix] = removeNodeCgroups }

// cgroupMounts returns the mount points of the host's cgroup hierarchies
// (v1 controllers, named v1 hierarchies and the v2 unified one).
func cgroupMounts() ([]string, error) {
	out := append(MountsIn("/proc/self/mountinfo", "", "cgroup"), MountsIn("/proc/self/mountinfo", "", "cgroup2")...)
	if len(out) == 0 {
		return nil, errors.New("no cgroup file system is mounted")
	}
	return out, nil
}

// ownCgroup returns this process's cgroup: in the v1 memory hierarchy when
// there is one, else in the unified one.
func ownCgroup() string {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "/"
	}
	unified := "/"
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if slices.Contains(strings.Split(parts[1], ","), "memory") {
			return parts[2]
		}
		if parts[0] == "0" && parts[1] == "" {
			unified = parts[2]
		}
	}
	return unified
}

// createCgroupRoot makes the cgroup path (and the parents missing on its
// way) in every hierarchy, and records in dir's cgroups file the path and
// every folder it made. In a v1 cpuset hierarchy a new cgroup has no CPUs
// and no memory nodes until given its parent's, and no task could join it.
func createCgroupRoot(dir, path string) error {
	mounts, err := cgroupMounts()
	if err != nil {
		return err
	}
	record := []string{path}
	var errs []error
	for _, m := range mounts {
		cur := m
		for _, part := range strings.Split(strings.Trim(path, "/"), "/") {
			parent := cur
			cur = filepath.Join(cur, part)
			if err := os.Mkdir(cur, 0o755); errors.Is(err, fs.ErrExist) {
				continue
			} else if err != nil {
				errs = append(errs, fmt.Errorf("create cgroup %s: %w", cur, err))
				break
			}
			record = append(record, cur)
			if cur != filepath.Join(m, path) {
				rememberSharedParent(cur)
			}
			for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
				b, err := os.ReadFile(filepath.Join(parent, f))
				if err != nil {
					continue // not a v1 cpuset hierarchy
				}
				if err := os.WriteFile(filepath.Join(cur, f), b, 0o644); err != nil {
					errs = append(errs, fmt.Errorf("set %s of cgroup %s: %w", f, cur, err))
				}
			}
		}
	}
	// Written even on error: the cleanup removes what was made.
	if err := os.WriteFile(filepath.Join(dir, cgroupsFile), []byte(strings.Join(record, "\n")+"\n"), 0o644); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// removeNodeCgroups removes what createCgroupRoot recorded in dir: the
// cgroup path and everything below it in every hierarchy (the kubelet's
// kubepods tree), deepest first, then the parents it made when they are
// empty. The kernel refuses (EBUSY) while a process is still in a cgroup,
// so it retries for a few seconds: the node's processes are ending.
func removeNodeCgroups(dir string) {
	_ = removeCgroups(dir, 5*time.Second)
}

func removeCgroups(dir string, wait time.Duration) error {
	b, err := os.ReadFile(filepath.Join(dir, cgroupsFile))
	if err != nil {
		return nil // nothing was made
	}
	lines := strings.Fields(string(b))
	if len(lines) == 0 {
		return nil
	}
	mounts, err := cgroupMounts()
	if err != nil {
		return err
	}
	deadline := time.Now().Add(wait)
	var errs []error
	for _, m := range mounts {
		if err := removeCgroupTree(filepath.Join(m, lines[0]), deadline); err != nil {
			errs = append(errs, err)
		}
	}
	removeSharedParents()
	if len(errs) == 0 {
		_ = os.Remove(filepath.Join(dir, cgroupsFile))
	}
	return errors.Join(errs...)
}

// The parents made on the way to a node's cgroup (the session's cgroup in
// the hierarchies where the machine has none) are shared by every real
// node running now, whichever made them. They are listed in one file for
// the whole machine, and every node that stops tries to remove them all:
// the kernel refuses a cgroup that still has tasks or children, so the
// last node out removes them, and nothing the machine made is touched.
var sharedParentsFile = filepath.Join(os.TempDir(), "glusterkube-cgroup-parents")

func withSharedParents(fn func(list []string) []string) {
	f, err := os.OpenFile(sharedParentsFile, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		return
	}
	defer syscall.Flock(int(f.Fd()), syscall.LOCK_UN) //nolint:errcheck
	b, _ := io.ReadAll(f)
	out := fn(strings.Fields(string(b)))
	if err := f.Truncate(0); err != nil {
		return
	}
	_, _ = f.WriteAt([]byte(strings.Join(out, "\n")+"\n"), 0)
}

func rememberSharedParent(dir string) {
	withSharedParents(func(list []string) []string {
		if slices.Contains(list, dir) {
			return list
		}
		return append(list, dir)
	})
}

func removeSharedParents() {
	withSharedParents(func(list []string) []string {
		// Deepest first.
		slices.SortFunc(list, func(a, b string) int { return len(b) - len(a) })
		var left []string
		for _, d := range list {
			if err := syscall.Rmdir(d); err != nil && !errors.Is(err, syscall.ENOENT) {
				left = append(left, d) // still used by another node
			}
		}
		return left
	})
}

func removeCgroupTree(root string, deadline time.Time) error {
	for {
		var dirs []string
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		var last error
		for i := len(dirs) - 1; i >= 0; i-- {
			if err := syscall.Rmdir(dirs[i]); err != nil && !errors.Is(err, syscall.ENOENT) {
				last = fmt.Errorf("remove cgroup %s: %w", dirs[i], err)
			}
		}
		if last == nil || time.Now().After(deadline) {
			return last
		}
		time.Sleep(100 * time.Millisecond)
	}
}
