//lint:file-ignore SA1019 the in-tree glusterfs volume source reads v1 Endpoints (not EndpointSlices)

package provisioner

import (
	"context"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// The claim's Endpoints and Service go only when they were made for the
// PV's claim and nothing else uses them.
func TestDeleteClaimEndpoints(t *testing.T) {
	ns := "apps"
	pv := &v1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: "pvc-1"},
		Spec: v1.PersistentVolumeSpec{
			ClaimRef: &v1.ObjectReference{Namespace: ns, Name: "data", UID: "u1"},
			PersistentVolumeSource: v1.PersistentVolumeSource{Glusterfs: &v1.GlusterfsPersistentVolumeSource{
				EndpointsName: "glusterfs-dynamic-u1", EndpointsNamespace: &ns, Path: "vol_x"}},
		},
	}
	objs := func(labels, ann map[string]string) (*v1.Endpoints, *v1.Service) {
		meta := metav1.ObjectMeta{Namespace: ns, Name: "glusterfs-dynamic-u1", Labels: labels, Annotations: ann, UID: "obj"}
		return &v1.Endpoints{ObjectMeta: meta}, &v1.Service{ObjectMeta: meta}
	}
	for _, tc := range []struct {
		name        string
		labels, ann map[string]string
		users       UsersFunc
		wantKept    string
	}{
		{"in-tree's, for this claim", map[string]string{LabelProvisionedForPVC: "data"}, nil, nil, ""},
		{"glusterkube's, for this PV", map[string]string{LabelProvisionedForPVC: "data"}, map[string]string{AnnPV: "pvc-1"}, nil, ""},
		{"glusterkube's, for another PV", map[string]string{LabelProvisionedForPVC: "data"}, map[string]string{AnnPV: "pvc-0"}, nil, "not made for claim"},
		{"another claim's", map[string]string{LabelProvisionedForPVC: "other"}, nil, nil, "not made for claim"},
		{"a user's (static)", nil, nil, nil, "not made for claim"},
		{"still used", map[string]string{LabelProvisionedForPVC: "data"}, nil,
			func(context.Context, string, string) (string, error) { return "PV pvc-2", nil }, "still used by PV pvc-2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ep, svc := objs(tc.labels, tc.ann)
			kube := fake.NewClientset(ep, svc)
			kept, err := DeleteClaimEndpoints(context.Background(), kube, pv, tc.users)
			if err != nil {
				t.Fatal(err)
			}
			if (tc.wantKept == "") != (kept == "") || !strings.Contains(kept, tc.wantKept) {
				t.Errorf("kept = %q, want %q", kept, tc.wantKept)
			}
			_, e1 := kube.CoreV1().Endpoints(ns).Get(context.Background(), ep.Name, metav1.GetOptions{})
			_, e2 := kube.CoreV1().Services(ns).Get(context.Background(), ep.Name, metav1.GetOptions{})
			if gone := apierrors.IsNotFound(e1) && apierrors.IsNotFound(e2); gone != (tc.wantKept == "") {
				t.Errorf("Endpoints gone: %v, Service gone: %v", apierrors.IsNotFound(e1), apierrors.IsNotFound(e2))
			}
		})
	}
	// Already gone is success.
	if kept, err := DeleteClaimEndpoints(context.Background(), fake.NewClientset(), pv, nil); err != nil || kept != "" {
		t.Errorf("nothing there: %q %v", kept, err)
	}
}
