package provisioner

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heketi/heketi/pkg/glusterfs/api"
	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/glusterkube/glusterkube/csi"
	"github.com/glusterkube/glusterkube/internal/heketi"
	"github.com/glusterkube/glusterkube/internal/manifest"
	"github.com/glusterkube/glusterkube/internal/testenv"
	"github.com/glusterkube/glusterkube/volume"
)

// storageNode is a real node (kubelet + containerd) that is also the
// GlusterFS storage of a heketi test server of its own: heketi's cluster
// has three nodes whose storage hosts are 127.0.0.1, 127.0.0.2 and
// 127.0.0.3, where the glusterd in the node's network namespace answers
// (it listens on every loopback address), so the volume context of every
// PV names servers that the node's FUSE clients reach.
type storageNode struct {
	t       testing.TB
	env     *testenv.Env
	node    *testenv.RealNode
	g       *testenv.Glusterd
	hk      *testenv.Heketi
	admin   *heketi.Client
	cluster string

	mu     sync.Mutex
	bricks map[string][]string // GlusterFS volume name -> brick folders
}

func newStorageNode(t *testing.T, env *testenv.Env) *storageNode {
	t.Helper()
	node := env.NewRealNode(t)
	s := &storageNode{t: t, env: env, node: node, g: node.NewGlusterd(t), hk: testenv.NewHeketi(t, testenv.HeketiOptions{}), bricks: map[string][]string{}}
	s.admin = heketiClient(t, s.hk.URL, "", "")
	s.cluster = testenv.HeketiClusterOn(t, s.admin, "127.0.0.1", "127.0.0.2", "127.0.0.3")
	return s
}

// dial is the provisioner's heketi Dialer: the real client, wrapped so
// that heketi's volumes exist on the node's glusterd (glusterdHeketi).
func (s *storageNode) dial(cfg heketi.Config) (volume.Heketi, error) {
	c, err := heketi.New(cfg)
	if err != nil {
		return nil, err
	}
	return &glusterdHeketi{Client: c, s: s}, nil
}

// volumeBricks returns the brick folders of the GlusterFS volume the
// harness made for a heketi volume.
func (s *storageNode) volumeBricks(name string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bricks[name]
}

// glusterdHeketi is the test's heketi server as its real executor would
// behave for the volumes the real node mounts. Heketi's mock executor only
// records a volume; real heketi has made it on the storage nodes by the
// time it answers the create. So the harness makes the GlusterFS volume at
// that same moment: this client wraps the provisioner's (through the
// volume service's Dial) and, when heketi answers a create, makes the
// volume heketi named on the node's glusterd before the provisioner sees
// the answer. The PV, and so any pod using it, can only come after. A
// delete removes the GlusterFS volume first, as heketi's executor does.
type glusterdHeketi struct {
	*heketi.Client
	s *storageNode
}

func (h *glusterdHeketi) VolumeCreate(ctx context.Context, req *api.VolumeCreateRequest) (*api.VolumeInfoResponse, error) {
	vol, err := h.Client.VolumeCreate(ctx, req)
	if err != nil {
		return vol, err
	}
	bricks, err := h.s.g.CreateHeketiVolume(ctx, vol.Name)
	if err == nil {
		err = setBrickRoots(bricks, int(vol.Gid))
	}
	if err != nil {
		// The provisioner would find the heketi volume by name on its
		// retry and never create again: fail the test here.
		h.s.t.Errorf("make GlusterFS volume %s for heketi volume %s: %v", vol.Name, vol.Id, err)
		return nil, err
	}
	h.s.mu.Lock()
	h.s.bricks[vol.Name] = bricks
	h.s.mu.Unlock()
	return vol, nil
}

func (h *glusterdHeketi) VolumeDelete(ctx context.Context, id string) error {
	vol, err := h.Client.VolumeInfo(ctx, id)
	if err == nil {
		if err := h.s.g.DeleteVolume(ctx, vol.Name); err != nil {
			return fmt.Errorf("delete GlusterFS volume %s: %w", vol.Name, err)
		}
	}
	return h.Client.VolumeDelete(ctx, id)
}

// setBrickRoots sets the brick roots as heketi's real executor does on a
// real brick ("chown :GID" and "chmod 2775" before the volume is made):
// owned by the volume's GID, group-writable and setgid, which is what lets
// a non-root pod in the PV's supplemental group write, and makes its files
// the group's. The mock executor runs no command and the harness's bricks
// are plain folders, so the harness does it.
func setBrickRoots(bricks []string, gid int) error {
	if gid == 0 {
		return nil
	}
	for _, b := range bricks {
		if err := os.Chown(b, 0, gid); err != nil {
			return err
		}
		if err := os.Chmod(b, 0o775|os.ModeSetgid); err != nil {
			return err
		}
	}
	return nil
}

// csiExamples holds the CSI driver's install manifests.
const csiExamples = "../examples/csi"

// decodeFile decodes a manifest file into typed objects by kind.
func decodeFile(t testing.TB, path string, into map[string]runtime.Object) []*unstructured.Unstructured {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := manifest.Decode(b)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	for _, u := range objs {
		if o, ok := into[u.GetKind()+"/"+u.GetName()]; ok {
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, o); err != nil {
				t.Fatalf("%s: %s %s: %v", path, u.GetKind(), u.GetName(), err)
			}
		}
	}
	return objs
}

// installCSINode installs the CSI node plugin on the real node as a
// cluster does, from examples/csi: the CSIDriver, the node plugin's
// ServiceAccount and RBAC, and the two DaemonSets — the mount service and
// the node plugin — running the image the manifests name, built here
// (testenv.NewGlusterkubeImage: the glusterkube binary of this checkout
// and the GlusterFS client) and imported into the node's containerd. The
// DaemonSets go to namespace ns, pinned to the real node; cluster-scoped
// RBAC gets ns in its name. Nothing else is changed: hostNetwork, the
// mounter's hostPID, privileged, /var/lib/kubelet with Bidirectional
// propagation, /dev/fuse, the arguments, the liveness probe are the
// manifests' own.
//
// Pods rather than host processes, because that is what a user runs: the
// node plugin's FUSE mounts reach the kubelet and the pods only through
// the DaemonSets' Bidirectional mount of /var/lib/kubelet, the FUSE
// clients reach glusterd only through hostNetwork, and the plugin's PID
// namespace is its container's, so killing the container kills what the
// plugin started — the restart the mount service is there to survive.
func installCSINode(ctx context.Context, t *testing.T, s *storageNode, ns string) {
	t.Helper()
	kube := s.env.Client
	driver := &storagev1.CSIDriver{}
	decodeFile(t, filepath.Join(csiExamples, "10-csidriver.yaml"), map[string]runtime.Object{"CSIDriver/" + csi.DriverName: driver})
	switch _, err := kube.StorageV1().CSIDrivers().Create(ctx, driver, metav1.CreateOptions{}); {
	case err == nil:
		t.Cleanup(func() {
			_ = kube.StorageV1().CSIDrivers().Delete(context.Background(), driver.Name, metav1.DeleteOptions{})
		})
	case !apierrors.IsAlreadyExists(err):
		t.Fatal(err)
	}

	const name = "glusterkube-csi-node"
	sa, role, binding := &v1.ServiceAccount{}, &rbacv1.ClusterRole{}, &rbacv1.ClusterRoleBinding{}
	decodeFile(t, filepath.Join(csiExamples, "20-rbac.yaml"), map[string]runtime.Object{
		"ServiceAccount/" + name: sa, "ClusterRole/" + name: role, "ClusterRoleBinding/" + name: binding,
	})
	sa.Namespace = ns
	role.Name += "-" + ns
	binding.Name += "-" + ns
	binding.RoleRef.Name = role.Name
	for i := range binding.Subjects {
		binding.Subjects[i].Namespace = ns
	}
	if _, err := kube.CoreV1().ServiceAccounts(ns).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := kube.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = kube.RbacV1().ClusterRoles().Delete(context.Background(), role.Name, metav1.DeleteOptions{})
	})
	if _, err := kube.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = kube.RbacV1().ClusterRoleBindings().Delete(context.Background(), binding.Name, metav1.DeleteOptions{})
	})

	mounter, plugin := &appsv1.DaemonSet{}, &appsv1.DaemonSet{}
	decodeFile(t, filepath.Join(csiExamples, "40-mounter-daemonset.yaml"), map[string]runtime.Object{"DaemonSet/glusterkube-mounter": mounter})
	decodeFile(t, filepath.Join(csiExamples, "50-node-daemonset.yaml"), map[string]runtime.Object{"DaemonSet/" + name: plugin})
	image := plugin.Spec.Template.Spec.Containers[0].Image
	if image == "" || mounter.Spec.Template.Spec.Containers[0].Image != image {
		t.Fatalf("the DaemonSets name images %q and %q, want one", image, mounter.Spec.Template.Spec.Containers[0].Image)
	}
	start := time.Now()
	im, err := testenv.NewGlusterkubeImage(ctx, image)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.node.ImportImage(ctx, im); err != nil {
		t.Fatal(err)
	}
	t.Logf("image %s built and imported in %s", image, time.Since(start).Round(time.Millisecond))
	start = time.Now()
	for _, ds := range []*appsv1.DaemonSet{mounter, plugin} {
		ds.Namespace = ns
		s.node.Pin(&ds.Spec.Template.Spec)
		if _, err := kube.AppsV1().DaemonSets(ns).Create(ctx, ds, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("CSI pods:\n%s", s.podLogs(ns, "app.kubernetes.io/part-of=glusterkube"))
		}
	})
	eventually(t, 3*time.Minute, "the DaemonSets rolled out on the real node", func(ctx context.Context) (bool, error) {
		for _, ds := range []*appsv1.DaemonSet{mounter, plugin} {
			cur, err := kube.AppsV1().DaemonSets(ns).Get(ctx, ds.Name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			if cur.Status.DesiredNumberScheduled != 1 || cur.Status.NumberReady != 1 {
				return false, fmt.Errorf("%s: %d of %d ready", ds.Name, cur.Status.NumberReady, cur.Status.DesiredNumberScheduled)
			}
		}
		return true, nil
	})
	s.waitRegistered(t)
	t.Logf("mount service and node plugin running and registered in %s", time.Since(start).Round(time.Millisecond))
}

// waitRegistered waits until the kubelet lists the driver in the node's
// CSINode (it has registered the plugin).
func (s *storageNode) waitRegistered(t testing.TB) {
	t.Helper()
	eventually(t, 2*time.Minute, "the kubelet registered the node plugin", func(ctx context.Context) (bool, error) {
		cn, err := s.env.Client.StorageV1().CSINodes().Get(ctx, s.node.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, d := range cn.Spec.Drivers {
			if d.Name == csi.DriverName {
				return true, nil
			}
		}
		return false, nil
	})
}

// podLogs returns the status and the last log lines of the pods matching
// selector, for failure messages.
func (s *storageNode) podLogs(ns, selector string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pods, err := s.env.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	tail := int64(40)
	for _, p := range pods.Items {
		fmt.Fprintf(&b, "== pod %s: %s", p.Name, p.Status.Phase)
		for _, c := range p.Status.ContainerStatuses {
			fmt.Fprintf(&b, " %s(ready=%v restarts=%d %+v)", c.Name, c.Ready, c.RestartCount, c.State)
		}
		b.WriteString("\n")
		for _, c := range p.Spec.Containers {
			logs, err := s.env.Client.CoreV1().Pods(ns).GetLogs(p.Name, &v1.PodLogOptions{Container: c.Name, TailLines: &tail}).DoRaw(ctx)
			fmt.Fprintf(&b, "-- %s logs (%v):\n%s\n", c.Name, err, logs)
		}
	}
	return b.String()
}
