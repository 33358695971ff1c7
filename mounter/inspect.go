package mounter

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"syscall"
	"time"

	mount "k8s.io/mount-utils"
)

// State is what is at a target path, as this process's mount namespace
// sees it.
type State struct {
	// Exists: something is at the path (a corrupted mount counts).
	Exists bool
	// IsDir: the path is a folder (or a mount, corrupted or not).
	IsDir bool
	// Mounted: the path is a mount point; Source, FSType and ReadOnly
	// describe the top mount.
	Mounted  bool
	Source   string
	FSType   string
	ReadOnly bool
	// Corrupted: the mount does not answer — its FUSE client died (ENOTCONN)
	// or the server is gone (ESTALE, EIO…), see mount.IsCorruptedMnt; or
	// it did not answer in time (Unresponsive). Err says which.
	Corrupted    bool
	Unresponsive bool
	Err          error
}

// Inspect returns the state of target. A stat that does not return within
// timeout (a FUSE client alive but stuck on its servers) makes the state
// Corrupted and Unresponsive rather than blocking the caller; the stat
// goes on in the background.
func Inspect(target string, timeout time.Duration) (State, error) {
	return inspect(target, timeout)
}

func inspect(target string, timeout time.Duration) (State, error) {
	var st State
	infos, err := mount.ParseMountInfo("/proc/self/mountinfo")
	if err != nil {
		return st, fmt.Errorf("read the mount table: %w", err)
	}
	for _, mi := range infos { // the last one is the top of a stack
		if mi.MountPoint == target {
			st.Mounted, st.Source, st.FSType = true, mi.Source, mi.FsType
			st.ReadOnly = slices.Contains(mi.MountOptions, "ro")
		}
	}
	type result struct {
		fi  os.FileInfo
		err error
	}
	done := make(chan result, 1)
	go func() {
		fi, err := os.Stat(target)
		done <- result{fi, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-time.After(timeout):
		st.Exists, st.IsDir, st.Corrupted, st.Unresponsive = true, true, true, true
		st.Err = fmt.Errorf("stat %s did not return within %v", target, timeout)
		return st, nil
	}
	switch {
	case r.err == nil:
		st.Exists, st.IsDir = true, r.fi.IsDir()
	case mount.IsCorruptedMnt(r.err) || ClientGone(r.err):
		st.Exists, st.IsDir, st.Corrupted, st.Err = true, true, true, r.err
	case errors.Is(r.err, fs.ErrNotExist):
		// A path whose parent mount is gone reads ENOENT from stat and
		// succeeds with access (mount-utils' PathExists): stale.
		if syscall.Access(target, syscall.F_OK) == nil {
			st.Exists, st.IsDir, st.Corrupted, st.Err = true, true, true, syscall.ESTALE
		}
	default:
		return st, r.err
	}
	return st, nil
}

// ClientGone reports the errors a FUSE mount answers once its client
// process is gone: ENOTCONN, or ECONNABORTED when the kernel aborted the
// connection with requests in flight (which one a caller sees depends on
// timing). mount-utils' IsCorruptedMnt knows only the first.
func ClientGone(err error) bool {
	return errors.Is(err, syscall.ENOTCONN) || errors.Is(err, syscall.ECONNABORTED)
}
