package migrate

import (
	"slices"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/glusterkube/glusterkube/csi"
	"github.com/glusterkube/glusterkube/internal/heketi"
	"github.com/glusterkube/glusterkube/provisioner"
	"github.com/glusterkube/glusterkube/volume"
)

const heketiID = "0123456789abcdef0123456789abcdef"

func inTreePV() *v1.PersistentVolume {
	ns := "apps"
	return &v1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{
			Name:   "pvc-1",
			Labels: map[string]string{"team": "data"},
			Annotations: map[string]string{
				provisioner.AnnGID: "2001", provisioner.AnnCreatedBy: provisioner.InTreeCreatedBy, provisioner.AnnHeketiVolumeID: heketiID,
				provisioner.AnnProvisionedBy: provisioner.InTreeName, "pv.kubernetes.io/bound-by-controller": "yes",
				"kubectl.kubernetes.io/last-applied-configuration": "{}", AnnReclaimPolicy: "Delete",
			},
			UID: "old-uid", ResourceVersion: "7", Finalizers: []string{provisioner.FinalizerPVProtection},
		},
		Spec: v1.PersistentVolumeSpec{
			Capacity:                      v1.ResourceList{v1.ResourceStorage: resource.MustParse("3Gi")},
			AccessModes:                   []v1.PersistentVolumeAccessMode{v1.ReadWriteMany},
			PersistentVolumeReclaimPolicy: v1.PersistentVolumeReclaimRetain,
			StorageClassName:              "gluster",
			MountOptions:                  []string{"log-level=WARNING", "backup-volfile-servers=10.0.0.2:10.0.0.3", "backupvolfile-server=10.0.0.2"},
			ClaimRef:                      &v1.ObjectReference{Namespace: ns, Name: "data", UID: "claim-uid"},
			PersistentVolumeSource: v1.PersistentVolumeSource{Glusterfs: &v1.GlusterfsPersistentVolumeSource{
				EndpointsName: "glusterfs-dynamic-claim-uid", EndpointsNamespace: &ns, Path: "vol_" + heketiID, ReadOnly: true,
			}},
		},
	}
}

// The CSI PV keeps what still holds and changes what must.
func TestTarget(t *testing.T) {
	m, err := New(Config{Kube: fake.NewClientset(), Heketi: heketi.Config{URL: "http://heketi:8080"}, ProvisionerName: "glusterkube.io/glusterfs"})
	if err != nil {
		t.Fatal(err)
	}
	old := inTreePV()
	vol := &volume.Volume{ID: heketiID, Name: "vol_" + heketiID, Cluster: "c1", Hosts: []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"}, URL: "http://heketi:8080"}
	tgt := m.target(old, OriginInTree, vol, volume.Credentials{URL: "http://heketi:8080", User: "admin", SecretNamespace: "kube-system", SecretName: "heketi"}, heketiID)

	cs := tgt.Spec.CSI
	if tgt.Spec.Glusterfs != nil || cs == nil || cs.Driver != csi.DriverName || cs.VolumeHandle != heketiID || !cs.ReadOnly ||
		cs.VolumeAttributes[csi.ContextServers] != "10.0.0.1,10.0.0.2,10.0.0.3" || cs.VolumeAttributes[csi.ContextVolume] != vol.Name {
		t.Errorf("source %+v", tgt.Spec.PersistentVolumeSource)
	}
	if !slices.Equal(tgt.Spec.MountOptions, []string{"log-level=WARNING"}) {
		t.Errorf("mount options %v, want log-level only", tgt.Spec.MountOptions)
	}
	if tgt.Name != old.Name || tgt.Labels["team"] != "data" || tgt.UID != "" || tgt.ResourceVersion != "" || len(tgt.Finalizers) != 0 {
		t.Errorf("metadata %+v", tgt.ObjectMeta)
	}
	if tgt.Spec.ClaimRef.UID != "claim-uid" || tgt.Spec.StorageClassName != "gluster" || tgt.Spec.AccessModes[0] != v1.ReadWriteMany || tgt.Spec.Capacity.Storage().String() != "3Gi" {
		t.Errorf("spec %+v", tgt.Spec)
	}
	for k, want := range map[string]string{
		provisioner.AnnGID: "2001", provisioner.AnnProvisionedBy: "glusterkube.io/glusterfs", provisioner.AnnHeketiVolumeID: heketiID,
		provisioner.AnnHeketiVolumeName: vol.Name, provisioner.AnnHeketiURL: "http://heketi:8080", provisioner.AnnHeketiSecret: "kube-system/heketi",
		provisioner.AnnHeketiUser: "admin", provisioner.AnnHeketiCluster: "c1", "pv.kubernetes.io/bound-by-controller": "yes",
		AnnMigratedFrom: "glusterfs apps/glusterfs-dynamic-claim-uid vol_" + heketiID,
	} {
		if got := tgt.Annotations[k]; got != want {
			t.Errorf("annotation %s = %q, want %q", k, got, want)
		}
	}
	for _, k := range []string{provisioner.AnnCreatedBy, "kubectl.kubernetes.io/last-applied-configuration", AnnReclaimPolicy} {
		if _, ok := tgt.Annotations[k]; ok {
			t.Errorf("annotation %s kept", k)
		}
	}
	if old.Spec.Glusterfs == nil || len(old.Spec.MountOptions) != 3 || old.Annotations[provisioner.AnnCreatedBy] == "" {
		t.Error("target changed the old PV")
	}
	// The old source is readable back from the converted PV.
	f := formerSource(tgt)
	if ns, name, ok := provisioner.EndpointsOf(f); !ok || ns != "apps" || name != "glusterfs-dynamic-claim-uid" {
		t.Errorf("formerSource: %s/%s %v", ns, name, ok)
	}
	// A static PV keeps no provisioner.
	static := inTreePV()
	delete(static.Annotations, provisioner.AnnProvisionedBy)
	delete(static.Annotations, provisioner.AnnCreatedBy)
	if tgt := m.target(static, OriginStaticHeketi, vol, volume.Credentials{URL: "http://heketi:8080"}, heketiID); tgt.Annotations[provisioner.AnnProvisionedBy] != "" {
		t.Errorf("static PV got provisioned-by %q", tgt.Annotations[provisioner.AnnProvisionedBy])
	}
}

func TestRecordName(t *testing.T) {
	if got := recordName("pvc-1"); got != "migrate-pvc-1" {
		t.Errorf("recordName = %q", got)
	}
	long := strings.Repeat("a", 250)
	a, b := recordName(long), recordName(long[:249]+"b")
	if len(a) > 253 || a == b || !strings.HasPrefix(a, "migrate-aaa") {
		t.Errorf("long names: %q (%d) vs %q", a, len(a), b)
	}
}

func TestUnconvertible(t *testing.T) {
	m, _ := New(Config{Kube: fake.NewClientset()})
	for _, tc := range []struct {
		name   string
		change func(*v1.PersistentVolume)
		want   string
	}{
		{"bound", func(*v1.PersistentVolume) {}, ""},
		{"being deleted", func(pv *v1.PersistentVolume) { now := metav1.Now(); pv.DeletionTimestamp = &now }, "being deleted"},
		{"released delete", func(pv *v1.PersistentVolume) {
			pv.Status.Phase = v1.VolumeReleased
			pv.Spec.PersistentVolumeReclaimPolicy = v1.PersistentVolumeReclaimDelete
		}, "waiting for deletion"},
		{"released retain", func(pv *v1.PersistentVolume) { pv.Status.Phase = v1.VolumeReleased }, ""},
		{"failed in-tree delete", func(pv *v1.PersistentVolume) {
			pv.Status.Phase = v1.VolumeFailed
			pv.Spec.PersistentVolumeReclaimPolicy = v1.PersistentVolumeReclaimDelete
		}, "provisioner, serving in-tree classes, deletes it"},
		{"unknown finalizer", func(pv *v1.PersistentVolume) { pv.Finalizers = append(pv.Finalizers, "example.com/backup") }, `finalizer "example.com/backup"`},
	} {
		pv := inTreePV()
		pv.Status.Phase = v1.VolumeBound
		tc.change(pv)
		got := m.unconvertible(pv)
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("%s: unconvertible = %q, want %q", tc.name, got, tc.want)
		}
	}
}
