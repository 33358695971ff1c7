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
// Bound; in the same run it creates N volumes straight through the heketi
// client at the same concurrency (heketi's inflight cap). It reports both
// rates and their ratio (target: >= 0.8).
func BenchmarkProvision(b *testing.B) {
	env := testenv.Get(b)
	quietLogs()
	n := benchClaims()
	inflight := heketi.DefaultMaxInflight
	for range b.N {
		// Each side gets a fresh heketi server of its own: heketi slows
		// down as its database fills, so sharing one would favour
		// whichever side runs first. Raw heketi runs before and after the
		// provisioner, so drift in the machine's load biases neither side.
		rawBefore := rawCreates(b, n, inflight)

		hk := testenv.NewHeketi(b, testenv.HeketiOptions{})
		hc, err := heketi.New(heketi.Config{URL: hk.URL, MaxInflight: inflight})
		if err != nil {
			b.Fatal(err)
		}
		pvcCluster := heketiCluster(b, hc)

		// The provisioner: N claims at once, until all Bound.
		ns := env.Namespace(b)
		r := startProvisioner(b, env, provName(ns), heketi.Config{URL: hk.URL, MaxInflight: inflight}, nil)
		kube := fastClient(b, env.Config)
		sc := ns + "-bench"
		createClass(b, kube, storageClass(sc, r.name, v1.PersistentVolumeReclaimDelete, map[string]string{"clusterid": pvcCluster}))
		// Warm up: a running provisioner has read heketi's volumes once
		// (its index) and verified its credentials; do that off the clock.
		if _, err := kube.CoreV1().PersistentVolumeClaims(ns).Create(context.Background(), newClaim(ns, "warmup", sc, "1Gi"), metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
		waitBound(b, kube, ns, []string{"warmup"}, time.Minute)
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
			b.Fatalf("%d of %d claims Bound after 10m (%d PVs)", bound.Load(), n, provisioned.Load())
		}
		prov := time.Since(start)
		close(stop)
		provDone := time.Duration(provDoneNs.Load())

		r.stop()
		rawAfter := rawCreates(b, n, inflight)
		floor := floorProvision(b, env, n, inflight)
		floorRate := float64(n) / floor.Seconds()
		raw := (rawBefore + rawAfter) / 2
		rawRate := float64(n) / raw.Seconds()
		provRate := float64(n) / prov.Seconds()
		pvRate := float64(n) / provDone.Seconds()
		b.ReportMetric(rawRate, "raw-vol/s")
		b.ReportMetric(provRate, "bound-pvc/s")
		b.ReportMetric(pvRate, "pv/s")
		b.ReportMetric(provRate/rawRate, "ratio")
		b.ReportMetric(floorRate, "floor-pvc/s")
		b.ReportMetric(provRate/floorRate, "floor-ratio")
		fmt.Printf("provisioner: %d claims Bound in %s (%.1f/s; all PVs created after %s, %.1f/s); raw heketi: %d volumes in %s (%.1f/s; before %.1f/s, after %.1f/s); ratio %.2f (target >= 0.80)\n",
			n, prov.Round(time.Millisecond), provRate, provDone.Round(time.Millisecond), pvRate, n, raw.Round(time.Millisecond), rawRate,
			float64(n)/rawBefore.Seconds(), float64(n)/rawAfter.Seconds(), provRate/rawRate)
		fmt.Printf("floor (the same heketi creates, Services, Endpoints and pre-bound PVs by a bare loop, bound by the PV controller): %d claims Bound in %s (%.1f/s); provisioner/floor ratio %.2f\n",
			n, floor.Round(time.Millisecond), floorRate, provRate/floorRate)
		if c := r.calls.get("volume_create") - warmCreates; c != n {
			b.Errorf("provisioner made %d heketi creates for %d claims", c, n)
		}
	}
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
