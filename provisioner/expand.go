package provisioner

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	corelisters "k8s.io/client-go/listers/core/v1"
	storagelisters "k8s.io/client-go/listers/storage/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"

	"github.com/glusterkube/glusterkube/internal/workers"
	"github.com/glusterkube/glusterkube/volume"
)

// Expander grows the heketi volumes of bound claims whose request
// exceeds their volume, for classes with allowVolumeExpansion, for both
// kinds of PV the provisioner makes. Nothing else in Kubernetes resizes
// glusterfs PVs since the in-tree plugin went; CSI PVs could be grown by
// the CSI external-resizer too, which the expander then leaves alone.
type Expander struct {
	p       *Provisioner
	claims  corelisters.PersistentVolumeClaimLister
	volumes corelisters.PersistentVolumeLister
	classes storagelisters.StorageClassLister
	synced  []cache.InformerSynced
	queue   workqueue.TypedRateLimitingInterface[string]
}

// NewExpander wires an Expander to the factory's informers; start the
// factory after this.
func NewExpander(p *Provisioner, f informers.SharedInformerFactory) (*Expander, error) {
	claims := f.Core().V1().PersistentVolumeClaims()
	volumes := f.Core().V1().PersistentVolumes()
	classes := f.Storage().V1().StorageClasses()
	e := &Expander{
		p:       p,
		claims:  claims.Lister(),
		volumes: volumes.Lister(),
		classes: classes.Lister(),
		synced:  []cache.InformerSynced{claims.Informer().HasSynced, volumes.Informer().HasSynced, classes.Informer().HasSynced},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](time.Second, 5*time.Minute),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "glusterkube-expand"}),
	}
	_, err := claims.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    e.enqueue,
		UpdateFunc: func(_, obj any) { e.enqueue(obj) },
	})
	if err != nil {
		return nil, fmt.Errorf("watch claims for expansion: %w", err)
	}
	return e, nil
}

func (e *Expander) enqueue(obj any) {
	claim, ok := obj.(*v1.PersistentVolumeClaim)
	if !ok || claim.Spec.VolumeName == "" || !wantsResize(claim) {
		return
	}
	if key, err := cache.MetaNamespaceKeyFunc(claim); err == nil {
		e.queue.Add(key)
	}
}

// wantsResize: the claim asks for more than it has. (Asking for less
// than status.capacity is refused by the API server itself: volumes never
// shrink.)
func wantsResize(claim *v1.PersistentVolumeClaim) bool {
	req, ok := claim.Spec.Resources.Requests[v1.ResourceStorage]
	if !ok {
		return false
	}
	have, ok := claim.Status.Capacity[v1.ResourceStorage]
	return ok && req.Cmp(have) > 0
}

// Run processes the queue with workers until ctx ends.
func (e *Expander) Run(ctx context.Context, n int) {
	workers.Loop{Queue: e.queue, Synced: e.synced, Workers: n, Sync: e.Sync,
		Failed: "Expanding claim failed; will retry", KeyName: "claim"}.Run(ctx)
}

// Sync reconciles one claim (namespace/name): expands its heketi volume to
// the requested size (never shrinks), then records the new size in the PV
// and the claim's status. Every step reads the current state first, so a
// retry after a crash does not expand twice.
func (e *Expander) Sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	claim, err := e.claims.PersistentVolumeClaims(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	} else if err != nil {
		return err
	}
	if claim.Spec.VolumeName == "" || !wantsResize(claim) {
		return nil
	}
	pv, err := e.volumes.Get(claim.Spec.VolumeName)
	if apierrors.IsNotFound(err) {
		return nil
	} else if err != nil {
		return err
	}
	id := heketiVolumeID(pv)
	if pv.Annotations[AnnProvisionedBy] != e.p.cfg.Name || id == "" || (pv.Spec.Glusterfs == nil && !isOurCSI(pv)) {
		return nil // not ours
	}
	if isOurCSI(pv) && resizerAtWork(claim) {
		// The CSI external-resizer (with glusterkube's CSI controller) is
		// growing this claim: leave it to it, so the two never race to
		// add GiB to the same volume.
		return nil
	}
	logger := klog.LoggerWithValues(klog.FromContext(ctx), "claim", klog.KObj(claim), "pv", klog.KObj(pv), "heketiVolume", heketiVolumeName(pv))
	ctx = klog.NewContext(ctx, logger)

	if sc := pv.Spec.StorageClassName; sc != "" {
		class, err := e.classes.Get(sc)
		if err == nil && (class.AllowVolumeExpansion == nil || !*class.AllowVolumeExpansion) {
			e.p.event(claim, v1.EventTypeWarning, ReasonResizeFailed, fmt.Sprintf("StorageClass %q does not allow volume expansion (allowVolumeExpansion: true)", sc))
			return nil
		}
	}
	req, have := claim.Spec.Resources.Requests[v1.ResourceStorage], claim.Status.Capacity[v1.ResourceStorage]
	want, err := roundUpGiB(req)
	if err != nil {
		return err
	}
	cr, err := e.p.pvCreds(ctx, pv)
	if err != nil {
		return err
	}
	sv, err := e.p.vols.Server(cr)
	if err != nil {
		return err
	}
	vol, err := sv.Get(ctx, id)
	if err != nil {
		return err
	}
	if want > vol.SizeGiB {
		// volume.Expand reads the size again and never grows the volume
		// twice (an earlier expansion still running is IsInFlight).
		e.p.event(claim, v1.EventTypeNormal, ReasonResizing, fmt.Sprintf("Expanding heketi volume %s from %d to %d GiB", vol.Name, vol.SizeGiB, want))
		out, err := sv.Expand(ctx, id, want)
		if err != nil {
			if !volume.IsInFlight(err) {
				e.p.event(claim, v1.EventTypeWarning, ReasonResizeFailed, fmt.Sprintf("Expanding heketi volume %s: %v", vol.Name, err))
			}
			return err
		}
		vol = out
		logger.V(2).Info("Expanded heketi volume", "sizeGiB", vol.SizeGiB)
	}
	size := *resource.NewQuantity(vol.SizeBytes(), resource.BinarySI)
	if have.Cmp(size) == 0 {
		return nil
	}
	if cur := pv.Spec.Capacity[v1.ResourceStorage]; cur.Cmp(size) != 0 {
		patch, _ := json.Marshal(map[string]any{"spec": map[string]any{"capacity": map[string]any{"storage": size.String()}}})
		if _, err := e.p.cfg.Kube.CoreV1().PersistentVolumes().Patch(ctx, pv.Name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: FieldManager}); err != nil {
			return fmt.Errorf("record size %s in PV %s: %w", size.String(), pv.Name, err)
		}
	}
	patch, _ := json.Marshal(map[string]any{"status": map[string]any{"capacity": map[string]any{"storage": size.String()}}})
	if _, err := e.p.cfg.Kube.CoreV1().PersistentVolumeClaims(ns).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: FieldManager}, "status"); err != nil {
		return fmt.Errorf("record size %s in claim status: %w", size.String(), err)
	}
	e.p.event(claim, v1.EventTypeNormal, ReasonResized, fmt.Sprintf("Heketi volume %s is now %d GiB", vol.Name, vol.SizeGiB))
	return nil
}

// resizerAtWork reports that the CSI external-resizer has taken the claim
// on (it sets the Resizing condition; glusterkube's expander sets none).
func resizerAtWork(claim *v1.PersistentVolumeClaim) bool {
	for _, c := range claim.Status.Conditions {
		if c.Type == v1.PersistentVolumeClaimResizing && c.Status == v1.ConditionTrue {
			return true
		}
	}
	return false
}
