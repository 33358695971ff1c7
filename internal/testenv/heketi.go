package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// HeketiOptions configures a heketi test server.
type HeketiOptions struct {
	// Auth turns on heketi's JWT auth with random admin and user keys.
	Auth bool
}

// Heketi is a running heketi server with the mock executor and a fresh DB.
type Heketi struct {
	URL string
	// AdminKey and UserKey are the JWT keys of users "admin" and "user"
	// when Auth is on.
	AdminKey, UserKey string
	Dir               string

	opts HeketiOptions
	port int
	proc *process
}

// StartHeketi starts a heketi server in a new temp dir.
func StartHeketi(ctx context.Context, opts HeketiOptions) (*Heketi, error) {
	dir, err := ownedTempDir("glusterkube-heketi-")
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		_ = removeOwnedDir(dir)
		return nil, err
	}
	h := &Heketi{Dir: dir, opts: opts, port: port, URL: fmt.Sprintf("http://127.0.0.1:%d", port)}
	if opts.Auth {
		h.AdminKey, h.UserKey = randomKey(), randomKey()
	}
	cfg := map[string]any{
		"port":     fmt.Sprint(port),
		"use_auth": opts.Auth,
		"jwt": map[string]any{
			"admin": map[string]string{"key": h.AdminKey},
			"user":  map[string]string{"key": h.UserKey},
		},
		"glusterfs": map[string]any{
			"executor":                "mock",
			"db":                      filepath.Join(dir, "heketi.db"),
			"loglevel":                "warning",
			"brick_min_size_gb":       1,
			"max_inflight_operations": 8,
		},
	}
	b, _ := json.MarshalIndent(cfg, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, "heketi.json"), b, 0o600); err != nil {
		_ = removeOwnedDir(dir)
		return nil, err
	}
	if err := h.Restart(ctx); err != nil {
		_ = removeOwnedDir(dir)
		return nil, err
	}
	return h, nil
}

func randomKey() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Restart starts the server again after Stop, on the same port and DB. It
// is how tests provoke "heketi is down" and recovery.
func (h *Heketi) Restart(ctx context.Context) error {
	if h.proc != nil && !h.proc.exited() {
		return fmt.Errorf("heketi at %s is already running", h.URL)
	}
	bin, err := Binary(ctx, "heketi")
	if err != nil {
		return err
	}
	args := []string{"--config=" + filepath.Join(h.Dir, "heketi.json")}
	if !h.opts.Auth {
		args = append(args, "--disable-auth")
	}
	p, err := startProcess("heketi", h.Dir, bin, args, []string{"HEKETI_BIND_ADDRESS=127.0.0.1"})
	if err != nil {
		return err
	}
	h.proc = p
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return waitFor(ctx, p, "ready", func(ctx context.Context) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, h.URL+"/hello", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/hello: %s", resp.Status)
		}
		return nil
	})
}

// Stop stops the server, keeping its DB for Restart.
func (h *Heketi) Stop() error {
	h.proc.stop(5 * time.Second)
	return nil
}

// Close stops the server and removes its dir.
func (h *Heketi) Close() error {
	_ = h.Stop()
	return removeOwnedDir(h.Dir)
}

// Log returns the last lines of the server's log.
func (h *Heketi) Log() string { return h.proc.tail(50) }

// NewHeketi starts a heketi server of the test's own, closed when the test
// ends. Like Get, it skips the test when integration tests are off.
func NewHeketi(t testing.TB, opts HeketiOptions) *Heketi {
	t.Helper()
	requireIntegration(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	h, err := StartHeketi(ctx, opts)
	if err != nil {
		failOrSkip(t, fmt.Errorf("start heketi: %w", err))
	}
	t.Cleanup(func() { _ = h.Close() })
	return h
}
