package provisioner

import (
	"context"
	"errors"
	"fmt"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"

	"github.com/glusterkube/glusterkube/volume"
)

// Provision creates (or, after a crash, finds) the claim's heketi volume
// and returns the PV: a CSI PV for glusterkube's CSI driver, or, for a
// class with volumesource: glusterfs, an in-tree glusterfs PV with its
// Service and Endpoints.
//
// The returned state tells the library whether a heketi volume may exist:
// errors before heketi was asked to create anything are NoChange; once a
// volume exists or may exist (volume.IsOutcomeUnknown), every error is
// InBackground, so the library calls again instead of forgetting it.
func (p *Provisioner) Provision(ctx context.Context, opts controller.ProvisionOptions) (*v1.PersistentVolume, controller.ProvisioningState, error) {
	claim, class := opts.PVC, opts.StorageClass
	logger := klog.LoggerWithValues(klog.FromContext(ctx), "claim", klog.KObj(claim), "pv", opts.PVName)
	ctx = klog.NewContext(ctx, logger)

	if claim.Spec.Selector != nil {
		return nil, controller.ProvisioningNoChange, fmt.Errorf("claim %s has spec.selector, which glusterkube cannot satisfy for dynamically provisioned volumes: remove the selector", klog.KObj(claim))
	}
	if claim.Spec.DataSource != nil || claim.Spec.DataSourceRef != nil {
		return nil, controller.ProvisioningNoChange, fmt.Errorf("claim %s has a data source; the built-in provisioner does not clone volumes (glusterkube's CSI driver does, through the CSI external-provisioner): remove spec.dataSource or use a StorageClass of the CSI driver", klog.KObj(claim))
	}
	cfg, err := volume.ParseClass(class.Name, class.Parameters)
	if err != nil {
		return nil, controller.ProvisioningNoChange, err
	}
	for _, d := range cfg.Deprecated {
		p.event(claim, v1.EventTypeWarning, ReasonDeprecatedParameter, fmt.Sprintf("StorageClass %q: %s", class.Name, d))
	}
	size, err := roundUpGiB(claim.Spec.Resources.Requests[v1.ResourceStorage])
	if err != nil {
		return nil, controller.ProvisioningNoChange, err
	}
	topo, zoneKey, err := p.claimTopology(ctx, class, opts.SelectedNodeName)
	if err != nil {
		var gone *selectedNodeGone
		if errors.As(err, &gone) {
			return nil, controller.ProvisioningReschedule, err
		}
		return nil, controller.ProvisioningNoChange, err
	}
	cr, err := p.classCreds(ctx, class.Name, cfg)
	if err != nil {
		return nil, controller.ProvisioningNoChange, err
	}
	sv, err := p.vols.Server(cr)
	if err != nil {
		return nil, controller.ProvisioningNoChange, err
	}
	if err := p.ensureGIDs(ctx); err != nil {
		return nil, controller.ProvisioningNoChange, err
	}
	if err := sv.Prepare(ctx); err != nil {
		if volume.IsCredentialsRefused(err) {
			p.event(claim, v1.EventTypeWarning, ReasonHeketiAdminRequired, err.Error())
		}
		return nil, controller.ProvisioningNoChange, err
	}

	name := VolumeName(cfg.NamePrefix, claim, opts.PVName)
	logger = klog.LoggerWithValues(logger, "heketiVolume", name)
	ctx = klog.NewContext(ctx, logger)

	vol, err := sv.Create(ctx, volume.CreateRequest{Name: name, SizeGiB: size, Class: class.Name, Params: cfg, Topology: topo})
	if err != nil {
		if volume.IsPlacement(err) && !volume.IsOutcomeUnknown(err) {
			// Nothing was asked of heketi. With a picked node, the
			// scheduler may find one in a zone where the volume fits.
			if opts.SelectedNodeName != "" {
				return nil, controller.ProvisioningReschedule, err
			}
			return nil, controller.ProvisioningFinished, err
		}
		switch {
		case volume.IsGIDExhausted(err):
			p.event(claim, v1.EventTypeWarning, ReasonGIDRangeExhausted, err.Error())
		case volume.IsCredentialsRefused(err):
			p.event(claim, v1.EventTypeWarning, ReasonHeketiAdminRequired, err.Error())
		}
		if volume.IsOutcomeUnknown(err) {
			return nil, controller.ProvisioningInBackground, err
		}
		return nil, controller.ProvisioningFinished, err
	}
	if vol.Reused {
		p.event(claim, v1.EventTypeNormal, ReasonVolumeReused, fmt.Sprintf("Using heketi volume %s (%s) created by an earlier attempt", vol.Name, vol.ID))
	}
	if p.cfg.AfterVolumeCreate != nil {
		if err := p.cfg.AfterVolumeCreate(ctx, opts.PVName, vol.ID); err != nil {
			return nil, controller.ProvisioningInBackground, err
		}
	}

	// The volume exists: from here every failure must be retried.
	var pv *v1.PersistentVolume
	if cfg.VolumeSource == volume.VolumeSourceGlusterfs {
		var state controller.ProvisioningState
		pv, state, err = p.inTreePV(ctx, sv, opts, cfg, vol, cr)
		if err != nil {
			return nil, state, err
		}
	} else {
		id, err := p.vols.ID(vol)
		if err != nil {
			return nil, controller.ProvisioningInBackground, fmt.Errorf("heketi volume %s (%s): %w", vol.Name, vol.ID, err)
		}
		pv = buildPV(opts.PVName, class, claim, vol, cr, csiSource(id.String(), vol), append([]string(nil), class.MountOptions...))
	}
	if vol.Zone != "" {
		// A local volume: its pods run in its zone, near their data.
		pv.Spec.NodeAffinity = zoneAffinity(zoneKey, vol.Zone)
	}
	logger.V(2).Info("Provisioned", "heketiVolumeID", vol.ID, "sizeGiB", vol.SizeGiB, "gid", vol.GID, "volumeSource", cfg.VolumeSource, "zone", vol.Zone)
	return pv, controller.ProvisioningFinished, nil
}

// inTreePV makes the claim's Service and Endpoints and returns the in-tree
// glusterfs PV.
func (p *Provisioner) inTreePV(ctx context.Context, sv *volume.Server, opts controller.ProvisionOptions, cfg *volume.ClassConfig, vol *volume.Volume, cr volume.Credentials) (*v1.PersistentVolume, controller.ProvisioningState, error) {
	claim := opts.PVC
	ips, err := storageIPs(ctx, vol.Hosts)
	if err != nil {
		return nil, controller.ProvisioningInBackground, fmt.Errorf("heketi volume %s (%s): %w", vol.Name, vol.ID, err)
	}
	epName, err := p.ensureEndpoints(ctx, claim, opts.PVName, cfg.EPNamePrefix, ips)
	if err != nil {
		if gone, gerr := p.claimGone(ctx, claim.Namespace, claim.Name, claim.UID); gerr == nil && gone {
			// The claim (or its namespace) went away while its volume was
			// being made: nothing will ever use the volume, so remove it
			// instead of retrying forever.
			return nil, p.discard(ctx, sv, vol, err), fmt.Errorf("claim %s was deleted while its volume was made: %w", klog.KObj(claim), err)
		}
		return nil, controller.ProvisioningInBackground, err
	}
	src := glusterfsSource(claim, epName, vol)
	return buildPV(opts.PVName, opts.StorageClass, claim, vol, cr, src, mountOptions(opts.StorageClass.MountOptions, ips)), controller.ProvisioningFinished, nil
}

// claimGone reports whether claim ns/name no longer exists, or is another
// object of the same name than the one with uid (when uid is known).
func (p *Provisioner) claimGone(ctx context.Context, ns, name string, uid types.UID) (bool, error) {
	cur, err := p.cfg.Kube.CoreV1().PersistentVolumeClaims(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return uid != "" && cur.UID != uid, nil
}

// discard deletes the volume made for a claim that is gone and returns the
// state to report: Finished once the volume is gone, else InBackground so
// the library calls again.
func (p *Provisioner) discard(ctx context.Context, sv *volume.Server, vol *volume.Volume, cause error) controller.ProvisioningState {
	logger := klog.FromContext(ctx)
	if err := sv.Delete(ctx, vol.ID, vol.Name); err != nil {
		logger.Error(err, "Claim is gone; deleting its heketi volume failed, will retry", "heketiVolumeID", vol.ID)
		return controller.ProvisioningInBackground
	}
	logger.Info("Claim is gone; deleted the heketi volume made for it", "heketiVolumeID", vol.ID, "cause", cause.Error())
	return controller.ProvisioningFinished
}
