package provisioner

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/heketi/heketi/pkg/glusterfs/api"
	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/glusterkube/glusterkube/csi"
	"github.com/glusterkube/glusterkube/internal/heketi"
	"github.com/glusterkube/glusterkube/internal/testenv"
	"github.com/glusterkube/glusterkube/volume"
)

func heketiClient(t testing.TB, url, user, key string) *heketi.Client {
	t.Helper()
	h, err := heketi.New(heketi.Config{URL: url, User: user, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func statefulSet(ns, name, class string, replicas int32) *appsv1.StatefulSet {
	labels := map[string]string{"app": name}
	return &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1.StatefulSetSpec{
			ServiceName: name,
			Replicas:    &replicas,
			// The claims are what is tested here; ordered start-up (the
			// examples' StatefulSet) only makes the test slower.
			PodManagementPolicy: appsv1.ParallelPodManagement,
			Selector:            &metav1.LabelSelector{MatchLabels: labels},
			Template: v1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: v1.PodSpec{Containers: []v1.Container{{
					Name: "web", Image: "nginx",
					VolumeMounts: []v1.VolumeMount{{Name: "data", MountPath: "/data"}},
				}}},
			},
			VolumeClaimTemplates: []v1.PersistentVolumeClaim{{
				ObjectMeta: metav1.ObjectMeta{Name: "data"},
				Spec: v1.PersistentVolumeClaimSpec{
					StorageClassName: &class,
					AccessModes:      []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce},
					Resources:        v1.VolumeResourceRequirements{Requests: v1.ResourceList{v1.ResourceStorage: resource.MustParse("1Gi")}},
				},
			}},
		},
	}
}

// volumeSources are the two kinds of PV the provisioner makes: CSI PVs
// (the default, no parameter) and in-tree glusterfs PVs.
var volumeSources = []struct{ name, param string }{
	{"csi", ""},
	{"glusterfs", volume.VolumeSourceGlusterfs},
}

// withSource adds volumesource to a class's parameters when set.
func withSource(params map[string]string, source string) map[string]string {
	if source != "" {
		params[volume.ParamVolumeSource] = source
	}
	return params
}

// checkPVSource checks a PV's source against its heketi volume: CSI PVs
// name glusterkube's driver, the volume id as handle (on the default
// server: heketi's id) and the servers and volume name, with no Endpoints
// or Service; in-tree PVs name the volume through the claim's Endpoints
// and headless Service.
func checkPVSource(t *testing.T, kube kubernetes.Interface, ns, claim, source string, pv *v1.PersistentVolume, vol api.VolumeInfoResponse) {
	t.Helper()
	ctx := context.Background()
	ep, epErr := kube.CoreV1().Endpoints(ns).Get(ctx, "glusterfs-dynamic-"+claim, metav1.GetOptions{})
	svc, svcErr := kube.CoreV1().Services(ns).Get(ctx, "glusterfs-dynamic-"+claim, metav1.GetOptions{})
	if source == volume.VolumeSourceGlusterfs {
		if pv.Spec.Glusterfs == nil || pv.Spec.Glusterfs.Path != vol.Name || pv.Spec.CSI != nil {
			t.Errorf("PV %s: source %+v, want glusterfs path %s", pv.Name, pv.Spec.PersistentVolumeSource, vol.Name)
		}
		if epErr != nil || len(ep.Subsets) != 1 || len(ep.Subsets[0].Addresses) != 3 {
			t.Errorf("endpoints for %s: %v %v", claim, ep, epErr)
		}
		if svcErr != nil || svc.Spec.ClusterIP != v1.ClusterIPNone {
			t.Errorf("service for %s: %v (want headless)", claim, svcErr)
		}
		return
	}
	cs := pv.Spec.CSI
	if cs == nil || pv.Spec.Glusterfs != nil {
		t.Fatalf("PV %s: source %+v, want csi", pv.Name, pv.Spec.PersistentVolumeSource)
	}
	servers := strings.Split(cs.VolumeAttributes[csi.ContextServers], ",")
	if cs.Driver != csi.DriverName || cs.VolumeHandle != vol.Id || cs.FSType != "" || cs.VolumeAttributes[csi.ContextVolume] != vol.Name || len(servers) != 3 {
		t.Errorf("PV %s: csi source %+v for heketi volume %s (%s)", pv.Name, cs, vol.Name, vol.Id)
	}
	for _, m := range pv.Spec.MountOptions {
		if strings.Contains(m, "backup-volfile-servers") {
			t.Errorf("PV %s mount options %v: the node adds backup-volfile-servers itself", pv.Name, pv.Spec.MountOptions)
		}
	}
	if !apierrors.IsNotFound(epErr) || !apierrors.IsNotFound(svcErr) {
		t.Errorf("a CSI PV's claim %s got Endpoints (%v) or a Service (%v)", claim, epErr, svcErr)
	}
}

// The seeds' StatefulSet: its three claims (volumeClaimTemplates on a
// Delete class) get three replica-3 heketi volumes with distinct GIDs, as
// CSI PVs (and, by the class parameter, in-tree PVs) bound by the real PV
// controller; its pods run; deleting the claims removes the volumes, the
// PVs and (in-tree) the Endpoints and Services.
func TestStatefulSetDeleteClass(t *testing.T) {
	for _, src := range volumeSources {
		t.Run(src.name, func(t *testing.T) { testStatefulSetDeleteClass(t, src.param) })
	}
}

func testStatefulSetDeleteClass(t *testing.T, source string) {
	env := testenv.Get(t)
	ns := env.Namespace(t)
	h := heketiClient(t, env.Heketi.URL, "", "")
	cluster := heketiCluster(t, h)
	r := startProvisioner(t, env, provName(ns), heketi.Config{URL: env.Heketi.URL}, nil, true)
	kube := env.Client
	testenv.EnsureCSIDriver(context.Background(), t, kube)
	sc := ns + "-delete"
	createClass(t, kube, storageClass(sc, r.name, v1.PersistentVolumeReclaimDelete, withSource(map[string]string{
		"clusterid": cluster, "volumetype": "replicate:3", "gidMin": "40000", "gidMax": "40100",
	}, source)))
	ctx := context.Background()
	if _, err := kube.AppsV1().StatefulSets(ns).Create(ctx, statefulSet(ns, "web", sc, 3), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	claims := []string{"data-web-0", "data-web-1", "data-web-2"}
	pvs := waitBound(t, kube, ns, claims, 2*time.Minute)

	vols := clusterVolumes(t, h, cluster)
	if len(vols) != 3 {
		t.Fatalf("heketi cluster holds %d volumes, want 3", len(vols))
	}
	byID := map[string]api.VolumeInfoResponse{}
	for _, v := range vols {
		byID[v.Id] = v
	}
	gids := map[string]bool{}
	for _, c := range claims {
		pv := pvs[c]
		v, ok := byID[pv.Annotations[AnnHeketiVolumeID]]
		if !ok {
			t.Fatalf("PV %s names heketi volume %s, not in the cluster", pv.Name, pv.Annotations[AnnHeketiVolumeID])
		}
		if v.Durability.Type != api.DurabilityReplicate || v.Durability.Replicate.Replica != 3 || len(v.Bricks) != 3 {
			t.Errorf("volume %s durability %+v with %d bricks", v.Name, v.Durability, len(v.Bricks))
		}
		if strconv.FormatInt(v.Gid, 10) != pv.Annotations[AnnGID] || v.Gid < 40000 || v.Gid > 40100 {
			t.Errorf("volume %s GID %d, PV says %s", v.Name, v.Gid, pv.Annotations[AnnGID])
		}
		if gids[pv.Annotations[AnnGID]] {
			t.Errorf("GID %s given twice", pv.Annotations[AnnGID])
		}
		gids[pv.Annotations[AnnGID]] = true
		if pv.Spec.PersistentVolumeReclaimPolicy != v1.PersistentVolumeReclaimDelete || pv.Annotations[AnnHeketiVolumeName] != v.Name || pv.Annotations[AnnHeketiURL] != env.Heketi.URL {
			t.Errorf("PV %s: reclaim %s annotations %v", pv.Name, pv.Spec.PersistentVolumeReclaimPolicy, pv.Annotations)
		}
		checkPVSource(t, kube, ns, c, source, pv, v)
	}
	// Metrics: the library's and the heketi calls'.
	resp, err := http.Get(r.metrics)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`controller_persistentvolumeclaim_provision_total{class="` + sc + `",source=""} 3`,
		`glusterkube_heketi_request_duration_seconds_count{operation="volume_create",outcome="ok"} 3`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// Pods run on kwok nodes with their volumes.
	eventually(t, 2*time.Minute, "StatefulSet ready", func(ctx context.Context) (bool, error) {
		s, err := kube.AppsV1().StatefulSets(ns).Get(ctx, "web", metav1.GetOptions{})
		return err == nil && s.Status.ReadyReplicas == 3, err
	})

	// Delete: scale down, delete the claims.
	if err := kube.AppsV1().StatefulSets(ns).Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, c := range claims {
		if err := kube.CoreV1().PersistentVolumeClaims(ns).Delete(ctx, c, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 2*time.Minute, "heketi volumes deleted", func(context.Context) (bool, error) {
		return len(clusterVolumes(t, h, cluster)) == 0, nil
	})
	for _, c := range claims {
		pvName := pvs[c].Name
		eventually(t, time.Minute, "PV "+pvName+" and endpoints deleted", func(ctx context.Context) (bool, error) {
			_, err1 := kube.CoreV1().PersistentVolumes().Get(ctx, pvName, metav1.GetOptions{})
			_, err2 := kube.CoreV1().Endpoints(ns).Get(ctx, "glusterfs-dynamic-"+c, metav1.GetOptions{})
			_, err3 := kube.CoreV1().Services(ns).Get(ctx, "glusterfs-dynamic-"+c, metav1.GetOptions{})
			return apierrors.IsNotFound(err1) && apierrors.IsNotFound(err2) && apierrors.IsNotFound(err3), nil
		})
	}
}

// A Retain class keeps the heketi volume, the PV (Released) and, for
// in-tree PVs, the Endpoints after the claim goes.
func TestRetainClassKeepsVolume(t *testing.T) {
	for _, src := range volumeSources {
		t.Run(src.name, func(t *testing.T) { testRetainClassKeepsVolume(t, src.param) })
	}
}

func testRetainClassKeepsVolume(t *testing.T, source string) {
	env := testenv.Get(t)
	ns := env.Namespace(t)
	h := heketiClient(t, env.Heketi.URL, "", "")
	cluster := heketiCluster(t, h)
	r := startProvisionerWith(t, env, provName(ns), heketi.Config{URL: env.Heketi.URL}, nil, provOptions{logs: true})
	kube := env.Client
	ctx := context.Background()
	sc := ns + "-retain"
	createClass(t, kube, storageClass(sc, r.name, v1.PersistentVolumeReclaimRetain, withSource(map[string]string{"clusterid": cluster, "volumetype": "replicate:2"}, source)))
	modes := []v1.PersistentVolumeAccessMode{v1.ReadWriteMany}
	if _, err := kube.CoreV1().PersistentVolumeClaims(ns).Create(ctx, newClaim(ns, "keep", sc, "2Gi", modes...), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pv := waitBound(t, kube, ns, []string{"keep"}, time.Minute)["keep"]
	if pv.Spec.PersistentVolumeReclaimPolicy != v1.PersistentVolumeReclaimRetain || pv.Spec.AccessModes[0] != v1.ReadWriteMany {
		t.Fatalf("PV reclaim %s modes %v", pv.Spec.PersistentVolumeReclaimPolicy, pv.Spec.AccessModes)
	}
	t.Cleanup(func() {
		_ = kube.CoreV1().PersistentVolumes().Delete(context.Background(), pv.Name, metav1.DeleteOptions{})
	})
	if err := kube.CoreV1().PersistentVolumeClaims(ns).Delete(ctx, "keep", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "PV Released", func(ctx context.Context) (bool, error) {
		cur, err := kube.CoreV1().PersistentVolumes().Get(ctx, pv.Name, metav1.GetOptions{})
		return err == nil && cur.Status.Phase == v1.VolumeReleased, err
	})
	// Wait until the provision library has looked at the Released PV and
	// decided (its own log line), then check that all is kept.
	eventually(t, time.Minute, "the library skipped the Released PV", func(context.Context) (bool, error) {
		return r.logs.has("shouldDelete is false: volume does not have Delete reclaim policy", pv.Name), nil
	})
	vols := clusterVolumes(t, h, cluster)
	if len(vols) != 1 || vols[0].Id != pv.Annotations[AnnHeketiVolumeID] || vols[0].Durability.Replicate.Replica != 2 {
		t.Fatalf("heketi volumes after release: %+v", vols)
	}
	checkPVSource(t, kube, ns, "keep", source, pv, vols[0])
	if r.calls.get("volume_delete") != 0 {
		t.Errorf("provisioner called volume_delete %d times", r.calls.get("volume_delete"))
	}
}

// Each bad class fails its claim with a Warning Event naming the
// parameter, and no heketi volume is created.
func TestBadParametersEvent(t *testing.T) {
	env := testenv.Get(t)
	ns := env.Namespace(t)
	r := startProvisioner(t, env, provName(ns), heketi.Config{URL: env.Heketi.URL}, nil)
	kube := env.Client
	ctx := context.Background()
	cases := []struct {
		name   string
		params map[string]string
		want   string
	}{
		{"unknown", map[string]string{"replicas": "3"}, "parameter replicas"},
		{"volumetype", map[string]string{"volumetype": "replicate:x"}, "parameter volumetype"},
		{"gid", map[string]string{"gidMin": "10"}, "parameter gidMin"},
		{"cluster", map[string]string{"clusterid": "nope"}, "parameter clusterid"},
		{"url", map[string]string{"resturl": "ftp://x"}, "parameter resturl"},
		{"snap", map[string]string{"snapfactor": "0"}, "parameter snapfactor"},
		{"options", map[string]string{"volumeoptions": "justakey"}, "parameter volumeoptions"},
		{"prefix", map[string]string{"volumenameprefix": "a_b"}, "parameter volumenameprefix"},
		{"epprefix", map[string]string{"customepnameprefix": "UPPER"}, "parameter customepnameprefix"},
		{"source", map[string]string{"volumesource": "nfs"}, "parameter volumesource"},
		{"secret", map[string]string{"secretName": "x"}, "secretNamespace and secretName"},
	}
	for _, c := range cases {
		createClass(t, kube, storageClass(ns+"-"+c.name, r.name, v1.PersistentVolumeReclaimDelete, c.params))
		if _, err := kube.CoreV1().PersistentVolumeClaims(ns).Create(ctx, newClaim(ns, c.name, ns+"-"+c.name, "1Gi"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range cases {
		eventually(t, time.Minute, "Warning Event for "+c.name, func(context.Context) (bool, error) {
			for _, e := range claimEvents(t, kube, ns, c.name) {
				// Every case is a Warning naming the parameter; all but
				// "secret" (a rule about two parameters) give the valid form.
				if e.Type == v1.EventTypeWarning && strings.Contains(e.Message, c.want) && (strings.Contains(e.Message, "valid form") || c.name == "secret") {
					return true, nil
				}
			}
			return false, nil
		})
		cl, err := kube.CoreV1().PersistentVolumeClaims(ns).Get(ctx, c.name, metav1.GetOptions{})
		if err != nil || cl.Status.Phase != v1.ClaimPending {
			t.Errorf("claim %s: %v %v", c.name, cl.Status.Phase, err)
		}
	}
	if n := r.calls.get("volume_create"); n != 0 {
		t.Errorf("%d heketi volume creates for bad classes", n)
	}
}

// The provisioner dies after heketi made the volume and before the PV
// exists; after a restart there is exactly one volume and one bound PV.
func TestCrashAfterHeketiCreate(t *testing.T) {
	env := testenv.Get(t)
	ns := env.Namespace(t)
	h := heketiClient(t, env.Heketi.URL, "", "")
	cluster := heketiCluster(t, h)
	kube := env.Client
	ctx := context.Background()
	name := provName(ns)
	createClass(t, kube, storageClass(ns+"-gold", name, v1.PersistentVolumeReclaimDelete, map[string]string{"clusterid": cluster}))

	crashed := make(chan string, 1)
	var first *running
	first = startProvisioner(t, env, name, heketi.Config{URL: env.Heketi.URL}, func(c *Config) {
		c.AfterVolumeCreate = func(ctx context.Context, pv, id string) error {
			crashed <- id
			go first.cancel() // the process dies here
			<-ctx.Done()
			return ctx.Err()
		}
	})
	if _, err := kube.CoreV1().PersistentVolumeClaims(ns).Create(ctx, newClaim(ns, "data", ns+"-gold", "1Gi"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var id string
	select {
	case id = <-crashed:
	case <-time.After(time.Minute):
		t.Fatal("provisioner never created the volume")
	}
	first.stop()
	if vols := clusterVolumes(t, h, cluster); len(vols) != 1 || vols[0].Id != id {
		t.Fatalf("after the crash heketi holds %+v", vols)
	}
	if list, _ := kube.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{}); list != nil {
		for _, pv := range list.Items {
			if pv.Spec.ClaimRef != nil && pv.Spec.ClaimRef.Namespace == ns {
				t.Fatalf("a PV exists before the restart: %s", pv.Name)
			}
		}
	}

	second := startProvisioner(t, env, name, heketi.Config{URL: env.Heketi.URL}, nil)
	pv := waitBound(t, kube, ns, []string{"data"}, time.Minute)["data"]
	vols := clusterVolumes(t, h, cluster)
	if len(vols) != 1 || vols[0].Id != id || pv.Annotations[AnnHeketiVolumeID] != id {
		t.Fatalf("after restart: heketi %+v, PV names %s, want the one volume %s", vols, pv.Annotations[AnnHeketiVolumeID], id)
	}
	if n := second.calls.get("volume_create"); n != 0 {
		t.Errorf("restarted provisioner created %d volumes", n)
	}
	pvs, _ := kube.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{})
	mine := 0
	for _, p := range pvs.Items {
		if p.Spec.ClaimRef != nil && p.Spec.ClaimRef.Namespace == ns {
			mine++
		}
	}
	if mine != 1 {
		t.Errorf("%d PVs for the claim", mine)
	}
}

// Fifty claims at once get fifty distinct GIDs, in heketi and in the PVs.
func TestGIDsUniqueUnderConcurrency(t *testing.T) {
	env := testenv.Get(t)
	ns := env.Namespace(t)
	h := heketiClient(t, env.Heketi.URL, "", "")
	cluster := heketiCluster(t, h)
	r := startProvisioner(t, env, provName(ns), heketi.Config{URL: env.Heketi.URL}, nil)
	kube := fastClient(t, env.Config)
	ctx := context.Background()
	sc := ns + "-gid"
	createClass(t, kube, storageClass(sc, r.name, v1.PersistentVolumeReclaimDelete, map[string]string{"clusterid": cluster, "gidMin": "50000", "gidMax": "50049"}))
	const n = 50
	names := make([]string, n)
	errs := make(chan error, n)
	for i := range n {
		names[i] = fmt.Sprintf("c%02d", i)
		go func() {
			_, err := kube.CoreV1().PersistentVolumeClaims(ns).Create(ctx, newClaim(ns, names[i], sc, "1Gi"), metav1.CreateOptions{})
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	pvs := waitBound(t, kube, ns, names, 3*time.Minute)
	seen := map[string]string{}
	for c, pv := range pvs {
		g := pv.Annotations[AnnGID]
		if other, dup := seen[g]; dup {
			t.Errorf("GID %s on %s and %s", g, c, other)
		}
		seen[g] = c
	}
	vols := clusterVolumes(t, h, cluster)
	hg := map[int64]bool{}
	for _, v := range vols {
		if hg[v.Gid] || v.Gid < 50000 || v.Gid > 50049 {
			t.Errorf("heketi GID %d duplicated or out of range", v.Gid)
		}
		hg[v.Gid] = true
	}
	if len(vols) != n || len(seen) != n {
		t.Errorf("%d heketi volumes, %d distinct PV GIDs, want %d", len(vols), len(seen), n)
	}
	// The range is full: one more claim gets a clear Event and no volume.
	if _, err := kube.CoreV1().PersistentVolumeClaims(ns).Create(ctx, newClaim(ns, "one-too-many", sc, "1Gi"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "GID exhausted event", func(context.Context) (bool, error) {
		for _, e := range claimEvents(t, kube, ns, "one-too-many") {
			if e.Reason == ReasonGIDRangeExhausted && strings.Contains(e.Message, "50000..50049") {
				return true, nil
			}
		}
		return false, nil
	})
	if got := len(clusterVolumes(t, h, cluster)); got != n {
		t.Errorf("%d heketi volumes after exhaustion", got)
	}
}

// Growing a claim of an expandable class grows its heketi volume once,
// the PV and the claim's status, for both kinds of PV; the API server
// refuses shrinking.
func TestExpansion(t *testing.T) {
	for _, src := range volumeSources {
		t.Run(src.name, func(t *testing.T) { testExpansion(t, src.param) })
	}
}

func testExpansion(t *testing.T, source string) {
	env := testenv.Get(t)
	ns := env.Namespace(t)
	h := heketiClient(t, env.Heketi.URL, "", "")
	cluster := heketiCluster(t, h)
	r := startProvisioner(t, env, provName(ns), heketi.Config{URL: env.Heketi.URL}, nil)
	kube := env.Client
	ctx := context.Background()
	sc := ns + "-grow"
	createClass(t, kube, storageClass(sc, r.name, v1.PersistentVolumeReclaimDelete, withSource(map[string]string{"clusterid": cluster}, source)))
	if _, err := kube.CoreV1().PersistentVolumeClaims(ns).Create(ctx, newClaim(ns, "grow", sc, "1Gi"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pv := waitBound(t, kube, ns, []string{"grow"}, time.Minute)["grow"]
	if (pv.Spec.CSI != nil) != (source == "") {
		t.Fatalf("PV source %+v for volumesource %q", pv.Spec.PersistentVolumeSource, source)
	}
	patch := []byte(`{"spec":{"resources":{"requests":{"storage":"3Gi"}}}}`)
	if _, err := kube.CoreV1().PersistentVolumeClaims(ns).Patch(ctx, "grow", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	want := resource.MustParse("3Gi")
	eventually(t, time.Minute, "claim status 3Gi", func(ctx context.Context) (bool, error) {
		c, err := kube.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "grow", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		got := c.Status.Capacity[v1.ResourceStorage]
		return got.Cmp(want) == 0, nil
	})
	cur, err := kube.CoreV1().PersistentVolumes().Get(ctx, pv.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := cur.Spec.Capacity[v1.ResourceStorage]; got.Cmp(want) != 0 {
		t.Errorf("PV capacity %s", got.String())
	}
	vol, err := h.VolumeInfo(ctx, pv.Annotations[AnnHeketiVolumeID])
	if err != nil || vol.Size != 3 {
		t.Fatalf("heketi volume size %v err %v", vol, err)
	}
	if n := r.calls.get("volume_expand"); n != 1 {
		t.Errorf("%d expands", n)
	}
	shrink := []byte(`{"spec":{"resources":{"requests":{"storage":"1Gi"}}}}`)
	if _, err := kube.CoreV1().PersistentVolumeClaims(ns).Patch(ctx, "grow", types.MergePatchType, shrink, metav1.PatchOptions{}); err == nil {
		t.Error("the API server accepted a shrink")
	}
}

// With heketi's 'user' key the provisioner refuses before creating (the
// volume would leak: only admin may read or delete it) and says why.
func TestHeketiUserKeyRefused(t *testing.T) {
	env := testenv.Get(t)
	hk := testenv.NewHeketi(t, testenv.HeketiOptions{Auth: true})
	ns := env.Namespace(t)
	admin := heketiClient(t, hk.URL, "admin", hk.AdminKey)
	cluster := heketiCluster(t, admin)
	r := startProvisioner(t, env, provName(ns), heketi.Config{URL: hk.URL, User: "user", Key: hk.UserKey}, nil)
	kube := env.Client
	ctx := context.Background()
	createClass(t, kube, storageClass(ns+"-user", r.name, v1.PersistentVolumeReclaimDelete, map[string]string{"clusterid": cluster}))
	if _, err := kube.CoreV1().PersistentVolumeClaims(ns).Create(ctx, newClaim(ns, "data", ns+"-user", "1Gi"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "admin-required event", func(context.Context) (bool, error) {
		for _, e := range claimEvents(t, kube, ns, "data") {
			if e.Reason == ReasonHeketiAdminRequired && strings.Contains(e.Message, "admin") {
				return true, nil
			}
		}
		return false, nil
	})
	if vols := clusterVolumes(t, admin, cluster); len(vols) != 0 {
		t.Errorf("heketi holds %d volumes", len(vols))
	}
	// With the admin key from a Secret the same claim provisions.
	_, err := kube.CoreV1().Secrets(ns).Create(ctx, &v1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "heketi-admin"}, Type: SecretType,
		Data: map[string][]byte{SecretKey: []byte(hk.AdminKey)},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	createClass(t, kube, storageClass(ns+"-admin", r.name, v1.PersistentVolumeReclaimDelete, map[string]string{
		"clusterid": cluster, "resturl": hk.URL, "restuser": "admin", "secretNamespace": ns, "secretName": "heketi-admin",
	}))
	if _, err := kube.CoreV1().PersistentVolumeClaims(ns).Create(ctx, newClaim(ns, "ok", ns+"-admin", "1Gi"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pv := waitBound(t, kube, ns, []string{"ok"}, time.Minute)["ok"]
	if pv.Annotations[AnnHeketiSecret] != ns+"/heketi-admin" || pv.Annotations[AnnHeketiUser] != "admin" {
		t.Errorf("annotations %v", pv.Annotations)
	}
	for k, v := range pv.Annotations {
		if strings.Contains(v, hk.AdminKey) {
			t.Errorf("annotation %s holds the key", k)
		}
	}
	// Delete works from the annotations, even with the class gone.
	_ = kube.StorageV1().StorageClasses().Delete(ctx, ns+"-admin", metav1.DeleteOptions{})
	if err := kube.CoreV1().PersistentVolumeClaims(ns).Delete(ctx, "ok", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "volume deleted without its class", func(context.Context) (bool, error) {
		return len(clusterVolumes(t, admin, cluster)) == 0, nil
	})
}

// With heketi down, claims wait with a Warning Event; once heketi is back
// each gets exactly one volume.
func TestHeketiOutage(t *testing.T) {
	env := testenv.Get(t)
	hk := testenv.NewHeketi(t, testenv.HeketiOptions{})
	h := heketiClient(t, hk.URL, "", "")
	cluster := heketiCluster(t, h)
	ns := env.Namespace(t)
	r := startProvisioner(t, env, provName(ns), heketi.Config{URL: hk.URL, Timeout: 10 * time.Second}, nil)
	kube := env.Client
	ctx := context.Background()
	createClass(t, kube, storageClass(ns+"-gold", r.name, v1.PersistentVolumeReclaimDelete, map[string]string{"clusterid": cluster}))
	if err := hk.Stop(); err != nil {
		t.Fatal(err)
	}
	names := []string{"a", "b", "c"}
	for _, n := range names {
		if _, err := kube.CoreV1().PersistentVolumeClaims(ns).Create(ctx, newClaim(ns, n, ns+"-gold", "1Gi"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, time.Minute, "failure event while heketi is down", func(context.Context) (bool, error) {
		for _, e := range claimEvents(t, kube, ns, "a") {
			if e.Type == v1.EventTypeWarning && e.Reason == "ProvisioningFailed" && strings.Contains(e.Message, "heketi") {
				return true, nil
			}
		}
		return false, nil
	})
	if err := hk.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	pvs := waitBound(t, kube, ns, names, 2*time.Minute)
	vols := clusterVolumes(t, h, cluster)
	if len(vols) != len(names) {
		t.Fatalf("%d heketi volumes for %d claims", len(vols), len(names))
	}
	ids := map[string]bool{}
	for _, v := range vols {
		ids[v.Id] = true
	}
	for n, pv := range pvs {
		if !ids[pv.Annotations[AnnHeketiVolumeID]] {
			t.Errorf("claim %s: PV names volume %s, not in heketi", n, pv.Annotations[AnnHeketiVolumeID])
		}
	}
}
