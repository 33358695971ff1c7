//lint:file-ignore SA1019 the in-tree glusterfs volume source reads v1 Endpoints (not EndpointSlices)

package migrate

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/glusterkube/glusterkube/csi"
	"github.com/glusterkube/glusterkube/internal/heketi"
	"github.com/glusterkube/glusterkube/internal/testenv"
	"github.com/glusterkube/glusterkube/internal/workers"
	"github.com/glusterkube/glusterkube/provisioner"
)

// benchPVs is how many in-tree PVs each side converts;
// GLUSTERKUBE_BENCH_MIGRATE_PVS overrides it.
func benchPVs() int {
	if n, err := strconv.Atoi(os.Getenv("GLUSTERKUBE_BENCH_MIGRATE_PVS")); err == nil && n > 0 {
		return n
	}
	return 200
}

// benchParallel is the conversions in flight on both sides.
const benchParallel = 8

// BenchmarkMigrate converts N PVs the in-tree provisioner made (Delete
// class, bound claims, Endpoints and Services as v1.25 made them) with
// `migrate apply` (plan included), and checks every claim is Bound to its
// old PV name, now a CSI PV with its old policy. In the same run it
// measures the floor: the same N conversions by a bare loop that makes
// the API writes a conversion needs and nothing more (no Retain, no
// record, no checks: delete, strip finalizers, create, touch the claim,
// wait Bound, delete Endpoints and Service), at the same concurrency. It
// reports both rates and their ratio, the price of crash safety.
func BenchmarkMigrate(b *testing.B) {
	env := testenv.Get(b)
	quietLogs()
	n := benchPVs()
	// heketi takes 8 operations at a time: the fixtures' client keeps to it.
	h, err := heketi.New(heketi.Config{URL: env.Heketi.URL, MaxInflight: heketi.DefaultMaxInflight})
	if err != nil {
		b.Fatal(err)
	}
	cluster := testenv.HeketiCluster(b, h)
	kube := fastClient(b, env.Config)
	for range b.N {
		// The service range of the test API server holds 254 ClusterIPs:
		// one side's fixtures at a time (conversions free them).
		mig, planned := migrateRun(b, env, kube, h, cluster, n)
		floor := floorRun(b, env, kube, h, cluster, n)
		rate := func(d time.Duration) float64 { return float64(n) / d.Seconds() }
		b.ReportMetric(rate(mig), "migrate-pv/s")
		b.ReportMetric(rate(floor), "floor-pv/s")
		b.ReportMetric(mig.Seconds()/floor.Seconds(), "migrate/floor-time")
		fmt.Printf("migrate: %d in-tree PVs converted in %.1fs (plan %.1fs, then apply; %.1f PV/s, %d at a time), every claim Bound to its PV name; bare floor %.1fs (%.1f PV/s); migrate takes %.2fx the floor's time\n",
			n, mig.Seconds(), planned.Seconds(), rate(mig), benchParallel, floor.Seconds(), rate(floor), mig.Seconds()/floor.Seconds())
	}
}

func quietLogs() {
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	_ = fs.Set("logtostderr", "false")
	_ = fs.Set("alsologtostderr", "false")
	_ = fs.Set("stderrthreshold", "FATAL")
	klog.SetOutput(io.Discard)
}

// benchFixtures makes n in-tree PVs bound to claims of a fresh namespace.
func benchFixtures(b *testing.B, env *testenv.Env, kube kubernetes.Interface, h *heketi.Client, cluster string, n int) (string, []*testenv.InTreeVolume) {
	b.Helper()
	ns := env.Namespace(b)
	cleanupPVs(b, kube, ns)
	class := createClass(b, kube, testenv.InTreeClass(ns, v1.PersistentVolumeReclaimDelete,
		map[string]string{"resturl": env.Heketi.URL, "restauthenabled": "false", "clusterid": cluster}, "log-level=WARNING"))
	vols := make([]*testenv.InTreeVolume, n)
	names := make([]string, n)
	err := workers.ForEach(context.Background(), n, heketi.DefaultMaxInflight, func(ctx context.Context, i int) error {
		names[i] = fmt.Sprintf("data-%03d", i)
		v, err := testenv.MakeInTreeVolume(ctx, kube, h, class, testenv.InTreeClaim(ns, names[i], class.Name, "1Gi"), int64(2000+i))
		vols[i] = v
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	waitBound(b, kube, ns, names, 5*time.Minute)
	b.Cleanup(func() { deleteHeketiVolumes(h, vols) })
	return ns, vols
}

func deleteHeketiVolumes(h *heketi.Client, vols []*testenv.InTreeVolume) {
	_ = workers.ForEach(context.Background(), len(vols), 8, func(ctx context.Context, i int) error {
		_ = h.VolumeDelete(ctx, vols[i].HeketiID)
		return nil
	})
}

// checkConverted fails unless every claim is Bound to its old PV name,
// now a CSI PV with reclaim policy Delete.
func checkConverted(b *testing.B, kube kubernetes.Interface, ns string, vols []*testenv.InTreeVolume) {
	b.Helper()
	names := make([]string, len(vols))
	for i, v := range vols {
		names[i] = v.Claim.Name
	}
	bound := waitBound(b, kube, ns, names, time.Minute)
	list, err := kube.CoreV1().PersistentVolumes().List(context.Background(), metav1.ListOptions{})
	if err != nil {
		b.Fatal(err)
	}
	pvs := map[string]*v1.PersistentVolume{}
	for i := range list.Items {
		pvs[list.Items[i].Name] = &list.Items[i]
	}
	for _, v := range vols {
		pv := pvs[bound[v.Claim.Name]]
		if bound[v.Claim.Name] != v.PV.Name || pv == nil || pv.Spec.CSI == nil || pv.Spec.PersistentVolumeReclaimPolicy != v1.PersistentVolumeReclaimDelete {
			b.Fatalf("claim %s: bound to %s (was %s), PV %+v", v.Claim.Name, bound[v.Claim.Name], v.PV.Name, pv)
		}
	}
}

// migrateRun returns the time of plan + apply, and of the plan alone.
func migrateRun(b *testing.B, env *testenv.Env, kube kubernetes.Interface, h *heketi.Client, cluster string, n int) (time.Duration, time.Duration) {
	b.Helper()
	ns, vols := benchFixtures(b, env, kube, h, cluster, n)
	recNS := env.Namespace(b)
	m := newMigrator(b, env, "glusterkube.io/bench", recNS, func(c *Config) { c.Parallel = benchParallel })
	ctx := context.Background()
	start := time.Now()
	plan, err := m.Plan(ctx, Selection{Selector: nil, Claims: claimNames(ns, vols)})
	if err != nil {
		b.Fatal(err)
	}
	planned := time.Since(start)
	if plan.Count(StateReady) != n {
		b.Fatalf("plan: %d ready of %d", plan.Count(StateReady), n)
	}
	rep := m.Apply(ctx, plan, nil)
	took := time.Since(start)
	if rep.Count(OutcomeConverted) != n {
		b.Fatalf("apply: %d converted of %d: %+v", rep.Count(OutcomeConverted), n, rep.Results[0])
	}
	checkConverted(b, kube, ns, vols)
	return took, planned
}

func claimNames(ns string, vols []*testenv.InTreeVolume) []types.NamespacedName {
	out := make([]types.NamespacedName, len(vols))
	for i, v := range vols {
		out[i] = types.NamespacedName{Namespace: ns, Name: v.Claim.Name}
	}
	return out
}

// floorRun converts the PVs with the bare minimum of API work.
func floorRun(b *testing.B, env *testenv.Env, kube kubernetes.Interface, h *heketi.Client, cluster string, n int) time.Duration {
	b.Helper()
	ns, vols := benchFixtures(b, env, kube, h, cluster, n)
	m := newMigrator(b, env, "glusterkube.io/bench", "unused", nil) // for its waits
	var mu sync.Mutex
	var firstErr error
	start := time.Now()
	_ = workers.ForEach(context.Background(), n, benchParallel, func(ctx context.Context, i int) error {
		if err := floorConvert(ctx, m, kube, vols[i]); err != nil {
			mu.Lock()
			if firstErr == nil {
				firstErr = err
			}
			mu.Unlock()
		}
		return nil
	})
	took := time.Since(start)
	if firstErr != nil {
		b.Fatal(firstErr)
	}
	checkConverted(b, kube, ns, vols)
	return took
}

func floorConvert(ctx context.Context, m *Migrator, kube kubernetes.Interface, v *testenv.InTreeVolume) error {
	pvs := kube.CoreV1().PersistentVolumes()
	old, err := pvs.Get(ctx, v.PV.Name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	if err := pvs.Delete(ctx, old.Name, metav1.DeleteOptions{}); err != nil {
		return err
	}
	if err := provisioner.RemoveFinalizers(ctx, kube, old.Name, old.UID, knownFinalizers...); err != nil {
		return err
	}
	if _, err := m.waitPV(ctx, old.Name, time.Minute, "gone", func(pv *v1.PersistentVolume) bool { return pv == nil }); err != nil {
		return err
	}
	var ips []string
	for _, a := range v.Endpoints.Subsets[0].Addresses {
		ips = append(ips, a.IP)
	}
	pv := &v1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: old.Name, Annotations: old.Annotations, Labels: old.Labels},
		Spec:       old.Spec,
	}
	pv.Spec.PersistentVolumeSource = v1.PersistentVolumeSource{CSI: &v1.CSIPersistentVolumeSource{
		Driver: csi.DriverName, VolumeHandle: v.HeketiID,
		VolumeAttributes: map[string]string{csi.ContextServers: strings.Join(ips, ","), csi.ContextVolume: v.HeketiName},
	}}
	pv.Annotations[provisioner.AnnProvisionedBy] = "glusterkube.io/bench"
	created, err := pvs.Create(ctx, pv, metav1.CreateOptions{})
	if err != nil {
		return err
	}
	if _, err := m.waitPV(ctx, pv.Name, time.Minute, "PV Bound", func(pv *v1.PersistentVolume) bool {
		return pv != nil && pv.UID == created.UID && pv.Status.Phase == v1.VolumeBound
	}); err != nil {
		return err
	}
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{"touch": time.Now().String()}}})
	claims := kube.CoreV1().PersistentVolumeClaims(v.Claim.Namespace)
	if _, err := claims.Patch(ctx, v.Claim.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return err
	}
	if _, err := m.waitClaim(ctx, v.Claim.Namespace, v.Claim.Name, time.Minute, "claim Bound", func(c *v1.PersistentVolumeClaim) bool {
		return c != nil && c.Status.Phase == v1.ClaimBound
	}); err != nil {
		return err
	}
	_ = kube.CoreV1().Services(v.Claim.Namespace).Delete(ctx, v.Service.Name, metav1.DeleteOptions{})
	_ = kube.CoreV1().Endpoints(v.Claim.Namespace).Delete(ctx, v.Endpoints.Name, metav1.DeleteOptions{})
	return nil
}
