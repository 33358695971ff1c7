package provisioner

import (
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/glusterkube/glusterkube/csi"
	"github.com/glusterkube/glusterkube/volume"
)

// PV annotations. The in-tree names are kept where in-tree had one, so
// tools that read them keep working.
const (
	// AnnGID is the supplemental group pods get to write the volume.
	AnnGID = "pv.beta.kubernetes.io/gid"
	// AnnHeketiVolumeID is the heketi volume id (in-tree name).
	AnnHeketiVolumeID = "gluster.kubernetes.io/heketi-volume-id"
	// AnnGlusterType is "file" (in-tree).
	AnnGlusterType = "gluster.org/type"
	// AnnDescription is the in-tree description annotation.
	AnnDescription = "Description"
	// AnnHeketiVolumeName is the heketi volume name.
	AnnHeketiVolumeName = "glusterkube.io/heketi-volume-name"
	// AnnHeketiCluster is the heketi cluster holding the volume.
	AnnHeketiCluster = "glusterkube.io/heketi-cluster"
	// AnnHeketiURL is the heketi server the volume lives on.
	AnnHeketiURL = "glusterkube.io/heketi-url"
	// AnnHeketiUser is the heketi user that created it.
	AnnHeketiUser = "glusterkube.io/heketi-user"
	// AnnHeketiSecret is the <namespace>/<name> of the Secret holding the
	// key (never the key itself).
	AnnHeketiSecret = "glusterkube.io/heketi-secret"
	// AnnProvisionedBy is set by the library to the provisioner name.
	AnnProvisionedBy = "pv.kubernetes.io/provisioned-by"
	// AnnPV marks Endpoints and Services with the PV they serve.
	AnnPV = "glusterkube.io/pv"

	// LabelManagedBy marks objects glusterkube made.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// ManagedBy is LabelManagedBy's value.
	ManagedBy = "glusterkube"
	// LabelProvisionedForPVC is the in-tree label on Endpoints/Services.
	LabelProvisionedForPVC = "gluster.kubernetes.io/provisioned-for-pvc"

	description = "glusterkube: dynamically provisioned GlusterFS volume"
	giB         = volume.GiB
)

// roundUpGiB is the claim's request in whole GiB (heketi's unit), at least 1.
func roundUpGiB(q resource.Quantity) (int, error) {
	return volume.SizeGiB(q.Value())
}

// glusterfsSource is the in-tree source: the volume through the claim's
// Endpoints.
func glusterfsSource(claim *v1.PersistentVolumeClaim, epName string, vol *volume.Volume) v1.PersistentVolumeSource {
	ns := claim.Namespace
	return v1.PersistentVolumeSource{
		Glusterfs: &v1.GlusterfsPersistentVolumeSource{
			EndpointsName:      epName,
			EndpointsNamespace: &ns,
			Path:               vol.Name,
		},
	}
}

// csiSource is the source for glusterkube's CSI driver: the volume id as
// handle, the servers and the volume name as attributes (csi.VolumeContext),
// no fsType (GlusterFS is mounted, not formatted).
func csiSource(handle string, vol *volume.Volume) v1.PersistentVolumeSource {
	return v1.PersistentVolumeSource{
		CSI: &v1.CSIPersistentVolumeSource{
			Driver:           csi.DriverName,
			VolumeHandle:     handle,
			VolumeAttributes: csi.VolumeContext(vol),
		},
	}
}

// buildPV mirrors the claim: its access modes and the class's reclaim
// policy and mount options, with src as the source and what Delete needs
// recorded in annotations.
func buildPV(pvName string, class *storagev1.StorageClass, claim *v1.PersistentVolumeClaim, vol *volume.Volume, cr volume.Credentials, src v1.PersistentVolumeSource, mountOpts []string) *v1.PersistentVolume {
	reclaim := v1.PersistentVolumeReclaimDelete
	if class.ReclaimPolicy != nil {
		reclaim = *class.ReclaimPolicy
	}
	ann := map[string]string{
		AnnGID:              strconv.FormatInt(vol.GID, 10),
		AnnHeketiVolumeID:   vol.ID,
		AnnHeketiVolumeName: vol.Name,
		AnnHeketiCluster:    vol.Cluster,
		AnnHeketiURL:        cr.URL,
		AnnGlusterType:      "file",
		AnnDescription:      description,
	}
	if cr.User != "" {
		ann[AnnHeketiUser] = cr.User
	}
	if ref := cr.SecretRef(); ref != "" {
		ann[AnnHeketiSecret] = ref
	}
	mode := v1.PersistentVolumeFilesystem
	return &v1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{
			Name:        pvName,
			Annotations: ann,
			Labels:      map[string]string{LabelManagedBy: ManagedBy},
		},
		Spec: v1.PersistentVolumeSpec{
			PersistentVolumeReclaimPolicy: reclaim,
			AccessModes:                   append([]v1.PersistentVolumeAccessMode(nil), claim.Spec.AccessModes...),
			Capacity: v1.ResourceList{
				v1.ResourceStorage: *resource.NewQuantity(vol.SizeBytes(), resource.BinarySI),
			},
			MountOptions:           mountOpts,
			VolumeMode:             &mode,
			PersistentVolumeSource: src,
		},
	}
}

// mountOptions is the class's options plus backup-volfile-servers (every
// storage host but the first, ':'-separated as mount.glusterfs wants),
// unless the class sets it itself. Only in-tree PVs get it: for CSI PVs
// the node server adds it from the servers in the volume context.
func mountOptions(classOpts []string, hosts []string) []string {
	out := append([]string(nil), classOpts...)
	for _, o := range out {
		if strings.HasPrefix(o, "backup-volfile-servers") {
			return out
		}
	}
	if len(hosts) > 1 {
		out = append(out, "backup-volfile-servers="+strings.Join(hosts[1:], ":"))
	}
	return out
}
