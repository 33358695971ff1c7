package testenv

import (
	"path/filepath"

	csipb "github.com/container-storage-interface/spec/lib/go/csi"
	corev1 "k8s.io/api/core/v1"
)

// CSIPublish says what a kubelet knows when it publishes a pod's CSI PV.
type CSIPublish struct {
	// PV is the claim's bound PersistentVolume (a csi source).
	PV *corev1.PersistentVolume
	// Pod is the pod that uses it; the kubelet passes its name, namespace,
	// UID and service account when the CSIDriver has podInfoOnMount.
	Pod *corev1.Pod
	// KubeletDir is the kubelet's root folder (/var/lib/kubelet).
	KubeletDir string
	// ReadOnly is the pod volume's readOnly.
	ReadOnly bool
	// SingleNodeMultiWriter: the node service advertises
	// SINGLE_NODE_MULTI_WRITER, which changes how access modes map.
	SingleNodeMultiWriter bool
	// PodInfoOnMount is the CSIDriver's podInfoOnMount.
	PodInfoOnMount bool
}

// Target is the publish path the kubelet gives the plugin:
// <kubelet>/pods/<pod uid>/volumes/kubernetes.io~csi/<pv>/mount.
func (p CSIPublish) Target() string {
	return filepath.Join(p.KubeletDir, "pods", string(p.Pod.UID), "volumes", "kubernetes.io~csi", p.PV.Name, "mount")
}

// Request is the NodePublishVolume request a kubelet (v1.37,
// pkg/volume/csi/csi_mounter.go) sends for the PV, for a driver without
// staging and without VOLUME_MOUNT_GROUP: the volume handle, the volume
// attributes (plus the pod's identity with podInfoOnMount), the PV's
// mount options and fsType, the access mode of the PV's first access mode
// and the node publish secret, none here (tests hold no Secrets to read).
func (p CSIPublish) Request() *csipb.NodePublishVolumeRequest {
	src := p.PV.Spec.CSI
	attrs := map[string]string{}
	for k, v := range src.VolumeAttributes {
		attrs[k] = v
	}
	if p.PodInfoOnMount {
		attrs["csi.storage.k8s.io/pod.name"] = p.Pod.Name
		attrs["csi.storage.k8s.io/pod.namespace"] = p.Pod.Namespace
		attrs["csi.storage.k8s.io/pod.uid"] = string(p.Pod.UID)
		attrs["csi.storage.k8s.io/serviceAccount.name"] = p.Pod.Spec.ServiceAccountName
		attrs["csi.storage.k8s.io/ephemeral"] = "false"
	}
	mode := corev1.ReadWriteOnce
	if len(p.PV.Spec.AccessModes) > 0 {
		mode = p.PV.Spec.AccessModes[0]
	}
	return &csipb.NodePublishVolumeRequest{
		VolumeId:   src.VolumeHandle,
		TargetPath: p.Target(),
		Readonly:   p.ReadOnly || src.ReadOnly,
		VolumeCapability: &csipb.VolumeCapability{
			AccessType: &csipb.VolumeCapability_Mount{Mount: &csipb.VolumeCapability_MountVolume{
				FsType: src.FSType, MountFlags: append([]string(nil), p.PV.Spec.MountOptions...),
			}},
			AccessMode: &csipb.VolumeCapability_AccessMode{Mode: csiAccessMode(mode, p.SingleNodeMultiWriter)},
		},
		VolumeContext: attrs,
	}
}

// csiAccessMode maps an access mode as the kubelet does (KEP-2485).
func csiAccessMode(m corev1.PersistentVolumeAccessMode, singleNodeMultiWriter bool) csipb.VolumeCapability_AccessMode_Mode {
	switch m {
	case corev1.ReadWriteOnce:
		if singleNodeMultiWriter {
			return csipb.VolumeCapability_AccessMode_SINGLE_NODE_MULTI_WRITER
		}
		return csipb.VolumeCapability_AccessMode_SINGLE_NODE_WRITER
	case corev1.ReadWriteOncePod:
		if singleNodeMultiWriter {
			return csipb.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER
		}
		return csipb.VolumeCapability_AccessMode_SINGLE_NODE_WRITER
	case corev1.ReadOnlyMany:
		return csipb.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY
	case corev1.ReadWriteMany:
		return csipb.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER
	}
	return csipb.VolumeCapability_AccessMode_UNKNOWN
}
