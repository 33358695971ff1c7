//lint:file-ignore SA1019 the in-tree glusterfs volume source reads v1 Endpoints (not EndpointSlices)

package testenv

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/heketi/heketi/pkg/glusterfs/api"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/kubernetes"

	"github.com/glusterkube/glusterkube/internal/heketi"
)

// What Kubernetes v1.25's in-tree GlusterFS provisioner (pkg/volume/
// glusterfs) and PV controller wrote, spelled out here rather than taken
// from glusterkube's packages, so that a test of glusterkube against these
// objects cannot pass because both sides share a mistake.
const (
	InTreeProvisioner = "kubernetes.io/glusterfs"
	// PV annotations of the plugin's Provision.
	annGID           = "pv.beta.kubernetes.io/gid"
	annCreatedBy     = "kubernetes.io/createdby"
	createdBy        = "heketi-dynamic-provisioner"
	annGlusterType   = "gluster.org/type"
	annDescription   = "Description"
	description      = "Gluster-Internal: Dynamically provisioned PV"
	annHeketiVolID   = "gluster.kubernetes.io/heketi-volume-id"
	epPrefix         = "glusterfs-dynamic"
	labelProvisioned = "gluster.kubernetes.io/provisioned-for-pvc"
	// Annotations of the PV controller's provisionClaimOperation and bind.
	annProvisionedBy        = "pv.kubernetes.io/provisioned-by"
	annBoundByController    = "pv.kubernetes.io/bound-by-controller"
	annStorageProvisioner   = "volume.kubernetes.io/storage-provisioner"
	annBetaStorageProvision = "volume.beta.kubernetes.io/storage-provisioner"
)

// InTreeClass is a StorageClass as users wrote them for the in-tree
// provisioner.
func InTreeClass(name string, reclaim corev1.PersistentVolumeReclaimPolicy, params map[string]string, mountOptions ...string) *storagev1.StorageClass {
	return &storagev1.StorageClass{
		ObjectMeta:    metav1.ObjectMeta{Name: name},
		Provisioner:   InTreeProvisioner,
		Parameters:    params,
		ReclaimPolicy: &reclaim,
		MountOptions:  mountOptions,
	}
}

// InTreeClaim is a claim of class, with the storage-provisioner
// annotations the v1.25 PV controller set before provisioning.
func InTreeClaim(ns, name, class, size string) *corev1.PersistentVolumeClaim {
	return &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: map[string]string{
			annStorageProvisioner: InTreeProvisioner, annBetaStorageProvision: InTreeProvisioner,
		}},
		Spec: corev1.PersistentVolumeClaimSpec{
			StorageClassName: &class,
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany},
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)}},
		},
	}
}

// InTreeVolume is what the in-tree provisioner left for one claim.
type InTreeVolume struct {
	Claim     *corev1.PersistentVolumeClaim
	PV        *corev1.PersistentVolume
	Endpoints *corev1.Endpoints
	Service   *corev1.Service
	// HeketiID and HeketiName name the heketi volume.
	HeketiID, HeketiName string
}

// InTreeHeketi is what MakeInTreeVolume asks of heketi: a *heketi.Client,
// or a StorageNode's GlusterdHeketi, which also makes the GlusterFS volume
// on the node's glusterd (as real heketi did for the in-tree provisioner).
type InTreeHeketi interface {
	VolumeCreate(ctx context.Context, req *api.VolumeCreateRequest) (*api.VolumeInfoResponse, error)
	ClusterInfo(ctx context.Context, id string) (*api.ClusterInfoResponse, error)
	NodeInfo(ctx context.Context, id string) (*api.NodeInfoResponse, error)
}

var (
	_ InTreeHeketi = (*heketi.Client)(nil)
	_ InTreeHeketi = (*GlusterdHeketi)(nil)
)

// MakeInTreeVolume does, for a claim of an in-tree class, what v1.25's
// in-tree provisioner and PV controller did: create the claim (with the
// controller's storage-provisioner annotations), a heketi volume with the
// given GID (heketi's own name vol_<id>, or <volumenameprefix>_<ns>_<claim>_<uuid>),
// Endpoints listing the storage hosts of every node of the volume's
// cluster and a ClusterIP Service of the same name, glusterfs-dynamic-<claim
// UID> (customepnameprefix replaces glusterfs-dynamic), both labelled
// gluster.kubernetes.io/provisioned-for-pvc=<claim>, and the PV
// pvc-<claim UID> with the plugin's annotations, bound to the claim. The
// running PV controller then binds the claim as it did then. The caller
// waits for Bound.
func MakeInTreeVolume(ctx context.Context, kube kubernetes.Interface, h InTreeHeketi, class *storagev1.StorageClass, claim *corev1.PersistentVolumeClaim, gid int64) (*InTreeVolume, error) {
	out := &InTreeVolume{}
	var err error
	if out.Claim, err = kube.CoreV1().PersistentVolumeClaims(claim.Namespace).Create(ctx, claim, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("create claim: %w", err)
	}
	claim = out.Claim
	params := map[string]string{}
	for k, v := range class.Parameters {
		params[strings.ToLower(k)] = v
	}
	q := claim.Spec.Resources.Requests[corev1.ResourceStorage]
	sizeGiB := int((q.Value() + 1<<30 - 1) >> 30)
	req := &api.VolumeCreateRequest{Size: sizeGiB, Gid: gid,
		Durability: api.VolumeDurabilityInfo{Type: api.DurabilityReplicate, Replicate: api.ReplicaDurability{Replica: 3}}}
	req.Snapshot.Enable, req.Snapshot.Factor = true, 1
	if c := params["clusterid"]; c != "" {
		req.Clusters = strings.Split(c, ",")
	}
	if p := params["volumenameprefix"]; p != "" {
		req.Name = fmt.Sprintf("%s_%s_%s_%s", p, claim.Namespace, claim.Name, uuid.NewUUID())
	}
	vol, err := h.VolumeCreate(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("create heketi volume: %w", err)
	}
	out.HeketiID, out.HeketiName = vol.Id, vol.Name
	// getClusterNodes: the storage hostname of every node of the cluster.
	ci, err := h.ClusterInfo(ctx, vol.Cluster)
	if err != nil {
		return nil, fmt.Errorf("heketi cluster %s: %w", vol.Cluster, err)
	}
	var addrs []corev1.EndpointAddress
	for _, id := range ci.Nodes {
		n, err := h.NodeInfo(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("heketi node %s: %w", id, err)
		}
		addrs = append(addrs, corev1.EndpointAddress{IP: strings.Join(n.Hostnames.Storage, "")})
	}
	prefix := epPrefix
	if p := params["customepnameprefix"]; p != "" {
		prefix = p
	}
	epName := prefix + "-" + string(claim.UID)
	labels := map[string]string{labelProvisioned: claim.Name}
	ns := claim.Namespace
	if out.Endpoints, err = kube.CoreV1().Endpoints(ns).Create(ctx, &corev1.Endpoints{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: epName, Labels: labels},
		Subsets:    []corev1.EndpointSubset{{Addresses: addrs, Ports: []corev1.EndpointPort{{Port: 1, Protocol: "TCP"}}}},
	}, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("create endpoints: %w", err)
	}
	if out.Service, err = kube.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: epName, Labels: labels},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Protocol: "TCP", Port: 1}}},
	}, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("create service: %w", err)
	}
	mode := corev1.PersistentVolumeFilesystem
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{
			Name: "pvc-" + string(claim.UID),
			Annotations: map[string]string{
				annGID:               strconv.FormatInt(gid, 10),
				annCreatedBy:         createdBy,
				annGlusterType:       "file",
				annDescription:       description,
				annHeketiVolID:       vol.Id,
				annBoundByController: "yes",
				annProvisionedBy:     InTreeProvisioner,
			},
		},
		Spec: corev1.PersistentVolumeSpec{
			PersistentVolumeReclaimPolicy: *class.ReclaimPolicy,
			AccessModes:                   claim.Spec.AccessModes,
			VolumeMode:                    &mode,
			MountOptions:                  class.MountOptions,
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(fmt.Sprintf("%dGi", vol.Size))},
			ClaimRef: &corev1.ObjectReference{
				Kind: "PersistentVolumeClaim", APIVersion: "v1", Namespace: ns, Name: claim.Name,
				UID: claim.UID, ResourceVersion: claim.ResourceVersion,
			},
			StorageClassName: class.Name,
			PersistentVolumeSource: corev1.PersistentVolumeSource{Glusterfs: &corev1.GlusterfsPersistentVolumeSource{
				EndpointsName: epName, EndpointsNamespace: &ns, Path: vol.Name,
			}},
		},
	}
	if *class.ReclaimPolicy == corev1.PersistentVolumeReclaimDelete {
		// The PV controller's in-tree deletion protection.
		pv.Finalizers = []string{"kubernetes.io/pv-controller"}
	}
	if out.PV, err = kube.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("create PV: %w", err)
	}
	return out, nil
}
