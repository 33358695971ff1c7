package csi_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"

	"github.com/glusterkube/glusterkube/csi"
	"github.com/glusterkube/glusterkube/internal/testenv"
)

// TestRealNodeMountsCSIVolume: on a real node (kubelet + containerd) that
// is also a storage node (glusterd in its network namespace), the node
// plugin runs as a host process, registers with the kubelet through
// plugins_registry, and the kubelet mounts a CSI PersistentVolume through
// it for a pod, whose write lands on the GlusterFS brick; deleting the pod
// unmounts it.
func TestRealNodeMountsCSIVolume(t *testing.T) {
	env := testenv.Get(t)
	node := env.NewRealNode(t)
	g := node.NewGlusterd(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	bricks, err := g.CreateVolume(ctx, "rncsi", 1)
	if err != nil {
		t.Fatal(err)
	}

	// The CSIDriver object, as the example ships it.
	b, err := os.ReadFile("../examples/csi/10-csidriver.yaml")
	if err != nil {
		t.Fatal(err)
	}
	obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(b, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	driver := obj.(*storagev1.CSIDriver)
	if _, err := env.Client.StorageV1().CSIDrivers().Create(ctx, driver, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = env.Client.StorageV1().CSIDrivers().Delete(context.Background(), driver.Name, metav1.DeleteOptions{})
	})

	// The node plugin, in-process mounts, at the paths the example
	// DaemonSet uses.
	pluginDir := "/var/lib/kubelet/plugins/" + csi.DriverName
	if err := os.MkdirAll(node.HostPath(pluginDir), 0o755); err != nil {
		t.Fatal(err)
	}
	argv, penv := testenv.Command("csi", "--services=node", "--endpoint=unix://"+pluginDir+"/csi.sock",
		"--node-id="+node.Name, "--kubelet-dir=/var/lib/kubelet", "--log-dir="+pluginDir+"/logs", "--events=false", "-v=4")
	plugin, err := node.StartProcess("csi-node", argv[0], argv[1:], penv)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("node plugin log:\n%s", plugin.Log(60))
		}
		plugin.Stop(10 * time.Second)
	})

	// The kubelet lists the driver in the node's CSINode once it has
	// registered the plugin.
	if err := plugin.WaitFor(ctx, "registered with the kubelet", func(ctx context.Context) error {
		cn, err := env.Client.StorageV1().CSINodes().Get(ctx, node.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, d := range cn.Spec.Drivers {
			if d.Name == csi.DriverName {
				return nil
			}
		}
		return os.ErrNotExist
	}); err != nil {
		t.Fatal(err)
	}

	ns := env.Namespace(t)
	pvName := "rncsi-" + ns
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: pvName},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			ClaimRef:                      &corev1.ObjectReference{Namespace: ns, Name: "data"},
			PersistentVolumeSource: corev1.PersistentVolumeSource{CSI: &corev1.CSIPersistentVolumeSource{
				Driver:           csi.DriverName,
				VolumeHandle:     "0123456789abcdef0123456789abcdef",
				VolumeAttributes: map[string]string{"servers": "127.0.0.1", "volume": "rncsi"},
			}},
		},
	}
	if _, err := env.Client.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = env.Client.CoreV1().PersistentVolumes().Delete(context.Background(), pvName, metav1.DeleteOptions{})
	})
	empty := ""
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "data", Namespace: ns},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany},
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
			StorageClassName: &empty,
			VolumeName:       pvName,
		},
	}
	if _, err := env.Client.CoreV1().PersistentVolumeClaims(ns).Create(ctx, pvc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	grace := int64(1)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "writer", Namespace: ns},
		Spec: corev1.PodSpec{
			RestartPolicy:                 corev1.RestartPolicyNever,
			TerminationGracePeriodSeconds: &grace,
			Containers: []corev1.Container{{
				Name: "main", Image: testenv.BusyboxImage, ImagePullPolicy: corev1.PullNever,
				Command:      []string{"/bin/sh", "-c", `echo "written by $(hostname)" > /data/from-pod && grep -q " /data fuse.glusterfs " /proc/mounts && sleep 3600`},
				VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}},
			}},
			Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data"},
			}}},
		},
	}
	node.Pin(&pod.Spec)
	if _, err := env.Client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	brickFile := filepath.Join(bricks[0], "from-pod")
	if err := plugin.WaitFor(ctx, "the pod's write on the brick", func(ctx context.Context) error {
		b, err := os.ReadFile(brickFile)
		if err != nil {
			p, perr := env.Client.CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{})
			if perr == nil && p.Status.Phase != corev1.PodPending && p.Status.Phase != corev1.PodRunning {
				t.Fatalf("writer pod %s", p.Status.Phase)
			}
			return err
		}
		if string(b) != "written by writer\n" {
			return os.ErrInvalid
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	// Deleting the pod unpublishes: no GlusterFS mount of the volume is
	// left on the node.
	if err := env.Client.CoreV1().Pods(ns).Delete(ctx, pod.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	lw := cache.NewListWatchFromClient(env.Client.CoreV1().RESTClient(), "pods", ns, fields.OneTermEqualSelector("metadata.name", pod.Name))
	if _, err := watchtools.UntilWithSync(ctx, lw, &corev1.Pod{}, func(s cache.Store) (bool, error) {
		return len(s.List()) == 0, nil
	}, func(ev watch.Event) (bool, error) { return ev.Type == watch.Deleted, nil }); err != nil {
		t.Fatalf("pod not deleted: %v", err)
	}
	for _, m := range node.Mounts("", "fuse.glusterfs") {
		if strings.Contains(m, pvName) {
			t.Errorf("mount left on the node after the pod was deleted: %s", m)
		}
	}
}
