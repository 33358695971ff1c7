//lint:file-ignore SA1019 the in-tree glusterfs volume source reads v1 Endpoints (not EndpointSlices)

package migrate

import (
	"context"
	"fmt"
	"strings"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/glusterkube/glusterkube/provisioner"
)

// formerSource is the glusterfs source a converted PV had, from its
// AnnMigratedFrom annotation ("glusterfs <ns>/<name> <path>"), as a PV
// view the Endpoints helpers read; nil when it had none.
func formerSource(pv *v1.PersistentVolume) *v1.PersistentVolume {
	f := strings.Fields(pv.Annotations[AnnMigratedFrom])
	if len(f) != 3 || f[0] != "glusterfs" {
		return nil
	}
	ns, name, ok := strings.Cut(f[1], "/")
	if !ok || ns == "" || name == "" {
		return nil
	}
	old := pv.DeepCopy()
	old.Spec.PersistentVolumeSource = v1.PersistentVolumeSource{Glusterfs: &v1.GlusterfsPersistentVolumeSource{
		EndpointsName: name, EndpointsNamespace: &ns, Path: f[2],
	}}
	return old
}

// cleanup removes the Endpoints and Service a converted PV's claim had,
// when a provisioner made them for that claim and no other glusterfs PV
// and no pod's inline glusterfs volume uses them. Endpoints a user made
// for static PVs are never touched. It returns why it kept them ("" when
// it removed them or there were none).
func (m *Migrator) cleanup(ctx context.Context, pv *v1.PersistentVolume) (string, error) {
	old := formerSource(pv)
	if old == nil || pv.Spec.ClaimRef == nil {
		return "", nil
	}
	kept, err := provisioner.DeleteClaimEndpoints(ctx, m.cfg.Kube, old, func(ctx context.Context, ns, name string) (string, error) {
		pvs, err := m.allPVs(ctx)
		if err != nil {
			return "", fmt.Errorf("list PVs to find who uses Endpoints %s/%s: %w", ns, name, err)
		}
		if who, err := provisioner.OtherPVUsers(old, pvs)(ctx, ns, name); err != nil || who != "" {
			return who, err
		}
		return m.inlineUsers(ctx, ns, name)
	})
	if err != nil {
		return "", fmt.Errorf("PV %s: %w", pv.Name, err)
	}
	if kept != "" {
		klog.FromContext(ctx).V(2).Info("Kept the old Endpoints and Service", "pv", pv.Name, "reason", kept)
	}
	return kept, nil
}

// leftover reports whether a converted PV's claim still has Endpoints or
// a Service made for it (a conversion interrupted before its cleanup).
func (m *Migrator) leftover(ctx context.Context, pv *v1.PersistentVolume) (string, error) {
	old := formerSource(pv)
	if old == nil || pv.Spec.ClaimRef == nil {
		return "", nil
	}
	ns, name, _ := provisioner.EndpointsOf(old)
	svc, err := m.cfg.Kube.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
	if err == nil && provisioner.MadeForPV(&svc.ObjectMeta, old) {
		return ns + "/" + name, nil
	} else if err != nil && !apierrors.IsNotFound(err) {
		return "", fmt.Errorf("read Service %s/%s: %w", ns, name, err)
	}
	ep, err := m.cfg.Kube.CoreV1().Endpoints(ns).Get(ctx, name, metav1.GetOptions{})
	if err == nil && provisioner.MadeForPV(&ep.ObjectMeta, old) {
		return ns + "/" + name, nil
	} else if err != nil && !apierrors.IsNotFound(err) {
		return "", fmt.Errorf("read Endpoints %s/%s: %w", ns, name, err)
	}
	return "", nil
}

// pvCacheKey carries a run's PV cache in its context.
type pvCacheKey struct{}

// withPVCache starts an informer on PVs for one Apply run, so
// that each conversion's cleanup asks a cache which other PVs use its
// Endpoints instead of listing every PV (n conversions would list n PVs
// n times). It returns the context carrying the cache and a stop func;
// without it (or before it synced) allPVs lists.
func (m *Migrator) withPVCache(ctx context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancel(ctx)
	factory := informers.NewSharedInformerFactory(m.cfg.Kube, 0)
	lister := factory.Core().V1().PersistentVolumes().Lister()
	synced := factory.Core().V1().PersistentVolumes().Informer().HasSynced
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), synced) {
		cancel()
		factory.Shutdown()
		return ctx, func() {}
	}
	return context.WithValue(ctx, pvCacheKey{}, lister), func() { cancel(); factory.Shutdown() }
}

// allPVs returns every PV: from the run's cache, else by a list.
func (m *Migrator) allPVs(ctx context.Context) ([]*v1.PersistentVolume, error) {
	if lister, ok := ctx.Value(pvCacheKey{}).(corelisters.PersistentVolumeLister); ok {
		return lister.List(labels.Everything())
	}
	list, err := m.cfg.Kube.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	pvs := make([]*v1.PersistentVolume, len(list.Items))
	for i := range list.Items {
		pvs[i] = &list.Items[i]
	}
	return pvs, nil
}
