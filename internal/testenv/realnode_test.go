package testenv_test

import (
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"

	"github.com/glusterkube/glusterkube/internal/testenv"
)

// The busybox pod's script: it writes to its emptyDir and hostPath
// volumes, prints its own address (as the kernel of its network namespace
// sees it), reaches the API server through the kubernetes Service address
// (as in-cluster clients do; busybox has no dependable TLS client — its
// wget died with SIGSEGV at times, in pods and on the host alike — so it
// speaks plain HTTP to the TLS port and gets the 400 that Go's TLS server
// answers), and says it is done.
const realNodePodScript = `set -e
echo "hello from $(hostname)"
echo emptydir-data > /scratch/file
echo hostpath-data > /host/file
echo "emptydir says $(cat /scratch/file)"
echo "ip $(ip -4 -o addr show dev eth0 | awk '{print $4}')"
echo "kubernetes service says $(printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 5 10.0.0.1 443 | head -1)"
echo done
exec sleep 3600
`

func TestRealNode(t *testing.T) {
	env := testenv.Get(t)
	start := time.Now()
	node := env.NewRealNode(t)
	t.Logf("real node started in %s", time.Since(start).Round(time.Millisecond))

	t.Run("pod runs with volumes and logs and a pod-range address", func(t *testing.T) {
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("real node logs:\n%s", node.Logs())
			}
		})
		ns := env.Namespace(t)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		hostDir := t.TempDir()
		grace := int64(1)
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "busybox", Namespace: ns},
			Spec: corev1.PodSpec{
				RestartPolicy:                 corev1.RestartPolicyNever,
				TerminationGracePeriodSeconds: &grace,
				Containers: []corev1.Container{{
					Name:            "main",
					Image:           testenv.BusyboxImage,
					ImagePullPolicy: corev1.PullNever,
					Command:         []string{"/bin/sh", "-c", realNodePodScript},
					VolumeMounts: []corev1.VolumeMount{
						{Name: "scratch", MountPath: "/scratch"},
						{Name: "host", MountPath: "/host"},
					},
				}},
				Volumes: []corev1.Volume{
					{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
					{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: hostDir}}},
				},
			},
		}
		node.Pin(&pod.Spec)
		created, err := env.Client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		running := waitPod(ctx, t, env, ns, pod.Name, func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
		if running.Spec.NodeName != node.Name {
			t.Fatalf("pod ran on %q, want %q", running.Spec.NodeName, node.Name)
		}

		// Logs come from the kubelet through the API server.
		var logs string
		for logs == "" || !strings.Contains(logs, "done") {
			b, err := env.Client.CoreV1().Pods(ns).GetLogs(pod.Name, &corev1.PodLogOptions{}).DoRaw(ctx)
			if err != nil {
				t.Fatalf("pod logs through the API server: %v", err)
			}
			logs = string(b)
			if ctx.Err() != nil {
				t.Fatalf("pod did not finish its script; logs:\n%s", logs)
			}
			if !strings.Contains(logs, "done") {
				time.Sleep(200 * time.Millisecond)
			}
		}
		t.Logf("pod logs:\n%s", logs)
		for _, want := range []string{"hello from busybox", "emptydir says emptydir-data", "kubernetes service says HTTP/1.0 400 Bad Request"} {
			if !strings.Contains(logs, want) {
				t.Errorf("logs lack %q", want)
			}
		}

		// The pod's address is what its own network namespace holds, and
		// it is in the node's pod range.
		ip, err := netip.ParseAddr(running.Status.PodIP)
		if err != nil {
			t.Fatalf("pod IP %q: %v", running.Status.PodIP, err)
		}
		if !netip.MustParsePrefix(node.PodCIDR).Contains(ip) {
			t.Errorf("pod IP %s not in the node's pod range %s", ip, node.PodCIDR)
		}
		if !strings.Contains(logs, "ip "+ip.String()+"/") {
			t.Errorf("pod status says %s, the pod's eth0 says otherwise", ip)
		}

		// The volumes are real folders on the node.
		if b, err := os.ReadFile(filepath.Join(hostDir, "file")); err != nil || string(b) != "hostpath-data\n" {
			t.Errorf("hostPath file: %q, %v", b, err)
		}
		emptyDir := node.HostPath(filepath.Join("/var/lib/kubelet/pods", string(created.UID), "volumes/kubernetes.io~empty-dir/scratch"))
		if b, err := os.ReadFile(filepath.Join(emptyDir, "file")); err != nil || string(b) != "emptydir-data\n" {
			t.Errorf("emptyDir file: %q, %v", b, err)
		}

		// Deleted cleanly: gone from the API server, its emptyDir removed
		// by the kubelet, the hostPath data kept.
		if err := env.Client.CoreV1().Pods(ns).Delete(ctx, pod.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		waitPodGone(ctx, t, env, ns, pod.Name)
		for {
			if _, err := os.Stat(emptyDir); os.IsNotExist(err) {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("emptyDir %s still there after the pod was deleted", emptyDir)
			}
			time.Sleep(200 * time.Millisecond)
		}
		if _, err := os.Stat(filepath.Join(hostDir, "file")); err != nil {
			t.Errorf("hostPath data lost: %v", err)
		}
	})

	t.Run("a GlusterFS client image runs", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		const ref = "localhost/glusterkube/glusterfs-client:testenv"
		im, err := testenv.NewGlusterfsClientImage(ref)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := node.ImportImage(ctx, im); err != nil {
			t.Fatal(err)
		}
		t.Logf("GlusterFS client image built and imported in %s", time.Since(start).Round(time.Millisecond))
		ns := env.Namespace(t)
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "glusterfs-client", Namespace: ns},
			Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyNever,
				Containers: []corev1.Container{{
					Name: "main", Image: ref, ImagePullPolicy: corev1.PullNever,
					// The client and every translator library load: a
					// missing library fails dlopen with its name.
					Command: []string{"/bin/sh", "-c", `glusterfs --version | head -1 && ls /usr/lib/*/glusterfs/*/xlator/mount/fuse.so && mount.glusterfs -V | head -1`},
				}},
			},
		}
		node.Pin(&pod.Spec)
		if _, err := env.Client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		done := waitPod(ctx, t, env, ns, pod.Name, func(p *corev1.Pod) bool {
			return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
		})
		b, err := env.Client.CoreV1().Pods(ns).GetLogs(pod.Name, &corev1.PodLogOptions{}).DoRaw(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("logs:\n%s", b)
		if done.Status.Phase != corev1.PodSucceeded || !strings.Contains(string(b), "glusterfs 10.") {
			t.Fatalf("GlusterFS client in a pod: phase %s", done.Status.Phase)
		}
	})

	// A pod writes through a GlusterFS FUSE mount made in the node's mount
	// namespace, under the kubelet's folder, as a CSI node plugin's would
	// be; the bytes land on the brick.
	for _, tc := range []struct {
		name, volume string
		glusterd     func(t *testing.T) *testenv.Glusterd
		// client starts the FUSE client (args) on the node.
		client func(g *testenv.Glusterd, name string, args []string) (*testenv.Process, error)
	}{{
		// The node is a storage node: the client runs in all the node's
		// namespaces, as a hostNetwork node plugin does.
		name:     "glusterd on the node",
		volume:   "onnode",
		glusterd: func(t *testing.T) *testenv.Glusterd { return node.NewGlusterd(t) },
		client: func(_ *testenv.Glusterd, name string, args []string) (*testenv.Process, error) {
			return node.StartProcess(name, args[0], args[1:], nil)
		},
	}, {
		// glusterd in a namespace of its own: the client joins it.
		name:     "glusterd in its own network namespace",
		volume:   "ownns",
		glusterd: func(t *testing.T) *testenv.Glusterd { return testenv.NewGlusterd(t) },
		client: func(g *testenv.Glusterd, name string, args []string) (*testenv.Process, error) {
			return node.StartProcessInNetNS(name, g.NetNS(), args[0], args[1:], nil)
		},
	}} {
		t.Run("a pod writes through a GlusterFS mount made on the node/"+tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			glusterfs, err := testenv.Binary(ctx, "glusterfs")
			if err != nil {
				t.Fatal(err)
			}
			g := tc.glusterd(t)
			bricks, err := g.CreateVolume(ctx, tc.volume, 1)
			if err != nil {
				t.Fatal(err)
			}
			mnt := "/var/lib/kubelet/glusterkube-test/" + tc.volume
			if err := os.MkdirAll(node.HostPath(mnt), 0o755); err != nil {
				t.Fatal(err)
			}
			client, err := tc.client(g, "glusterfs-"+tc.volume, []string{glusterfs,
				"-N", "--log-file=-", "--volfile-server=127.0.0.1", "--volfile-id=" + tc.volume, mnt})
			if err != nil {
				t.Fatal(err)
			}
			// Before glusterd's cleanup (cleanups run last first).
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				if _, err := node.Run(ctx, "umount", "-l", mnt); err != nil {
					t.Errorf("unmount: %v", err)
				}
				client.Stop(5 * time.Second)
			})
			for {
				// The root of a mounted GlusterFS volume is inode 1.
				out, err := node.Run(ctx, "stat", "-c", "%i", mnt)
				if err == nil && strings.TrimSpace(out) == "1" {
					break
				}
				if client.Exited() || ctx.Err() != nil {
					t.Fatalf("GlusterFS volume not mounted on the node (%q, %v); client log:\n%s", out, err, client.Log(20))
				}
				time.Sleep(200 * time.Millisecond)
			}
			ns := env.Namespace(t)
			prop := corev1.MountPropagationHostToContainer
			pod := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "writer", Namespace: ns},
				Spec: corev1.PodSpec{
					RestartPolicy: corev1.RestartPolicyNever,
					Containers: []corev1.Container{{
						Name: "main", Image: testenv.BusyboxImage, ImagePullPolicy: corev1.PullNever,
						Command:      []string{"/bin/sh", "-c", `echo "written by $(hostname)" > /data/from-pod && cat /data/from-pod`},
						VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data", MountPropagation: &prop}},
					}},
					Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: mnt}}}},
				},
			}
			node.Pin(&pod.Spec)
			if _, err := env.Client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			done := waitPod(ctx, t, env, ns, pod.Name, func(p *corev1.Pod) bool {
				return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
			})
			if done.Status.Phase != corev1.PodSucceeded {
				t.Fatalf("writer pod %s", done.Status.Phase)
			}
			b, err := os.ReadFile(filepath.Join(bricks[0], "from-pod"))
			if err != nil || string(b) != "written by writer\n" {
				t.Fatalf("file on the brick: %q, %v", b, err)
			}
		})
	}

	t.Run("everything it runs is inside its network namespace", func(t *testing.T) {
		nodeNet, err := os.Readlink(node.NetNS())
		if err != nil {
			t.Fatal(err)
		}
		pids := testenv.PidsNaming(node.Dir)
		if len(pids) < 3 {
			t.Fatalf("processes naming the node's dir: %v; want the node's init, containerd and the kubelet", pids)
		}
		for _, pid := range pids {
			if ns, err := os.Readlink(filepath.Join("/proc", strconv.Itoa(pid), "ns/net")); err == nil && ns != nodeNet {
				cmd, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
				t.Errorf("pid %d (%s) is in network namespace %s, not the node's %s", pid, strings.ReplaceAll(string(cmd), "\x00", " "), ns, nodeNet)
			}
		}
		// Listening sockets of the node's namespace: the kubelet on the
		// node's address, the API server forwarders, the rest on loopback.
		allowed := map[string]bool{"127.0.0.1": true, node.IP: true, "10.0.0.1": true}
		seen := 0
		for _, f := range []string{"net/tcp", "net/tcp6"} {
			b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pids[0]), f))
			if err != nil {
				t.Fatal(err)
			}
			for _, line := range strings.Split(string(b), "\n")[1:] {
				fields := strings.Fields(line)
				if len(fields) < 4 || fields[3] != "0A" {
					continue
				}
				seen++
				addr := decodeAddr(fields[1])
				if host, _, _ := net.SplitHostPort(addr); !allowed[host] {
					t.Errorf("the node listens on %s", addr)
				}
			}
		}
		if seen < 3 {
			t.Errorf("only %d listening sockets in the node's namespace; want the kubelet's and the forwarders at least", seen)
		}
	})

	t.Run("stop leaves nothing behind", func(t *testing.T) {
		dir := node.Dir
		b, err := os.ReadFile(filepath.Join(dir, "cgroups"))
		if err != nil {
			t.Fatal(err)
		}
		cgroup := strings.Fields(string(b))[0]
		if left, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup/*", cgroup, "kubepods")); len(left) == 0 {
			t.Fatalf("no kubepods cgroup under %s: the check below would prove nothing", cgroup)
		}
		pids := testenv.PidsNaming(dir)
		if len(pids) == 0 {
			t.Fatal("no process names the node's temp dir: the check below would prove nothing")
		}
		if err := node.Stop(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("temp dir %s still there: %v", dir, err)
		}
		if left, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup/*", cgroup)); len(left) > 0 {
			t.Errorf("cgroups left: %v", left)
		}
		for _, made := range strings.Fields(string(b))[1:] {
			if _, err := os.Stat(made); os.IsNotExist(err) {
				continue
			}
			// A parent made on the way (the session's cgroup in another
			// hierarchy) is shared with the real nodes of other test
			// binaries running now: it stays while it holds their cgroups,
			// and the last node out removes it.
			if !strings.HasSuffix(made, cgroup) && hasSubdirs(made) {
				continue
			}
			t.Errorf("cgroup folder %s made for the node is still there", made)
		}
		if left := testenv.PidsNaming(dir); len(left) > 0 {
			t.Errorf("processes left: %v", left)
		}
		if _, err := env.Client.CoreV1().Nodes().Get(context.Background(), node.Name, metav1.GetOptions{}); err == nil {
			t.Errorf("Node %s still registered", node.Name)
		}
	})
}

func waitPod(ctx context.Context, t *testing.T, env *testenv.Env, ns, name string, ok func(*corev1.Pod) bool) *corev1.Pod {
	t.Helper()
	lw := cache.NewListWatchFromClient(env.Client.CoreV1().RESTClient(), "pods", ns, fields.OneTermEqualSelector("metadata.name", name))
	var last *corev1.Pod
	ev, err := watchtools.UntilWithSync(ctx, lw, &corev1.Pod{}, nil, func(ev watch.Event) (bool, error) {
		p, isPod := ev.Object.(*corev1.Pod)
		if !isPod {
			return false, nil
		}
		last = p
		return ok(p), nil
	})
	if err != nil {
		t.Fatalf("pod %s/%s: %v; last status: %+v", ns, name, err, podStatus(last))
	}
	return ev.Object.(*corev1.Pod)
}

func waitPodGone(ctx context.Context, t *testing.T, env *testenv.Env, ns, name string) {
	t.Helper()
	lw := cache.NewListWatchFromClient(env.Client.CoreV1().RESTClient(), "pods", ns, fields.OneTermEqualSelector("metadata.name", name))
	_, err := watchtools.UntilWithSync(ctx, lw, &corev1.Pod{}, func(store cache.Store) (bool, error) {
		return len(store.List()) == 0, nil
	}, func(ev watch.Event) (bool, error) {
		return ev.Type == watch.Deleted, nil
	})
	if err != nil {
		t.Fatalf("pod %s/%s not deleted: %v", ns, name, err)
	}
}

func podStatus(p *corev1.Pod) any {
	if p == nil {
		return nil
	}
	return p.Status
}

func hasSubdirs(dir string) bool {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.IsDir() {
			return true
		}
	}
	return false
}
