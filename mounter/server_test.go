package mounter

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// recorder is a Mounter that records its calls and answers with err.
type recorder struct {
	mu       sync.Mutex
	mounts   []MountRequest
	deadline time.Duration
	err      error
	probeErr error
}

func (r *recorder) Mount(ctx context.Context, req MountRequest) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.mounts = append(r.mounts, req)
	if d, ok := ctx.Deadline(); ok {
		r.deadline = time.Until(d)
	}
	return r.err
}

func (r *recorder) Unmount(context.Context, string) error { return r.err }
func (r *recorder) Probe(context.Context) error           { return r.probeErr }

func serve(t *testing.T, m Mounter) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "mounter.sock")
	srv, err := NewServer("unix://"+sock, m, "v-test")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return "unix://" + sock
}

// TestServerClient: the protocol carries requests, deadlines and error
// classes both ways.
func TestServerClient(t *testing.T) {
	rec := &recorder{}
	endpoint := serve(t, rec)
	c, err := NewClient(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req := MountRequest{Source: "h:/v", Target: "/t", FSType: FSType, Options: []string{"ro", "auto_unmount"}}
	if err := c.Mount(ctx, req); err != nil {
		t.Fatal(err)
	}
	if len(rec.mounts) != 1 || rec.mounts[0].Source != req.Source || strings.Join(rec.mounts[0].Options, ",") != "ro,auto_unmount" {
		t.Errorf("the service got %+v", rec.mounts)
	}
	if rec.deadline <= 0 || rec.deadline > 20*time.Second {
		t.Errorf("the service's deadline %v, want the caller's (≤ 20s)", rec.deadline)
	}
	for _, code := range []Code{Invalid, Busy, Timeout, NotFound, Unavailable, Failed} {
		rec.err = &Error{Code: code, Message: "because " + string(code)}
		err := c.Mount(ctx, req)
		if CodeOf(err) != code || err.Error() != "because "+string(code) {
			t.Errorf("%s: got %s %v", code, CodeOf(err), err)
		}
		if err := c.Unmount(ctx, "/t"); CodeOf(err) != code {
			t.Errorf("unmount %s: got %v", code, err)
		}
	}
	if err := c.Probe(ctx); err != nil {
		t.Errorf("probe: %v", err)
	}
	info, err := c.Info(ctx)
	if err != nil || info.Protocol != ProtocolVersion || info.Version != "v-test" {
		t.Errorf("info %+v %v", info, err)
	}
	rec.probeErr = errors.New("/dev/fuse is missing")
	if err := c.Probe(ctx); CodeOf(err) != Unavailable || !strings.Contains(err.Error(), "/dev/fuse is missing") {
		t.Errorf("probe of a service that cannot mount: %v", err)
	}

	// No service: Unavailable, saying where it was looked for.
	gone, _ := NewClient("unix://" + filepath.Join(t.TempDir(), "none.sock"))
	if err := gone.Mount(ctx, req); CodeOf(err) != Unavailable || !strings.Contains(err.Error(), "does not answer") {
		t.Errorf("mount without a service: %v", err)
	}
	if err := gone.Probe(ctx); CodeOf(err) != Unavailable {
		t.Errorf("probe without a service: %v", err)
	}
	if _, err := NewClient("http://x"); err == nil {
		t.Error("a non-unix endpoint was accepted")
	}
}

// TestServerSocket: a second service on a live socket is refused.
func TestServerSocket(t *testing.T) {
	endpoint := serve(t, &recorder{})
	if _, err := NewServer(endpoint, &recorder{}, "v"); err == nil || !strings.Contains(err.Error(), "another process is serving") {
		t.Errorf("second service: %v", err)
	}
}
