package testenv_test

import (
	"testing"

	csipb "github.com/container-storage-interface/spec/lib/go/csi"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/glusterkube/glusterkube/internal/testenv"
)

// TestCSIPublishRequest: the request carries the PV as the kubelet passes
// it, and access modes map as the kubelet maps them (KEP-2485).
func TestCSIPublishRequest(t *testing.T) {
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: "pv-1"},
		Spec: corev1.PersistentVolumeSpec{
			MountOptions: []string{"log-level=WARNING"},
			PersistentVolumeSource: corev1.PersistentVolumeSource{CSI: &corev1.CSIPersistentVolumeSource{
				Driver: "d", VolumeHandle: "h1", VolumeAttributes: map[string]string{"servers": "a,b", "volume": "v"},
			}},
		},
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "u-1"}, Spec: corev1.PodSpec{ServiceAccountName: "sa"}}
	tests := []struct {
		mode        corev1.PersistentVolumeAccessMode
		multiWriter bool
		want        csipb.VolumeCapability_AccessMode_Mode
	}{
		{corev1.ReadWriteOnce, true, csipb.VolumeCapability_AccessMode_SINGLE_NODE_MULTI_WRITER},
		{corev1.ReadWriteOnce, false, csipb.VolumeCapability_AccessMode_SINGLE_NODE_WRITER},
		{corev1.ReadWriteOncePod, true, csipb.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER},
		{corev1.ReadWriteOncePod, false, csipb.VolumeCapability_AccessMode_SINGLE_NODE_WRITER},
		{corev1.ReadOnlyMany, true, csipb.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY},
		{corev1.ReadWriteMany, true, csipb.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER},
	}
	for _, tt := range tests {
		pv.Spec.AccessModes = []corev1.PersistentVolumeAccessMode{tt.mode}
		p := testenv.CSIPublish{PV: pv, Pod: pod, KubeletDir: "/k", SingleNodeMultiWriter: tt.multiWriter, PodInfoOnMount: true}
		req := p.Request()
		if got := req.GetVolumeCapability().GetAccessMode().GetMode(); got != tt.want {
			t.Errorf("%s (multi-writer %v): %s, want %s", tt.mode, tt.multiWriter, got, tt.want)
		}
		if req.GetVolumeId() != "h1" || req.GetTargetPath() != "/k/pods/u-1/volumes/kubernetes.io~csi/pv-1/mount" ||
			req.GetVolumeCapability().GetMount().GetMountFlags()[0] != "log-level=WARNING" ||
			req.GetVolumeContext()["volume"] != "v" || req.GetVolumeContext()["csi.storage.k8s.io/pod.uid"] != "u-1" {
			t.Errorf("request %v", req)
		}
	}
	if _, ok := (testenv.CSIPublish{PV: pv, Pod: pod}).Request().GetVolumeContext()["csi.storage.k8s.io/pod.name"]; ok {
		t.Error("pod info without podInfoOnMount")
	}
}
