//lint:file-ignore SA1019 the in-tree glusterfs volume source reads v1 Endpoints (not EndpointSlices)

package provisioner

import (
	"context"
	"fmt"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// EndpointsOf returns the namespace and name of the Endpoints (and the
// Service of the same name) a glusterfs PV reaches its servers through:
// endpointsNamespace, else, as the kubelet read it, the claim's namespace.
func EndpointsOf(pv *v1.PersistentVolume) (ns, name string, ok bool) {
	gs := pv.Spec.Glusterfs
	if gs == nil || gs.EndpointsName == "" {
		return "", "", false
	}
	if gs.EndpointsNamespace != nil && *gs.EndpointsNamespace != "" {
		ns = *gs.EndpointsNamespace
	} else if pv.Spec.ClaimRef != nil {
		ns = pv.Spec.ClaimRef.Namespace
	}
	return ns, gs.EndpointsName, ns != ""
}

// MadeForPV reports whether a Service or Endpoints was made by a
// provisioner for pv's claim: the in-tree plugin and glusterkube both
// label them gluster.kubernetes.io/provisioned-for-pvc=<claim name>, and
// glusterkube also annotates them with the PV's name. Objects a user made
// for static PVs carry neither and are never taken for a claim's.
func MadeForPV(meta *metav1.ObjectMeta, pv *v1.PersistentVolume) bool {
	if pv.Spec.ClaimRef == nil || meta.Labels[LabelProvisionedForPVC] != pv.Spec.ClaimRef.Name {
		return false
	}
	if owner, ok := meta.Annotations[AnnPV]; ok && owner != pv.Name {
		return false
	}
	return true
}

// UsersFunc names what else uses the Endpoints ns/name ("" for nothing):
// another glusterfs PV, a pod's inline glusterfs volume.
type UsersFunc func(ctx context.Context, ns, name string) (string, error)

// DeleteClaimEndpoints removes the Service and Endpoints of a glusterfs
// PV when they were made for its claim (MadeForPV) and users names no
// other user. Each is deleted with a UID precondition, so an object made
// again meanwhile under the same name is left alone; NotFound is success.
// It returns why it kept them ("" when it deleted them or they were gone).
func DeleteClaimEndpoints(ctx context.Context, kube kubernetes.Interface, pv *v1.PersistentVolume, users UsersFunc) (kept string, err error) {
	ns, name, ok := EndpointsOf(pv)
	if !ok {
		return "", nil
	}
	svcs, eps := kube.CoreV1().Services(ns), kube.CoreV1().Endpoints(ns)
	svc, err := svcs.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		svc = nil
	} else if err != nil {
		return "", fmt.Errorf("get Service %s/%s: %w", ns, name, err)
	}
	ep, err := eps.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		ep = nil
	} else if err != nil {
		return "", fmt.Errorf("get Endpoints %s/%s: %w", ns, name, err)
	}
	if svc == nil && ep == nil {
		return "", nil
	}
	for _, meta := range []*metav1.ObjectMeta{objMeta(svc), objMeta(ep)} {
		if meta != nil && !MadeForPV(meta, pv) {
			return fmt.Sprintf("%s/%s was not made for claim %s (label %s=%q)", ns, name, claimKey(pv), LabelProvisionedForPVC, meta.Labels[LabelProvisionedForPVC]), nil
		}
	}
	if users != nil {
		who, err := users(ctx, ns, name)
		if err != nil {
			return "", err
		}
		if who != "" {
			return fmt.Sprintf("%s/%s is still used by %s", ns, name, who), nil
		}
	}
	if svc != nil {
		uid := svc.UID
		if err := svcs.Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}}); err != nil && !apierrors.IsNotFound(err) {
			return "", fmt.Errorf("delete Service %s/%s: %w", ns, name, err)
		}
	}
	if ep != nil {
		uid := ep.UID
		if err := eps.Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}}); err != nil && !apierrors.IsNotFound(err) {
			return "", fmt.Errorf("delete Endpoints %s/%s: %w", ns, name, err)
		}
	}
	return "", nil
}

func objMeta(obj metav1.Object) *metav1.ObjectMeta {
	switch o := obj.(type) {
	case *v1.Service:
		if o != nil {
			return &o.ObjectMeta
		}
	case *v1.Endpoints:
		if o != nil {
			return &o.ObjectMeta
		}
	}
	return nil
}

func claimKey(pv *v1.PersistentVolume) string {
	if pv.Spec.ClaimRef == nil {
		return "<none>"
	}
	return pv.Spec.ClaimRef.Namespace + "/" + pv.Spec.ClaimRef.Name
}

// OtherPVUsers is a UsersFunc over a list of PVs: another glusterfs PV
// (not pv) whose source names the same Endpoints.
func OtherPVUsers(pv *v1.PersistentVolume, pvs []*v1.PersistentVolume) UsersFunc {
	return func(_ context.Context, ns, name string) (string, error) {
		for _, o := range pvs {
			if o.Name == pv.Name {
				continue
			}
			if ons, oname, ok := EndpointsOf(o); ok && ons == ns && oname == name {
				return "PV " + o.Name, nil
			}
		}
		return "", nil
	}
}
