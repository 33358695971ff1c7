package migrate

import (
	"context"
	"fmt"
	"sort"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// PodUse is a pod that uses a claim, and what runs it (so the refusal
// can say what to scale down).
type PodUse struct {
	Pod   string `json:"pod"`
	Owner string `json:"owner,omitempty"`
}

func (u PodUse) String() string {
	if u.Owner == "" {
		return u.Pod
	}
	return u.Pod + " (" + u.Owner + ")"
}

// claimUsers indexes the pods that may use claims: every pod not
// terminated (Succeeded or Failed). A pending pod will mount the claim as
// soon as it runs; a terminating one may still have it mounted.
type claimUsers map[string][]PodUse // "ns/claim" -> pods

func (u claimUsers) add(pod *v1.Pod) {
	if pod.Status.Phase == v1.PodSucceeded || pod.Status.Phase == v1.PodFailed {
		return
	}
	owner := ""
	if ref := metav1.GetControllerOf(pod); ref != nil {
		owner = ref.Kind + " " + ref.Name
	}
	for _, vol := range pod.Spec.Volumes {
		if vol.PersistentVolumeClaim == nil {
			continue
		}
		key := pod.Namespace + "/" + vol.PersistentVolumeClaim.ClaimName
		u[key] = append(u[key], PodUse{Pod: pod.Namespace + "/" + pod.Name, Owner: owner})
	}
}

// of returns the pods using claim ns/name, sorted.
func (u claimUsers) of(ns, name string) []PodUse {
	out := append([]PodUse(nil), u[ns+"/"+name]...)
	sort.Slice(out, func(i, j int) bool { return out[i].Pod < out[j].Pod })
	return out
}

// listClaimUsers lists the pods of the given namespaces (all when nil).
func (m *Migrator) listClaimUsers(ctx context.Context, namespaces []string) (claimUsers, error) {
	u := claimUsers{}
	if namespaces == nil {
		namespaces = []string{metav1.NamespaceAll}
	}
	for _, ns := range namespaces {
		list, err := m.cfg.Kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, fmt.Errorf("list pods to find who uses the claims: %w", err)
		}
		for i := range list.Items {
			u.add(&list.Items[i])
		}
	}
	return u, nil
}

// usersOf asks the API server (not a cache) which pods use one claim.
func (m *Migrator) usersOf(ctx context.Context, ns, claim string) ([]PodUse, error) {
	u, err := m.listClaimUsers(ctx, []string{ns})
	if err != nil {
		return nil, err
	}
	return u.of(ns, claim), nil
}

// inlineUsers names the pods of namespace ns whose inline glusterfs
// volumes read Endpoints name.
func (m *Migrator) inlineUsers(ctx context.Context, ns, name string) (string, error) {
	list, err := m.cfg.Kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return "", fmt.Errorf("list pods of %s to find who uses Endpoints %s: %w", ns, name, err)
	}
	for _, pod := range list.Items {
		for _, vol := range pod.Spec.Volumes {
			if vol.Glusterfs != nil && vol.Glusterfs.EndpointsName == name {
				return "pod " + pod.Namespace + "/" + pod.Name, nil
			}
		}
	}
	return "", nil
}
