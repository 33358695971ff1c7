package provisioner

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"

	"github.com/glusterkube/glusterkube/csi"
	"github.com/glusterkube/glusterkube/internal/heketi"
	"github.com/glusterkube/glusterkube/internal/testenv"
)

const examplesDir = "../examples/provisioner"

// readManifests decodes every YAML document of the examples, in file order.
func readManifests(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	return readManifestsFrom(t, examplesDir)
}

// readManifestsFrom decodes every YAML document of a folder's manifests,
// in file order.
func readManifestsFrom(t *testing.T, dir string) []*unstructured.Unstructured {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in %s: %v", dir, err)
	}
	sort.Strings(files)
	var objs []*unstructured.Unstructured
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(b), 4096)
		for {
			u := &unstructured.Unstructured{}
			if err := dec.Decode(&u.Object); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if len(u.Object) == 0 {
				continue
			}
			objs = append(objs, u)
		}
	}
	return objs
}

// applyManifests server-side-applies objs; namespaced objects without a
// namespace go to ns (as kubectl apply -n ns would do).
func applyManifests(t *testing.T, cfg *rest.Config, ns string, objs []*unstructured.Unstructured) {
	t.Helper()
	dc := discovery.NewDiscoveryClientForConfigOrDie(cfg)
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	dyn := dynamic.NewForConfigOrDie(cfg)
	ctx := context.Background()
	for _, u := range objs {
		gvk := u.GroupVersionKind()
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			t.Fatalf("%s %s: %v", gvk.Kind, u.GetName(), err)
		}
		var ri dynamic.ResourceInterface = dyn.Resource(m.Resource)
		if m.Scope.Name() == "namespace" {
			if u.GetNamespace() == "" {
				u.SetNamespace(ns)
			}
			ri = dyn.Resource(m.Resource).Namespace(u.GetNamespace())
		}
		data, err := u.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ri.Patch(ctx, u.GetName(), types.ApplyPatchType, data, metav1.PatchOptions{FieldManager: "glusterkube-examples-test", Force: ptrTrue()}); err != nil {
			t.Fatalf("apply %s %s: %v", gvk.Kind, u.GetName(), err)
		}
		if m.Scope.Name() != "namespace" {
			res := m.Resource
			name := u.GetName()
			t.Cleanup(func() { _ = dyn.Resource(res).Delete(context.Background(), name, metav1.DeleteOptions{}) })
		}
	}
}

func ptrTrue() *bool { b := true; return &b }

// The example manifests apply to a real API server, the Deployment's pods
// run (on kwok), and a provisioner acting as the example ServiceAccount —
// so with exactly the example RBAC, leader election included — provisions
// the example StatefulSet's claims and a Retain claim.
func TestExampleManifests(t *testing.T) {
	env := testenv.Get(t)
	hk := testenv.NewHeketi(t, testenv.HeketiOptions{Auth: true})
	admin := heketiClient(t, hk.URL, "admin", hk.AdminKey)
	heketiCluster(t, admin)
	ns := env.Namespace(t)
	ctx := context.Background()

	objs := readManifests(t)
	applyManifests(t, env.Config, ns, objs)
	kube := env.Client
	// What a user does with the Secret: put the real admin key in.
	patch := []byte(`{"stringData":{"key":"` + hk.AdminKey + `"}}`)
	if _, err := kube.CoreV1().Secrets("glusterkube").Patch(ctx, "heketi-admin", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Minute, "example Deployment available on kwok nodes", func(ctx context.Context) (bool, error) {
		d, err := kube.AppsV1().Deployments("glusterkube").Get(ctx, "glusterkube-provisioner", metav1.GetOptions{})
		return err == nil && d.Status.AvailableReplicas == 2, err
	})

	// The provisioner, as the example ServiceAccount.
	sa := rest.CopyConfig(env.Config)
	sa.Impersonate = rest.ImpersonationConfig{
		UserName: "system:serviceaccount:glusterkube:glusterkube-provisioner",
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:glusterkube", "system:authenticated"},
	}
	sa.QPS, sa.Burst = 200, 400
	saKube, err := kubernetes.NewForConfig(sa)
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(Config{Name: DefaultName, Kube: saKube, Heketi: heketi.Config{URL: hk.URL, User: "admin", Key: hk.AdminKey, MaxInflight: 8}})
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- Run(rctx, p, RunOptions{LeaderElection: true, LeaderElectionNamespace: "glusterkube", RetryIntervalStart: 100 * time.Millisecond, RetryIntervalMax: 2 * time.Second})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("provisioner: %v", err)
		}
	})

	pvs := waitBound(t, kube, ns, []string{"data-springboot-web-0", "data-springboot-web-1", "data-springboot-web-2"}, 2*time.Minute)
	for c, pv := range pvs {
		if pv.Spec.StorageClassName != "glusterfs-delete" || pv.Spec.PersistentVolumeReclaimPolicy != v1.PersistentVolumeReclaimDelete {
			t.Errorf("%s: class %s reclaim %s", c, pv.Spec.StorageClassName, pv.Spec.PersistentVolumeReclaimPolicy)
		}
		// The example classes name no volumesource: CSI PVs.
		if pv.Spec.CSI == nil || pv.Spec.CSI.Driver != csi.DriverName || pv.Spec.CSI.VolumeHandle != pv.Annotations[AnnHeketiVolumeID] {
			t.Errorf("%s: source %+v, want glusterkube's CSI driver", c, pv.Spec.PersistentVolumeSource)
		}
	}
	// A WaitForFirstConsumer claim's volume goes to the zone of its pod's
	// node, which the provisioner reads.
	sar, err := kube.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: sa.Impersonate.UserName, Groups: sa.Impersonate.Groups,
		ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: "get", Resource: "nodes", Name: "any-node"},
	}}, metav1.CreateOptions{})
	if err != nil || !sar.Status.Allowed {
		t.Errorf("the example provisioner cannot get Nodes: %v %v", sar.Status, err)
	}
	lease, err := kube.CoordinationV1().Leases("glusterkube").Get(ctx, "glusterkube.io-glusterfs", metav1.GetOptions{})
	if err != nil || lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity == "" {
		t.Errorf("lease: %v %v", leaseHolder(lease), err)
	}

	// Expansion works with the example RBAC (PV patch, claim status patch).
	grow := []byte(`{"spec":{"resources":{"requests":{"storage":"2Gi"}}}}`)
	if _, err := kube.CoreV1().PersistentVolumeClaims(ns).Patch(ctx, "data-springboot-web-0", types.MergePatchType, grow, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "claim expanded to 2Gi", func(ctx context.Context) (bool, error) {
		c, err := kube.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "data-springboot-web-0", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		got := c.Status.Capacity[v1.ResourceStorage]
		return got.String() == "2Gi", nil
	})

	// The Retain class reads the key from the example Secret.
	if _, err := kube.CoreV1().PersistentVolumeClaims(ns).Create(ctx, newClaim(ns, "kept", "glusterfs-retain", "1Gi"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	kept := waitBound(t, kube, ns, []string{"kept"}, time.Minute)["kept"]
	t.Cleanup(func() {
		_ = kube.CoreV1().PersistentVolumes().Delete(context.Background(), kept.Name, metav1.DeleteOptions{})
	})
	if kept.Annotations[AnnHeketiSecret] != "glusterkube/heketi-admin" || kept.Spec.PersistentVolumeReclaimPolicy != v1.PersistentVolumeReclaimRetain {
		t.Errorf("retained PV %v reclaim %s", kept.Annotations, kept.Spec.PersistentVolumeReclaimPolicy)
	}

	// Deleting the StatefulSet's claims deletes their volumes (with the
	// example RBAC); the Retain volume stays.
	if err := kube.AppsV1().StatefulSets(ns).Delete(ctx, "springboot-web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"data-springboot-web-0", "data-springboot-web-1", "data-springboot-web-2", "kept"} {
		if err := kube.CoreV1().PersistentVolumeClaims(ns).Delete(ctx, c, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 2*time.Minute, "only the retained heketi volume left", func(ctx context.Context) (bool, error) {
		l, err := admin.VolumeList(ctx)
		return err == nil && len(l.Volumes) == 1 && l.Volumes[0] == kept.Annotations[AnnHeketiVolumeID], err
	})
}

func leaseHolder(l *coordinationv1.Lease) string {
	if l == nil || l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}
