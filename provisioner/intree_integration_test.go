package provisioner

import (
	"context"
	"slices"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/glusterkube/glusterkube/csi"
	"github.com/glusterkube/glusterkube/internal/heketi"
	"github.com/glusterkube/glusterkube/internal/testenv"
)

// Serving the old classes on the real 1.37 control plane (whose PV
// controller has no glusterfs plugin): a claim of a class with
// provisioner: kubernetes.io/glusterfs gets a CSI PV, and deleting it
// removes the heketi volume; PVs the in-tree provisioner made (built as
// v1.25 built them) are deleted with their heketi volume, Endpoints and
// Service when their claim goes (Delete), with the heketi server of the
// class or, once the class is gone, the default one; Retain keeps all.
func TestInTreeClasses(t *testing.T) {
	env := testenv.Get(t)
	ns := env.Namespace(t)
	h := heketiClient(t, env.Heketi.URL, "", "")
	cluster := heketiCluster(t, h)
	kube := env.Client
	ctx := context.Background()
	testenv.EnsureCSIDriver(context.Background(), t, kube)

	del, retain, gone := ns+"-intree-delete", ns+"-intree-retain", ns+"-intree-gone"
	params := map[string]string{"resturl": env.Heketi.URL, "clusterid": cluster, "restauthenabled": "false"}
	for _, c := range []struct {
		name    string
		reclaim v1.PersistentVolumeReclaimPolicy
	}{{del, v1.PersistentVolumeReclaimDelete}, {retain, v1.PersistentVolumeReclaimRetain}, {gone, v1.PersistentVolumeReclaimDelete}} {
		createClass(t, kube, testenv.InTreeClass(c.name, c.reclaim, params, "log-level=WARNING"))
	}
	// What the in-tree provisioner left, made before glusterkube serves
	// the classes (else it would take the unbound claims itself).
	old := map[string]*testenv.InTreeVolume{}
	for i, c := range []struct{ claim, class string }{{"old-delete", del}, {"old-retain", retain}, {"old-gone", gone}} {
		v, err := testenv.MakeInTreeVolume(ctx, kube, h, classByName(t, kube, c.class), testenv.InTreeClaim(ns, c.claim, c.class, "1Gi"), int64(2000+i))
		if err != nil {
			t.Fatal(err)
		}
		old[c.claim] = v
	}
	waitBound(t, kube, ns, []string{"old-delete", "old-retain", "old-gone"}, time.Minute)

	r := startProvisioner(t, env, provName(ns), heketi.Config{URL: env.Heketi.URL}, func(c *Config) { c.InTreeClasses = InTreeOn })

	// A new claim of the old class: a CSI PV of glusterkube's.
	if _, err := kube.CoreV1().PersistentVolumeClaims(ns).Create(ctx, newClaim(ns, "new", del, "2Gi"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pv := waitBound(t, kube, ns, []string{"new"}, time.Minute)["new"]
	// The library stamps it with the class's provisioner; glusterkube
	// adopts it, so the PV controller leaves it alone.
	eventually(t, time.Minute, "PV adopted", func(ctx context.Context) (bool, error) {
		var err error
		pv, err = kube.CoreV1().PersistentVolumes().Get(ctx, pv.Name, metav1.GetOptions{})
		return err == nil && pv.Annotations[AnnProvisionedBy] == r.name && !slices.Contains(pv.Finalizers, FinalizerInTreeDelete), err
	})
	if pv.Spec.CSI == nil || pv.Spec.CSI.Driver != csi.DriverName || pv.Spec.Glusterfs != nil {
		t.Fatalf("PV %s source %+v, want a CSI PV", pv.Name, pv.Spec.PersistentVolumeSource)
	}
	if pv.Annotations[AnnProvisionedBy] != r.name || pv.Spec.StorageClassName != del || pv.Spec.PersistentVolumeReclaimPolicy != v1.PersistentVolumeReclaimDelete {
		t.Errorf("PV %s: provisioned-by %q class %q reclaim %s", pv.Name, pv.Annotations[AnnProvisionedBy], pv.Spec.StorageClassName, pv.Spec.PersistentVolumeReclaimPolicy)
	}
	if len(pv.Spec.MountOptions) != 1 || pv.Spec.MountOptions[0] != "log-level=WARNING" {
		t.Errorf("PV %s mount options %v, want the class's", pv.Name, pv.Spec.MountOptions)
	}
	newID := pv.Annotations[AnnHeketiVolumeID]
	if !hasVolume(t, h, cluster, newID) {
		t.Fatalf("heketi has no volume %s", newID)
	}
	deleteClaim(t, kube, ns, "new")
	eventually(t, time.Minute, "the new claim's heketi volume and PV deleted", func(ctx context.Context) (bool, error) {
		_, err := kube.CoreV1().PersistentVolumes().Get(ctx, pv.Name, metav1.GetOptions{})
		return !hasVolume(t, h, cluster, newID) && apierrors.IsNotFound(err), nil
	})

	// The in-tree PVs: Delete, and Delete after the class is gone.
	if err := kube.StorageV1().StorageClasses().Delete(ctx, gone, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"old-delete", "old-gone"} {
		v := old[c]
		deleteClaim(t, kube, ns, c)
		eventually(t, time.Minute, c+": heketi volume, PV, Endpoints and Service deleted", func(ctx context.Context) (bool, error) {
			_, e1 := kube.CoreV1().PersistentVolumes().Get(ctx, v.PV.Name, metav1.GetOptions{})
			_, e2 := kube.CoreV1().Endpoints(ns).Get(ctx, v.Endpoints.Name, metav1.GetOptions{})
			_, e3 := kube.CoreV1().Services(ns).Get(ctx, v.Service.Name, metav1.GetOptions{})
			return !hasVolume(t, h, cluster, v.HeketiID) && apierrors.IsNotFound(e1) && apierrors.IsNotFound(e2) && apierrors.IsNotFound(e3), nil
		})
	}

	// Retain: the PV is Released and everything stays.
	v := old["old-retain"]
	deleteClaim(t, kube, ns, "old-retain")
	eventually(t, time.Minute, "the Retain PV Released", func(ctx context.Context) (bool, error) {
		cur, err := kube.CoreV1().PersistentVolumes().Get(ctx, v.PV.Name, metav1.GetOptions{})
		return err == nil && cur.Status.Phase == v1.VolumeReleased, err
	})
	t.Cleanup(func() {
		_ = kube.CoreV1().PersistentVolumes().Delete(context.Background(), v.PV.Name, metav1.DeleteOptions{})
	})
	if !hasVolume(t, h, cluster, v.HeketiID) {
		t.Error("the Retain PV's heketi volume was deleted")
	}
	if _, err := kube.CoreV1().Endpoints(ns).Get(ctx, v.Endpoints.Name, metav1.GetOptions{}); err != nil {
		t.Errorf("the Retain PV's Endpoints: %v", err)
	}
	if n := r.calls.get("volume_delete"); n != 3 {
		t.Errorf("heketi volume deletes = %d, want 3 (the new claim's and two in-tree PVs')", n)
	}
}

// Off (the setting, as on servers older than 1.26), the provisioner
// leaves claims of in-tree classes and in-tree PVs alone.
func TestInTreeClassesOff(t *testing.T) {
	env := testenv.Get(t)
	ns := env.Namespace(t)
	h := heketiClient(t, env.Heketi.URL, "", "")
	cluster := heketiCluster(t, h)
	kube := env.Client
	ctx := context.Background()
	class := ns + "-intree"
	createClass(t, kube, testenv.InTreeClass(class, v1.PersistentVolumeReclaimDelete, map[string]string{"resturl": env.Heketi.URL, "clusterid": cluster}))
	v, err := testenv.MakeInTreeVolume(ctx, kube, h, classByName(t, kube, class), testenv.InTreeClaim(ns, "old", class, "1Gi"), 2000)
	if err != nil {
		t.Fatal(err)
	}
	waitBound(t, kube, ns, []string{"old"}, time.Minute)
	r := startProvisioner(t, env, provName(ns), heketi.Config{URL: env.Heketi.URL}, func(c *Config) { c.InTreeClasses = InTreeOff })
	if _, err := kube.CoreV1().PersistentVolumeClaims(ns).Create(ctx, newClaim(ns, "new", class, "1Gi"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	deleteClaim(t, kube, ns, "old")
	// The PV controller gave up on both (it has no glusterfs plugin): the
	// PV is Failed, the claim has its ProvisioningFailed Event. The
	// provisioner saw the same objects and did nothing.
	eventually(t, time.Minute, "the in-tree PV Failed", func(ctx context.Context) (bool, error) {
		cur, err := kube.CoreV1().PersistentVolumes().Get(ctx, v.PV.Name, metav1.GetOptions{})
		return err == nil && cur.Status.Phase == v1.VolumeFailed, err
	})
	eventually(t, time.Minute, "the PV controller's ProvisioningFailed on the new claim", func(context.Context) (bool, error) {
		for _, e := range claimEvents(t, kube, ns, "new") {
			if e.Reason == "ProvisioningFailed" {
				return true, nil
			}
		}
		return false, nil
	})
	t.Cleanup(func() {
		_ = RemoveFinalizers(context.Background(), kube, v.PV.Name, v.PV.UID, FinalizerInTreeDelete)
		_ = kube.CoreV1().PersistentVolumes().Delete(context.Background(), v.PV.Name, metav1.DeleteOptions{})
	})
	c, err := kube.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "new", metav1.GetOptions{})
	if err != nil || c.Status.Phase != v1.ClaimPending || c.Annotations[annStorageProvisioner] != "" {
		t.Errorf("claim new: phase %s annotations %v (%v); want Pending, untouched", c.Status.Phase, c.Annotations, err)
	}
	if !hasVolume(t, h, cluster, v.HeketiID) || r.calls.get("volume_delete")+r.calls.get("volume_create") != 0 {
		t.Errorf("the provisioner touched heketi: %d deletes, %d creates", r.calls.get("volume_delete"), r.calls.get("volume_create"))
	}
}

func classByName(t *testing.T, kube kubernetes.Interface, name string) *storagev1.StorageClass {
	t.Helper()
	c, err := kube.StorageV1().StorageClasses().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func deleteClaim(t *testing.T, kube kubernetes.Interface, ns, name string) {
	t.Helper()
	if err := kube.CoreV1().PersistentVolumeClaims(ns).Delete(context.Background(), name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
}

func hasVolume(t *testing.T, h *heketi.Client, cluster, id string) bool {
	t.Helper()
	for _, v := range clusterVolumes(t, h, cluster) {
		if v.Id == id {
			return true
		}
	}
	return false
}
