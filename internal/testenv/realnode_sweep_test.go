package testenv

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A test binary killed with SIGKILL (or by go test -timeout) cannot stop
// its real node. Its processes must die with it all the same (Pdeathsig on
// unshare, --kill-child on the node's init, then the kernel empties the PID
// namespace, containers included), and the next start must remove its temp
// dir and cgroups.
func TestRealNodeSweptAfterSIGKILL(t *testing.T) {
	if os.Getenv(childEnv) == "node" {
		runNodeChild(t)
		return
	}
	requireIntegration(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if _, err := realNodePrereqs(ctx); err != nil {
		failOrSkip(t, err)
	}
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestRealNodeSweptAfterSIGKILL$", "-test.timeout=5m")
	cmd.Env = append(os.Environ(), childEnv+"=node")
	var stderr Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var dir string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if d, ok := strings.CutPrefix(sc.Text(), "node-dir "); ok {
			dir = d
			break
		}
		fmt.Fprintln(&stderr, sc.Text())
	}
	if dir == "" {
		_ = cmd.Wait()
		t.Fatalf("child did not start a node; its output:\n%s", stderr.String())
	}
	b, err := os.ReadFile(filepath.Join(dir, cgroupsFile))
	if err != nil {
		t.Fatal(err)
	}
	cgroup := strings.Fields(string(b))[0]
	before := pidsNaming(dir)
	if len(before) < 3 {
		t.Fatalf("processes naming %s before the kill: %v; want unshare, containerd and the container at least", dir, before)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	deadline := time.Now().Add(15 * time.Second)
	for left := pidsNaming(dir); len(left) > 0; left = pidsNaming(dir) {
		if time.Now().After(deadline) {
			t.Fatalf("processes of the killed node still running: %v", left)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if left, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup/*", cgroup, "sweeptest")); len(left) == 0 {
		t.Fatal("the container's cgroup is not there after the kill: the sweep below would prove nothing")
	}

	// What the next real node's start does.
	sweepStaleDirs(realNodePrefix)
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("temp dir %s not swept: %v", dir, err)
	}
	if left, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup/*", cgroup)); len(left) > 0 {
		t.Errorf("cgroups not swept: %v", left)
	}
}

// runNodeChild starts a node runtime with one container (in a cgroup under
// the node's, as the kubelet's pods are), says where, and waits to be
// killed.
func runNodeChild(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	n, err := startNodeRuntime(ctx, "sweep-node", 0)
	if err != nil {
		t.Fatal(err)
	}
	// The shell stays (sleep is not its last command) with the node's dir
	// in its command line, so the parent can find it.
	if _, err := n.Run(ctx, n.bins["ctr"], "--namespace", "k8s.io", "run", "-d", "--cgroup", "/"+n.cgroup+"/sweeptest",
		BusyboxImage, "sweeptest", "/bin/sh", "-c", "sleep 3600; : "+n.Dir); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("node-dir %s\n", n.Dir)
	<-ctx.Done()
}
