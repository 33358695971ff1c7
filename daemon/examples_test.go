package daemon_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	"github.com/glusterkube/glusterkube/internal/heketi"
	"github.com/glusterkube/glusterkube/internal/manifest"
	"github.com/glusterkube/glusterkube/internal/testenv"
)

// TestExampleDeployment applies examples/run and the topology ConfigMap of
// examples/nodes to a real API server and runs `glusterkube run` with the
// example Deployment's own arguments, as the example ServiceAccount (so
// with exactly the example RBAC): the topology reaches heketi, the nodes
// named in it are labelled, the DaemonSet rolls out onto them, and a claim
// is provisioned and deleted again.
func TestExampleDeployment(t *testing.T) {
	env := testenv.Get(t)
	h := testenv.NewHeketi(t, testenv.HeketiOptions{Auth: true})
	ctx := context.Background()
	kube := env.Client

	// The Nodes examples/topology.json names, and one that is not in it.
	for _, n := range []string{"node-1", "node-2", "node-3", "node-4"} {
		if err := env.AddNode(ctx, testenv.NodeSpec{Name: n}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = env.DeleteNode(context.Background(), n) })
	}

	files, err := filepath.Glob("../examples/run/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in examples/run: %v", err)
	}
	sort.Strings(files)
	files = append(files, "../examples/nodes/configmap.yaml")
	ap, err := manifest.NewApplier(env.Config, "glusterkube-examples-test")
	if err != nil {
		t.Fatal(err)
	}
	var deployArgs []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		objs, err := ap.Apply(ctx, b, "")
		if err != nil {
			t.Fatalf("apply %s: %v", f, err)
		}
		for _, o := range objs {
			if o.GetKind() != "Deployment" {
				continue
			}
			cs, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
			for _, c := range cs {
				for _, a := range c.(map[string]any)["args"].([]any) {
					deployArgs = append(deployArgs, a.(string))
				}
			}
		}
	}
	if len(deployArgs) == 0 || deployArgs[0] != "run" {
		t.Fatalf("example Deployment args %v: want glusterkube run", deployArgs)
	}
	// What a user does with the Secret: put the real admin key in.
	patch := []byte(`{"stringData":{"key":"` + h.AdminKey + `"}}`)
	if _, err := kube.CoreV1().Secrets("glusterfs").Patch(ctx, "heketi-admin", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}

	// The pod's view: the ServiceAccount's identity, the Secret mounted as
	// a file, POD_NAMESPACE from the downward API.
	dir := t.TempDir()
	saKubeconfig := env.ServiceAccountKubeconfig(t, "glusterfs", "glusterkube")
	keyFile := filepath.Join(dir, "key")
	if err := os.WriteFile(keyFile, []byte(h.AdminKey), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("POD_NAMESPACE", "glusterfs")
	var args []string
	for _, a := range deployArgs[1:] {
		switch {
		case strings.HasPrefix(a, "--heketi-url="):
			a = "--heketi-url=" + h.URL
		case strings.HasPrefix(a, "--heketi-key-file="):
			a = "--heketi-key-file=" + keyFile
		case strings.HasPrefix(a, "--address="):
			continue // startReplica picks a free local port
		}
		args = append(args, a)
	}
	args = append(args, "--kubeconfig", saKubeconfig, "--leader-election-retry-period=500ms")
	r := startReplica(t, args...)
	logs := r.out.String

	hk, err := heketi.New(heketi.Config{URL: h.URL, User: "admin", Key: h.AdminKey})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Minute, "example topology loaded into heketi", logs, func(ctx context.Context) (bool, error) {
		topo, err := hk.TopologyInfo(ctx)
		if err != nil {
			return false, err
		}
		devices := 0
		for _, c := range topo.ClusterList {
			for _, n := range c.Nodes {
				devices += len(n.DevicesInfo)
			}
		}
		return devices > 0 && len(topo.ClusterList) == 1 && len(topo.ClusterList[0].Nodes) == 3, nil
	})
	eventually(t, 2*time.Minute, "DaemonSet rolled out onto the 3 storage nodes", logs, func(ctx context.Context) (bool, error) {
		ds, err := kube.AppsV1().DaemonSets("glusterfs").Get(ctx, "glusterfs", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return ds.Status.DesiredNumberScheduled == 3 && ds.Status.NumberReady == 3, nil
	})
	for _, n := range []string{"node-1", "node-2", "node-3", "node-4"} {
		node, err := kube.CoreV1().Nodes().Get(ctx, n, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := node.Labels["storagenode"] == "glusterfs", n != "node-4"; got != want {
			t.Errorf("node %s labelled %v, want %v", n, got, want)
		}
	}
	eventually(t, time.Minute, "ready", logs, func(context.Context) (bool, error) {
		code, body := r.get("/readyz")
		return code == http.StatusOK && strings.HasPrefix(body, "ok"), nil
	})

	ns := env.Namespace(t)
	reclaim := corev1.PersistentVolumeReclaimDelete
	if _, err := kube.StorageV1().StorageClasses().Create(ctx, &storagev1.StorageClass{
		ObjectMeta: metav1.ObjectMeta{Name: ns}, Provisioner: "glusterkube.io/glusterfs", ReclaimPolicy: &reclaim,
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = kube.StorageV1().StorageClasses().Delete(context.Background(), ns, metav1.DeleteOptions{}) })
	class := ns
	if _, err := kube.CoreV1().PersistentVolumeClaims(ns).Create(ctx, &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "data"},
		Spec: corev1.PersistentVolumeClaimSpec{
			StorageClassName: &class,
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("2Gi")}},
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Minute, "claim bound", logs, func(ctx context.Context) (bool, error) {
		c, err := kube.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "data", metav1.GetOptions{})
		return err == nil && c.Status.Phase == corev1.ClaimBound, err
	})
	if err := kube.CoreV1().PersistentVolumeClaims(ns).Delete(ctx, "data", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Minute, "heketi volume deleted with the claim", logs, func(ctx context.Context) (bool, error) {
		l, err := hk.VolumeList(ctx)
		return err == nil && len(l.Volumes) == 0, err
	})
	r.stop(t)
	if out := strings.ToLower(logs()); strings.Contains(out, "forbidden") {
		t.Errorf("the example RBAC lacks a permission:\n%s", logs())
	}
	if strings.Contains(logs(), h.AdminKey) {
		t.Error("the heketi key appears in the logs")
	}
}
