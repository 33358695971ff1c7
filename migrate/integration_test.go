//lint:file-ignore SA1019 the in-tree glusterfs volume source reads v1 Endpoints (not EndpointSlices)

package migrate

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/heketi/heketi/pkg/glusterfs/api"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/glusterkube/glusterkube/csi"
	"github.com/glusterkube/glusterkube/internal/testenv"
	"github.com/glusterkube/glusterkube/provisioner"
)

// staticPV makes what an admin made by hand for a GlusterFS volume: a
// PV naming Endpoints (without a provisioner's labels) and a path, and a
// claim bound to it by volumeName.
func staticPV(t *testing.T, kube kubernetes.Interface, ns, name, endpoints, path string, claim bool) *v1.PersistentVolume {
	t.Helper()
	ctx := context.Background()
	pv, err := kube.CoreV1().PersistentVolumes().Create(ctx, &v1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"team": "data"}},
		Spec: v1.PersistentVolumeSpec{
			Capacity:                      v1.ResourceList{v1.ResourceStorage: resource.MustParse("1Gi")},
			AccessModes:                   []v1.PersistentVolumeAccessMode{v1.ReadWriteMany},
			PersistentVolumeReclaimPolicy: v1.PersistentVolumeReclaimRetain,
			MountOptions:                  []string{"backupvolfile-server=10.9.9.9"},
			PersistentVolumeSource: v1.PersistentVolumeSource{Glusterfs: &v1.GlusterfsPersistentVolumeSource{
				EndpointsName: endpoints, EndpointsNamespace: &ns, Path: path,
			}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if claim {
		empty := ""
		_, err := kube.CoreV1().PersistentVolumeClaims(ns).Create(ctx, &v1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: v1.PersistentVolumeClaimSpec{
				StorageClassName: &empty, VolumeName: name,
				AccessModes: []v1.PersistentVolumeAccessMode{v1.ReadWriteMany},
				Resources:   v1.VolumeResourceRequirements{Requests: v1.ResourceList{v1.ResourceStorage: resource.MustParse("1Gi")}},
			},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
	}
	return pv
}

// userEndpoints makes Endpoints and a Service as admins did for static
// glusterfs PVs (no provisioner labels).
func userEndpoints(t *testing.T, kube kubernetes.Interface, ns, name string, ips ...string) {
	t.Helper()
	ctx := context.Background()
	var addrs []v1.EndpointAddress
	for _, ip := range ips {
		addrs = append(addrs, v1.EndpointAddress{IP: ip})
	}
	if _, err := kube.CoreV1().Endpoints(ns).Create(ctx, &v1.Endpoints{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Subsets: []v1.EndpointSubset{{Addresses: addrs, Ports: []v1.EndpointPort{{Port: 1}}}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := kube.CoreV1().Services(ns).Create(ctx, &v1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1.ServiceSpec{Ports: []v1.ServicePort{{Port: 1}}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// Every kind of glusterfs PV, bound to claims: PVs and Endpoints/Services
// built exactly as the in-tree provisioner built them (Delete and Retain
// classes), one made by glusterkube's in-tree mode, static PVs naming a
// heketi volume and a plain GlusterFS volume, and one that cannot be
// converted (a sub-directory). The plan says which is which; apply
// converts the rest: each claim stays Bound to the same PV name, the PV
// has the CSI source, its old reclaim policy, its GID and labels; the
// provisioners' Endpoints and Services are gone, the admin's are kept; no
// heketi volume is touched. Then glusterkube's provisioner deletes the
// heketi volume of a converted Delete PV when its claim goes, and keeps a
// Retain one's.
func TestApplyConvertsPVs(t *testing.T) {
	env := testenv.Get(t)
	ns, recNS := env.Namespace(t), env.Namespace(t)
	kube := fastClient(t, env.Config)
	ctx := context.Background()
	h := heketiClient(t, env.Heketi.URL)
	cluster := testenv.HeketiCluster(t, h)
	testenv.EnsureCSIDriver(context.Background(), t, kube)
	cleanupPVs(t, kube, ns)
	prov := "glusterkube.io/" + ns
	startProvisioner(t, env, prov)

	params := map[string]string{"resturl": env.Heketi.URL, "restauthenabled": "false", "clusterid": cluster}
	del := createClass(t, kube, testenv.InTreeClass(ns+"-del", v1.PersistentVolumeReclaimDelete, params, "log-level=WARNING", "backup-volfile-servers=10.1.1.1:10.1.1.2"))
	ret := createClass(t, kube, testenv.InTreeClass(ns+"-ret", v1.PersistentVolumeReclaimRetain, params))
	old := makeInTree(t, kube, h, del, ns, "a", "b")
	for k, v := range makeInTree(t, kube, h, ret, ns, "c") {
		old[k] = v
	}
	// glusterkube's own in-tree mode.
	gk := testenv.InTreeClass(ns+"-gk", v1.PersistentVolumeReclaimDelete, map[string]string{"clusterid": cluster, "volumesource": "glusterfs"})
	gk.Provisioner = prov
	createClass(t, kube, gk)
	gkClaim := testenv.InTreeClaim(ns, "gk", gk.Name, "1Gi")
	gkClaim.Annotations = nil
	if _, err := kube.CoreV1().PersistentVolumeClaims(ns).Create(ctx, gkClaim, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Static PVs: a heketi volume and a plain GlusterFS volume, through the
	// admin's Endpoints.
	sv, err := h.VolumeCreate(ctx, &api.VolumeCreateRequest{Size: 1, Name: "staticvol", Clusters: []string{cluster},
		Durability: api.VolumeDurabilityInfo{Type: api.DurabilityReplicate, Replicate: api.ReplicaDurability{Replica: 3}}})
	if err != nil {
		t.Fatal(err)
	}
	userEndpoints(t, kube, ns, "gluster-cluster", "10.200.0.1", "10.200.0.2")
	staticPV(t, kube, ns, ns+"-static", "gluster-cluster", "staticvol", true)
	staticPV(t, kube, ns, ns+"-plain", "gluster-cluster", "plainvol", true)
	staticPV(t, kube, ns, ns+"-subdir", "gluster-cluster", "plainvol/sub", false)
	claims := []string{"a", "b", "c", "gk", ns + "-static", ns + "-plain"}
	bound := waitBound(t, kube, ns, claims, 2*time.Minute)
	idsBefore := heketiIDs(t, h, cluster)

	m := newMigrator(t, env, prov, recNS, nil)
	plan, err := m.Plan(ctx, Selection{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		origin Origin
		state  State
	}{
		bound["a"]: {OriginInTree, StateReady}, bound["b"]: {OriginInTree, StateReady}, bound["c"]: {OriginInTree, StateReady},
		bound["gk"]: {OriginGlusterkube, StateReady}, ns + "-static": {OriginStaticHeketi, StateReady}, ns + "-plain": {OriginStaticGluster, StateReady},
		ns + "-subdir": {"", StateCannot},
	}
	mine := 0
	for _, it := range plan.Items {
		w, ok := want[it.PV]
		if !ok {
			continue
		}
		mine++
		if it.Origin != w.origin || it.State != w.state {
			t.Errorf("plan: PV %s origin %q state %s (%s), want %q %s", it.PV, it.Origin, it.State, it.Reason, w.origin, w.state)
		}
	}
	if mine != len(want) {
		t.Fatalf("plan lists %d of the test's %d PVs", mine, len(want))
	}
	var text bytes.Buffer
	plan.WriteText(&text)
	for _, s := range []string{"sub-directory", "glusterfs-dynamic-" + string(old["a"].Claim.UID), "mount option backup-volfile-servers=10.1.1.1:10.1.1.2 dropped", "reclaim: Delete"} {
		if !strings.Contains(text.String(), s) {
			t.Errorf("plan text lacks %q:\n%s", s, text.String())
		}
	}
	if _, err := json.Marshal(plan); err != nil {
		t.Fatal(err)
	}

	rep := m.Apply(ctx, plan, nil)
	for _, r := range rep.Results {
		if _, ok := want[r.PV]; ok && r.Outcome == OutcomeFailed {
			t.Errorf("apply: PV %s failed: %s", r.PV, r.Message)
		}
	}
	after := waitBound(t, kube, ns, claims, time.Minute)
	for _, c := range claims {
		if after[c] != bound[c] {
			t.Errorf("claim %s bound to %s, was %s", c, after[c], bound[c])
		}
		pv := getPV(t, kube, bound[c])
		if pv.Spec.CSI == nil || pv.Spec.Glusterfs != nil || pv.Spec.CSI.Driver != csi.DriverName {
			t.Errorf("PV %s source %+v, want csi", pv.Name, pv.Spec.PersistentVolumeSource)
			continue
		}
		if pv.Annotations[AnnReclaimPolicy] != "" || slices.Contains(pv.Finalizers, provisioner.FinalizerInTreeDelete) {
			t.Errorf("PV %s: annotations %v finalizers %v", pv.Name, pv.Annotations, pv.Finalizers)
		}
		for _, o := range pv.Spec.MountOptions {
			if strings.Contains(o, "backup") {
				t.Errorf("PV %s keeps mount option %s", pv.Name, o)
			}
		}
		if cl := getClaim(t, kube, ns, c); cl.Annotations[AnnMigrating] != "" {
			t.Errorf("claim %s keeps annotation %s", c, AnnMigrating)
		}
	}
	// In-tree PVs: the heketi volume by id, the GID, the policy,
	// glusterkube as the provisioner; their Endpoints and Service gone.
	for _, c := range []string{"a", "b", "c"} {
		v, pv := old[c], getPV(t, kube, bound[c])
		wantPolicy := *del.ReclaimPolicy
		if c == "c" {
			wantPolicy = *ret.ReclaimPolicy
		}
		cs := pv.Spec.CSI
		if cs.VolumeHandle != v.HeketiID || cs.VolumeAttributes[csi.ContextVolume] != v.HeketiName || len(strings.Split(cs.VolumeAttributes[csi.ContextServers], ",")) != 3 {
			t.Errorf("PV %s: csi %+v, want heketi volume %s (%s)", pv.Name, cs, v.HeketiID, v.HeketiName)
		}
		if pv.Spec.PersistentVolumeReclaimPolicy != wantPolicy || pv.Annotations[provisioner.AnnGID] != v.PV.Annotations[provisioner.AnnGID] ||
			pv.Annotations[provisioner.AnnProvisionedBy] != prov || pv.Annotations[provisioner.AnnHeketiURL] != env.Heketi.URL ||
			pv.Spec.StorageClassName != v.PV.Spec.StorageClassName || pv.Spec.ClaimRef.UID != v.Claim.UID {
			t.Errorf("PV %s: policy %s class %s claim uid %s annotations %v", pv.Name, pv.Spec.PersistentVolumeReclaimPolicy, pv.Spec.StorageClassName, pv.Spec.ClaimRef.UID, pv.Annotations)
		}
		if c != "c" && !slices.Equal(pv.Spec.MountOptions, []string{"log-level=WARNING"}) {
			t.Errorf("PV %s mount options %v", pv.Name, pv.Spec.MountOptions)
		}
		if ep, svc := endpointsExist(t, kube, ns, v.Endpoints.Name); ep || svc {
			t.Errorf("claim %s: Endpoints (%v) or Service (%v) %s left", c, ep, svc, v.Endpoints.Name)
		}
	}
	if ep, svc := endpointsExist(t, kube, ns, "glusterfs-dynamic-gk"); ep || svc {
		t.Errorf("glusterkube's in-tree mode Endpoints (%v) or Service (%v) left", ep, svc)
	}
	// Static PVs: their labels, no provisioner, the admin's Endpoints kept.
	st, plain := getPV(t, kube, ns+"-static"), getPV(t, kube, ns+"-plain")
	if st.Spec.CSI.VolumeHandle != sv.Id || st.Labels["team"] != "data" || st.Annotations[provisioner.AnnProvisionedBy] != "" {
		t.Errorf("static heketi PV: handle %s labels %v annotations %v", st.Spec.CSI.VolumeHandle, st.Labels, st.Annotations)
	}
	if plain.Spec.CSI.VolumeHandle != "glusterfs:10.200.0.1:plainvol" || plain.Spec.CSI.VolumeAttributes[csi.ContextServers] != "10.200.0.1,10.200.0.2" || len(plain.Spec.MountOptions) != 0 {
		t.Errorf("static GlusterFS PV: csi %+v mount options %v", plain.Spec.CSI, plain.Spec.MountOptions)
	}
	if ep, svc := endpointsExist(t, kube, ns, "gluster-cluster"); !ep || !svc {
		t.Error("the admin's Endpoints or Service was deleted")
	}
	if sub := getPV(t, kube, ns+"-subdir"); sub.Spec.Glusterfs == nil {
		t.Error("the sub-directory PV was converted")
	}
	if ids := heketiIDs(t, h, cluster); !slices.Equal(ids, idsBefore) {
		t.Fatalf("heketi volumes changed: %v, were %v", ids, idsBefore)
	}
	if recs, err := m.listRecords(ctx); err != nil || len(recs) != 0 {
		t.Errorf("records left: %v %v", recs, err)
	}
	again, err := m.Plan(ctx, Selection{})
	if err != nil {
		t.Fatal(err)
	}
	if again.Count(StateReady)+again.Count(StateInProgress) != 0 || again.Converted < 6 {
		var b bytes.Buffer
		again.WriteText(&b)
		t.Errorf("plan after apply:\n%s", b.String())
	}

	// Delete policy: the provisioner deletes the heketi volume with the
	// claim; Retain keeps it.
	for _, c := range []string{"a", "c"} {
		if err := kube.CoreV1().PersistentVolumeClaims(ns).Delete(ctx, c, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, time.Minute, "claim a's heketi volume and PV deleted", func(ctx context.Context) (bool, error) {
		_, err := kube.CoreV1().PersistentVolumes().Get(ctx, bound["a"], metav1.GetOptions{})
		return !slices.Contains(heketiIDs(t, h, cluster), old["a"].HeketiID) && apierrors.IsNotFound(err), nil
	})
	eventually(t, time.Minute, "claim c's PV Released", func(ctx context.Context) (bool, error) {
		pv, err := kube.CoreV1().PersistentVolumes().Get(ctx, bound["c"], metav1.GetOptions{})
		return err == nil && pv.Status.Phase == v1.VolumeReleased, err
	})
	if !slices.Contains(heketiIDs(t, h, cluster), old["c"].HeketiID) {
		t.Error("the Retain PV's heketi volume was deleted")
	}
}
