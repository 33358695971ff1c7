package provisioner

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
)

// ReasonInTreeDeleteFailed: deleting the heketi volume of a PV the in-tree
// provisioner made failed (recorded on the PV; retried).
const ReasonInTreeDeleteFailed = "VolumeFailedDelete"

var labelsEverything = labels.Everything()

// inTreeReclaimer deletes, for released PVs the in-tree provisioner made
// with reclaim policy Delete, their heketi volume, Service and Endpoints,
// then the PV. It does not go through the provision library's Delete:
// from v1.26 the PV controller, which has no glusterfs plugin any more,
// marks such a PV Failed right after Released (the library only deletes
// Released PVs) and puts on it a finalizer that only its plugin would
// remove. The reclaimer takes Released and Failed alike, checks the claim
// is really gone, and removes that finalizer once the volume is gone.
type inTreeReclaimer struct {
	p       *Provisioner
	volumes corelisters.PersistentVolumeLister
	synced  []cache.InformerSynced
	queue   workqueue.TypedRateLimitingInterface[string]
}

func newInTreeReclaimer(p *Provisioner, f informers.SharedInformerFactory, start, maxDelay time.Duration) (*inTreeReclaimer, error) {
	volumes := f.Core().V1().PersistentVolumes()
	r := &inTreeReclaimer{
		p:       p,
		volumes: volumes.Lister(),
		synced:  []cache.InformerSynced{volumes.Informer().HasSynced},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](start, maxDelay),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "glusterkube-intree-reclaim"}),
	}
	if _, err := volumes.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    r.enqueue,
		UpdateFunc: func(_, obj any) { r.enqueue(obj) },
	}); err != nil {
		return nil, fmt.Errorf("watch in-tree PVs: %w", err)
	}
	return r, nil
}

// wantsReclaim: an in-tree PV with reclaim policy Delete whose claim the
// PV controller saw go (Released, then Failed on v1.26+).
func wantsReclaim(pv *v1.PersistentVolume) bool {
	return IsInTreePV(pv) && pv.Spec.PersistentVolumeReclaimPolicy == v1.PersistentVolumeReclaimDelete &&
		pv.Spec.ClaimRef != nil && (pv.Status.Phase == v1.VolumeReleased || pv.Status.Phase == v1.VolumeFailed)
}

func (r *inTreeReclaimer) enqueue(obj any) {
	pv, ok := obj.(*v1.PersistentVolume)
	if !ok || !wantsReclaim(pv) {
		return
	}
	r.queue.Add(pv.Name)
}

func (r *inTreeReclaimer) run(ctx context.Context, workers int) {
	defer utilruntime.HandleCrash()
	defer r.queue.ShutDown()
	if !cache.WaitForCacheSync(ctx.Done(), r.synced...) {
		return
	}
	for range max(workers, 1) {
		go wait.UntilWithContext(ctx, func(ctx context.Context) {
			for r.next(ctx) {
			}
		}, time.Second)
	}
	<-ctx.Done()
}

func (r *inTreeReclaimer) next(ctx context.Context) bool {
	name, quit := r.queue.Get()
	if quit {
		return false
	}
	defer r.queue.Done(name)
	if err := r.sync(ctx, name); err != nil {
		utilruntime.HandleErrorWithContext(ctx, err, "Deleting an in-tree PV's volume failed; will retry", "pv", name)
		r.queue.AddRateLimited(name)
		return true
	}
	r.queue.Forget(name)
	return true
}

// sync reclaims one PV. Every step is idempotent (a volume or object
// already gone counts as done), so a retry after a crash at any point
// finishes the work.
func (r *inTreeReclaimer) sync(ctx context.Context, name string) error {
	pv, err := r.volumes.Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	} else if err != nil {
		return err
	}
	if !wantsReclaim(pv) {
		return nil
	}
	logger := klog.LoggerWithValues(klog.FromContext(ctx), "pv", klog.KObj(pv), "heketiVolume", pv.Spec.Glusterfs.Path)
	ctx = klog.NewContext(ctx, logger)
	// The phase comes from the PV controller's cache: ask the API server
	// whether the claim is really gone before destroying anything.
	if gone, err := r.claimGone(ctx, pv); err != nil || !gone {
		return err
	}
	if err := r.p.deleteInTree(ctx, pv, OtherPVUsers(pv, r.allPVs())); err != nil {
		r.p.recordPV(pv, v1.EventTypeWarning, ReasonInTreeDeleteFailed, err.Error())
		return err
	}
	return r.removePV(ctx, pv)
}

func (r *inTreeReclaimer) allPVs() []*v1.PersistentVolume {
	all, _ := r.volumes.List(labelsEverything)
	return all
}

// claimGone reports whether pv's claim no longer exists (or is another
// claim of the same name).
func (r *inTreeReclaimer) claimGone(ctx context.Context, pv *v1.PersistentVolume) (bool, error) {
	ref := pv.Spec.ClaimRef
	claim, err := r.p.cfg.Kube.CoreV1().PersistentVolumeClaims(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return true, nil
	} else if err != nil {
		return false, fmt.Errorf("PV %s: check its claim %s/%s is gone: %w", pv.Name, ref.Namespace, ref.Name, err)
	}
	return ref.UID != "" && claim.UID != ref.UID, nil
}

// removePV deletes the PV object (UID precondition: a PV made again under
// the name is not touched) and the PV controller's in-tree deletion
// finalizer, which that controller would only remove after its own plugin
// deleted the volume.
func (r *inTreeReclaimer) removePV(ctx context.Context, pv *v1.PersistentVolume) error {
	pvs := r.p.cfg.Kube.CoreV1().PersistentVolumes()
	uid := pv.UID
	if pv.DeletionTimestamp == nil {
		if err := pvs.Delete(ctx, pv.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}}); err != nil {
			if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
				return nil
			}
			return fmt.Errorf("delete PV %s: %w", pv.Name, err)
		}
	}
	if err := RemoveFinalizers(ctx, r.p.cfg.Kube, pv.Name, uid, FinalizerInTreeDelete); err != nil {
		return err
	}
	klog.FromContext(ctx).V(2).Info("Deleted in-tree PV and its heketi volume")
	return nil
}

// RemoveFinalizers removes the named finalizers from PV name, when it is
// still the object with uid (a JSON patch that tests the uid and the
// finalizer list it read). A PV already gone is success.
func RemoveFinalizers(ctx context.Context, kube kubernetes.Interface, name string, uid types.UID, drop ...string) error {
	pvs := kube.CoreV1().PersistentVolumes()
	for range 5 {
		cur, err := pvs.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		} else if err != nil {
			return fmt.Errorf("read PV %s: %w", name, err)
		}
		if cur.UID != uid {
			return nil
		}
		keep := slices.DeleteFunc(slices.Clone(cur.Finalizers), func(f string) bool { return slices.Contains(drop, f) })
		if len(keep) == len(cur.Finalizers) {
			return nil
		}
		patch, _ := json.Marshal([]map[string]any{
			{"op": "test", "path": "/metadata/uid", "value": uid},
			{"op": "test", "path": "/metadata/finalizers", "value": cur.Finalizers},
			{"op": "replace", "path": "/metadata/finalizers", "value": keep},
		})
		_, err = pvs.Patch(ctx, name, types.JSONPatchType, patch, metav1.PatchOptions{FieldManager: FieldManager})
		switch {
		case err == nil, apierrors.IsNotFound(err):
			return nil
		case apierrors.IsInvalid(err), apierrors.IsConflict(err):
			continue // changed meanwhile: read again
		default:
			return fmt.Errorf("remove finalizers %v from PV %s: %w", drop, name, err)
		}
	}
	return fmt.Errorf("remove finalizers %v from PV %s: it kept changing", drop, name)
}
