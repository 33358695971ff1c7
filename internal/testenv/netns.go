package testenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// inNetNS runs fn on an OS thread that has joined the network namespace at
// nsPath (a /proc/PID/ns/net file). A socket belongs to the namespace of
// the thread that made it, for its whole life, so a listener made or a
// connection dialled inside fn stays in that namespace whatever thread uses
// it afterwards: this is how the test process reaches into glusterd's or a
// real node's network without a helper process. fn runs on a goroutine of
// its own; a thread that could not come back is never unlocked, so Go
// discards it with that goroutine.
func inNetNS(nsPath string, fn func() error) error {
	res := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			res <- err
			return
		}
		defer orig.Close()
		ns, err := os.Open(nsPath)
		if err != nil {
			runtime.UnlockOSThread()
			res <- err
			return
		}
		defer ns.Close()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			res <- fmt.Errorf("enter %s: %w", nsPath, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			res <- errors.Join(ferr, fmt.Errorf("leave %s: %w", nsPath, err)) // thread stays locked: discarded
			return
		}
		runtime.UnlockOSThread()
		res <- ferr
	}()
	return <-res
}

// listenInNetNS listens on a TCP address inside a network namespace.
func listenInNetNS(nsPath, addr string) (net.Listener, error) {
	var ln net.Listener
	err := inNetNS(nsPath, func() error {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err
	})
	if err != nil && ln != nil {
		ln.Close()
		ln = nil
	}
	return ln, err
}

// dialInNetNS dials a TCP address from inside a network namespace.
func dialInNetNS(ctx context.Context, nsPath, addr string) (net.Conn, error) {
	var conn net.Conn
	err := inNetNS(nsPath, func() error {
		var err error
		d := net.Dialer{Timeout: 10 * time.Second}
		conn, err = d.DialContext(ctx, "tcp", addr)
		return err
	})
	if err != nil && conn != nil {
		conn.Close()
		conn = nil
	}
	return conn, err
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
	f := startForwarder(ln, func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", hostAddr)
	})
	t.Cleanup(func() { _ = f.Close() })
	return ln.Addr().String()
}

// forwarder copies every connection accepted on ln to a connection dial
// makes: the real node's kubelet reaches the API server on 127.0.0.1 of the
// host through one of these, listening on 127.0.0.1 of the node.
type forwarder struct {
	ln   net.Listener
	dial func(ctx context.Context) (net.Conn, error)

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
}

func startForwarder(ln net.Listener, dial func(ctx context.Context) (net.Conn, error)) *forwarder {
	f := &forwarder{ln: ln, dial: dial, conns: map[net.Conn]struct{}{}}
	f.ctx, f.cancel = context.WithCancel(context.Background())
	f.wg.Add(1)
	go f.serve()
	return f
}

func (f *forwarder) serve() {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			ctx, cancel := context.WithTimeout(f.ctx, 10*time.Second)
			up, err := f.dial(ctx)
			cancel()
			if err != nil {
				c.Close()
				return
			}
			if !f.track(c, up) {
				return
			}
			pipe(c, up)
			f.untrack(c, up)
		}()
	}
}

// track remembers open connections so Close can end them; it reports false
// (and closes them) when the forwarder is already closed.
func (f *forwarder) track(conns ...net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ctx.Err() != nil {
		for _, c := range conns {
			c.Close()
		}
		return false
	}
	for _, c := range conns {
		f.conns[c] = struct{}{}
	}
	return true
}

func (f *forwarder) untrack(conns ...net.Conn) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range conns {
		delete(f.conns, c)
	}
}

// Close stops accepting, ends the open connections and waits for their
// goroutines.
func (f *forwarder) Close() error {
	f.mu.Lock()
	f.cancel()
	for c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
	err := f.ln.Close()
	f.wg.Wait()
	return err
}

// pipe copies both ways until both directions end, passing on half-closes,
// then closes both connections.
func pipe(a, b net.Conn) {
	var wg sync.WaitGroup
	wg.Add(2)
	half := func(dst, src net.Conn) {
		defer wg.Done()
		_, _ = io.Copy(dst, src)
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		} else {
			dst.Close()
		}
	}
	go half(a, b)
	go half(b, a)
	wg.Wait()
	a.Close()
	b.Close()
}
