package testenv

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// A real node is a kubelet and a containerd that run real pods, next to the
// kwok nodes. It lives in namespaces of its own, made with util-linux
// unshare, like a kind node without docker:
//
//   - a network namespace with loopback and an interface "node0" holding
//     the node's address (10.87.0.N; the kubelet refuses loopback node
//     addresses) and the kubernetes Service address 10.0.0.1 (node0 is a
//     bridge without ports: this machine's kernel has no dummy links,
//     "ip link add type dummy" answers "Unknown device type."); the CNI
//     bridge plugin adds "cni0" and gives each pod an address of the node's
//     pod range (10.88.N.0/24) behind it. Nothing is routed out of the
//     namespace. The kubelet and containerd run in it, so hostNetwork pods
//     see what the kubelet sees, as on a real node;
//   - a PID namespace whose init is hack/pause: containerd's shims and every
//     container are in it, so when the test binary dies (Pdeathsig ends
//     unshare, --kill-child ends the init) the kernel ends them all;
//   - a mount namespace (shared propagation inside, private to the host)
//     where the node's standard paths (/var/lib/kubelet, /run/containerd,
//     /var/lib/containerd, /etc/cni/net.d, /var/lib/cni, /run/netns,
//     /var/log/pods, /var/log/containers, and /var/log/glusterfs, where
//     the CSI DaemonSets keep the FUSE clients' logs) are bind mounts of
//     folders in the node's temp dir: every mount the kubelet and
//     containerd make (volumes, container root file systems, pod network
//     namespaces) is in this namespace and goes with it; the files are on
//     the host under Dir/fs/<path> (HostPath);
//   - UTS and IPC namespaces (the node's hostname is its name).
//
// The kubelet reaches the API server (127.0.0.1 of the host) through a
// forwarder the test process runs: it listens on 127.0.0.1:<API port>
// inside the node's network namespace (and on 10.0.0.1:443 for in-cluster
// clients) and dials the host's API server. The API server reaches the
// kubelet (logs, exec) through its egress proxy (egress.go), which dials
// the node's address from inside the namespace.
//
// The kubelet sets six kernel settings (vm.overcommit_memory,
// kernel.panic, kernel.panic_on_oops, ...) for the whole machine when it
// starts. The node's mount namespace covers those /proc/sys files with files
// holding the values the kubelet wants, so it finds nothing to change and
// the host keeps its own.

// nodePaths are the node's own folders: bind mounts of folders in its temp
// dir over the host's paths, in the node's mount namespace.
var nodePaths = []string{"/var/lib/kubelet", "/var/log/pods", "/var/log/containers", "/var/log/glusterfs",
	"/var/lib/containerd", "/run/containerd", "/etc/cni/net.d", "/var/lib/cni", "/run/netns"}

// realNodePrefix names real nodes' temp dirs and cgroups.
const realNodePrefix = "glusterkube-node-"

// RealNodeTaint keeps pods off the real node unless they tolerate it (and
// they are pinned with a node selector): the DaemonSets other tests make
// for kwok nodes would never become ready on a node that really pulls
// images.
var RealNodeTaint = corev1.Taint{Key: "glusterkube.io/real-node", Value: "true", Effect: corev1.TaintEffectNoSchedule}

// realNodeInit runs as the init of the node's namespaces. $1 node temp
// dir, $2 pause binary, $3 node name, $4 node address/prefix, $5 Service
// address, $6 the node's own paths (nodePaths).
const realNodeInit = `set -eu
hostname "$3"
mount --make-rshared /
ip link set lo up
# Outgoing connections (containerd's stream server, the kubelet's) keep off
# the brick ports of a glusterd on the node (49152-49251).
echo "32768 49151" > /proc/sys/net/ipv4/ip_local_port_range
ip link add node0 type bridge
ip addr add "$4" dev node0
ip addr add "$5/32" dev node0
ip link set node0 up
for p in $6; do
	mkdir -p "$1/fs$p" "$p"
	mount --bind "$1/fs$p" "$p"
done
while read -r key value; do
	f="$1/sysctl/$key"
	mkdir -p "${f%/*}"
	echo "$value" > "$f"
	mount --bind "$f" "/proc/sys/$key"
done <<EOF
vm/overcommit_memory 1
vm/panic_on_oom 0
kernel/panic 10
kernel/panic_on_oops 1
kernel/keys/root_maxkeys 1000000
kernel/keys/root_maxbytes 25000000
EOF
touch "$1/ready"
exec "$2"
`

// RealNode is a running real node.
type RealNode struct {
	// Name is the Node's name (and the node's hostname).
	Name string
	// IP is the node's address inside its network namespace.
	IP string
	// PodCIDR is the range the node's pods get addresses from.
	PodCIDR string
	// Dir is the node's temp dir; HostPath maps node paths into it.
	Dir string

	env        *Env
	bins       map[string]string
	cgroup     string // the kubelet's cgroupRoot (see cgroups.go), without the leading "/"
	holder     *process
	containerd *process
	kubelet    *process
	forwarders []*forwarder
	stopOnce   sync.Once
	stopErr    error
}

// realNodeBinaries are the programs a node's runtime needs (the kubelet
// aside; pause is built from hack/pause, the rest are Debian's).
var realNodeBinaries = []string{"containerd", "containerd-shim-runc-v2", "ctr", "runc", "pause"}

// cniBinDir is where Debian's containernetworking-plugins installs.
const cniBinDir = "/usr/lib/cni"

// realNodePrereqs returns the binaries a real node needs, or an error
// saying what this machine lacks.
func realNodePrereqs(ctx context.Context) (map[string]string, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("a real node needs root (namespaces, cgroups, mounts)")
	}
	fss, err := os.ReadFile("/proc/filesystems")
	if err != nil {
		return nil, err
	}
	if !strings.Contains(string(fss), "\toverlay\n") {
		return nil, errors.New("the kernel has no overlay file system (containerd's overlayfs snapshotter needs it): modprobe overlay")
	}
	if _, err := cgroupMounts(); err != nil {
		return nil, err
	}
	bins, err := namespaceBinaries(ctx, realNodeBinaries...)
	if err != nil {
		return nil, err
	}
	for _, plugin := range []string{"bridge", "host-local", "loopback"} {
		if _, err := os.Stat(filepath.Join(cniBinDir, plugin)); err != nil {
			return nil, fmt.Errorf("CNI plugin %s missing in %s: install Debian's containernetworking-plugins", plugin, cniBinDir)
		}
	}
	if _, err := os.Stat(busyboxPath); err != nil {
		return nil, fmt.Errorf("%s missing: install Debian's busybox-static", busyboxPath)
	}
	return bins, nil
}

// StartRealNode starts a real node named name (the first is 10.87.0.2 with
// pods in 10.88.0.0/24, the next 10.87.0.3 with 10.88.1.0/24, ...), waits
// until it is Ready and returns it. The node has RealNodeTaint; pods
// scheduled to it must tolerate that and name it in a node selector (see
// Pin). Stop it with Stop (Env.Stop stops it too).
func (e *Env) StartRealNode(ctx context.Context, name string) (_ *RealNode, err error) {
	if e.kube == nil {
		return nil, errors.New("a real node needs the control plane: start the environment with Kube set")
	}
	kubelet, err := Binary(ctx, "kubelet")
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	index := e.realNodeCount
	e.realNodeCount++
	e.mu.Unlock()
	n, err := startNodeRuntime(ctx, name, index)
	if err != nil {
		return nil, err
	}
	n.env = e
	n.bins["kubelet"] = kubelet
	defer func() {
		if err != nil {
			n.Stop()
		}
	}()
	e.mu.Lock()
	e.realNodes = append(e.realNodes, n)
	e.mu.Unlock()
	if err := n.startForwarders(); err != nil {
		return nil, err
	}
	if err := n.startKubelet(ctx); err != nil {
		return nil, err
	}
	return n, nil
}

// startNodeRuntime makes a node's namespaces and starts its containerd
// with the pause and busybox images: all of a real node but the kubelet and
// its links to the API server.
func startNodeRuntime(ctx context.Context, name string, index int) (_ *RealNode, err error) {
	if index > 200 {
		return nil, errors.New("too many real nodes")
	}
	bins, err := realNodePrereqs(ctx)
	if err != nil {
		return nil, err
	}
	// ownedTempDir first removes the dirs (and cgroups) of nodes whose
	// test binary died.
	dir, err := ownedTempDir(realNodePrefix)
	if err != nil {
		return nil, err
	}
	n := &RealNode{
		Name:    name,
		IP:      fmt.Sprintf("10.87.0.%d", index+2),
		PodCIDR: fmt.Sprintf("10.88.%d.0/24", index),
		Dir:     dir,
		bins:    bins,
		cgroup:  strings.TrimPrefix(filepath.Join(ownCgroup(), filepath.Base(dir)), "/"),
	}
	defer func() {
		if err != nil {
			n.Stop()
		}
	}()
	if err := n.startNamespaces(ctx); err != nil {
		return nil, err
	}
	if err := n.startContainerd(ctx); err != nil {
		return nil, err
	}
	if err := n.importImages(ctx); err != nil {
		return nil, err
	}
	return n, nil
}

// NewRealNode starts a real node for one test (named real-node-N), stopped
// when the test ends. It skips the test when integration tests are off or
// the machine cannot run a real node (failing it under CI=true).
func (e *Env) NewRealNode(t testing.TB) *RealNode {
	t.Helper()
	requireIntegration(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	e.mu.Lock()
	name := fmt.Sprintf("real-node-%d", e.realNodeCount+1)
	e.mu.Unlock()
	start := time.Now()
	n, err := e.StartRealNode(ctx, name)
	if err != nil {
		failOrSkip(t, fmt.Errorf("start real node: %w", err))
	}
	t.Logf("real node %s Ready in %s", n.Name, time.Since(start).Round(time.Millisecond))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("real node logs:\n%s", n.Logs())
		}
		if err := n.Stop(); err != nil {
			t.Errorf("stop real node: %v", err)
		}
	})
	return n
}

// nsPath is the path of one of the node's namespaces ("net", "mnt", ...).
func (n *RealNode) nsPath(ns string) string {
	if ns == "pid" {
		// unshare itself stays in the host's PID namespace; its child,
		// the node's init, is the first in the new one.
		ns = "pid_for_children"
	}
	return fmt.Sprintf("/proc/%d/ns/%s", n.holder.cmd.Process.Pid, ns)
}

// NetNS is the path of the node's network namespace (for nsenter --net).
func (n *RealNode) NetNS() string { return n.nsPath("net") }

// Mounts returns the mount points at or under dir in the node's mount
// namespace (every one for dir ""), of file system type fstype ("" for
// any), as MountsIn does: the namespace's first process (unshare, which
// made it) lists them in its mountinfo. Nil when the node has stopped.
func (n *RealNode) Mounts(dir, fstype string) []string {
	return MountsIn(fmt.Sprintf("/proc/%d/mountinfo", n.holder.cmd.Process.Pid), dir, fstype)
}

// HostPath maps a path of the node to the host: node paths under the bound
// folders (/var/lib/kubelet, ...) are files in the node's temp dir; other
// paths are the host's own.
func (n *RealNode) HostPath(nodePath string) string {
	p := filepath.Clean("/" + nodePath)
	for _, b := range nodePaths {
		if p == b || strings.HasPrefix(p, b+"/") {
			return filepath.Join(n.Dir, "fs", p)
		}
	}
	return p
}

// nsenterArgs runs a command in all of the node's namespaces.
func (n *RealNode) nsenterArgs(bin string, args ...string) []string {
	return n.nsenterNetArgs(n.nsPath("net"), bin, args...)
}

// nsenterNetArgs runs a command in the node's namespaces but the network
// one, which is netns.
func (n *RealNode) nsenterNetArgs(netns, bin string, args ...string) []string {
	out := []string{"--net=" + netns, "--mount=" + n.nsPath("mnt"), "--uts=" + n.nsPath("uts"),
		"--ipc=" + n.nsPath("ipc"), "--pid=" + n.nsPath("pid"), "--", bin}
	return append(out, args...)
}

// StartProcess starts a long-running process on the node (in all its
// namespaces, so its mounts are the kubelet's), logging to Dir/<name>.log.
// It ends with the node, or with Stop. This is how a program runs on the
// node as a host process (a CSI node plugin, a mount service) rather than
// in a pod; with Command, the program is glusterkube itself.
func (n *RealNode) StartProcess(name, bin string, args []string, env []string) (*Process, error) {
	return StartProcess(name, n.Dir, n.bins["nsenter"], n.nsenterArgs(bin, args...), env)
}

// NewGlusterd starts a glusterd on the node, closed when the test ends: in
// the node's network namespace (its own PID and mount namespaces, as
// Glusterd's always are), so that the node's processes, hostNetwork pods
// and the FUSE clients a CSI node plugin starts reach it on
// 127.0.0.1:24007 and its bricks on 127.1:49152-49251, as on a storage node
// of a GlusterFS cluster. One per node: the ports are fixed. It skips (or
// fails under CI=true) as NewGlusterd does.
func (n *RealNode) NewGlusterd(t testing.TB) *Glusterd {
	t.Helper()
	return newGlusterd(t, n.NetNS())
}

// StartGlusterd is NewGlusterd for programs (make demo): close the
// Glusterd with Close.
func (n *RealNode) StartGlusterd(ctx context.Context) (*Glusterd, error) {
	g, err := startGlusterd(ctx, n.NetNS())
	if err != nil {
		return nil, fmt.Errorf("start glusterd on node %s: %w", n.Name, err)
	}
	return g, nil
}

// CanRunRealNode reports why this machine cannot run a real node (nil
// when it can): root, overlayfs, cgroups, and the Debian packages.
func CanRunRealNode(ctx context.Context) error {
	_, err := realNodePrereqs(ctx)
	return err
}

// StartProcessInNetNS is StartProcess with another network namespace than
// the node's (netns, a /proc/PID/ns/net path): a GlusterFS client that must
// reach a test glusterd (Glusterd.NetNS) while its mount is made in the
// node's mount namespace, where the kubelet and the pods see it.
func (n *RealNode) StartProcessInNetNS(name, netns, bin string, args []string, env []string) (*Process, error) {
	return StartProcess(name, n.Dir, n.bins["nsenter"], n.nsenterNetArgs(netns, bin, args...), env)
}

// Run runs a command on the node (in all its namespaces) and returns its
// combined output.
func (n *RealNode) Run(ctx context.Context, bin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, n.bins["nsenter"], n.nsenterArgs(bin, args...)...)
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s on node %s: %w: %s", bin, strings.Join(args, " "), n.Name, err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

func (n *RealNode) startNamespaces(ctx context.Context) error {
	if err := createCgroupRoot(n.Dir, "/"+n.cgroup); err != nil {
		return err
	}
	p, err := startProcess("node-init", n.Dir, n.bins["unshare"], []string{
		"--net", "--pid", "--mount", "--uts", "--ipc", "--fork", "--kill-child", "--mount-proc",
		"sh", "-c", realNodeInit, "node-init", n.Dir, n.bins["pause"], n.Name, n.IP + "/24", kubernetesServiceIP, strings.Join(nodePaths, " "),
	}, nil)
	if err != nil {
		return err
	}
	n.holder = p
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return waitFor(ctx, p, "ready", func(context.Context) error {
		_, err := os.Stat(filepath.Join(n.Dir, "ready"))
		return err
	})
}

// kubernetesServiceIP is the "kubernetes" Service's address (the first of
// the API server's --service-cluster-ip-range).
const kubernetesServiceIP = "10.0.0.1"

// startForwarders lets the node reach the API server: on 127.0.0.1 with
// the host's port (the kubelet's kubeconfig names the same URL as the
// host's), and on the kubernetes Service address for in-cluster clients.
func (n *RealNode) startForwarders() error {
	k := n.env.kube
	up := func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(k.apiPort)))
	}
	for _, addr := range []string{net.JoinHostPort("127.0.0.1", strconv.Itoa(k.apiPort)), net.JoinHostPort(kubernetesServiceIP, "443")} {
		ln, err := listenInNetNS(n.NetNS(), addr)
		if err != nil {
			return fmt.Errorf("API server forwarder on the node's %s: %w", addr, err)
		}
		n.forwarders = append(n.forwarders, startForwarder(ln, up))
	}
	k.egress.route(n.Name, n.IP, n.NetNS())
	return nil
}

// containerdConfig is containerd 1.6's config (version 2). %[1]s sandbox
// image, %[2]s runc binary.
const containerdConfig = `version = 2
root = "/var/lib/containerd"
state = "/run/containerd"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]

[grpc]
  address = "/run/containerd/containerd.sock"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "%[1]s"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  # Lowering a process's oom_score_adj needs CAP_SYS_RESOURCE, which this
  # machine's root lacks (CapBnd 000001fffeffffff): runc failed every pod
  # sandbox with "failed to update /proc/self/oom_score_adj: Permission
  # denied" for the sandbox's -998. Restricted, containerd asks for no
  # score below its own.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "%[2]s"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "` + cniBinDir + `"
    conf_dir = "/etc/cni/net.d"
`

// cniConfig is the node's pod network: a bridge with the node's pod range.
// No masquerading and no default route out of the node's namespace.
const cniConfig = `{
  "cniVersion": "1.0.0",
  "name": "glusterkube-testenv",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni0",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "%s"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    }
  ]
}
`

func (n *RealNode) startContainerd(ctx context.Context) error {
	cfg := filepath.Join(n.Dir, "containerd.toml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, containerdConfig, PauseImage, n.bins["runc"]), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(n.HostPath("/etc/cni/net.d/10-glusterkube.conflist"), fmt.Appendf(nil, cniConfig, n.PodCIDR), 0o644); err != nil {
		return err
	}
	p, err := startProcess("containerd", n.Dir, n.bins["nsenter"], n.nsenterArgs(n.bins["containerd"], "--config", cfg), nil)
	if err != nil {
		return err
	}
	n.containerd = p
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return waitFor(ctx, p, "ready", func(ctx context.Context) error {
		_, err := n.Run(ctx, n.bins["ctr"], "--namespace", "k8s.io", "version")
		return err
	})
}

// ImportImage builds an image and imports it into the node's containerd,
// where pods can use it (with imagePullPolicy IfNotPresent or Never).
func (n *RealNode) ImportImage(ctx context.Context, im *Image) error {
	dir := filepath.Join(n.Dir, "images")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "image-*.tar")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := im.WriteTarball(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if _, err := n.Run(ctx, n.bins["ctr"], "--namespace", "k8s.io", "images", "import", f.Name()); err != nil {
		return fmt.Errorf("import image %s: %w", im.Ref, err)
	}
	return nil
}

func (n *RealNode) importImages(ctx context.Context) error {
	pause, err := pauseImage(ctx)
	if err != nil {
		return err
	}
	busybox, err := NewBusyboxImage(BusyboxImage)
	if err != nil {
		return err
	}
	for _, im := range []*Image{pause, busybox} {
		if err := n.ImportImage(ctx, im); err != nil {
			return err
		}
	}
	return nil
}

// kubeletConfig is the kubelet's configuration file. %[1]s node address,
// %[2]s CA, %[3]s cgroupRoot, %[4]s resolv.conf, %[5]s serving cert,
// %[6]s its key.
const kubeletConfig = `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: %[1]s
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
tlsCertFile: %[5]s
tlsPrivateKeyFile: %[6]s
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: %[2]s
authorization:
  mode: Webhook
containerRuntimeEndpoint: unix:///run/containerd/containerd.sock
# PID 1 of this machine is not systemd; the host has cgroup v1, which
# kubelet 1.37 refuses unless told (deprecated, still supported).
cgroupDriver: cgroupfs
failCgroupV1: false
cgroupRoot: /%[3]s
failSwapOn: false
# Its default -999 needs CAP_SYS_RESOURCE too (see containerd's config).
oomScoreAdj: 0
resolvConf: %[4]s
clusterDomain: cluster.local
# The flexvolume folder defaults to /usr/libexec/...; keep it in the node.
volumePluginDir: /var/lib/kubelet/volumeplugins
# Tests share the machine's disk: a fuller disk must not evict test pods.
evictionHard:
  memory.available: 100Mi
  nodefs.available: 1%%
  nodefs.inodesFree: 1%%
  imagefs.available: 1%%
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
maxPods: 50
# Volume stats (/stats/summary, the kubelet_volume_stats_* metrics; for CSI
# volumes a NodeGetVolumeStats call) are gathered every period, 1m by
# default: tests that read them wait a tenth of that.
volumeStatsAggPeriod: 10s
registerWithTaints:
- key: %[7]s
  value: "%[8]s"
  effect: %[9]s
`

func (n *RealNode) startKubelet(ctx context.Context) error {
	k := n.env.kube
	// The kubelet's client identity (the Node authorizer and NodeRestriction
	// know it by this name) and its serving certificate.
	clientCert, clientKey := filepath.Join(n.Dir, "kubelet-client.crt"), filepath.Join(n.Dir, "kubelet-client.key")
	certPEM, keyPEM, err := k.pki.issue(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "system:node:" + n.Name, Organization: []string{"system:nodes"}},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, clientCert, clientKey)
	if err != nil {
		return err
	}
	servingCert, servingKey := filepath.Join(n.Dir, "kubelet.crt"), filepath.Join(n.Dir, "kubelet.key")
	if _, _, err := k.pki.issue(&x509.Certificate{
		Subject:     pkix.Name{CommonName: n.Name},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP(n.IP)},
		DNSNames:    []string{n.Name},
	}, servingCert, servingKey); err != nil {
		return err
	}
	kubeconfig := filepath.Join(n.Dir, "kubelet.kubeconfig")
	if err := writeKubeconfig(kubeconfig, fmt.Sprintf("https://127.0.0.1:%d", k.apiPort), k.pki.caPEM, certPEM, keyPEM); err != nil {
		return err
	}
	resolv := filepath.Join(n.Dir, "resolv.conf")
	if err := os.WriteFile(resolv, nil, 0o644); err != nil {
		return err
	}
	cfg := filepath.Join(n.Dir, "kubelet.yaml")
	body := fmt.Sprintf(kubeletConfig, n.IP, k.pki.caCert, n.cgroup, resolv, servingCert, servingKey,
		RealNodeTaint.Key, RealNodeTaint.Value, RealNodeTaint.Effect)
	if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
		return err
	}
	p, err := startProcess("kubelet", n.Dir, n.bins["nsenter"], n.nsenterArgs(n.bins["kubelet"],
		"--config="+cfg,
		"--kubeconfig="+kubeconfig,
		"--hostname-override="+n.Name,
		"--node-ip="+n.IP,
		"--node-labels=type=real,glusterkube.io/real-node=true",
		"--v=1",
	), nil)
	if err != nil {
		return err
	}
	n.kubelet = p
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	return waitFor(ctx, p, "Ready", func(ctx context.Context) error {
		node, err := n.env.Client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, c := range node.Status.Conditions {
			if c.Type == corev1.NodeReady {
				if c.Status == corev1.ConditionTrue {
					return nil
				}
				return fmt.Errorf("node %s not Ready: %s: %s", n.Name, c.Reason, c.Message)
			}
		}
		return fmt.Errorf("node %s has no Ready condition yet", n.Name)
	})
}

// Pin makes a pod spec run on this node: a node selector on its hostname
// label and a toleration of RealNodeTaint.
func (n *RealNode) Pin(spec *corev1.PodSpec) {
	if spec.NodeSelector == nil {
		spec.NodeSelector = map[string]string{}
	}
	spec.NodeSelector["kubernetes.io/hostname"] = n.Name
	spec.Tolerations = append(spec.Tolerations, corev1.Toleration{
		Key: RealNodeTaint.Key, Operator: corev1.TolerationOpEqual, Value: RealNodeTaint.Value, Effect: RealNodeTaint.Effect,
	})
}

// Logs returns the last error lines and the last lines of the node's
// init, containerd and kubelet logs, for failure messages.
func (n *RealNode) Logs() string {
	var b strings.Builder
	for _, p := range []*process{n.holder, n.containerd, n.kubelet} {
		if p == nil {
			continue
		}
		data, err := os.ReadFile(p.logPath)
		if err != nil {
			fmt.Fprintf(&b, "== %s: %v\n", p.logPath, err)
			continue
		}
		var errs []string
		for _, l := range strings.Split(string(data), "\n") {
			// klog's error lines start with E, containerd's say level=error.
			if strings.HasPrefix(l, "E") || strings.Contains(l, "level=error") {
				errs = append(errs, l)
			}
		}
		if len(errs) > 20 {
			errs = errs[len(errs)-20:]
		}
		fmt.Fprintf(&b, "== %s: last errors\n%s\n== %s: last lines\n%s\n", p.logPath, strings.Join(errs, "\n"), p.logPath, p.tail(30))
	}
	return b.String()
}

// Stop deletes the Node, stops the kubelet and containerd, ends the node's
// namespaces (and with them every container, mount and pod network) and
// removes its cgroups and temp dir.
func (n *RealNode) Stop() error {
	n.stopOnce.Do(func() { n.stopErr = n.stop() })
	return n.stopErr
}

func (n *RealNode) stop() error {
	var errs []error
	if n.env != nil && n.env.Client != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := n.env.Client.CoreV1().Nodes().Delete(ctx, n.Name, metav1.DeleteOptions{})
		cancel()
		if err != nil && !apierrors.IsNotFound(err) && n.kubelet != nil {
			errs = append(errs, fmt.Errorf("delete node %s: %w", n.Name, err))
		}
	}
	if n.env != nil && n.env.kube != nil && n.env.kube.egress != nil {
		n.env.kube.egress.route(n.Name, n.IP, "")
	}
	for _, f := range n.forwarders {
		_ = f.Close()
	}
	n.kubelet.stop(10 * time.Second)
	n.containerd.stop(10 * time.Second)
	n.holder.stop(10 * time.Second)
	if err := removeCgroups(n.Dir, 15*time.Second); err != nil {
		errs = append(errs, err)
	}
	if err := removeOwnedDir(n.Dir); err != nil {
		errs = append(errs, err)
	}
	if n.env != nil {
		n.env.mu.Lock()
		for i, o := range n.env.realNodes {
			if o == n {
				n.env.realNodes = append(n.env.realNodes[:i], n.env.realNodes[i+1:]...)
				break
			}
		}
		n.env.mu.Unlock()
	}
	return errors.Join(errs...)
}
