package csi_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	csipb "github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/glusterkube/glusterkube/csi"
	"github.com/glusterkube/glusterkube/internal/testenv"
)

// node is a node of the test: a kubelet-like folder, a glusterd, and the
// processes a node runs (the CSI node plugin, maybe the mount service),
// each in glusterd's network namespace and a PID namespace of its own, as
// a container is.
type node struct {
	t        testing.TB
	g        *testenv.Glusterd
	dir      string // the node's own folder: kubelet dir, state, logs
	kubelet  string
	stateDir string
	logDir   string

	plugin  *testenv.Process
	mounter *testenv.Process
	conn    *grpc.ClientConn
	Node    csipb.NodeClient
	Ident   csipb.IdentityClient

	kubeconfig string
	nplugin    int
	// services is the plugin's --services: node unless a test serves the
	// controller too.
	services string
}

func newNode(t testing.TB, g *testenv.Glusterd) *node {
	t.Helper()
	dir, err := os.MkdirTemp("", "glusterkube-csi-node-")
	if err != nil {
		t.Fatal(err)
	}
	n := &node{t: t, g: g, dir: dir, kubelet: filepath.Join(dir, "kubelet"), stateDir: filepath.Join(dir, "state"), logDir: filepath.Join(dir, "log")}
	for _, d := range []string{n.kubelet, n.logDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		if n.conn != nil {
			n.conn.Close()
		}
		if n.plugin != nil {
			if t.Failed() {
				t.Logf("plugin log:\n%s", n.plugin.Log(60))
			}
			n.plugin.Stop(5 * time.Second)
		}
		if n.mounter != nil {
			if t.Failed() {
				t.Logf("mount service log:\n%s", n.mounter.Log(40))
			}
			n.mounter.Stop(5 * time.Second)
		}
		// Whatever a failed test left mounted: detach it, so the folder
		// can go.
		for _, m := range mountsUnder(n.dir) {
			_ = syscall.Unmount(m, syscall.MNT_DETACH)
		}
		if err := os.RemoveAll(n.dir); err != nil {
			t.Errorf("remove %s: %v", n.dir, err)
		}
	})
	return n
}

// start starts a glusterkube command as a container of this node runs
// (Glusterd.ContainerCommand): in glusterd's network namespace and a PID
// namespace of its own.
func (n *node) start(name string, args ...string) (*testenv.Process, error) {
	bin, argv, env := n.g.ContainerCommand(args...)
	return testenv.StartProcess(name, n.dir, bin, argv, env)
}

// startMounter starts the mount service.
func (n *node) startMounter() {
	n.t.Helper()
	p, err := n.start("mounter", "mounter", "--endpoint=unix://"+n.mounterSocket(), "--allowed-dir="+n.dir, "-v=4")
	if err != nil {
		n.t.Fatal(err)
	}
	n.mounter = p
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := p.WaitFor(ctx, "serving", func(context.Context) error {
		_, err := os.Stat(n.mounterSocket())
		return err
	}); err != nil {
		n.t.Fatal(err)
	}
}

func (n *node) mounterSocket() string { return filepath.Join(n.dir, "mounter.sock") }
func (n *node) socket() string        { return filepath.Join(n.dir, "csi.sock") }

// startPlugin starts `glusterkube csi --services node` (or n.services), with the mount
// service when one runs, and connects to it.
func (n *node) startPlugin(extra ...string) {
	n.t.Helper()
	services := n.services
	if services == "" {
		services = "node"
	}
	args := []string{"csi", "--services=" + services, "--endpoint=unix://" + n.socket(), "--node-id=test-node",
		"--kubelet-dir=" + n.kubelet, "--state-dir=" + n.stateDir, "--log-dir=" + n.logDir, "--mount-timeout=40s", "-v=4"}
	if n.mounter != nil {
		args = append(args, "--mounter-endpoint=unix://"+n.mounterSocket())
	}
	if n.kubeconfig != "" {
		args = append(args, "--kubeconfig="+n.kubeconfig)
	} else {
		args = append(args, "--events=false")
	}
	n.nplugin++
	p, err := n.start(fmt.Sprintf("plugin-%d", n.nplugin), append(args, extra...)...)
	if err != nil {
		n.t.Fatal(err)
	}
	n.plugin = p
	if n.conn == nil {
		conn, err := grpc.NewClient("unix://"+n.socket(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			n.t.Fatal(err)
		}
		n.conn, n.Node, n.Ident = conn, csipb.NewNodeClient(conn), csipb.NewIdentityClient(conn)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := p.WaitFor(ctx, "ready", func(ctx context.Context) error {
		_, err := n.Ident.Probe(ctx, &csipb.ProbeRequest{})
		return err
	}); err != nil {
		n.t.Fatal(err)
	}
}

// target is the kubelet's publish path of a pod's volume.
func (n *node) target(pod, pv string) string {
	return filepath.Join(n.kubelet, "pods", pod, "volumes", "kubernetes.io~csi", pv, "mount")
}

// publishRequest is what the kubelet sends for a pod's volume.
func publishRequest(volumeID, volume, servers, target string, flags ...string) *csipb.NodePublishVolumeRequest {
	return &csipb.NodePublishVolumeRequest{
		VolumeId:   volumeID,
		TargetPath: target,
		VolumeCapability: &csipb.VolumeCapability{
			AccessType: &csipb.VolumeCapability_Mount{Mount: &csipb.VolumeCapability_MountVolume{MountFlags: flags}},
			AccessMode: &csipb.VolumeCapability_AccessMode{Mode: csipb.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER},
		},
		VolumeContext: map[string]string{csi.ContextServers: servers, csi.ContextVolume: volume},
	}
}

// publish publishes as the kubelet does: it makes the target's parent and
// retries while the plugin answers Aborted (another operation, such as a
// background heal, holds the target).
func (n *node) publish(t testing.TB, ctx context.Context, req *csipb.NodePublishVolumeRequest) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(req.TargetPath), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := retryAborted(func() error { _, err := n.Node.NodePublishVolume(ctx, req); return err }); err != nil {
		t.Fatalf("NodePublishVolume %s: %v", req.TargetPath, err)
	}
}

func (n *node) unpublish(t testing.TB, ctx context.Context, volumeID, target string) {
	t.Helper()
	req := &csipb.NodeUnpublishVolumeRequest{VolumeId: volumeID, TargetPath: target}
	if err := retryAborted(func() error { _, err := n.Node.NodeUnpublishVolume(ctx, req); return err }); err != nil {
		t.Fatalf("NodeUnpublishVolume %s: %v", target, err)
	}
}

func retryAborted(f func() error) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := f()
		if status.Code(err) != codes.Aborted || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// nsKubeconfig writes a kubeconfig of the test's API server that works
// from glusterd's network namespace (where the plugin runs), through a
// forwarder.
func nsKubeconfig(t testing.TB, env *testenv.Env, g *testenv.Glusterd, dir string) string {
	t.Helper()
	kc, err := clientcmd.LoadFromFile(env.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range kc.Clusters {
		u, err := url.Parse(c.Server)
		if err != nil {
			t.Fatal(err)
		}
		u.Host = g.ForwardFromNetNS(t, u.Host)
		c.Server = u.String()
	}
	path := filepath.Join(dir, "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// mountsUnder returns the mount points at or under dir, in this process's
// mount namespace.
func mountsUnder(dir string) []string { return testenv.MountsIn("/proc/self/mountinfo", dir, "") }

// clientProcs returns the pids (host view) of the FUSE client processes of
// target: every process whose arguments end with it.
func clientProcs(target string) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if len(args) > 0 && strings.HasSuffix(args[0], "glusterfs") && slices.Contains(args, target) {
			out = append(out, pid)
		}
	}
	return out
}

func cmdline(pid int) []string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
}

// waitNoClient waits for the FUSE clients of target to be gone.
func waitNoClient(t testing.TB, target string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(clientProcs(target)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("FUSE client processes of %s still running: %v", target, clientProcs(target))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// pod is a process in a mount namespace of its own that bind-mounted a
// published target, as a container runtime does for a container: the
// container's view of the volume is that bind mount, private to it.
type pod struct {
	p    *testenv.Process
	path string // the volume inside the pod's mount namespace
}

// podInit: drop the copies of every other FUSE mount (they would keep
// their clients alive), bind the target, sleep.
const podInit = `set -e
while read -r _ m t _; do
	if [ "$t" = fuse.glusterfs ] && [ "$m" != "$1" ]; then umount -l "$m" || true; fi
done < /proc/self/mounts
mkdir -p "$2"
mount --bind "$1" "$2"
exec sleep 3600
`

func startPod(t testing.TB, dir, name, target string) *pod {
	t.Helper()
	path := filepath.Join(dir, "pods-rootfs", name, "data")
	p, err := testenv.StartProcess("pod-"+name, dir, "unshare", []string{"--mount", "--propagation", "private", "--", "sh", "-c", podInit, "pod-init", target, path}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Kill() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.WaitFor(ctx, "mounted", func(context.Context) error {
		if len(testenv.MountsIn(fmt.Sprintf("/proc/%d/mountinfo", p.Pid()), path, "")) == 0 {
			return errors.New("no bind mount yet")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return &pod{p: p, path: path}
}

// file is a path inside the pod's view of the volume, reached through
// /proc/<pid>/root (which resolves in the pod's mount namespace).
func (p *pod) file(name string) string {
	return filepath.Join(fmt.Sprintf("/proc/%d/root", p.p.Pid()), p.path, name)
}

func (p *pod) write(name, data string) error { return os.WriteFile(p.file(name), []byte(data), 0o644) }

func (p *pod) read(name string) (string, error) {
	b, err := os.ReadFile(p.file(name))
	return string(b), err
}

// bareMount mounts like an administrator would, outside the plugin (the
// benchmark's floor).
func bareMount(g *testenv.Glusterd, source, target string, options []string) error {
	out, err := exec.Command("nsenter", "--net="+g.NetNS(), "--", "mount", "-t", "glusterfs", "-o", strings.Join(options, ","), source, target).CombinedOutput()
	if err != nil {
		return fmt.Errorf("mount: %v: %s", err, bytes.TrimSpace(out))
	}
	return nil
}

// procStat returns the parent pid and state of a process (host view).
func procStat(pid int) (ppid int, state string, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, "", false
	}
	// pid (comm) state ppid ...: comm may hold blanks, so cut at the last ')'.
	rest := string(b[bytes.LastIndexByte(b, ')')+1:])
	f := strings.Fields(rest)
	if len(f) < 2 {
		return 0, "", false
	}
	ppid, _ = strconv.Atoi(f[1])
	return ppid, f[0], true
}

// children returns the pids whose parent is pid.
func children(pid int) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		c, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if pp, _, ok := procStat(c); ok && pp == pid {
			out = append(out, c)
		}
	}
	return out
}

// zombies returns the exited, unreaped children of the init of a
// container-like process started by node.start (the child of unshare).
func zombies(p *testenv.Process) []int {
	var out []int
	for _, init := range children(p.Pid()) {
		for _, c := range children(init) {
			if _, st, ok := procStat(c); ok && st == "Z" {
				out = append(out, c)
			}
		}
	}
	return out
}
