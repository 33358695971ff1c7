package mounter

import (
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// A FUSE client daemonizes: its parent exits and it is adopted by the init
// of its PID namespace (or the nearest subreaper: a container runtime's
// shim, when the container shares the host's PID namespace as the mount
// service's DaemonSet does). In a container of its own that init is this
// process (the container's PID 1), so it must reap the clients when they
// exit, or every unmount leaves a zombie. Reaping any child races with os/exec waiting for
// the mount and umount commands it runs (the command's exit status would
// be lost), so every command runs holding execMu for reading and the
// reaper reaps only while it can hold it for writing. The reaper never
// blocks a command: when one is running it tries again a moment later.

var (
	execMu     sync.RWMutex
	reaperOnce sync.Once
)

// runCommand runs f, which starts and waits for child processes, so that
// the reaper does not take their exit status.
func runCommand(f func() error) error {
	execMu.RLock()
	defer execMu.RUnlock()
	return f()
}

// startReaper starts reaping orphans when this process is the init of its
// PID namespace. It runs for the life of the process.
func startReaper() {
	if os.Getpid() != 1 {
		return
	}
	reaperOnce.Do(func() {
		sigs := make(chan os.Signal, 8)
		signal.Notify(sigs, syscall.SIGCHLD)
		go func() {
			retry := time.NewTicker(time.Second)
			defer retry.Stop()
			pending := true
			for {
				if pending {
					pending = !reapAll()
				}
				select {
				case <-sigs:
					pending = true
				case <-retry.C:
				}
			}
		}()
	})
}

// reapAll reaps every exited child, unless a command is running; it
// reports whether it could look.
func reapAll() bool {
	if !execMu.TryLock() {
		return false
	}
	defer execMu.Unlock()
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if pid <= 0 || err != nil {
			return true
		}
	}
}
