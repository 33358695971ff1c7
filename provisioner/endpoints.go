//lint:file-ignore SA1019 the in-tree glusterfs volume source reads v1 Endpoints (not EndpointSlices)

package provisioner

import (
	"context"
	"fmt"
	"net"
	"time"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
)

// resolveTimeout bounds the DNS lookup of a storage hostname.
const resolveTimeout = 10 * time.Second

// storageIPs resolves heketi storage hosts to the IPs Endpoints need.
func storageIPs(ctx context.Context, hosts []string) ([]string, error) {
	ips := make([]string, 0, len(hosts))
	seen := map[string]bool{}
	for _, h := range hosts {
		ip := h
		if net.ParseIP(h) == nil {
			rctx, cancel := context.WithTimeout(ctx, resolveTimeout)
			addrs, err := net.DefaultResolver.LookupIPAddr(rctx, h)
			cancel()
			if err != nil || len(addrs) == 0 {
				return nil, fmt.Errorf("resolve heketi storage host %q: %v (Endpoints need IPs: use IPs as storage hostnames in the topology)", h, err)
			}
			ip = addrs[0].IP.String()
		}
		if !seen[ip] {
			seen[ip] = true
			ips = append(ips, ip)
		}
	}
	if len(ips) == 0 {
		return nil, fmt.Errorf("heketi reported no storage hosts for the volume")
	}
	return ips, nil
}

func objectMeta(ns, name string, claim *v1.PersistentVolumeClaim, pvName string) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Namespace:   ns,
		Name:        name,
		Labels:      map[string]string{LabelManagedBy: ManagedBy, LabelProvisionedForPVC: claim.Name},
		Annotations: map[string]string{AnnPV: pvName},
	}
}

// ensureEndpoints makes the Service and Endpoints through which pods of
// the claim's namespace reach the volume's servers, and returns their name.
// A name already used by another PV (a Retained volume of an earlier claim
// with the same name) is left alone and an alternate name is used.
func (p *Provisioner) ensureEndpoints(ctx context.Context, claim *v1.PersistentVolumeClaim, pvName, prefix string, ips []string) (string, error) {
	names := []string{EndpointsName(prefix, claim), AlternateEndpointsName(prefix, claim)}
	for _, name := range names {
		ok, err := p.ensureService(ctx, claim, pvName, name)
		if err != nil {
			return "", err
		}
		if !ok {
			klog.FromContext(ctx).V(2).Info("Service name taken by another PV, trying the next", "service", klog.KRef(claim.Namespace, name))
			continue
		}
		if err := p.ensureEndpointsObject(ctx, claim, pvName, name, ips); err != nil {
			return "", err
		}
		return name, nil
	}
	return "", fmt.Errorf("the Services %v in namespace %s belong to other PersistentVolumes; delete the stale ones", names, claim.Namespace)
}

// ensureService creates the selector-less Service that keeps the
// Endpoints from being garbage-collected; false means the name is taken.
// It is headless: unlike in-tree's, it takes no address from the cluster's
// Service IP range (nothing connects to it; mounts read the Endpoints), so
// thousands of claims do not exhaust the range.
func (p *Provisioner) ensureService(ctx context.Context, claim *v1.PersistentVolumeClaim, pvName, name string) (bool, error) {
	svc := &v1.Service{
		ObjectMeta: objectMeta(claim.Namespace, name, claim, pvName),
		Spec: v1.ServiceSpec{
			ClusterIP: v1.ClusterIPNone,
			Ports:     []v1.ServicePort{{Protocol: v1.ProtocolTCP, Port: 1}},
		},
	}
	_, err := p.cfg.Kube.CoreV1().Services(claim.Namespace).Create(ctx, svc, metav1.CreateOptions{FieldManager: FieldManager})
	if err == nil {
		return true, nil
	}
	if !apierrors.IsAlreadyExists(err) {
		return false, fmt.Errorf("create Service %s/%s: %w", claim.Namespace, name, err)
	}
	cur, err := p.cfg.Kube.CoreV1().Services(claim.Namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return false, fmt.Errorf("get Service %s/%s: %w", claim.Namespace, name, err)
	}
	return cur.Annotations[AnnPV] == pvName, nil
}

func (p *Provisioner) ensureEndpointsObject(ctx context.Context, claim *v1.PersistentVolumeClaim, pvName, name string, ips []string) error {
	addrs := make([]v1.EndpointAddress, len(ips))
	for i, ip := range ips {
		addrs[i].IP = ip
	}
	subsets := []v1.EndpointSubset{{Addresses: addrs, Ports: []v1.EndpointPort{{Port: 1, Protocol: v1.ProtocolTCP}}}}
	ep := &v1.Endpoints{ObjectMeta: objectMeta(claim.Namespace, name, claim, pvName), Subsets: subsets}
	// Nothing reads EndpointSlices of these (mounts read the Endpoints):
	// spare the control plane mirroring one per claim.
	ep.Labels[discoveryv1.LabelSkipMirror] = "true"
	client := p.cfg.Kube.CoreV1().Endpoints(claim.Namespace)
	_, err := client.Create(ctx, ep, metav1.CreateOptions{FieldManager: FieldManager})
	if err == nil {
		return nil
	}
	if !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create Endpoints %s/%s: %w", claim.Namespace, name, err)
	}
	cur, err := client.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("get Endpoints %s/%s: %w", claim.Namespace, name, err)
	}
	if cur.Annotations[AnnPV] != pvName {
		return fmt.Errorf("the Endpoints %s/%s belong to PV %q, not %s; delete them if stale", claim.Namespace, name, cur.Annotations[AnnPV], pvName)
	}
	if equality.Semantic.DeepEqual(cur.Subsets, subsets) {
		return nil
	}
	upd := cur.DeepCopy()
	upd.Subsets = subsets
	if _, err := client.Update(ctx, upd, metav1.UpdateOptions{FieldManager: FieldManager}); err != nil {
		return fmt.Errorf("update Endpoints %s/%s: %w", claim.Namespace, name, err)
	}
	return nil
}

// deleteEndpoints removes the Service and Endpoints of pv, only if they
// are marked as serving it; NotFound is success.
func (p *Provisioner) deleteEndpoints(ctx context.Context, pv *v1.PersistentVolume) error {
	ns, name, ok := EndpointsOf(pv)
	if !ok {
		return nil
	}
	svcs := p.cfg.Kube.CoreV1().Services(ns)
	if svc, err := svcs.Get(ctx, name, metav1.GetOptions{}); err == nil {
		if svc.Annotations[AnnPV] == pv.Name {
			uid := svc.UID
			if err := svcs.Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}}); err != nil && !apierrors.IsNotFound(err) {
				return fmt.Errorf("delete Service %s/%s: %w", ns, name, err)
			}
		}
	} else if !apierrors.IsNotFound(err) {
		return fmt.Errorf("get Service %s/%s: %w", ns, name, err)
	}
	eps := p.cfg.Kube.CoreV1().Endpoints(ns)
	if ep, err := eps.Get(ctx, name, metav1.GetOptions{}); err == nil {
		if ep.Annotations[AnnPV] == pv.Name {
			uid := ep.UID
			if err := eps.Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}}); err != nil && !apierrors.IsNotFound(err) {
				return fmt.Errorf("delete Endpoints %s/%s: %w", ns, name, err)
			}
		}
	} else if !apierrors.IsNotFound(err) {
		return fmt.Errorf("get Endpoints %s/%s: %w", ns, name, err)
	}
	return nil
}
