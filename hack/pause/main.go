// Command pause holds a pod's namespaces (the pause container of the test
// stack's real node) and is the init of the node's own PID namespace: it
// reaps the children orphaned to it (containerd's shims daemonize) and exits
// 0 on SIGTERM or SIGINT. It is built with CGO_ENABLED=0, so the image it
// goes into holds nothing but this one static file.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	reap()
	for s := range sigs {
		if s == syscall.SIGCHLD {
			reap()
			continue
		}
		os.Exit(0)
	}
}

// reap collects every child that has exited. SIGCHLD is not queued: one
// signal may stand for several exits, so it loops until none is left.
func reap() {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}
