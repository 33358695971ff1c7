package testenv_test

import (
	"context"
	"os"
	"testing"
	"time"

	heketiapi "github.com/heketi/heketi/pkg/glusterfs/api"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"

	"github.com/glusterkube/glusterkube/internal/heketi"
	"github.com/glusterkube/glusterkube/internal/testenv"
)

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, testenv.Options{Kube: true, Heketi: true}))
}

func TestAPIServerVersion(t *testing.T) {
	env := testenv.Get(t)
	v, err := env.Client.Discovery().ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	if v.GitVersion != testenv.KubeVersion {
		t.Fatalf("server version %q, want %q", v.GitVersion, testenv.KubeVersion)
	}
}

func TestNodesReadyAndPatch(t *testing.T) {
	env := testenv.Get(t)
	ctx := context.Background()
	if len(env.Nodes) != 5 {
		t.Fatalf("got %d nodes, want 5", len(env.Nodes))
	}
	name := env.Nodes[0]
	patch := []byte(`{"metadata":{"labels":{"testenv.glusterkube.io/patched":"yes"}}}`)
	n, err := env.Client.CoreV1().Nodes().Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n.Labels["testenv.glusterkube.io/patched"] != "yes" {
		t.Fatalf("label not set: %v", n.Labels)
	}
	t.Cleanup(func() {
		_, _ = env.Client.CoreV1().Nodes().Patch(ctx, name, types.MergePatchType,
			[]byte(`{"metadata":{"labels":{"testenv.glusterkube.io/patched":null}}}`), metav1.PatchOptions{})
	})
}

func TestDaemonSetRollsOutOnKwokNodes(t *testing.T) {
	env := testenv.Get(t)
	ns := env.Namespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	labels := map[string]string{"app": "smoke"}
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "smoke", Namespace: ns},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					Containers: []corev1.Container{{Name: "c", Image: "registry.invalid/smoke:1"}},
					// kwok nodes carry no taint, but be explicit.
					Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
				},
			},
		},
	}
	if _, err := env.Client.AppsV1().DaemonSets(ns).Create(ctx, ds, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	lw := cache.NewListWatchFromClient(env.Client.AppsV1().RESTClient(), "daemonsets", ns, fields.OneTermEqualSelector("metadata.name", "smoke"))
	var last appsv1.DaemonSetStatus
	_, err := watchtools.UntilWithSync(ctx, lw, &appsv1.DaemonSet{}, nil, func(ev watch.Event) (bool, error) {
		d := ev.Object.(*appsv1.DaemonSet)
		last = d.Status
		return d.Status.DesiredNumberScheduled >= int32(len(env.Nodes)) &&
			d.Status.NumberReady == d.Status.DesiredNumberScheduled, nil
	})
	if err != nil {
		t.Fatalf("DaemonSet did not roll out: %v (status %+v)", err, last)
	}
}

func TestPVCRoundTrip(t *testing.T) {
	env := testenv.Get(t)
	ns := env.Namespace(t)
	ctx := context.Background()
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "data", Namespace: ns},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}
	if _, err := env.Client.CoreV1().PersistentVolumeClaims(ns).Create(ctx, pvc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := env.Client.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "data", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if q := got.Spec.Resources.Requests[corev1.ResourceStorage]; q.String() != "1Gi" {
		t.Fatalf("request %s, want 1Gi", q.String())
	}
	if err := env.Client.CoreV1().PersistentVolumeClaims(ns).Delete(ctx, "data", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestHeketiHelloAndCluster(t *testing.T) {
	env := testenv.Get(t)
	ctx := context.Background()
	c, err := heketi.New(heketi.Config{URL: env.Heketi.URL})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Hello(ctx); err != nil {
		t.Fatal(err)
	}
	cl, err := c.ClusterCreate(ctx, &heketiapi.ClusterCreateRequest{ClusterFlags: heketiapi.ClusterFlags{Block: true, File: true}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ClusterDelete(ctx, cl.Id); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ClusterInfo(ctx, cl.Id); !heketi.IsNotFound(err) {
		t.Fatalf("ClusterInfo after delete: %v, want not found", err)
	}
}

func TestHeketiAuth(t *testing.T) {
	h := testenv.NewHeketi(t, testenv.HeketiOptions{Auth: true})
	ctx := context.Background()
	admin, _ := heketi.New(heketi.Config{URL: h.URL, User: "admin", Key: h.AdminKey})
	if _, err := admin.ClusterList(ctx); err != nil {
		t.Fatalf("admin: %v", err)
	}
	wrong, _ := heketi.New(heketi.Config{URL: h.URL, User: "admin", Key: "wrong"})
	if _, err := wrong.ClusterList(ctx); !heketi.IsUnauthorized(err) {
		t.Fatalf("wrong key: %v, want unauthorized", err)
	}
	user, _ := heketi.New(heketi.Config{URL: h.URL, User: "user", Key: h.UserKey})
	if _, err := user.ClusterList(ctx); !heketi.IsAdminRequired(err) {
		t.Fatalf("user key: %v, want admin required", err)
	}
}

func TestHeketiRestart(t *testing.T) {
	h := testenv.NewHeketi(t, testenv.HeketiOptions{})
	ctx := context.Background()
	c, _ := heketi.New(heketi.Config{URL: h.URL, Retries: -1})
	cl, err := c.ClusterCreate(ctx, &heketiapi.ClusterCreateRequest{ClusterFlags: heketiapi.ClusterFlags{File: true}})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := c.Hello(ctx); !heketi.IsTransient(err) {
		t.Fatalf("hello on stopped server: %v, want transient", err)
	}
	if err := h.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ClusterInfo(ctx, cl.Id); err != nil {
		t.Fatalf("cluster lost across restart: %v", err)
	}
}
