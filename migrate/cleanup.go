//lint:file-ignore SA1019 the in-tree glusterfs volume source reads v1 Endpoints (not EndpointSlices)

package migrate

import (
	"context"
	"fmt"
	"strings"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
		list, err := m.cfg.Kube.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return "", fmt.Errorf("list PVs to find who uses Endpoints %s/%s: %w", ns, name, err)
		}
		pvs := make([]*v1.PersistentVolume, len(list.Items))
		for i := range list.Items {
			pvs[i] = &list.Items[i]
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
