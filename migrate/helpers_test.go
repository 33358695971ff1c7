//lint:file-ignore SA1019 the in-tree glusterfs volume source reads v1 Endpoints (not EndpointSlices)

package migrate

import (
	"context"
	"os"
	"sort"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/glusterkube/glusterkube/internal/heketi"
	"github.com/glusterkube/glusterkube/internal/testenv"
	"github.com/glusterkube/glusterkube/provisioner"
)

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, testenv.Options{Kube: true, Heketi: true}))
}

// fastClient is a clientset with more room than the environment's (QPS 200):
// the benchmark converts hundreds of PVs at once.
func fastClient(t testing.TB, cfg *rest.Config) kubernetes.Interface {
	t.Helper()
	c := rest.CopyConfig(cfg)
	c.QPS, c.Burst = 500, 1000
	cs, err := kubernetes.NewForConfig(c)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func heketiClient(t testing.TB, url string) *heketi.Client {
	t.Helper()
	h, err := heketi.New(heketi.Config{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// heketiIDs lists the volume ids of a heketi cluster, sorted.
func heketiIDs(t testing.TB, h *heketi.Client, cluster string) []string {
	t.Helper()
	var ids []string
	for _, v := range testenv.ClusterVolumes(t, h, cluster) {
		ids = append(ids, v.Id)
	}
	sort.Strings(ids)
	return ids
}

// newMigrator is a fresh process's Migrator (a re-run after a crash
// starts from nothing but the cluster).
func newMigrator(t testing.TB, env *testenv.Env, provName, recordNS string, mutate func(*Config)) *Migrator {
	t.Helper()
	cfg := Config{Kube: fastClient(t, env.Config), Heketi: heketi.Config{URL: env.Heketi.URL}, ProvisionerName: provName,
		RecordNamespace: recordNS, BindTimeout: time.Minute}
	if mutate != nil {
		mutate(&cfg)
	}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// startProvisioner runs glusterkube's provisioner in-process under a name
// of the test's own; mutate, when given, changes its Config.
func startProvisioner(t testing.TB, env *testenv.Env, name string, mutate ...func(*provisioner.Config)) {
	t.Helper()
	cfg := provisioner.Config{Name: name, Kube: fastClient(t, env.Config),
		Heketi: heketi.Config{URL: env.Heketi.URL, MaxInflight: heketi.DefaultMaxInflight}, InTreeClasses: provisioner.InTreeOff}
	for _, f := range mutate {
		f(&cfg)
	}
	p, err := provisioner.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		err := provisioner.Run(ctx, p, provisioner.RunOptions{RetryIntervalStart: 100 * time.Millisecond, RetryIntervalMax: 2 * time.Second,
			Ready: func() { close(ready) }})
		if err != nil {
			t.Errorf("provisioner: %v", err)
		}
	}()
	<-ready
	t.Cleanup(func() { cancel(); <-done })
}

func createClass(t testing.TB, kube kubernetes.Interface, sc *storagev1.StorageClass) *storagev1.StorageClass {
	t.Helper()
	out, err := kube.StorageV1().StorageClasses().Create(context.Background(), sc, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = kube.StorageV1().StorageClasses().Delete(context.Background(), sc.Name, metav1.DeleteOptions{})
	})
	return out
}

// eventually polls cond until it holds or timeout passes.
var eventually = testenv.Eventually

// waitBound waits until the claims of ns are Bound and returns their
// volume names.
func waitBound(t testing.TB, kube kubernetes.Interface, ns string, claims []string, timeout time.Duration) map[string]string {
	t.Helper()
	out := map[string]string{}
	for name, c := range testenv.WaitClaimsBound(t, kube, ns, claims, timeout) {
		out[name] = c.Spec.VolumeName
	}
	return out
}

// makeInTree makes n claims of class with what the in-tree provisioner
// left for them, and waits until they are Bound.
func makeInTree(t testing.TB, kube kubernetes.Interface, h *heketi.Client, class *storagev1.StorageClass, ns string, names ...string) map[string]*testenv.InTreeVolume {
	t.Helper()
	out := map[string]*testenv.InTreeVolume{}
	for i, n := range names {
		v, err := testenv.MakeInTreeVolume(context.Background(), kube, h, class, testenv.InTreeClaim(ns, n, class.Name, "1Gi"), int64(2000+i))
		if err != nil {
			t.Fatal(err)
		}
		out[n] = v
	}
	waitBound(t, kube, ns, names, 2*time.Minute)
	return out
}

func getPV(t testing.TB, kube kubernetes.Interface, name string) *v1.PersistentVolume {
	t.Helper()
	pv, err := kube.CoreV1().PersistentVolumes().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("PV %s: %v", name, err)
	}
	return pv
}

func getClaim(t testing.TB, kube kubernetes.Interface, ns, name string) *v1.PersistentVolumeClaim {
	t.Helper()
	c, err := kube.CoreV1().PersistentVolumeClaims(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("claim %s/%s: %v", ns, name, err)
	}
	return c
}

// cleanupPVs deletes, at the end of the test, the PVs bound to claims of ns
// (Retain ones outlive their claims), with their finalizers.
func cleanupPVs(t testing.TB, kube kubernetes.Interface, ns string) {
	t.Cleanup(func() {
		ctx := context.Background()
		list, err := kube.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return
		}
		for _, pv := range list.Items {
			if pv.Spec.ClaimRef == nil || pv.Spec.ClaimRef.Namespace != ns {
				continue
			}
			_ = kube.CoreV1().PersistentVolumes().Delete(ctx, pv.Name, metav1.DeleteOptions{})
			_ = provisioner.RemoveFinalizers(ctx, kube, pv.Name, pv.UID, knownFinalizers...)
		}
	})
}

// endpointsExist reports whether Endpoints and Service ns/name exist.
func endpointsExist(t testing.TB, kube kubernetes.Interface, ns, name string) (ep, svc bool) {
	t.Helper()
	_, e1 := kube.CoreV1().Endpoints(ns).Get(context.Background(), name, metav1.GetOptions{})
	_, e2 := kube.CoreV1().Services(ns).Get(context.Background(), name, metav1.GetOptions{})
	return e1 == nil, e2 == nil
}
