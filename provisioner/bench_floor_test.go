//lint:file-ignore SA1019 the floor makes what in-tree PVs need: v1 Endpoints and the glusterfs source

package provisioner

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heketi/heketi/pkg/glusterfs/api"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/glusterkube/glusterkube/csi"
	"github.com/glusterkube/glusterkube/internal/heketi"
	"github.com/glusterkube/glusterkube/internal/testenv"
)

// quietLogs keeps a benchmark's output to its figures: the provisioner's
// per-claim logs and the API server's deprecation warnings go nowhere.
func quietLogs() {
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	_ = fs.Set("logtostderr", "false")
	_ = fs.Set("alsologtostderr", "false")
	_ = fs.Set("stderrthreshold", "FATAL")
	klog.SetOutput(io.Discard)
}

// floorProvision is the least work that turns n claims into n Bound
// volumes on this stack, with no provisioner: it creates the claims (of a
// class nobody provisions) and, for each, the heketi volume (inflight at
// once) and a PV pre-bound to the claim — a CSI PV, or (csiPV false) an
// in-tree PV with its Service and Endpoints — then waits until the real PV
// controller has bound them all. What the provisioner adds on top of this
// is its own cost; what this costs beyond raw heketi is the API server's
// and the PV controller's share of the machine.
func floorProvision(b *testing.B, env *testenv.Env, n, inflight int, csiPV bool) time.Duration {
	b.Helper()
	hk := testenv.NewHeketi(b, testenv.HeketiOptions{})
	hc, err := heketi.New(heketi.Config{URL: hk.URL, MaxInflight: inflight})
	if err != nil {
		b.Fatal(err)
	}
	defer hc.Close()
	cluster := heketiCluster(b, hc)
	kube := fastClient(b, env.Config)
	ns := env.Namespace(b)
	sc := ns + "-floor"
	createClass(b, kube, storageClass(sc, "glusterkube.io/nobody", v1.PersistentVolumeReclaimRetain, nil))

	var bound atomic.Int32
	allBound := make(chan struct{})
	seen := sync.Map{}
	onClaim := func(obj any) {
		c, ok := obj.(*v1.PersistentVolumeClaim)
		if !ok || c.Status.Phase != v1.ClaimBound {
			return
		}
		if _, dup := seen.LoadOrStore(c.Name, true); !dup && int(bound.Add(1)) == n {
			close(allBound)
		}
	}
	factory := informers.NewSharedInformerFactoryWithOptions(kube, 0, informers.WithNamespace(ns))
	_, _ = factory.Core().V1().PersistentVolumeClaims().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: onClaim, UpdateFunc: func(_, o any) { onClaim(o) },
	})
	stop := make(chan struct{})
	defer close(stop)
	factory.Start(stop)
	factory.WaitForCacheSync(stop)

	start := time.Now()
	var wg sync.WaitGroup
	var failed atomic.Int32
	var firstErr atomic.Value
	sem := make(chan struct{}, 2*inflight) // the provisioner's default workers
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := floorOne(kube, hc, ns, sc, cluster, i, csiPV); err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, err)
			}
		}()
	}
	wg.Wait()
	if f := failed.Load(); f > 0 {
		b.Fatalf("floor: %d of %d claims failed, first: %v", f, n, firstErr.Load())
	}
	select {
	case <-allBound:
	case <-time.After(10 * time.Minute):
		b.Fatalf("floor: %d of %d claims Bound after 10m", bound.Load(), n)
	}
	d := time.Since(start)
	_ = hk.Close()
	return d
}

func floorOne(kube kubernetes.Interface, hc *heketi.Client, ns, sc, cluster string, i int, csiPV bool) error {
	ctx := context.Background()
	claim, err := kube.CoreV1().PersistentVolumeClaims(ns).Create(ctx, newClaim(ns, fmt.Sprintf("f%03d", i), sc, "1Gi"), metav1.CreateOptions{})
	if err != nil {
		return err
	}
	name := fmt.Sprintf("floor-%s-%03d", ns, i)
	req := &api.VolumeCreateRequest{Size: 1, Name: name, Clusters: []string{cluster}, Gid: int64(2000 + i),
		Durability: api.VolumeDurabilityInfo{Type: api.DurabilityReplicate, Replicate: api.ReplicaDurability{Replica: 3}}}
	req.Snapshot.Enable, req.Snapshot.Factor = true, 1
	vol, err := hc.VolumeCreate(ctx, req)
	if err != nil {
		return err
	}
	var src v1.PersistentVolumeSource
	if csiPV {
		src.CSI = &v1.CSIPersistentVolumeSource{Driver: csi.DriverName, VolumeHandle: vol.Id, VolumeAttributes: map[string]string{
			csi.ContextServers: strings.Join(vol.Mount.GlusterFS.Hosts, ","), csi.ContextVolume: vol.Name,
		}}
	} else {
		ep := "glusterfs-dynamic-" + claim.Name
		if _, err := kube.CoreV1().Services(ns).Create(ctx, &v1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: ep},
			Spec:       v1.ServiceSpec{ClusterIP: v1.ClusterIPNone, Ports: []v1.ServicePort{{Protocol: v1.ProtocolTCP, Port: 1}}},
		}, metav1.CreateOptions{}); err != nil {
			return err
		}
		var addrs []v1.EndpointAddress
		for _, h := range vol.Mount.GlusterFS.Hosts {
			addrs = append(addrs, v1.EndpointAddress{IP: h})
		}
		if _, err := kube.CoreV1().Endpoints(ns).Create(ctx, &v1.Endpoints{
			ObjectMeta: metav1.ObjectMeta{Name: ep},
			Subsets:    []v1.EndpointSubset{{Addresses: addrs, Ports: []v1.EndpointPort{{Port: 1}}}},
		}, metav1.CreateOptions{}); err != nil {
			return err
		}
		src.Glusterfs = &v1.GlusterfsPersistentVolumeSource{EndpointsName: ep, Path: vol.Name, EndpointsNamespace: &ns}
	}
	_, err = kube.CoreV1().PersistentVolumes().Create(ctx, &v1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1.PersistentVolumeSpec{
			Capacity:                      v1.ResourceList{v1.ResourceStorage: resource.MustParse("1Gi")},
			AccessModes:                   claim.Spec.AccessModes,
			PersistentVolumeReclaimPolicy: v1.PersistentVolumeReclaimRetain,
			StorageClassName:              sc,
			ClaimRef:                      &v1.ObjectReference{Kind: "PersistentVolumeClaim", Namespace: ns, Name: claim.Name, UID: claim.UID},
			PersistentVolumeSource:        src,
		},
	}, metav1.CreateOptions{})
	return err
}
