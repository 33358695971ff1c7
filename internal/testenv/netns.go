package testenv

import (
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// listenInNetNS listens on addr inside the network namespace at nsPath.
// A socket belongs to the namespace of the thread that made it, so one
// locked thread enters the namespace, listens and comes back; a thread
// that could not come back is never unlocked, so Go discards it.
func listenInNetNS(nsPath, addr string) (net.Listener, error) {
	type result struct {
		ln  net.Listener
		err error
	}
	res := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			res <- result{err: err}
			return
		}
		defer orig.Close()
		ns, err := os.Open(nsPath)
		if err != nil {
			runtime.UnlockOSThread()
			res <- result{err: err}
			return
		}
		defer ns.Close()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			res <- result{err: fmt.Errorf("enter %s: %w", nsPath, err)}
			return
		}
		ln, lerr := net.Listen("tcp", addr)
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			if ln != nil {
				ln.Close()
			}
			res <- result{err: fmt.Errorf("leave %s: %w", nsPath, err)} // thread stays locked: discarded
			return
		}
		runtime.UnlockOSThread()
		res <- result{ln, lerr}
	}()
	r := <-res
	return r.ln, r.err
}

// ListenInNetNS listens on addr (e.g. "127.0.0.1:0") in glusterd's
// network namespace: a server the processes there reach (or, in a test, a
// server that never answers). The caller closes it.
func (g *Glusterd) ListenInNetNS(addr string) (net.Listener, error) {
	return listenInNetNS(g.NetNS(), addr)
}

// ForwardFromNetNS makes hostAddr (a server of the test on the host's
// loopback, e.g. the API server) reachable from glusterd's network
// namespace: it returns an address on that namespace's loopback that
// forwards each connection to hostAddr. Processes that run in glusterd's
// namespace (a CSI node plugin) reach the host's servers through it. It
// stops when the test ends.
func (g *Glusterd) ForwardFromNetNS(t testing.TB, hostAddr string) string {
	t.Helper()
	ln, err := listenInNetNS(g.NetNS(), "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen in glusterd's network namespace: %v", err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns = map[net.Conn]bool{}
	)
	track := func(c net.Conn, on bool) {
		mu.Lock()
		defer mu.Unlock()
		if on {
			conns[c] = true
		} else {
			delete(conns, c)
		}
	}
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				track(c, true)
				defer func() { c.Close(); track(c, false) }()
				u, err := net.Dial("tcp", hostAddr)
				if err != nil {
					return
				}
				track(u, true)
				defer func() { u.Close(); track(u, false) }()
				done := make(chan struct{}, 2)
				go func() { _, _ = io.Copy(u, c); done <- struct{}{} }()
				go func() { _, _ = io.Copy(c, u); done <- struct{}{} }()
				<-done
			}()
		}
	}()
	return ln.Addr().String()
}
