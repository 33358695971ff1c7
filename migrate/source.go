//lint:file-ignore SA1019 the in-tree glusterfs volume source reads v1 Endpoints (not EndpointSlices)

package migrate

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/glusterkube/glusterkube/csi"
	"github.com/glusterkube/glusterkube/internal/heketi"
	"github.com/glusterkube/glusterkube/provisioner"
	"github.com/glusterkube/glusterkube/volume"
)

// Origin says what made a glusterfs PV.
type Origin string

// Origins.
const (
	// OriginInTree: Kubernetes' in-tree kubernetes.io/glusterfs
	// provisioner (provisioned-by names it).
	OriginInTree Origin = "in-tree provisioner"
	// OriginGlusterkube: glusterkube's provisioner with volumesource:
	// glusterfs (its heketi annotations).
	OriginGlusterkube Origin = "glusterkube (volumesource: glusterfs)"
	// OriginStaticHeketi: a PV made by hand naming a volume heketi knows.
	OriginStaticHeketi Origin = "static (heketi volume)"
	// OriginStaticGluster: a PV made by hand naming a GlusterFS volume
	// heketi does not know; its servers come from its Endpoints.
	OriginStaticGluster Origin = "static (GlusterFS volume)"
)

// dynamic reports origins whose PVs a provisioner owns: the converted PV
// is glusterkube's, its heketi volume deleted with the claim when the
// policy is Delete.
func (o Origin) dynamic() bool { return o == OriginInTree || o == OriginGlusterkube }

// Which hosts and volume names the CSI node plugin takes (csi/publish.go):
// a host name or IPv4 address; letters, digits, '.', '_' and '-'.
var (
	hostPattern   = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$`)
	volumePattern = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,128}$`)
)

// Annotations a converted PV does not keep: the in-tree plugin's marker,
// kubectl's copy of the old object (a later apply would try to put the
// glusterfs source back) and this package's working annotations.
var droppedAnnotations = []string{
	provisioner.AnnCreatedBy,
	"kubectl.kubernetes.io/last-applied-configuration",
	"pv.kubernetes.io/migrated-to",
	AnnReclaimPolicy, AnnMigration, AnnRestored,
}

// mapping is what a glusterfs PV becomes.
type mapping struct {
	origin Origin
	target *v1.PersistentVolume
	// cleanup: the PV's Endpoints and Service are the claim's own (made
	// by a provisioner) and go once the claim is bound to the CSI PV.
	cleanup bool
	notes   []string
}

// unmappable is why a PV cannot be converted; its message is for people.
type unmappable struct{ why string }

func (u *unmappable) Error() string { return u.why }

func cannot(format string, a ...any) error { return &unmappable{why: fmt.Sprintf(format, a...)} }

// mapPV works out the CSI PV a glusterfs PV becomes. An *unmappable
// error says why it cannot; other errors are failures to find out
// (heketi or the API server unreachable).
func (m *Migrator) mapPV(ctx context.Context, pv *v1.PersistentVolume, classes map[string]*storagev1.StorageClass) (*mapping, error) {
	gs := pv.Spec.Glusterfs
	path := strings.TrimPrefix(gs.Path, "/")
	if strings.Contains(path, "/") {
		return nil, cannot("its path %q mounts a sub-directory of volume %q; the CSI node plugin mounts whole volumes", gs.Path, strings.SplitN(path, "/", 2)[0])
	}
	if !volumePattern.MatchString(path) {
		return nil, cannot("its path %q is not a GlusterFS volume name", gs.Path)
	}
	mp := &mapping{}
	var vol *volume.Volume
	var cr volume.Credentials
	switch {
	case provisioner.IsInTreePV(pv):
		mp.origin = OriginInTree
		var err error
		if cr, err = m.inTreeCreds(ctx, pv, classes); err != nil {
			return nil, err
		}
		if vol, err = m.heketiVolume(ctx, cr, provisioner.InTreeVolumeID(pv), path); err != nil {
			return nil, err
		}
	case pv.Annotations[provisioner.AnnHeketiURL] != "" || pv.Annotations[provisioner.AnnProvisionedBy] == m.cfg.ProvisionerName:
		mp.origin = OriginGlusterkube
		var err error
		if cr, err = m.recordedCreds(ctx, pv); err != nil {
			return nil, err
		}
		if vol, err = m.heketiVolume(ctx, cr, pv.Annotations[provisioner.AnnHeketiVolumeID], path); err != nil {
			return nil, err
		}
	default:
		var err error
		if vol, cr, err = m.staticVolume(ctx, path); err != nil {
			return nil, err
		}
		mp.origin = OriginStaticHeketi
		if vol == nil {
			mp.origin = OriginStaticGluster
			hosts, err := m.endpointIPs(ctx, pv)
			if err != nil {
				return nil, err
			}
			vol = &volume.Volume{Name: path, Hosts: hosts}
		}
	}
	for _, h := range vol.Hosts {
		if !hostPattern.MatchString(h) {
			return nil, cannot("its server %q is not a host name or IPv4 address, which the CSI node plugin needs", h)
		}
	}
	if len(vol.Hosts) == 0 {
		return nil, cannot("no storage host is known for volume %s", vol.Name)
	}
	handle, err := m.handle(mp.origin, vol)
	if err != nil {
		return nil, cannot("%v", err)
	}
	mp.target = m.target(pv, mp.origin, vol, cr, handle)
	mp.cleanup = mp.origin.dynamic()
	if mp.origin.dynamic() && pv.Spec.ClaimRef == nil {
		mp.cleanup = false
	}
	if !mp.origin.dynamic() && pv.Spec.PersistentVolumeReclaimPolicy == v1.PersistentVolumeReclaimDelete {
		mp.notes = append(mp.notes, "reclaim policy Delete on a static PV: nothing deletes its volume when it is released (as with the in-tree plugin gone)")
	}
	for _, o := range pv.Spec.MountOptions {
		if strings.ContainsAny(o, " \t\"'`$;&|<>()\\") {
			mp.notes = append(mp.notes, fmt.Sprintf("mount option %q has blanks, quotes or shell characters, which the CSI node plugin refuses", o))
		}
	}
	return mp, nil
}

// handle is the CSI volume handle: the volume id (volume.ID) for a heketi
// volume; for a plain GlusterFS volume, which no controller manages,
// "glusterfs:<first server>:<volume>", unique per volume and within CSI's
// 128 bytes (the node plugin reads only the volume context).
func (m *Migrator) handle(origin Origin, vol *volume.Volume) (string, error) {
	if origin == OriginStaticGluster {
		h := "glusterfs:" + vol.Hosts[0] + ":" + vol.Name
		if len(h) > volume.MaxIDLen {
			return "", fmt.Errorf("volume handle %q is longer than %d bytes", h, volume.MaxIDLen)
		}
		return h, nil
	}
	id, err := m.vols.ID(vol)
	if err != nil {
		return "", err
	}
	return id.String(), nil
}

// target builds the CSI PV: the old PV's name, labels, claim binding,
// capacity, access modes, volume mode, node affinity, class, mount
// options (but backup-volfile-servers, which the node plugin derives from
// the servers) and reclaim policy, with the annotations that still hold,
// glusterkube's heketi annotations, and provisioned-by naming glusterkube
// for dynamically provisioned PVs.
func (m *Migrator) target(pv *v1.PersistentVolume, origin Origin, vol *volume.Volume, cr volume.Credentials, handle string) *v1.PersistentVolume {
	ann := maps.Clone(pv.Annotations)
	if ann == nil {
		ann = map[string]string{}
	}
	for _, k := range droppedAnnotations {
		delete(ann, k)
	}
	ns, ep, _ := provisioner.EndpointsOf(pv)
	ann[AnnMigratedFrom] = fmt.Sprintf("glusterfs %s/%s %s", ns, ep, pv.Spec.Glusterfs.Path)
	if origin.dynamic() {
		ann[provisioner.AnnProvisionedBy] = m.cfg.ProvisionerName
	}
	if vol.ID != "" {
		ann[provisioner.AnnHeketiVolumeID] = vol.ID
		ann[provisioner.AnnHeketiVolumeName] = vol.Name
		ann[provisioner.AnnHeketiURL] = cr.URL
		if vol.Cluster != "" {
			ann[provisioner.AnnHeketiCluster] = vol.Cluster
		}
		if cr.User != "" {
			ann[provisioner.AnnHeketiUser] = cr.User
		}
		if ref := cr.SecretRef(); ref != "" {
			ann[provisioner.AnnHeketiSecret] = ref
		}
	}
	spec := pv.Spec.DeepCopy()
	ro := spec.Glusterfs.ReadOnly
	spec.PersistentVolumeSource = v1.PersistentVolumeSource{CSI: &v1.CSIPersistentVolumeSource{
		Driver:           csi.DriverName,
		VolumeHandle:     handle,
		ReadOnly:         ro,
		VolumeAttributes: csi.VolumeContext(vol),
	}}
	spec.MountOptions = slices.DeleteFunc(slices.Clone(spec.MountOptions), func(o string) bool {
		return strings.HasPrefix(o, "backup-volfile-servers") || strings.HasPrefix(o, "backupvolfile-server")
	})
	if len(spec.MountOptions) == 0 {
		spec.MountOptions = nil
	}
	return &v1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: pv.Name, Labels: maps.Clone(pv.Labels), Annotations: ann},
		Spec:       *spec,
	}
}

// inTreeCreds: the in-tree provisioner recorded nothing of its heketi
// server in the PV; it is the class's (resturl, restuser, Secret), or the
// default server once the class is gone.
func (m *Migrator) inTreeCreds(ctx context.Context, pv *v1.PersistentVolume, classes map[string]*storagev1.StorageClass) (volume.Credentials, error) {
	if class, ok := classes[pv.Spec.StorageClassName]; ok && pv.Spec.StorageClassName != "" {
		cfg, err := volume.ParseClass(class.Name, provisioner.CredentialParams(class.Parameters))
		if err != nil {
			return volume.Credentials{}, cannot("%v", err)
		}
		cr, err := m.vols.ClassCredentials(ctx, class.Name, cfg, m.readSecret)
		if err != nil {
			return cr, cannot("%v", err)
		}
		return cr, nil
	}
	cr, ok := m.vols.DefaultCredentials("")
	if !ok {
		return cr, cannot("its StorageClass %q is gone and %s is not set: set it to the heketi server that holds volume %s", pv.Spec.StorageClassName, heketi.SettingURL, pv.Spec.Glusterfs.Path)
	}
	return cr, nil
}

// recordedCreds reads the heketi server and credentials glusterkube
// recorded in the PV (never a key: the Secret it names, or the default
// server's).
func (m *Migrator) recordedCreds(ctx context.Context, pv *v1.PersistentVolume) (volume.Credentials, error) {
	a := pv.Annotations
	url := a[provisioner.AnnHeketiURL]
	if def, ok := m.vols.DefaultCredentials(url); ok {
		if a[provisioner.AnnHeketiSecret] == "" && (a[provisioner.AnnHeketiUser] == "" || a[provisioner.AnnHeketiUser] == def.User) {
			return def, nil
		}
		url = def.URL
	}
	if url == "" {
		return volume.Credentials{}, cannot("it records no heketi server and %s is not set", heketi.SettingURL)
	}
	cr := volume.Credentials{URL: url, User: a[provisioner.AnnHeketiUser]}
	if ref := a[provisioner.AnnHeketiSecret]; ref != "" {
		ns, name, ok := strings.Cut(ref, "/")
		if !ok {
			return cr, cannot("its annotation %s=%q is not <namespace>/<name>", provisioner.AnnHeketiSecret, ref)
		}
		key, err := m.readSecret(ctx, ns, name)
		if err != nil {
			return cr, cannot("%v", err)
		}
		cr.Key, cr.SecretNamespace, cr.SecretName = key, ns, name
	}
	return cr, nil
}

// heketiVolume reads volume id (or, without an id, the volume named name)
// and checks it is the volume the PV names.
func (m *Migrator) heketiVolume(ctx context.Context, cr volume.Credentials, id, name string) (*volume.Volume, error) {
	sv, err := m.vols.Server(cr)
	if err != nil {
		return nil, cannot("%v", err)
	}
	// Prepare checks the credentials and builds the index that puts the
	// volume's brick hosts first among its servers.
	if err := sv.Prepare(ctx); err != nil {
		return nil, err
	}
	if id == "" {
		vol, err := sv.Lookup(ctx, name)
		if err != nil {
			return nil, err
		}
		if vol == nil {
			return nil, cannot("heketi %s has no volume named %s", cr.URL, name)
		}
		return vol, nil
	}
	vol, err := sv.Get(ctx, id)
	if volume.IsNotFound(err) {
		return nil, cannot("heketi %s has no volume %s (%s)", cr.URL, id, name)
	} else if err != nil {
		return nil, err
	}
	if vol.Name != name {
		return nil, cannot("heketi volume %s is named %s, but the PV names %s", id, vol.Name, name)
	}
	return vol, nil
}

// staticVolume looks a static PV's volume up by name on the default heketi
// server; nil when heketi does not know it (or none is set).
func (m *Migrator) staticVolume(ctx context.Context, name string) (*volume.Volume, volume.Credentials, error) {
	cr, ok := m.vols.DefaultCredentials("")
	if !ok {
		return nil, cr, nil
	}
	sv, err := m.vols.Server(cr)
	if err != nil {
		return nil, cr, err
	}
	vol, err := sv.Lookup(ctx, name)
	return vol, cr, err
}

// endpointIPs are the servers of a static PV heketi does not know: the
// addresses of its Endpoints, in order.
func (m *Migrator) endpointIPs(ctx context.Context, pv *v1.PersistentVolume) ([]string, error) {
	ns, name, ok := provisioner.EndpointsOf(pv)
	if !ok {
		return nil, cannot("heketi does not know volume %s and its Endpoints cannot be found (no endpoints name, or no endpointsNamespace and no claim)", pv.Spec.Glusterfs.Path)
	}
	ep, err := m.cfg.Kube.CoreV1().Endpoints(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, cannot("heketi does not know volume %s and its Endpoints %s/%s do not exist", pv.Spec.Glusterfs.Path, ns, name)
	} else if err != nil {
		return nil, fmt.Errorf("read Endpoints %s/%s: %w", ns, name, err)
	}
	var ips []string
	for _, s := range ep.Subsets {
		for _, a := range s.Addresses {
			if a.IP != "" && !slices.Contains(ips, a.IP) {
				ips = append(ips, a.IP)
			}
		}
	}
	if len(ips) == 0 {
		return nil, cannot("heketi does not know volume %s and its Endpoints %s/%s list no address", pv.Spec.Glusterfs.Path, ns, name)
	}
	return ips, nil
}

// readSecret reads a heketi key from a Secret of the glusterfs type.
func (m *Migrator) readSecret(ctx context.Context, ns, name string) (string, error) {
	return provisioner.ReadHeketiSecret(ctx, m.cfg.Kube, ns, name)
}
