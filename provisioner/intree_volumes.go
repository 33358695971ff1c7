package provisioner

import (
	"context"
	"fmt"
	"slices"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"

	"github.com/glusterkube/glusterkube/internal/workers"
)

// ReasonInTreeDeleteFailed: deleting the heketi volume of a PV of an
// in-tree class failed (recorded on the PV; retried).
const ReasonInTreeDeleteFailed = "VolumeFailedDelete"

var labelsEverything = labels.Everything()

// inTreeVolumes looks after the PVs of in-tree classes on API servers
// without the in-tree plugin, where the PV controller still treats every
// PV whose provisioned-by names a kubernetes.io/ plugin as that plugin's:
// it puts its deletion finalizer on it (removed only by the plugin) and,
// when the claim goes, marks it Released then, finding no plugin, Failed —
// and the provision library deletes only Released PVs.
//
//   - CSI PVs glusterkube made for claims of in-tree classes: the library
//     stamps them with the class's provisioner (kubernetes.io/glusterfs).
//     inTreeVolumes adopts them (provisioned-by: glusterkube's name, the
//     finalizer removed), after which they are ordinary glusterkube PVs
//     the PV controller leaves alone; one the PV controller marked Failed
//     before it was adopted is deleted here.
//   - PVs the in-tree provisioner made, with reclaim policy Delete: when
//     their claim is gone, their heketi volume, Service and Endpoints are
//     deleted, then the PV and the finalizer.
type inTreeVolumes struct {
	p       *Provisioner
	volumes corelisters.PersistentVolumeLister
	synced  []cache.InformerSynced
	queue   workqueue.TypedRateLimitingInterface[string]
}

func newInTreeVolumes(p *Provisioner, f informers.SharedInformerFactory, start, maxDelay time.Duration) (*inTreeVolumes, error) {
	volumes := f.Core().V1().PersistentVolumes()
	r := &inTreeVolumes{
		p:       p,
		volumes: volumes.Lister(),
		synced:  []cache.InformerSynced{volumes.Informer().HasSynced},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](start, maxDelay),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "glusterkube-intree-volumes"}),
	}
	if _, err := volumes.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    r.enqueue,
		UpdateFunc: func(_, obj any) { r.enqueue(obj) },
	}); err != nil {
		return nil, fmt.Errorf("watch PVs of in-tree classes: %w", err)
	}
	return r, nil
}

// stampedInTree: a CSI PV glusterkube made (its heketi annotations) that
// names the in-tree plugin as its provisioner.
func stampedInTree(pv *v1.PersistentVolume) bool {
	return isOurCSI(pv) && pv.Annotations[AnnProvisionedBy] == InTreeName && pv.Annotations[AnnHeketiURL] != ""
}

// released: reclaim policy Delete and the claim seen gone by the PV
// controller (Released, then Failed where it has no plugin).
func released(pv *v1.PersistentVolume) bool {
	return pv.Spec.PersistentVolumeReclaimPolicy == v1.PersistentVolumeReclaimDelete && pv.Spec.ClaimRef != nil &&
		(pv.Status.Phase == v1.VolumeReleased || pv.Status.Phase == v1.VolumeFailed)
}

func (r *inTreeVolumes) wants(pv *v1.PersistentVolume) bool {
	if stampedInTree(pv) {
		return true
	}
	if IsInTreePV(pv) {
		return released(pv)
	}
	// Adopted, but marked Failed before: the library will not delete it.
	return isOurCSI(pv) && pv.Annotations[AnnProvisionedBy] == r.p.cfg.Name && released(pv) && pv.Status.Phase == v1.VolumeFailed
}

func (r *inTreeVolumes) enqueue(obj any) {
	if pv, ok := obj.(*v1.PersistentVolume); ok && r.wants(pv) {
		r.queue.Add(pv.Name)
	}
}

func (r *inTreeVolumes) run(ctx context.Context, n int) {
	workers.Loop{Queue: r.queue, Synced: r.synced, Workers: n, Sync: r.sync,
		Failed: "Handling a PV of an in-tree class failed; will retry", KeyName: "pv"}.Run(ctx)
}

// sync handles one PV. Every step is idempotent (a volume or object
// already gone counts as done), so a retry after a crash at any point
// finishes the work.
func (r *inTreeVolumes) sync(ctx context.Context, name string) error {
	pv, err := r.volumes.Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	} else if err != nil {
		return err
	}
	if !r.wants(pv) {
		return nil
	}
	logger := klog.LoggerWithValues(klog.FromContext(ctx), "pv", klog.KObj(pv))
	ctx = klog.NewContext(ctx, logger)
	if stampedInTree(pv) {
		if pv, err = r.adopt(ctx, pv); err != nil || pv == nil {
			return err
		}
		if !r.wants(pv) {
			return nil
		}
	}
	// The phase comes from the PV controller's cache: ask the API server
	// whether the claim is really gone before destroying anything.
	ref := pv.Spec.ClaimRef
	if gone, err := r.p.claimGone(ctx, ref.Namespace, ref.Name, ref.UID); err != nil {
		return fmt.Errorf("PV %s: check its claim %s/%s is gone: %w", pv.Name, ref.Namespace, ref.Name, err)
	} else if !gone {
		return nil
	}
	if IsInTreePV(pv) {
		err = r.p.deleteInTree(ctx, pv, OtherPVUsers(pv, r.allPVs()))
	} else {
		err = r.p.deleteVolume(ctx, pv, heketiVolumeID(pv))
	}
	if err != nil {
		r.p.recordPV(pv, v1.EventTypeWarning, ReasonInTreeDeleteFailed, err.Error())
		return err
	}
	return r.removePV(ctx, pv)
}

// adopt makes a CSI PV glusterkube made for an in-tree class glusterkube's
// own: provisioned-by names glusterkube, and the PV controller's in-tree
// finalizer goes in the same write (once the PV names no kubernetes.io/
// provisioner, the PV controller neither adds nor removes it). It returns
// the updated PV, or nil when it is gone.
func (r *inTreeVolumes) adopt(ctx context.Context, pv *v1.PersistentVolume) (*v1.PersistentVolume, error) {
	pvs := r.p.cfg.Kube.CoreV1().PersistentVolumes()
	var out *v1.PersistentVolume
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := pvs.Get(ctx, pv.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if cur.UID != pv.UID || !stampedInTree(cur) {
			out = cur
			return nil
		}
		upd := cur.DeepCopy()
		upd.Annotations[AnnProvisionedBy] = r.p.cfg.Name
		upd.Finalizers = slices.DeleteFunc(upd.Finalizers, func(f string) bool { return f == FinalizerInTreeDelete })
		out, err = pvs.Update(ctx, upd, metav1.UpdateOptions{FieldManager: FieldManager})
		return err
	})
	if apierrors.IsNotFound(err) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("adopt PV %s of in-tree class %s: %w", pv.Name, pv.Spec.StorageClassName, err)
	}
	klog.FromContext(ctx).V(2).Info("Adopted a CSI PV of an in-tree class", "storageClass", pv.Spec.StorageClassName)
	return out, nil
}

func (r *inTreeVolumes) allPVs() []*v1.PersistentVolume {
	all, _ := r.volumes.List(labelsEverything)
	return all
}

// removePV deletes the PV object (UID precondition: a PV made again under
// the name is not touched) and the PV controller's in-tree deletion
// finalizer, which that controller would only remove after its own plugin
// deleted the volume.
func (r *inTreeVolumes) removePV(ctx context.Context, pv *v1.PersistentVolume) error {
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
	klog.FromContext(ctx).V(2).Info("Deleted the PV of an in-tree class and its heketi volume")
	return nil
}

// RemoveFinalizers removes the named finalizers from PV name while it is
// still the object with uid (read, then update with its resourceVersion,
// again on conflict). A PV already gone is success.
func RemoveFinalizers(ctx context.Context, kube kubernetes.Interface, name string, uid types.UID, drop ...string) error {
	pvs := kube.CoreV1().PersistentVolumes()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := pvs.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if cur.UID != uid {
			return nil
		}
		keep := slices.DeleteFunc(slices.Clone(cur.Finalizers), func(f string) bool { return slices.Contains(drop, f) })
		if len(keep) == len(cur.Finalizers) {
			return nil
		}
		upd := cur.DeepCopy()
		upd.Finalizers = keep
		_, err = pvs.Update(ctx, upd, metav1.UpdateOptions{FieldManager: FieldManager})
		return err
	})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("remove finalizers %v from PV %s: %w", drop, name, err)
	}
	return nil
}
