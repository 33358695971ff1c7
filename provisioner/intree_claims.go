package provisioner

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	corelisters "k8s.io/client-go/listers/core/v1"
	storagelisters "k8s.io/client-go/listers/storage/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"

	"github.com/glusterkube/glusterkube/internal/workers"
)

// inTreeClaims hands claims of kubernetes.io/glusterfs classes to the
// provision library. The library takes a claim only once the claim names
// its provisioner in volume.kubernetes.io/storage-provisioner; up to
// v1.25 the PV controller set that for in-tree classes as for any other,
// but from v1.26 it has no plugin for the class, only records a
// ProvisioningFailed Event ("no volume plugin matched"), and never sets
// it. This controller sets it, as the PV controller used to.
type inTreeClaims struct {
	p       *Provisioner
	claims  corelisters.PersistentVolumeClaimLister
	classes storagelisters.StorageClassLister
	synced  []cache.InformerSynced
	queue   workqueue.TypedRateLimitingInterface[string]
}

func newInTreeClaims(p *Provisioner, f informers.SharedInformerFactory) (*inTreeClaims, error) {
	claims := f.Core().V1().PersistentVolumeClaims()
	classes := f.Storage().V1().StorageClasses()
	c := &inTreeClaims{
		p:       p,
		claims:  claims.Lister(),
		classes: classes.Lister(),
		synced:  []cache.InformerSynced{claims.Informer().HasSynced, classes.Informer().HasSynced},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](100*time.Millisecond, time.Minute),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "glusterkube-intree-claims"}),
	}
	if _, err := claims.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueue,
		UpdateFunc: func(_, obj any) { c.enqueue(obj) },
	}); err != nil {
		return nil, fmt.Errorf("watch claims of in-tree classes: %w", err)
	}
	// A claim may come before its class: look at the class's claims again
	// when the class appears.
	if _, err := classes.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if class, ok := obj.(interface{ GetName() string }); ok {
				c.enqueueClass(class.GetName())
			}
		},
	}); err != nil {
		return nil, fmt.Errorf("watch in-tree classes: %w", err)
	}
	return c, nil
}

func (c *inTreeClaims) enqueue(obj any) {
	claim, ok := obj.(*v1.PersistentVolumeClaim)
	if !ok || claim.Spec.VolumeName != "" {
		return
	}
	if key, err := cache.MetaNamespaceKeyFunc(claim); err == nil {
		c.queue.Add(key)
	}
}

func (c *inTreeClaims) enqueueClass(class string) {
	all, err := c.claims.List(labelsEverything)
	if err != nil {
		return
	}
	for _, claim := range all {
		if claimClass(claim) == class {
			c.enqueue(claim)
		}
	}
}

// claimClass is the claim's class: spec.storageClassName, else the beta
// annotation old claims still carry.
func claimClass(claim *v1.PersistentVolumeClaim) string {
	if claim.Spec.StorageClassName != nil {
		return *claim.Spec.StorageClassName
	}
	return claim.Annotations[v1.BetaStorageClassAnnotation]
}

func (c *inTreeClaims) run(ctx context.Context) {
	workers.Loop{Queue: c.queue, Synced: c.synced, Workers: 1, Sync: c.sync,
		Failed: "Handing a claim of an in-tree class to the provisioner failed; will retry", KeyName: "claim"}.Run(ctx)
}

// sync sets the storage-provisioner annotations of one unbound claim of an
// in-tree class. A claim that already names another provisioner is left
// alone.
func (c *inTreeClaims) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	claim, err := c.claims.PersistentVolumeClaims(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	} else if err != nil {
		return err
	}
	if claim.Spec.VolumeName != "" || claim.DeletionTimestamp != nil {
		return nil
	}
	class, err := c.classes.Get(claimClass(claim))
	if apierrors.IsNotFound(err) {
		return nil // the class event requeues it
	} else if err != nil {
		return err
	}
	if class.Provisioner != InTreeName {
		return nil
	}
	cur, found := claim.Annotations[annStorageProvisioner]
	beta, betaFound := claim.Annotations[annBetaStorageProvisioner]
	if (found && cur != InTreeName) || (betaFound && beta != InTreeName) {
		return nil
	}
	if found && betaFound {
		return nil
	}
	// The uid makes the patch fail on a claim of the same name made since.
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{
		"uid":         claim.UID,
		"annotations": map[string]string{annStorageProvisioner: InTreeName, annBetaStorageProvisioner: InTreeName},
	}})
	_, err = c.p.cfg.Kube.CoreV1().PersistentVolumeClaims(ns).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: FieldManager})
	if apierrors.IsNotFound(err) {
		return nil
	} else if err != nil {
		return fmt.Errorf("annotate claim %s with %s=%s: %w", key, annStorageProvisioner, InTreeName, err)
	}
	klog.FromContext(ctx).V(2).Info("Serving a claim of an in-tree StorageClass", "claim", klog.KObj(claim), "storageClass", class.Name)
	return nil
}
