package csi_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	csipb "github.com/container-storage-interface/spec/lib/go/csi"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/glusterkube/glusterkube/csi"
	"github.com/glusterkube/glusterkube/internal/heketi"
	"github.com/glusterkube/glusterkube/internal/testenv"
)

// TestProvisionedPVPublish proves that the PVs of the built-in provisioner
// and the node plugin agree, on the real control plane and real mounts: a
// claim of a class of glusterkube.io/glusterfs (the real `glusterkube
// provisioner`, on a real heketi whose storage hosts are the test
// glusterd's loopback addresses) gets Bound to a CSI PV; the harness makes
// the GlusterFS volume heketi's mock executor only records. Then the test
// acts as the kubelet for a pod of the claim: NodePublishVolume through the
// real `glusterkube csi --services node` and `glusterkube mounter`, with
// exactly the PV's volume handle, volume attributes and mount options
// (testenv.CSIPublish). A file written through the target is on every
// brick; the class's mount option reached the FUSE client. Unpublish
// leaves no mount; deleting the pod and the claim deletes the PV and the
// heketi volume.
func TestProvisionedPVPublish(t *testing.T) {
	env := testenv.Get(t)
	g := testenv.NewGlusterd(t)
	hk := testenv.NewHeketi(t, testenv.HeketiOptions{Auth: true})
	admin, err := heketi.New(heketi.Config{URL: hk.URL, User: "admin", Key: hk.AdminKey})
	if err != nil {
		t.Fatal(err)
	}
	testenv.HeketiClusterOn(t, admin, "127.0.0.1", "127.0.0.2", "127.0.0.3")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	kube := env.Client

	// The provisioner, as its Deployment runs it (on the host network:
	// it talks to heketi and the API server only).
	n := newNode(t, g)
	keyFile := filepath.Join(n.dir, "heketi-key")
	if err := os.WriteFile(keyFile, []byte(hk.AdminKey), 0o600); err != nil {
		t.Fatal(err)
	}
	argv, cenv := testenv.Command("provisioner", "--kubeconfig="+env.Kubeconfig, "--heketi-url="+hk.URL, "--heketi-user=admin",
		"--heketi-key-file="+keyFile, "--leader-election=false", "--retry-interval-start=200ms", "-v=2")
	prov, err := testenv.StartProcess("provisioner", n.dir, argv[0], argv[1:], cenv)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("provisioner log:\n%s", prov.Log(40))
		}
		prov.Stop(10 * time.Second)
	})

	// A class of the built-in provisioner with a mount option, a claim, a
	// pod of the claim (no node runs it: the test is its kubelet).
	ns := env.Namespace(t)
	class := "e2e-csi-" + ns
	reclaim := corev1.PersistentVolumeReclaimDelete
	if _, err := kube.StorageV1().StorageClasses().Create(ctx, &storagev1.StorageClass{
		ObjectMeta:    metav1.ObjectMeta{Name: class},
		Provisioner:   "glusterkube.io/glusterfs",
		ReclaimPolicy: &reclaim,
		MountOptions:  []string{"log-level=WARNING"},
		Parameters:    map[string]string{"volumetype": "replicate:3"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = kube.StorageV1().StorageClasses().Delete(context.Background(), class, metav1.DeleteOptions{})
	})
	claim, err := kube.CoreV1().PersistentVolumeClaims(ns).Create(ctx, &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "data"},
		Spec: corev1.PersistentVolumeClaimSpec{
			StorageClassName: &class,
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod, err := kube.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "app"},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "app", Image: "busybox", VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}}},
			Volumes:    []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim.Name}}}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	pv := waitClaimBound(ctx, t, env, ns, claim.Name)
	if pv.Spec.CSI == nil || pv.Spec.CSI.Driver != csi.DriverName {
		t.Fatalf("PV %s has source %+v, want a CSI source of %s", pv.Name, pv.Spec.PersistentVolumeSource, csi.DriverName)
	}
	if !slices.Equal(pv.Spec.MountOptions, []string{"log-level=WARNING"}) {
		t.Errorf("PV mount options %v, want the class's", pv.Spec.MountOptions)
	}
	t.Logf("PV %s: handle %s, attributes %v, mount options %v", pv.Name, pv.Spec.CSI.VolumeHandle, pv.Spec.CSI.VolumeAttributes, pv.Spec.MountOptions)
	volName := pv.Spec.CSI.VolumeAttributes[csi.ContextVolume]
	// The harness's part: the GlusterFS volume heketi would have made.
	bricks, err := g.CreateHeketiVolume(ctx, volName)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.DeleteVolume(context.Background(), volName) })

	// The node: mount service and node plugin, as their DaemonSets.
	n.startMounter()
	n.startPlugin()
	caps, err := n.Node.NodeGetCapabilities(ctx, &csipb.NodeGetCapabilitiesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	multiWriter := slices.ContainsFunc(caps.GetCapabilities(), func(c *csipb.NodeServiceCapability) bool {
		return c.GetRpc().GetType() == csipb.NodeServiceCapability_RPC_SINGLE_NODE_MULTI_WRITER
	})
	publish := testenv.CSIPublish{PV: pv, Pod: pod, KubeletDir: n.kubelet, SingleNodeMultiWriter: multiWriter, PodInfoOnMount: true}
	req := publish.Request()
	target := publish.Target()
	n.publish(t, ctx, req)

	args := cmdline(fuseClient(t, target))
	if !slices.Contains(args, "--log-level=WARNING") || slices.Contains(args, "--log-level=ERROR") {
		t.Errorf("FUSE client args %v: want the class's log-level=WARNING instead of the default", args)
	}
	want := "written by pod " + pod.Name + " through the CSI PV\n"
	if err := os.WriteFile(filepath.Join(target, "hello.txt"), []byte(want), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, b := range bricks {
		got, err := os.ReadFile(filepath.Join(b, "hello.txt"))
		if err != nil || string(got) != want {
			t.Errorf("brick %s: %q %v, want %q", b, got, err, want)
		}
	}

	// The pod goes: the kubelet unpublishes.
	n.unpublish(t, ctx, req.VolumeId, target)
	if m := mountsUnder(target); len(m) != 0 {
		t.Errorf("mounts left after unpublish: %v", m)
	}
	waitNoClient(t, target)
	if _, err := os.Stat(target); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("target after unpublish: %v, want it removed", err)
	}
	if err := kube.CoreV1().Pods(ns).Delete(ctx, pod.Name, *metav1.NewDeleteOptions(0)); err != nil {
		t.Fatal(err)
	}

	// Deleting the claim deletes the PV and, before it, the heketi volume.
	if err := kube.CoreV1().PersistentVolumeClaims(ns).Delete(ctx, claim.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPVGone(t, env, pv.Name)
	l, err := admin.VolumeList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Volumes) != 0 {
		t.Errorf("heketi volumes after the claim was deleted: %v", l.Volumes)
	}
}

// waitClaimBound waits until a claim is Bound and returns its PV.
func waitClaimBound(ctx context.Context, t *testing.T, env *testenv.Env, ns, name string) *corev1.PersistentVolume {
	t.Helper()
	c := testenv.WaitClaimsBound(t, env.Client, ns, []string{name}, 2*time.Minute)[name]
	pv, err := env.Client.CoreV1().PersistentVolumes().Get(ctx, c.Spec.VolumeName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return pv
}

// waitPVGone waits until a PV is deleted.
func waitPVGone(t *testing.T, env *testenv.Env, name string) {
	t.Helper()
	testenv.Eventually(t, 2*time.Minute, "PV "+name+" deleted", func(ctx context.Context) (bool, error) {
		_, err := env.Client.CoreV1().PersistentVolumes().Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, err
	})
}
