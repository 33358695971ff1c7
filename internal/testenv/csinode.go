package testenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/glusterkube/glusterkube/internal/manifest"
)

// CSIExamples is the folder of the CSI driver's install manifests.
func CSIExamples() string { return filepath.Join(RepoRoot(), "examples", "csi") }

// DecodeManifestFile decodes a manifest file and converts the objects
// named in into ("Kind/name" -> typed object) into them; it returns every
// object of the file.
func DecodeManifestFile(t testing.TB, path string, into map[string]runtime.Object) []*unstructured.Unstructured {
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

// InstallCSINode installs the CSI node plugin on the node as a cluster
// does, from examples/csi: the CSIDriver, the node plugin's ServiceAccount
// and RBAC, and the two DaemonSets — the mount service and the node plugin
// — running the image the manifests name, built here (NewGlusterkubeImage:
// the glusterkube binary of this checkout and the GlusterFS client) and
// imported into the node's containerd. The DaemonSets go to namespace ns,
// pinned to the node; cluster-scoped RBAC gets ns in its name. Nothing
// else is changed: hostNetwork, the mounter's hostPID, privileged,
// /var/lib/kubelet with Bidirectional propagation, /dev/fuse, the
// arguments, the liveness probe are the manifests' own. It returns when
// the DaemonSets are ready and the kubelet has registered the driver.
//
// Pods rather than host processes, because that is what a user runs: the
// node plugin's FUSE mounts reach the kubelet and the pods only through
// the DaemonSets' Bidirectional mount of /var/lib/kubelet, the FUSE
// clients reach glusterd only through hostNetwork, and the plugin's PID
// namespace is its container's, so killing the container kills what the
// plugin started — the restart the mount service is there to survive.
// EnsureCSIDriver creates the CSIDriver object of examples/csi unless one
// of the name exists, and returns its name: every test that needs it gets
// the one users apply (no attach, so the attach-detach controller does not
// wait for an attacher), whichever test makes it first. It stays for the
// control plane's life.
func EnsureCSIDriver(ctx context.Context, t testing.TB, kube kubernetes.Interface) string {
	t.Helper()
	driver := &storagev1.CSIDriver{}
	for _, u := range DecodeManifestFile(t, filepath.Join(CSIExamples(), "10-csidriver.yaml"), nil) {
		if u.GetKind() != "CSIDriver" {
			continue
		}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, driver); err != nil {
			t.Fatalf("examples/csi/10-csidriver.yaml: %v", err)
		}
	}
	if driver.Name == "" {
		t.Fatal("examples/csi/10-csidriver.yaml holds no CSIDriver")
	}
	if _, err := kube.StorageV1().CSIDrivers().Create(ctx, driver, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	return driver.Name
}

func (s *StorageNode) InstallCSINode(ctx context.Context, t *testing.T, ns string) {
	t.Helper()
	kube := s.env.Client
	driver := EnsureCSIDriver(ctx, t, kube)

	const name = "glusterkube-csi-node"
	sa, role, binding := &corev1.ServiceAccount{}, &rbacv1.ClusterRole{}, &rbacv1.ClusterRoleBinding{}
	DecodeManifestFile(t, filepath.Join(CSIExamples(), "20-rbac.yaml"), map[string]runtime.Object{
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
	DecodeManifestFile(t, filepath.Join(CSIExamples(), "40-mounter-daemonset.yaml"), map[string]runtime.Object{"DaemonSet/glusterkube-mounter": mounter})
	DecodeManifestFile(t, filepath.Join(CSIExamples(), "50-node-daemonset.yaml"), map[string]runtime.Object{"DaemonSet/" + name: plugin})
	image := plugin.Spec.Template.Spec.Containers[0].Image
	if image == "" || mounter.Spec.Template.Spec.Containers[0].Image != image {
		t.Fatalf("the DaemonSets name images %q and %q, want one", image, mounter.Spec.Template.Spec.Containers[0].Image)
	}
	start := time.Now()
	im, err := NewGlusterkubeImage(ctx, image)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Node.ImportImage(ctx, im); err != nil {
		t.Fatal(err)
	}
	t.Logf("image %s built and imported in %s", image, time.Since(start).Round(time.Millisecond))
	start = time.Now()
	for _, ds := range []*appsv1.DaemonSet{mounter, plugin} {
		ds.Namespace = ns
		s.Node.Pin(&ds.Spec.Template.Spec)
		if _, err := kube.AppsV1().DaemonSets(ns).Create(ctx, ds, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("CSI pods:\n%s", s.PodLogs(ns, "app.kubernetes.io/part-of=glusterkube"))
		}
	})
	Eventually(t, 3*time.Minute, "the DaemonSets rolled out on the real node", func(ctx context.Context) (bool, error) {
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
	Eventually(t, 2*time.Minute, "the kubelet registered the node plugin", func(ctx context.Context) (bool, error) {
		cn, err := kube.StorageV1().CSINodes().Get(ctx, s.Node.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, d := range cn.Spec.Drivers {
			if d.Name == driver {
				return true, nil
			}
		}
		return false, nil
	})
	t.Logf("mount service and node plugin running and registered in %s", time.Since(start).Round(time.Millisecond))
}

// PodLogs returns the status and the last log lines of the pods of ns
// matching selector, for failure messages.
func (s *StorageNode) PodLogs(ns, selector string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	kube := s.env.Client
	pods, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
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
			logs, err := kube.CoreV1().Pods(ns).GetLogs(p.Name, &corev1.PodLogOptions{Container: c.Name, TailLines: &tail}).DoRaw(ctx)
			fmt.Fprintf(&b, "-- %s logs (%v):\n%s\n", c.Name, err, logs)
		}
	}
	return b.String()
}

// Eventually polls cond every 100ms until it holds, failing the test after
// timeout with cond's last error.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	var last error
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		ok, err := cond(ctx)
		last = err
		return ok, nil
	})
	if err != nil {
		t.Fatalf("%s: not after %s (last error: %v)", what, timeout, last)
	}
}

// WaitClaimsBound waits until the named claims of ns are Bound and
// returns them, failing the test after timeout with the ones still
// pending.
func WaitClaimsBound(t testing.TB, kube kubernetes.Interface, ns string, names []string, timeout time.Duration) map[string]*corev1.PersistentVolumeClaim {
	t.Helper()
	out := map[string]*corev1.PersistentVolumeClaim{}
	var pending []string
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		list, err := kube.CoreV1().PersistentVolumeClaims(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		byName := map[string]*corev1.PersistentVolumeClaim{}
		for i := range list.Items {
			byName[list.Items[i].Name] = &list.Items[i]
		}
		pending = pending[:0]
		for _, n := range names {
			if c := byName[n]; c == nil || c.Status.Phase != corev1.ClaimBound {
				pending = append(pending, n)
			} else {
				out[n] = c
			}
		}
		return len(pending) == 0, nil
	})
	if err != nil {
		t.Fatalf("claims not Bound after %s: %s", timeout, strings.Join(pending, ", "))
	}
	return out
}
