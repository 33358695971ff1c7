package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// IntegrationEnv is the variable that turns integration tests on.
const IntegrationEnv = "GLUSTERKUBE_INTEGRATION"

// Options says what an environment runs.
type Options struct {
	// Kube runs etcd, kube-apiserver, kube-controller-manager,
	// kube-scheduler and kwok.
	Kube bool
	// Nodes is how many kwok nodes to create at start (node-1 … node-N);
	// 0 means 5 when Kube is set, negative means none.
	Nodes int
	// Heketi runs one shared heketi server (no auth).
	Heketi bool
	// Dir, when set, is used instead of a new temp dir (and kept).
	Dir string
}

// Env is a running environment.
type Env struct {
	Dir        string
	Kubeconfig string
	Config     *rest.Config
	Client     kubernetes.Interface
	Heketi     *Heketi
	Nodes      []string

	keepDir bool
	kube    *kube

	mu            sync.Mutex
	realNodes     []*RealNode
	realNodeCount int // real nodes ever started, for names and addresses
}

// Integration reports whether integration tests are on.
func Integration() bool {
	v := os.Getenv(IntegrationEnv)
	return v != "" && v != "0" && v != "false"
}

// InCI reports whether CI=true, where an environment that cannot start is
// a failure, not a skip.
func InCI() bool { return os.Getenv("CI") == "true" }

var (
	current    *Env
	currentErr error
)

// childEnv is set in the environment of a test binary that a test runs
// again as a helper process (to kill it, say): Main then runs the tests
// without starting an environment, and the test knows it is the child.
const childEnv = "GLUSTERKUBE_TESTENV_CHILD"

// Main is for TestMain: it starts the environment (when integration tests
// are on), runs the tests and stops everything, also on SIGINT/SIGTERM.
func Main(m *testing.M, opts Options) int {
	if os.Getenv(childEnv) != "" {
		return m.Run()
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		stopAll()
		removeAllOwnedDirs()
		os.Exit(130)
	}()
	defer stopAll()
	if Integration() && (opts.Kube || opts.Heketi) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
		current, currentErr = Start(ctx, opts)
		cancel()
		if currentErr != nil {
			fmt.Fprintf(os.Stderr, "testenv: %v\n", currentErr)
			if InCI() {
				return 1
			}
		}
	} else if !Integration() {
		fmt.Fprintf(os.Stderr, "testenv: integration tests skipped; run them with `make test` (or %s=1 go test ./...)\n", IntegrationEnv)
	}
	code := m.Run()
	if current != nil {
		current.Stop()
	}
	return code
}

// Get returns the package's environment, skipping the test when
// integration tests are off (failing it under CI=true if the environment
// could not start).
func Get(t testing.TB) *Env {
	t.Helper()
	requireIntegration(t)
	if currentErr != nil {
		failOrSkip(t, currentErr)
	}
	if current == nil {
		t.Fatal("testenv: no environment: call testenv.Main from TestMain with Kube or Heketi set")
	}
	return current
}

func requireIntegration(t testing.TB) {
	t.Helper()
	if !Integration() {
		if InCI() {
			t.Fatalf("integration tests are off under CI=true: set %s=1 (make test does)", IntegrationEnv)
		}
		t.Skipf("integration test: run with `make test` or %s=1", IntegrationEnv)
	}
}

func failOrSkip(t testing.TB, err error) {
	t.Helper()
	if InCI() {
		t.Fatalf("testenv: %v", err)
	}
	t.Skipf("testenv could not start (set CI=true to make this a failure): %v", err)
}

// Start starts an environment. Stop it with Stop.
func Start(ctx context.Context, opts Options) (_ *Env, err error) {
	e := &Env{Dir: opts.Dir, keepDir: opts.Dir != ""}
	if e.Dir == "" {
		if e.Dir, err = ownedTempDir("glusterkube-env-"); err != nil {
			return nil, err
		}
	} else if err := os.MkdirAll(e.Dir, 0o755); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			e.Stop()
		}
	}()
	type result struct {
		name string
		err  error
	}
	// heketi and the control plane start side by side.
	results := make(chan result, 2)
	n := 0
	if opts.Heketi {
		n++
		go func() {
			h, err := StartHeketi(ctx, HeketiOptions{})
			e.Heketi = h
			results <- result{"heketi", err}
		}()
	}
	if opts.Kube {
		n++
		go func() {
			k, err := startKube(ctx, e.Dir)
			e.kube = k
			results <- result{"kubernetes", err}
		}()
	}
	var errs []string
	for range n {
		if r := <-results; r.err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", r.name, r.err))
		}
	}
	if len(errs) > 0 {
		return nil, errors.New(strings.Join(errs, "\n"))
	}
	if opts.Kube {
		e.Kubeconfig, e.Config, e.Client = e.kube.kubeconfig, e.kube.config, e.kube.client
		nodes := opts.Nodes
		if nodes == 0 {
			nodes = 5
		}
		for i := 1; i <= nodes; i++ {
			name := fmt.Sprintf("node-%d", i)
			if err := e.AddNode(ctx, NodeSpec{Name: name}); err != nil {
				return nil, err
			}
			e.Nodes = append(e.Nodes, name)
		}
		if err := e.WaitNodesReady(ctx, e.Nodes...); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// Stop stops every component and removes the temp dirs.
func (e *Env) Stop() {
	e.mu.Lock()
	nodes := append([]*RealNode(nil), e.realNodes...)
	e.mu.Unlock()
	for _, n := range nodes {
		if err := n.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "testenv: stop real node %s: %v\n", n.Name, err)
		}
	}
	if e.kube != nil {
		e.kube.stop()
	}
	if e.Heketi != nil {
		_ = e.Heketi.Close()
	}
	if !e.keepDir {
		_ = removeOwnedDir(e.Dir)
	}
}
