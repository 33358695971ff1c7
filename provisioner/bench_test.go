package provisioner

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heketi/heketi/pkg/glusterfs/api"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"

	"github.com/glusterkube/glusterkube/internal/heketi"
	"github.com/glusterkube/glusterkube/internal/testenv"
	"github.com/glusterkube/glusterkube/volume"
)

// benchClaims is how many claims (and raw volumes) the benchmark makes;
// GLUSTERKUBE_BENCH_CLAIMS overrides it.
func benchClaims() int {
	if n, err := strconv.Atoi(os.Getenv("GLUSTERKUBE_BENCH_CLAIMS")); err == nil && n > 0 {
		return n
	}
	return 300
}

// BenchmarkProvision creates N claims at once and times them until all are
// Bound, with CSI PVs (the default: one API write per claim, the PV)
// and with in-tree PVs (volumesource: glusterfs: a Service, Endpoints and
// the PV). In the same run it measures each path's floor — the same heketi
// creates and API writes by a bare loop (floorProvision) — and raw heketi
// (N creates straight through the client at the same concurrency). It
// reports the rates and the ratios CSI/in-tree, CSI/its floor, in-tree/its
// floor and provisioner/raw heketi.
func BenchmarkProvision(b *testing.B) {
	env := testenv.Get(b)
	quietLogs()
	n := benchClaims()
	inflight := heketi.DefaultMaxInflight
	for range b.N {
		// Each side gets a fresh heketi server of its own: heketi slows
		// down as its database fills, so sharing one would favour
		// whichever side runs first. The machine's load drifts (other
		// work, caches), so every side runs twice, in mirrored order
		// (raw, CSI, in-tree, their floors, the floors again, in-tree,
		// CSI, raw), and its two times are averaged: a drift that is
		// linear over the run then biases no side.
		rawBefore := rawCreates(b, n, inflight)
		csi1 := provisionRun(b, env, n, inflight, volume.VolumeSourceCSI)
		tree1 := provisionRun(b, env, n, inflight, volume.VolumeSourceGlusterfs)
		treeFloor1 := floorProvision(b, env, n, inflight, false)
		csiFloor1 := floorProvision(b, env, n, inflight, true)
		csiFloor2 := floorProvision(b, env, n, inflight, true)
		treeFloor2 := floorProvision(b, env, n, inflight, false)
		tree2 := provisionRun(b, env, n, inflight, volume.VolumeSourceGlusterfs)
		csi2 := provisionRun(b, env, n, inflight, volume.VolumeSourceCSI)
		rawAfter := rawCreates(b, n, inflight)
		csiRun, treeRun := csi1.mean(csi2), tree1.mean(tree2)
		csiFloor, treeFloor := (csiFloor1+csiFloor2)/2, (treeFloor1+treeFloor2)/2

		rate := func(d time.Duration) float64 { return float64(n) / d.Seconds() }
		raw := (rawBefore + rawAfter) / 2
		b.ReportMetric(rate(raw), "raw-vol/s")
		b.ReportMetric(rate(csiRun.bound), "csi-pvc/s")
		b.ReportMetric(rate(treeRun.bound), "intree-pvc/s")
		b.ReportMetric(rate(csiFloor), "csi-floor-pvc/s")
		b.ReportMetric(rate(treeFloor), "intree-floor-pvc/s")
		b.ReportMetric(rate(csiRun.bound)/rate(treeRun.bound), "csi/intree")
		b.ReportMetric(rate(csiRun.bound)/rate(csiFloor), "csi/floor")
		b.ReportMetric(rate(treeRun.bound)/rate(treeFloor), "intree/floor")
		b.ReportMetric(rate(csiRun.bound)/rate(raw), "csi/raw")
		for _, r := range []struct {
			name  string
			run   provisionResult
			floor time.Duration
		}{{"CSI PVs", csiRun, csiFloor}, {"in-tree PVs", treeRun, treeFloor}} {
			fmt.Printf("provisioner, %s: %d claims Bound in %s (%.1f/s; all PVs created after %s, %.1f/s); floor (the same heketi creates and API writes by a bare loop, bound by the PV controller): %s (%.1f/s); provisioner/floor %.2f\n",
				r.name, n, r.run.bound.Round(time.Millisecond), rate(r.run.bound), r.run.pvs.Round(time.Millisecond), rate(r.run.pvs),
				r.floor.Round(time.Millisecond), rate(r.floor), rate(r.run.bound)/rate(r.floor))
		}
		fmt.Printf("runs (first, second): CSI %s %s, in-tree %s %s, CSI floor %s %s, in-tree floor %s %s\n",
			csi1.bound.Round(time.Millisecond), csi2.bound.Round(time.Millisecond), tree1.bound.Round(time.Millisecond), tree2.bound.Round(time.Millisecond),
			csiFloor1.Round(time.Millisecond), csiFloor2.Round(time.Millisecond), treeFloor1.Round(time.Millisecond), treeFloor2.Round(time.Millisecond))
		fmt.Printf("CSI/in-tree: %.2f (CSI PVs take one API write per claim instead of three); raw heketi: %d volumes in %s (%.1f/s; before %.1f/s, after %.1f/s); CSI/raw %.2f, in-tree/raw %.2f\n",
			rate(csiRun.bound)/rate(treeRun.bound), n, raw.Round(time.Millisecond), rate(raw), rate(rawBefore), rate(rawAfter),
			rate(csiRun.bound)/rate(raw), rate(treeRun.bound)/rate(raw))
	}
}

// provisionResult is one provisioner run: until every claim was Bound,
// and until every PV existed.
type provisionResult struct {
	bound, pvs time.Duration
}

func (r provisionResult) mean(o provisionResult) provisionResult {
	return provisionResult{bound: (r.bound + o.bound) / 2, pvs: (r.pvs + o.pvs) / 2}
}

// provisionRun runs a provisioner on a fresh heketi server and times n
// claims of a class with the given volumesource from creation to Bound.
func provisionRun(b *testing.B, env *testenv.Env, n, inflight int, source string) provisionResult {
	b.Helper()
	hk := testenv.NewHeketi(b, testenv.HeketiOptions{})
	hc, err := heketi.New(heketi.Config{URL: hk.URL, MaxInflight: inflight})
	if err != nil {
		b.Fatal(err)
	}
	pvcCluster := heketiCluster(b, hc)

	ns := env.Namespace(b)
	r := startProvisioner(b, env, provName(ns), heketi.Config{URL: hk.URL, MaxInflight: inflight}, nil)
	defer r.stop()
	kube := fastClient(b, env.Config)
	sc := ns + "-bench"
	createClass(b, kube, storageClass(sc, r.name, v1.PersistentVolumeReclaimDelete, map[string]string{"clusterid": pvcCluster, volume.ParamVolumeSource: source}))
	// Warm up: a running provisioner has read heketi's volumes once
	// (its index) and verified its credentials; do that off the clock.
	if _, err := kube.CoreV1().PersistentVolumeClaims(ns).Create(context.Background(), newClaim(ns, "warmup", sc, "1Gi"), metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	warm := waitBound(b, kube, ns, []string{"warmup"}, time.Minute)["warmup"]
	if (warm.Spec.CSI != nil) != (source == volume.VolumeSourceCSI) {
		b.Fatalf("volumesource %s made PV source %+v", source, warm.Spec.PersistentVolumeSource)
	}
	warmCreates := r.calls.get("volume_create")

	var start time.Time
	var bound atomic.Int32
	allBound := make(chan struct{})
	seen := sync.Map{}
	factory := informers.NewSharedInformerFactoryWithOptions(kube, 0, informers.WithNamespace(ns))
	onClaim := func(obj any) {
		c, ok := obj.(*v1.PersistentVolumeClaim)
		if !ok || c.Status.Phase != v1.ClaimBound || c.Name == "warmup" {
			return
		}
		if _, dup := seen.LoadOrStore(c.Name, true); !dup && int(bound.Add(1)) == n {
			close(allBound)
		}
	}
	_, _ = factory.Core().V1().PersistentVolumeClaims().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: onClaim, UpdateFunc: func(_, o any) { onClaim(o) },
	})
	var provisioned atomic.Int32
	var provDoneNs atomic.Int64
	pvSeen := sync.Map{}
	onPV := func(obj any) {
		pv, ok := obj.(*v1.PersistentVolume)
		if !ok || pv.Spec.ClaimRef == nil || pv.Spec.ClaimRef.Namespace != ns || pv.Spec.ClaimRef.Name == "warmup" {
			return
		}
		if _, dup := pvSeen.LoadOrStore(pv.Name, true); !dup && int(provisioned.Add(1)) == n {
			provDoneNs.Store(int64(time.Since(start)))
		}
	}
	pvFactory := informers.NewSharedInformerFactory(kube, 0)
	_, _ = pvFactory.Core().V1().PersistentVolumes().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: onPV, UpdateFunc: func(_, o any) { onPV(o) },
	})
	stop := make(chan struct{})
	factory.Start(stop)
	pvFactory.Start(stop)
	factory.WaitForCacheSync(stop)
	pvFactory.WaitForCacheSync(stop)

	start = time.Now()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if _, err := kube.CoreV1().PersistentVolumeClaims(ns).Create(context.Background(), newClaim(ns, fmt.Sprintf("c%03d", i), sc, "1Gi"), metav1.CreateOptions{}); err != nil {
				b.Error(err)
			}
		}()
	}
	wg.Wait()
	select {
	case <-allBound:
	case <-time.After(10 * time.Minute):
		close(stop)
		b.Fatalf("%s: %d of %d claims Bound after 10m (%d PVs)", source, bound.Load(), n, provisioned.Load())
	}
	res := provisionResult{bound: time.Since(start)}
	close(stop)
	res.pvs = time.Duration(provDoneNs.Load())
	if c := r.calls.get("volume_create") - warmCreates; c != n {
		b.Errorf("%s: provisioner made %d heketi creates for %d claims", source, c, n)
	}
	hc.Close()
	return res
}

// rawCreates makes n volumes straight through the heketi client on a fresh
// heketi server, inflight at once, and returns the time taken.
func rawCreates(b *testing.B, n, inflight int) time.Duration {
	b.Helper()
	hk := testenv.NewHeketi(b, testenv.HeketiOptions{})
	hc, err := heketi.New(heketi.Config{URL: hk.URL, MaxInflight: inflight})
	if err != nil {
		b.Fatal(err)
	}
	cluster := heketiCluster(b, hc)
	start := time.Now()
	var wg sync.WaitGroup
	var failed atomic.Int32
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := &api.VolumeCreateRequest{Size: 1, Name: fmt.Sprintf("raw_%d", i), Clusters: []string{cluster}, Gid: int64(2000 + i),
				Durability: api.VolumeDurabilityInfo{Type: api.DurabilityReplicate, Replicate: api.ReplicaDurability{Replica: 3}}}
			req.Snapshot.Enable, req.Snapshot.Factor = true, 1
			if _, err := hc.VolumeCreate(context.Background(), req); err != nil {
				failed.Add(1)
				b.Log(err)
			}
		}()
	}
	wg.Wait()
	d := time.Since(start)
	if failed.Load() > 0 {
		b.Fatalf("%d raw creates failed", failed.Load())
	}
	hc.Close()
	_ = hk.Close()
	return d
}
