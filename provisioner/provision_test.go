package provisioner

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"

	csipb "github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/heketi/heketi/pkg/glusterfs/api"
	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"

	"github.com/glusterkube/glusterkube/csi"
	"github.com/glusterkube/glusterkube/internal/heketi"
	"github.com/glusterkube/glusterkube/volume"
	"github.com/glusterkube/glusterkube/volume/fakeheketi"
)

const testURL = "http://heketi.test:8080"

type fixture struct {
	kube   *fake.Clientset
	heketi *fakeheketi.Heketi
	rec    *record.FakeRecorder
	p      *Provisioner
	dialed []heketi.Config
	// dial, when set, answers instead of the fake (e.g. a restricted view).
	dial func(cfg heketi.Config) volume.Heketi
}

func newFixture(t *testing.T, objs ...runtime.Object) *fixture {
	t.Helper()
	f := &fixture{kube: fake.NewClientset(objs...), heketi: fakeheketi.New(), rec: record.NewFakeRecorder(100)}
	f.p = f.newProvisioner(t)
	return f
}

// newProvisioner is a fresh process: empty index, empty GID table.
func (f *fixture) newProvisioner(t *testing.T) *Provisioner {
	t.Helper()
	p, err := New(Config{
		Kube:     f.kube,
		Heketi:   heketi.Config{URL: testURL, User: "admin", Key: "adminkey"},
		Recorder: f.rec,
		Dial: func(cfg heketi.Config) (volume.Heketi, error) {
			f.dialed = append(f.dialed, cfg)
			if f.dial != nil {
				return f.dial(cfg), nil
			}
			return f.heketi, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (f *fixture) events() []string {
	var out []string
	for {
		select {
		case e := <-f.rec.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

func class(name string, params map[string]string, reclaim v1.PersistentVolumeReclaimPolicy) *storagev1.StorageClass {
	return &storagev1.StorageClass{
		ObjectMeta:    metav1.ObjectMeta{Name: name, UID: types.UID("sc-" + name)},
		Provisioner:   DefaultName,
		Parameters:    params,
		ReclaimPolicy: &reclaim,
		MountOptions:  []string{"log-level=ERROR"},
	}
}

func claim(ns, name, uid, size string, modes ...v1.PersistentVolumeAccessMode) *v1.PersistentVolumeClaim {
	if len(modes) == 0 {
		modes = []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce}
	}
	return &v1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(uid)},
		Spec: v1.PersistentVolumeClaimSpec{
			AccessModes: modes,
			Resources:   v1.VolumeResourceRequirements{Requests: v1.ResourceList{v1.ResourceStorage: resource.MustParse(size)}},
		},
	}
}

func provisionOpts(sc *storagev1.StorageClass, c *v1.PersistentVolumeClaim) controller.ProvisionOptions {
	return controller.ProvisionOptions{StorageClass: sc, PVC: c, PVName: "pvc-" + string(c.UID)}
}

// asLibrary marks a PV as the library would before saving it.
func asLibrary(pv *v1.PersistentVolume, c *v1.PersistentVolumeClaim) *v1.PersistentVolume {
	pv.Annotations[AnnProvisionedBy] = DefaultName
	pv.Spec.ClaimRef = &v1.ObjectReference{Namespace: c.Namespace, Name: c.Name, UID: c.UID}
	return pv
}

// inTree adds volumesource: glusterfs to a class's parameters.
func inTree(params map[string]string) map[string]string {
	out := map[string]string{volume.ParamVolumeSource: volume.VolumeSourceGlusterfs}
	for k, v := range params {
		out[k] = v
	}
	return out
}

func TestProvisionBuildsPV(t *testing.T) {
	tests := []struct {
		name    string
		source  string
		reclaim v1.PersistentVolumeReclaimPolicy
		size    string
		modes   []v1.PersistentVolumeAccessMode
		wantGiB int64
	}{
		{"CSI delete RWO rounds 1500Mi up to 2GiB", "", v1.PersistentVolumeReclaimDelete, "1500Mi", []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce}, 2},
		{"CSI retain RWX", volume.VolumeSourceCSI, v1.PersistentVolumeReclaimRetain, "1Gi", []v1.PersistentVolumeAccessMode{v1.ReadWriteMany}, 1},
		{"in-tree delete RWO rounds 1500Mi up to 2GiB", volume.VolumeSourceGlusterfs, v1.PersistentVolumeReclaimDelete, "1500Mi", []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce}, 2},
		{"in-tree retain RWX", volume.VolumeSourceGlusterfs, v1.PersistentVolumeReclaimRetain, "1Gi", []v1.PersistentVolumeAccessMode{v1.ReadWriteMany}, 1},
		{"in-tree ROX", volume.VolumeSourceGlusterfs, v1.PersistentVolumeReclaimDelete, "10M", []v1.PersistentVolumeAccessMode{v1.ReadOnlyMany}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			params := map[string]string{"volumetype": "replicate:3", "gidMin": "40000", "gidMax": "40010", "volumeoptions": "client.ssl on"}
			if tt.source != "" {
				params[volume.ParamVolumeSource] = tt.source
			}
			sc := class("gold", params, tt.reclaim)
			c := claim("ns1", "data", "11111111-2222-3333-4444-555555555555", tt.size, tt.modes...)
			pv, state, err := f.p.Provision(context.Background(), provisionOpts(sc, c))
			if err != nil || state != controller.ProvisioningFinished {
				t.Fatalf("Provision: %v %v", state, err)
			}
			if pv.Name != "pvc-"+string(c.UID) || pv.Spec.PersistentVolumeReclaimPolicy != tt.reclaim {
				t.Errorf("name %s reclaim %s", pv.Name, pv.Spec.PersistentVolumeReclaimPolicy)
			}
			if got := pv.Spec.Capacity[v1.ResourceStorage]; got.Value() != tt.wantGiB<<30 {
				t.Errorf("capacity %s", got.String())
			}
			if len(pv.Spec.AccessModes) != 1 || pv.Spec.AccessModes[0] != tt.modes[0] {
				t.Errorf("access modes %v", pv.Spec.AccessModes)
			}
			heketiName := "vol_pvc-" + string(c.UID)
			want := map[string]string{AnnGID: "40000", AnnHeketiURL: testURL, AnnHeketiUser: "admin", AnnHeketiVolumeName: heketiName, AnnGlusterType: "file"}
			for k, v := range want {
				if pv.Annotations[k] != v {
					t.Errorf("annotation %s=%q, want %q", k, pv.Annotations[k], v)
				}
			}
			id := pv.Annotations[AnnHeketiVolumeID]
			if id == "" {
				t.Error("no heketi volume id annotation")
			}
			for k, v := range pv.Annotations {
				if strings.Contains(v, "adminkey") {
					t.Errorf("annotation %s holds the key", k)
				}
			}
			req := f.heketi.Creates()[0]
			if req.Size != int(tt.wantGiB) || req.Gid != 40000 || req.Durability.Replicate.Replica != 3 || req.GlusterVolumeOptions[0] != "client.ssl on" || !req.Snapshot.Enable || req.Snapshot.Factor != 1 {
				t.Errorf("create request %+v", req)
			}
			apiCalls := f.kube.Actions()
			_, epErr := f.kube.CoreV1().Endpoints("ns1").Get(context.Background(), "glusterfs-dynamic-data", metav1.GetOptions{})
			_, svcErr := f.kube.CoreV1().Services("ns1").Get(context.Background(), "glusterfs-dynamic-data", metav1.GetOptions{})

			if tt.source != volume.VolumeSourceGlusterfs {
				cs := pv.Spec.CSI
				if cs == nil || pv.Spec.Glusterfs != nil {
					t.Fatalf("source %+v, want csi", pv.Spec.PersistentVolumeSource)
				}
				if cs.Driver != csi.DriverName || cs.VolumeHandle != id || cs.FSType != "" {
					t.Errorf("csi source %+v: want driver %s, handle %s (the default server's volume), no fsType", cs, csi.DriverName, id)
				}
				wantAttrs := map[string]string{csi.ContextServers: "10.0.0.1,10.0.0.2,10.0.0.3", csi.ContextVolume: heketiName}
				if len(cs.VolumeAttributes) != len(wantAttrs) || cs.VolumeAttributes[csi.ContextServers] != wantAttrs[csi.ContextServers] || cs.VolumeAttributes[csi.ContextVolume] != heketiName {
					t.Errorf("volume attributes %v, want %v", cs.VolumeAttributes, wantAttrs)
				}
				if strings.Join(pv.Spec.MountOptions, ",") != "log-level=ERROR" {
					t.Errorf("mount options %q: want the class's only (the node adds backup-volfile-servers)", pv.Spec.MountOptions)
				}
				if !apierrors.IsNotFound(epErr) || !apierrors.IsNotFound(svcErr) {
					t.Errorf("a CSI PV got Endpoints (%v) or a Service (%v)", epErr, svcErr)
				}
				if n := len(apiCalls); n != 1 { // the PV list that collects GIDs
					t.Errorf("%d API calls for a CSI PV, want only the GID list: %v", n, apiCalls)
				}
				return
			}
			gs := pv.Spec.Glusterfs
			if gs == nil || gs.EndpointsName != "glusterfs-dynamic-data" || gs.Path != heketiName || *gs.EndpointsNamespace != "ns1" {
				t.Fatalf("glusterfs source %+v", gs)
			}
			if strings.Join(pv.Spec.MountOptions, ",") != "log-level=ERROR,backup-volfile-servers=10.0.0.2:10.0.0.3" {
				t.Errorf("mount options %q", pv.Spec.MountOptions)
			}
			if epErr != nil || svcErr != nil {
				t.Fatalf("endpoints %v service %v", epErr, svcErr)
			}
			ep, _ := f.kube.CoreV1().Endpoints("ns1").Get(context.Background(), "glusterfs-dynamic-data", metav1.GetOptions{})
			if len(ep.Subsets) != 1 || len(ep.Subsets[0].Addresses) != 3 || ep.Subsets[0].Addresses[0].IP != "10.0.0.1" || ep.Annotations[AnnPV] != pv.Name {
				t.Errorf("endpoints %+v", ep)
			}
		})
	}
}

// A class naming another heketi server gets PVs whose volume handle
// carries that server's URL; the node needs only the attributes.
func TestProvisionCSIHandleOtherServer(t *testing.T) {
	f := newFixture(t)
	sc := class("other", map[string]string{"resturl": "http://other:1", "restuserkey": "k"}, v1.PersistentVolumeReclaimDelete)
	pv, _, err := f.p.Provision(context.Background(), provisionOpts(sc, claim("ns1", "c", "u-other", "1Gi")))
	if err != nil {
		t.Fatal(err)
	}
	id, err := volume.ParseID(pv.Spec.CSI.VolumeHandle)
	if err != nil || id.URL != "http://other:1" || id.Heketi != pv.Annotations[AnnHeketiVolumeID] {
		t.Fatalf("handle %q: %+v %v", pv.Spec.CSI.VolumeHandle, id, err)
	}
}

func TestProvisionBadVolumeSource(t *testing.T) {
	f := newFixture(t)
	_, state, err := f.p.Provision(context.Background(), provisionOpts(class("bad", map[string]string{"volumesource": "nfs"}, v1.PersistentVolumeReclaimDelete), claim("ns1", "c", "u1", "1Gi")))
	if err == nil || !strings.Contains(err.Error(), `parameter volumesource="nfs"`) || !strings.Contains(err.Error(), "valid form") || state != controller.ProvisioningNoChange {
		t.Fatalf("%s %v", state, err)
	}
	if len(f.dialed) != 0 {
		t.Error("heketi was dialed")
	}
}

func TestProvisionBadParameterMakesNoHeketiCall(t *testing.T) {
	f := newFixture(t)
	sc := class("bad", map[string]string{"volumetype": "replicate:x"}, v1.PersistentVolumeReclaimDelete)
	_, state, err := f.p.Provision(context.Background(), provisionOpts(sc, claim("ns1", "c", "u1", "1Gi")))
	if err == nil || !strings.Contains(err.Error(), "volumetype") {
		t.Fatalf("err %v", err)
	}
	if state != controller.ProvisioningNoChange {
		t.Errorf("state %s", state)
	}
	if len(f.dialed) != 0 || f.heketi.Count("volume_create")+f.heketi.Count("cluster_list") != 0 {
		t.Errorf("heketi was called: dialed %d", len(f.dialed))
	}
}

// A crash after heketi made the volume and before the PV was saved: the
// next process finds the volume by name instead of making a second one.
func TestProvisionAfterCrashReusesVolume(t *testing.T) {
	f := newFixture(t)
	crash := errors.New("killed")
	f.p.cfg.AfterVolumeCreate = func(context.Context, string, string) error { return crash }
	sc := class("gold", nil, v1.PersistentVolumeReclaimDelete)
	c := claim("ns1", "data", "u-crash-0001", "1Gi")
	_, state, err := f.p.Provision(context.Background(), provisionOpts(sc, c))
	if !errors.Is(err, crash) || state != controller.ProvisioningInBackground {
		t.Fatalf("first attempt: %v %v", state, err)
	}
	restarted := f.newProvisioner(t)
	pv, state, err := restarted.Provision(context.Background(), provisionOpts(sc, c))
	if err != nil || state != controller.ProvisioningFinished {
		t.Fatalf("after restart: %v %v", state, err)
	}
	if n := len(f.heketi.VolumeNames()); n != 1 || f.heketi.Count("volume_create") != 1 {
		t.Fatalf("%d volumes, %d creates", n, f.heketi.Count("volume_create"))
	}
	if pv.Annotations[AnnGID] != "2000" {
		t.Errorf("reused volume's GID %s", pv.Annotations[AnnGID])
	}
	if !strings.Contains(strings.Join(f.events(), "\n"), ReasonVolumeReused) {
		t.Error("no reuse event")
	}
	// The reused volume's GID is held: another claim gets a new one.
	pv2, _, err := restarted.Provision(context.Background(), provisionOpts(sc, claim("ns1", "other", "u-crash-0002", "1Gi")))
	if err != nil || pv2.Annotations[AnnGID] != "2001" {
		t.Errorf("second claim: gid %v err %v", pv2.Annotations[AnnGID], err)
	}
}

func TestProvisionCreateOutcomes(t *testing.T) {
	timeout := &heketi.Error{Op: "volume_create", Err: context.DeadlineExceeded, Message: "context deadline exceeded"}
	tests := []struct {
		name       string
		fail       func(*api.VolumeCreateRequest) (bool, error)
		wantState  controller.ProvisioningState
		wantErr    string
		retryState controller.ProvisioningState // second attempt, failures off
		volumes    int
	}{
		{"timeout while heketi goes on", func(*api.VolumeCreateRequest) (bool, error) { return true, timeout },
			controller.ProvisioningInBackground, "outcome unknown", controller.ProvisioningFinished, 1},
		{"timeout and nothing made", func(*api.VolumeCreateRequest) (bool, error) { return false, timeout },
			controller.ProvisioningInBackground, "outcome unknown", controller.ProvisioningFinished, 1},
		{"no space is final", func(*api.VolumeCreateRequest) (bool, error) {
			return false, fakeheketi.Err("volume_create", http.StatusInternalServerError, "No space")
		}, controller.ProvisioningFinished, "No space", controller.ProvisioningFinished, 1},
		{"busy heketi never got it", func(*api.VolumeCreateRequest) (bool, error) {
			return false, fakeheketi.Err("volume_create", http.StatusTooManyRequests, "busy")
		}, controller.ProvisioningFinished, "busy", controller.ProvisioningFinished, 1},
		{"user key: created but unreadable", func(*api.VolumeCreateRequest) (bool, error) {
			return true, fakeheketi.Err("volume_create", http.StatusUnauthorized, "Administrator access required")
		}, controller.ProvisioningInBackground, "admin user", controller.ProvisioningFinished, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.heketi.FailCreate = tt.fail
			sc := class("gold", nil, v1.PersistentVolumeReclaimDelete)
			c := claim("ns1", "data", "u-outcome", "1Gi")
			_, state, err := f.p.Provision(context.Background(), provisionOpts(sc, c))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || state != tt.wantState {
				t.Fatalf("first attempt: %s %v", state, err)
			}
			f.heketi.FailCreate = nil
			pv, state, err := f.p.Provision(context.Background(), provisionOpts(sc, c))
			if err != nil || state != tt.retryState {
				t.Fatalf("retry: %s %v", state, err)
			}
			if got := len(f.heketi.VolumeNames()); got != tt.volumes {
				t.Errorf("%d heketi volumes, want %d", got, tt.volumes)
			}
			if pv.Annotations[AnnGID] != "2000" {
				t.Errorf("gid %s", pv.Annotations[AnnGID])
			}
		})
	}
}

// Heketi refuses a name in use; the provisioner finds the earlier volume.
func TestProvisionNameInUseFindsVolume(t *testing.T) {
	f := newFixture(t)
	sc := class("gold", nil, v1.PersistentVolumeReclaimDelete)
	c := claim("ns1", "data", "u-inuse", "1Gi")
	// Index built while the volume did not exist yet...
	sv, err := f.p.vols.Server(volume.Credentials{URL: testURL, User: "admin", Key: "adminkey"})
	if err != nil {
		t.Fatal(err)
	}
	if err := sv.Prepare(context.Background()); err != nil {
		t.Fatal(err)
	}
	// ...then another process made it.
	req := &api.VolumeCreateRequest{Name: VolumeName("", c, "pvc-u-inuse"), Size: 1, Gid: 2000}
	if _, err := f.heketi.VolumeCreate(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	_, state, err := f.p.Provision(context.Background(), provisionOpts(sc, c))
	if err != nil || state != controller.ProvisioningFinished {
		t.Fatalf("%s %v", state, err)
	}
	if n := len(f.heketi.VolumeNames()); n != 1 {
		t.Errorf("%d volumes", n)
	}
}

func TestProvisionAdminRequiredBeforeCreate(t *testing.T) {
	f := newFixture(t)
	f.heketi.FailTopo = func() error {
		return fakeheketi.Err("topology_info", http.StatusUnauthorized, "Administrator access required")
	}
	_, state, err := f.p.Provision(context.Background(), provisionOpts(class("gold", nil, v1.PersistentVolumeReclaimDelete), claim("ns1", "c", "u", "1Gi")))
	if err == nil || !strings.Contains(err.Error(), "needs heketi's admin user") || state != controller.ProvisioningNoChange {
		t.Fatalf("%s %v", state, err)
	}
	if f.heketi.Count("volume_create") != 0 {
		t.Error("created a volume it could never delete")
	}
	if !strings.Contains(strings.Join(f.events(), "\n"), ReasonHeketiAdminRequired) {
		t.Error("no event")
	}
}

func TestProvisionGIDRangeExhausted(t *testing.T) {
	f := newFixture(t)
	sc := class("tiny", map[string]string{"gidMin": "3000", "gidMax": "3000"}, v1.PersistentVolumeReclaimDelete)
	if _, _, err := f.p.Provision(context.Background(), provisionOpts(sc, claim("ns1", "a", "u-a", "1Gi"))); err != nil {
		t.Fatal(err)
	}
	_, state, err := f.p.Provision(context.Background(), provisionOpts(sc, claim("ns1", "b", "u-b", "1Gi")))
	if err == nil || !strings.Contains(err.Error(), "3000..3000") || state != controller.ProvisioningFinished {
		t.Fatalf("%s %v", state, err)
	}
	if f.heketi.Count("volume_create") != 1 {
		t.Errorf("%d creates", f.heketi.Count("volume_create"))
	}
	if !strings.Contains(strings.Join(f.events(), "\n"), ReasonGIDRangeExhausted) {
		t.Error("no event")
	}
}

func TestProvisionGIDsFromExistingPVs(t *testing.T) {
	old := &v1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "old", Annotations: map[string]string{AnnGID: "2000"}}}
	f := newFixture(t, old)
	pv, _, err := f.p.Provision(context.Background(), provisionOpts(class("gold", nil, v1.PersistentVolumeReclaimDelete), claim("ns1", "c", "u", "1Gi")))
	if err != nil {
		t.Fatal(err)
	}
	if pv.Annotations[AnnGID] != "2001" {
		t.Errorf("gid %s, want 2001 (2000 belongs to PV old)", pv.Annotations[AnnGID])
	}
}

func TestProvisionCredentials(t *testing.T) {
	secret := &v1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "gk", Name: "heketi"}, Type: SecretType, Data: map[string][]byte{"key": []byte("fromsecret")}}
	wrongType := &v1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "gk", Name: "opaque"}, Type: v1.SecretTypeOpaque, Data: map[string][]byte{"key": []byte("x")}}
	tests := []struct {
		name     string
		params   map[string]string
		wantURL  string
		wantUser string
		wantKey  string
		wantAnn  string
		wantErr  string
	}{
		{"flags", nil, testURL, "admin", "adminkey", "", ""},
		{"secret", map[string]string{"resturl": "http://other:1", "restuser": "admin", "secretNamespace": "gk", "secretName": "heketi"}, "http://other:1", "admin", "fromsecret", "gk/heketi", ""},
		{"inline key", map[string]string{"resturl": "http://other:1", "restuserkey": "inline"}, "http://other:1", "admin", "inline", "", ""},
		{"no auth", map[string]string{"resturl": "http://noauth:1"}, "http://noauth:1", "", "", "", ""},
		{"auth off", map[string]string{"restauthenabled": "false"}, testURL, "", "", "", ""},
		{"missing secret", map[string]string{"secretNamespace": "gk", "secretName": "nope"}, "", "", "", "", "not found"},
		{"secret of wrong type", map[string]string{"secretNamespace": "gk", "secretName": "opaque"}, "", "", "", "", "must have type kubernetes.io/glusterfs"},
		{"user without key elsewhere", map[string]string{"resturl": "http://other:1", "restuser": "bob"}, "", "", "", "", "without a key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, secret, wrongType)
			pv, _, err := f.p.Provision(context.Background(), provisionOpts(class("c", tt.params, v1.PersistentVolumeReclaimDelete), claim("ns1", "c", "u", "1Gi")))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			d := f.dialed[0]
			if d.URL != tt.wantURL || d.User != tt.wantUser || d.Key != tt.wantKey {
				t.Errorf("dialed %s as %q key %q", d.URL, d.User, d.Key)
			}
			if pv.Annotations[AnnHeketiSecret] != tt.wantAnn || pv.Annotations[AnnHeketiURL] != tt.wantURL {
				t.Errorf("annotations %v", pv.Annotations)
			}
		})
	}
}

// A Retained PV of an earlier claim with the same name keeps its
// Endpoints; the new claim gets another name.
func TestProvisionEndpointsNameTaken(t *testing.T) {
	f := newFixture(t)
	sc := class("gold", inTree(nil), v1.PersistentVolumeReclaimRetain)
	first, _, err := f.p.Provision(context.Background(), provisionOpts(sc, claim("ns1", "data", "u-first-1", "1Gi")))
	if err != nil {
		t.Fatal(err)
	}
	second, _, err := f.p.Provision(context.Background(), provisionOpts(sc, claim("ns1", "data", "u-second-2", "1Gi")))
	if err != nil {
		t.Fatal(err)
	}
	if first.Spec.Glusterfs.EndpointsName == second.Spec.Glusterfs.EndpointsName {
		t.Fatalf("both use %s", first.Spec.Glusterfs.EndpointsName)
	}
	ep, err := f.kube.CoreV1().Endpoints("ns1").Get(context.Background(), first.Spec.Glusterfs.EndpointsName, metav1.GetOptions{})
	if err != nil || ep.Annotations[AnnPV] != first.Name {
		t.Errorf("first endpoints %v %v", ep.Annotations, err)
	}
}

func TestDelete(t *testing.T) {
	c := claim("ns1", "data", "u-del", "1Gi")
	tests := []struct {
		name     string
		inTree   bool // only for in-tree PVs
		mutate   func(f *fixture, pv *v1.PersistentVolume)
		wantErr  string
		ignored  bool
		wantVols int
		// wantEPGone: the claim's Endpoints are gone afterwards (CSI PVs
		// never have any).
		wantEPGone bool
	}{
		{"deletes volume and endpoints", false, nil, "", false, 0, true},
		{"class deleted first", false, func(f *fixture, _ *v1.PersistentVolume) {
			_ = f.kube.StorageV1().StorageClasses().Delete(context.Background(), "gold", metav1.DeleteOptions{})
		}, "", false, 0, true},
		{"heketi volume already gone", false, func(f *fixture, pv *v1.PersistentVolume) {
			_ = f.heketi.VolumeDelete(context.Background(), pv.Annotations[AnnHeketiVolumeID])
		}, "", false, 0, true},
		{"not ours", false, func(_ *fixture, pv *v1.PersistentVolume) {
			pv.Annotations[AnnProvisionedBy] = "kubernetes.io/glusterfs"
		}, "", true, 1, false},
		{"no heketi id", false, func(_ *fixture, pv *v1.PersistentVolume) {
			delete(pv.Annotations, AnnHeketiVolumeID)
			if pv.Spec.CSI != nil {
				pv.Spec.CSI.VolumeHandle = "not-a-glusterkube-id"
			}
		}, "", true, 1, false},
		{"another CSI driver's PV", false, func(_ *fixture, pv *v1.PersistentVolume) {
			pv.Spec.Glusterfs = nil
			pv.Spec.CSI = &v1.CSIPersistentVolumeSource{Driver: "other.csi.example", VolumeHandle: "x"}
		}, "", true, 1, false},
		{"CSI PV without the id annotation uses its handle", false, func(_ *fixture, pv *v1.PersistentVolume) {
			delete(pv.Annotations, AnnHeketiVolumeID)
		}, "", false, 0, true},
		{"name mismatch refuses", false, func(_ *fixture, pv *v1.PersistentVolume) { pv.Annotations[AnnHeketiVolumeName] = "someone-else" }, "refusing", false, 1, false},
		{"endpoints of another PV stay", true, func(f *fixture, _ *v1.PersistentVolume) {
			ep, _ := f.kube.CoreV1().Endpoints("ns1").Get(context.Background(), "glusterfs-dynamic-data", metav1.GetOptions{})
			ep.Annotations[AnnPV] = "pvc-other"
			_, _ = f.kube.CoreV1().Endpoints("ns1").Update(context.Background(), ep, metav1.UpdateOptions{})
			svc, _ := f.kube.CoreV1().Services("ns1").Get(context.Background(), "glusterfs-dynamic-data", metav1.GetOptions{})
			svc.Annotations[AnnPV] = "pvc-other"
			_, _ = f.kube.CoreV1().Services("ns1").Update(context.Background(), svc, metav1.UpdateOptions{})
		}, "", false, 0, false},
	}
	for _, kind := range []string{volume.VolumeSourceCSI, volume.VolumeSourceGlusterfs} {
		sc := class("gold", map[string]string{volume.ParamVolumeSource: kind}, v1.PersistentVolumeReclaimDelete)
		for _, tt := range tests {
			if tt.inTree && kind != volume.VolumeSourceGlusterfs {
				continue
			}
			t.Run(kind+"/"+tt.name, func(t *testing.T) {
				f := newFixture(t, sc)
				pv, _, err := f.p.Provision(context.Background(), provisionOpts(sc, c))
				if err != nil {
					t.Fatal(err)
				}
				if (pv.Spec.CSI != nil) != (kind == volume.VolumeSourceCSI) {
					t.Fatalf("class %s made PV source %+v", kind, pv.Spec.PersistentVolumeSource)
				}
				if tt.name == "CSI PV without the id annotation uses its handle" && pv.Spec.CSI == nil {
					t.Skip("in-tree PVs have no handle")
				}
				pv = asLibrary(pv, c)
				if tt.mutate != nil {
					tt.mutate(f, pv)
				}
				err = f.newProvisioner(t).Delete(context.Background(), pv)
				var ign *controller.IgnoredError
				switch {
				case tt.ignored:
					if !errors.As(err, &ign) {
						t.Fatalf("want IgnoredError, got %v", err)
					}
				case tt.wantErr != "":
					if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
						t.Fatalf("err %v, want %q", err, tt.wantErr)
					}
				case err != nil:
					t.Fatal(err)
				}
				if n := len(f.heketi.VolumeNames()); n != tt.wantVols {
					t.Errorf("%d heketi volumes left, want %d", n, tt.wantVols)
				}
				_, err = f.kube.CoreV1().Endpoints("ns1").Get(context.Background(), "glusterfs-dynamic-data", metav1.GetOptions{})
				wantGone := tt.wantEPGone || kind == volume.VolumeSourceCSI
				if gone := apierrors.IsNotFound(err); gone != wantGone {
					t.Errorf("endpoints gone=%v, want %v", gone, wantGone)
				}
			})
		}
	}
}

func TestDeleteFreesGID(t *testing.T) {
	f := newFixture(t)
	sc := class("tiny", map[string]string{"gidMin": "3000", "gidMax": "3000"}, v1.PersistentVolumeReclaimDelete)
	a := claim("ns1", "a", "u-a", "1Gi")
	pv, _, err := f.p.Provision(context.Background(), provisionOpts(sc, a))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.p.Delete(context.Background(), asLibrary(pv, a)); err != nil {
		t.Fatal(err)
	}
	pv2, _, err := f.p.Provision(context.Background(), provisionOpts(sc, claim("ns1", "b", "u-b", "1Gi")))
	if err != nil || pv2.Annotations[AnnGID] != "3000" {
		t.Fatalf("gid %v err %v", pv2, err)
	}
}

func TestProvisionEndpointsFailureIsRetried(t *testing.T) {
	f := newFixture(t, claim("ns1", "data", "u-ep", "1Gi"))
	fail := true
	f.kube.PrependReactor("create", "services", func(k8stesting.Action) (bool, runtime.Object, error) {
		if fail {
			return true, nil, apierrors.NewServiceUnavailable("apiserver down")
		}
		return false, nil, nil
	})
	sc := class("gold", inTree(nil), v1.PersistentVolumeReclaimDelete)
	c := claim("ns1", "data", "u-ep", "1Gi")
	_, state, err := f.p.Provision(context.Background(), provisionOpts(sc, c))
	if err == nil || state != controller.ProvisioningInBackground {
		t.Fatalf("%s %v", state, err)
	}
	fail = false
	if _, state, err = f.p.Provision(context.Background(), provisionOpts(sc, c)); err != nil || state != controller.ProvisioningFinished {
		t.Fatalf("%s %v", state, err)
	}
	if f.heketi.Count("volume_create") != 1 {
		t.Errorf("%d creates", f.heketi.Count("volume_create"))
	}
}

// userView is the fake heketi as its 'user' account sees it: it may POST
// /volumes (the volume is made) but nothing else.
type userView struct{ *fakeheketi.Heketi }

func adminOnly(op string) error {
	return fakeheketi.Err(op, http.StatusUnauthorized, "Administrator access required")
}

func (u userView) VolumeCreate(ctx context.Context, req *api.VolumeCreateRequest) (*api.VolumeInfoResponse, error) {
	_, _ = u.Heketi.VolumeCreate(ctx, req)
	return nil, adminOnly("volume_create")
}
func (u userView) VolumeInfo(context.Context, string) (*api.VolumeInfoResponse, error) {
	return nil, adminOnly("volume_info")
}
func (u userView) ClusterList(context.Context) (*api.ClusterListResponse, error) {
	return nil, adminOnly("cluster_list")
}
func (u userView) ClusterInfo(context.Context, string) (*api.ClusterInfoResponse, error) {
	return nil, adminOnly("cluster_info")
}
func (u userView) NodeInfo(context.Context, string) (*api.NodeInfoResponse, error) {
	return nil, adminOnly("node_info")
}

// Another class already made the server's index with admin credentials:
// a class with the user key must still never create.
func TestProvisionUserKeyNeverCreates(t *testing.T) {
	f := newFixture(t)
	f.dial = func(cfg heketi.Config) volume.Heketi {
		if cfg.User == "user" {
			return userView{f.heketi}
		}
		return f.heketi
	}
	admin := class("admin", nil, v1.PersistentVolumeReclaimDelete)
	if _, _, err := f.p.Provision(context.Background(), provisionOpts(admin, claim("ns1", "a", "u-a", "1Gi"))); err != nil {
		t.Fatal(err)
	}
	user := class("user", map[string]string{"restuser": "user", "restuserkey": "userkey"}, v1.PersistentVolumeReclaimDelete)
	for range 3 {
		_, state, err := f.p.Provision(context.Background(), provisionOpts(user, claim("ns1", "b", "u-b", "1Gi")))
		if err == nil || !strings.Contains(err.Error(), "needs heketi's admin user") || state != controller.ProvisioningNoChange {
			t.Fatalf("%s %v", state, err)
		}
	}
	if n := f.heketi.Count("volume_create"); n != 1 {
		t.Errorf("%d creates, want only the admin class's", n)
	}
}

// The claim goes away (with its namespace) after heketi made its volume:
// the volume is removed instead of retried forever.
func TestProvisionClaimGoneDiscardsVolume(t *testing.T) {
	f := newFixture(t)
	f.kube.PrependReactor("create", "services", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewNotFound(v1.Resource("namespaces"), "ns1")
	})
	c := claim("ns1", "data", "u-gone", "1Gi") // never stored: already deleted
	_, state, err := f.p.Provision(context.Background(), provisionOpts(class("gold", inTree(nil), v1.PersistentVolumeReclaimDelete), c))
	if err == nil || state != controller.ProvisioningFinished {
		t.Fatalf("%s %v", state, err)
	}
	if n := len(f.heketi.VolumeNames()); n != 0 || f.heketi.Count("volume_create") != 1 {
		t.Errorf("%d volumes left after %d creates", n, f.heketi.Count("volume_create"))
	}
}

func TestProvisionRefusesDataSource(t *testing.T) {
	f := newFixture(t)
	c := claim("ns1", "data", "u-ds", "1Gi")
	c.Spec.DataSource = &v1.TypedLocalObjectReference{Kind: "PersistentVolumeClaim", Name: "src"}
	_, state, err := f.p.Provision(context.Background(), provisionOpts(class("gold", nil, v1.PersistentVolumeReclaimDelete), c))
	if err == nil || !strings.Contains(err.Error(), "dataSource") || state != controller.ProvisioningNoChange || f.heketi.Count("volume_create") != 0 {
		t.Fatalf("%s %v", state, err)
	}
}

// The provisioner's errors name settings (the default heketi server and
// key), never the command's flags: they also reach CSI callers and the
// library's Events, where a flag name misleads.
func TestErrorsNameSettingsNotFlags(t *testing.T) {
	noDefault, err := New(Config{Kube: fake.NewClientset(), Heketi: heketi.Config{}})
	if err != nil {
		t.Fatal(err)
	}
	withDefault, err := New(Config{Kube: fake.NewClientset(), Heketi: heketi.Config{URL: testURL, User: "admin", Key: "k"}})
	if err != nil {
		t.Fatal(err)
	}
	pv := func(ann map[string]string) *v1.PersistentVolume {
		return &v1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "pv1", Annotations: ann}}
	}
	tests := []struct {
		name string
		call func() error
		want string
	}{
		{"PV without URL, no default server", func() error {
			_, err := noDefault.pvCreds(context.Background(), pv(nil))
			return err
		}, "the heketi URL is not set"},
		{"PV of another server's user", func() error {
			_, err := withDefault.pvCreds(context.Background(), pv(map[string]string{AnnHeketiURL: "http://other:1", AnnHeketiUser: "admin"}))
			return err
		}, "the heketi user and key"},
		{"class without resturl, no default server", func() error {
			_, _, err := noDefault.Provision(context.Background(), provisionOpts(class("c", nil, v1.PersistentVolumeReclaimDelete), claim("ns1", "c", "u", "1Gi")))
			return err
		}, "the heketi URL is not set"},
		{"auth on without a key", func() error {
			_, _, err := noDefault.Provision(context.Background(), provisionOpts(class("c", map[string]string{"resturl": testURL, "restauthenabled": "true"}, v1.PersistentVolumeReclaimDelete), claim("ns1", "c", "u", "1Gi")))
			return err
		}, "or set the heketi user and key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, want %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "--") {
				t.Errorf("error names a flag: %v", err)
			}
		})
	}
}

// The provisioner and the CSI controller in one process share one volume
// service, hence one GID table: a GID is never handed out twice. (Two
// services on one heketi learn each other's GIDs only when they build
// their index, so concurrent creates could pick the same one.)
func TestSharedVolumeServiceGIDs(t *testing.T) {
	fh := fakeheketi.New()
	hcfg := heketi.Config{URL: testURL, User: "admin", Key: "adminkey"}
	svc := volume.New(volume.Config{Default: hcfg, Dial: func(heketi.Config) (volume.Heketi, error) { return fh, nil }})
	p, err := New(Config{Kube: fake.NewClientset(), Heketi: hcfg, Volumes: svc})
	if err != nil {
		t.Fatal(err)
	}
	ctrl, err := csi.NewController(csi.ControllerConfig{Volumes: svc})
	if err != nil {
		t.Fatal(err)
	}
	csiCreate := func(name string) string {
		resp, err := ctrl.CreateVolume(context.Background(), &csipb.CreateVolumeRequest{
			Name:          name,
			CapacityRange: &csipb.CapacityRange{RequiredBytes: volume.GiB},
			VolumeCapabilities: []*csipb.VolumeCapability{{
				AccessType: &csipb.VolumeCapability_Mount{Mount: &csipb.VolumeCapability_MountVolume{}},
				AccessMode: &csipb.VolumeCapability_AccessMode{Mode: csipb.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER},
			}},
		})
		if err != nil {
			t.Fatal(err)
		}
		id, _ := volume.ParseID(resp.GetVolume().GetVolumeId())
		info, err := fh.VolumeInfo(context.Background(), id.Heketi)
		if err != nil {
			t.Fatal(err)
		}
		return strconv.FormatInt(info.Gid, 10)
	}
	// The controller first (its index is built then), the provisioner,
	// the controller again: a table of its own would not know the
	// provisioner's GID.
	gids := []string{csiCreate("pvc-first")}
	pv, _, err := p.Provision(context.Background(), provisionOpts(class("gold", nil, v1.PersistentVolumeReclaimDelete), claim("ns1", "a", "u-a", "1Gi")))
	if err != nil {
		t.Fatal(err)
	}
	gids = append(gids, pv.Annotations[AnnGID], csiCreate("pvc-second"))
	if strings.Join(gids, ",") != "2000,2001,2002" {
		t.Errorf("GIDs %v: want 2000, 2001, 2002", gids)
	}
}
