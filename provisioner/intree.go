package provisioner

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	utilversion "k8s.io/apimachinery/pkg/util/version"
	"k8s.io/apimachinery/pkg/version"
	"k8s.io/client-go/discovery"
	"k8s.io/klog/v2"

	"github.com/glusterkube/glusterkube/volume"
)

// What the in-tree kubernetes.io/glusterfs provisioner (Kubernetes up to
// v1.25, pkg/volume/glusterfs) wrote, so that glusterkube can serve its
// StorageClasses and delete its PVs once it is gone (v1.26 and later).
const (
	// InTreeName is the in-tree plugin's provisioner name: old
	// StorageClasses say provisioner: kubernetes.io/glusterfs, and the PV
	// controller annotated the PVs it made with it (AnnProvisionedBy).
	InTreeName = "kubernetes.io/glusterfs"
	// AnnCreatedBy is set by in-tree provisioners on their PVs
	// (volumeutil.VolumeDynamicallyCreatedByKey), with the value
	// InTreeCreatedBy for glusterfs.
	AnnCreatedBy    = "kubernetes.io/createdby"
	InTreeCreatedBy = "heketi-dynamic-provisioner"
	// InTreeDescription is the in-tree value of AnnDescription.
	InTreeDescription = "Gluster-Internal: Dynamically provisioned PV"
	// InTreeEndpointsPrefix is the in-tree Endpoints/Service name prefix
	// (class parameter customepnameprefix overrides it). v1.13 to v1.25
	// named them <prefix>-<claim UID>, earlier releases <prefix>-<claim
	// name>; both carry LabelProvisionedForPVC=<claim name>.
	InTreeEndpointsPrefix = defaultEPPrefix
	// inTreeVolumePrefix: heketi names volumes "vol_<id>" unless a class
	// sets volumenameprefix; in-tree fell back on it to find the id.
	inTreeVolumePrefix = "vol_"

	// FinalizerInTreeDelete is what the PV controller (v1.23 and later)
	// puts on dynamically provisioned in-tree PVs with reclaim policy
	// Delete and removes only after its plugin deleted the volume. From
	// v1.26 it has no glusterfs plugin, so whoever deletes the volume
	// instead must remove it, or the PV never goes.
	FinalizerInTreeDelete = "kubernetes.io/pv-controller"
	// FinalizerPVProtection keeps a Bound PV from being removed.
	FinalizerPVProtection = "kubernetes.io/pv-protection"
	// FinalizerExternalDelete is the CSI external-provisioner's (and the
	// provision library's, when asked) deletion protection.
	FinalizerExternalDelete = "external-provisioner.volume.kubernetes.io/finalizer"

	// Claim annotations naming the provisioner that should serve a claim.
	// Before v1.26 the PV controller set them for in-tree classes too;
	// from v1.26 it does not (it has no plugin for the class), so
	// glusterkube sets them itself for the classes it serves.
	annStorageProvisioner     = "volume.kubernetes.io/storage-provisioner"
	annBetaStorageProvisioner = "volume.beta.kubernetes.io/storage-provisioner"
)

// InTreeClasses says whether the provisioner serves claims of
// StorageClasses with provisioner: kubernetes.io/glusterfs and deletes the
// PVs the in-tree plugin made.
type InTreeClasses string

// Values of InTreeClasses.
const (
	// InTreeAuto (the default, also for ""): serve them when the API
	// server is 1.26 or newer, where nothing else does; leave them to the
	// controller-manager's in-tree plugin on older servers.
	InTreeAuto InTreeClasses = "auto"
	// InTreeOn serves them whatever the version. On a server older than
	// 1.26 the in-tree plugin serves them too, and both provision the same
	// claims: use it only where that plugin cannot run.
	InTreeOn InTreeClasses = "true"
	// InTreeOff never serves them.
	InTreeOff InTreeClasses = "false"
)

// inTreeRemoved is the first Kubernetes release without the in-tree
// glusterfs plugin.
var inTreeRemoved = utilversion.MajorMinor(1, 26)

// ParseInTreeClasses parses the setting's text form (auto, true, false).
func ParseInTreeClasses(s string) (InTreeClasses, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", string(InTreeAuto):
		return InTreeAuto, nil
	case "true", "on", "yes":
		return InTreeOn, nil
	case "false", "off", "no":
		return InTreeOff, nil
	}
	return "", fmt.Errorf("serving in-tree StorageClasses: %q is not one of auto, true, false", s)
}

// ServeInTree decides whether to serve in-tree classes given the setting
// and the API server's version (read only for InTreeAuto).
func ServeInTree(mode InTreeClasses, server *version.Info) (bool, error) {
	switch mode {
	case InTreeOn:
		return true, nil
	case InTreeOff:
		return false, nil
	case InTreeAuto, "":
	default:
		return false, fmt.Errorf("serving in-tree StorageClasses: unknown setting %q (auto, true or false)", mode)
	}
	v, err := serverVersion(server)
	if err != nil {
		return false, fmt.Errorf("serving in-tree StorageClasses is set to auto, which needs the API server's version: %w; set it to true or false", err)
	}
	return v.AtLeast(inTreeRemoved), nil
}

// serverVersion reads major.minor from the API server's answer: the git
// version when it parses, else Major and Minor (which some distributions
// suffix with "+").
func serverVersion(info *version.Info) (*utilversion.Version, error) {
	if info == nil {
		return nil, fmt.Errorf("no version")
	}
	if v, err := utilversion.ParseGeneric(info.GitVersion); err == nil {
		return v, nil
	}
	major, err1 := strconv.Atoi(strings.TrimRight(info.Major, "+"))
	minor, err2 := strconv.Atoi(strings.TrimRight(info.Minor, "+"))
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("cannot parse the API server version %q (major %q, minor %q)", info.GitVersion, info.Major, info.Minor)
	}
	return utilversion.MajorMinor(uint(major), uint(minor)), nil
}

// ResolveInTree decides, once, whether this provisioner serves in-tree
// classes (Config.InTreeClasses; auto asks the API server's version).
// Run calls it; callers building Controllers themselves call it first to
// get its error, since NewControllers can only log it.
func (p *Provisioner) ResolveInTree(ctx context.Context) error {
	p.inTreeMu.Lock()
	defer p.inTreeMu.Unlock()
	if p.inTreeResolved {
		return nil
	}
	var info *version.Info
	if mode := p.cfg.InTreeClasses; mode == InTreeAuto || mode == "" {
		var err error
		if info, err = p.serverVersion(ctx); err != nil {
			return fmt.Errorf("serving in-tree StorageClasses is set to auto: read the API server's version: %w", err)
		}
	}
	serve, err := ServeInTree(p.cfg.InTreeClasses, info)
	if err != nil {
		return err
	}
	logger := klog.FromContext(ctx)
	if serve && info == nil {
		if v, err := p.serverVersion(ctx); err == nil {
			if sv, err := serverVersion(v); err == nil && !sv.AtLeast(inTreeRemoved) {
				logger.Info("Serving kubernetes.io/glusterfs StorageClasses on an API server older than 1.26, whose controller-manager serves them too: both will provision the same claims", "serverVersion", v.GitVersion)
			}
		}
	}
	p.inTreeServe, p.inTreeResolved = serve, true
	logger.V(1).Info("In-tree StorageClasses", "provisioner", InTreeName, "serve", serve, "setting", p.cfg.InTreeClasses)
	return nil
}

// versionTimeout bounds the API server version request.
const versionTimeout = 30 * time.Second

func (p *Provisioner) serverVersion(ctx context.Context) (*version.Info, error) {
	ctx, cancel := context.WithTimeout(ctx, versionTimeout)
	defer cancel()
	return discovery.ToServerVersionInterfaceWithContext(p.cfg.Kube.Discovery()).ServerVersionWithContext(ctx)
}

// ServesInTree reports whether the provisioner serves in-tree classes (false
// until ResolveInTree succeeded).
func (p *Provisioner) ServesInTree() bool {
	p.inTreeMu.Lock()
	defer p.inTreeMu.Unlock()
	return p.inTreeServe
}

// IsInTreePV reports a PV the in-tree kubernetes.io/glusterfs provisioner
// made: a glusterfs source and the PV controller's provisioned-by
// annotation naming the plugin (or, for PVs whose annotations were
// edited, the plugin's own createdby marker).
func IsInTreePV(pv *v1.PersistentVolume) bool {
	if pv.Spec.Glusterfs == nil {
		return false
	}
	if by, ok := pv.Annotations[AnnProvisionedBy]; ok {
		return by == InTreeName
	}
	return pv.Annotations[AnnCreatedBy] == InTreeCreatedBy
}

// InTreeVolumeID is the heketi volume id of an in-tree PV: its
// gluster.kubernetes.io/heketi-volume-id annotation, else, as in-tree
// fell back, the volume name without heketi's "vol_" prefix when that is
// a heketi id ("" otherwise).
func InTreeVolumeID(pv *v1.PersistentVolume) string {
	if id := pv.Annotations[AnnHeketiVolumeID]; id != "" {
		return id
	}
	if pv.Spec.Glusterfs == nil {
		return ""
	}
	id := strings.TrimPrefix(pv.Spec.Glusterfs.Path, inTreeVolumePrefix)
	if id != pv.Spec.Glusterfs.Path && volume.IsHeketiID(id) {
		return id
	}
	return ""
}
