package testenv

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// A real node's kubelet puts its pods under a cgroup of its own (the
// kubelet's cgroupRoot), named like the node's temp dir, in every cgroup
// hierarchy of the host. Two test binaries can each run a node without
// sharing /kubepods, and the cgroups of a node whose test binary was
// killed are found by name and removed by the next start.

// cgroupMounts returns the mount points of the host's cgroup hierarchies
// (v1 controllers, named v1 hierarchies and the v2 unified one).
func cgroupMounts() ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		sep := slices.Index(fields, "-")
		if len(fields) < 5 || sep < 0 || sep+1 >= len(fields) {
			continue
		}
		if t := fields[sep+1]; t == "cgroup" || t == "cgroup2" {
			out = append(out, unescapeMount(fields[4]))
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no cgroup file system is mounted")
	}
	return out, sc.Err()
}

// createCgroupRoot makes the cgroup name in every hierarchy. In a v1
// cpuset hierarchy a new cgroup has no CPUs and no memory nodes until
// given its parent's, and no task could join it.
func createCgroupRoot(name string) error {
	mounts, err := cgroupMounts()
	if err != nil {
		return err
	}
	for _, m := range mounts {
		dir := filepath.Join(m, name)
		if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("create cgroup %s: %w", dir, err)
		}
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			parent, err := os.ReadFile(filepath.Join(m, f))
			if err != nil {
				continue // not a v1 cpuset hierarchy
			}
			if err := os.WriteFile(filepath.Join(dir, f), parent, 0o644); err != nil {
				return fmt.Errorf("set %s of cgroup %s: %w", f, dir, err)
			}
		}
	}
	return nil
}

// removeCgroupRoot removes the cgroup name and everything below it in every
// hierarchy, deepest first. The kernel refuses (EBUSY) while a process is
// still in one, so it retries until wait has passed.
func removeCgroupRoot(name string, wait time.Duration) error {
	mounts, err := cgroupMounts()
	if err != nil {
		return err
	}
	deadline := time.Now().Add(wait)
	var errs []error
	for _, m := range mounts {
		if err := removeCgroupTree(filepath.Join(m, name), deadline); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
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

// sweepNodeCgroups removes the cgroups of real nodes whose temp dir is gone
// (a killed test binary's, after sweepStaleDirs removed its dir).
func sweepNodeCgroups() {
	mounts, err := cgroupMounts()
	if err != nil {
		return
	}
	for _, m := range mounts {
		dirs, _ := filepath.Glob(filepath.Join(m, realNodePrefix+"*"))
		for _, d := range dirs {
			if _, err := os.Stat(filepath.Join(os.TempDir(), filepath.Base(d))); errors.Is(err, fs.ErrNotExist) {
				_ = removeCgroupTree(d, time.Now())
			}
		}
	}
}
