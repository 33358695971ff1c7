package provisioner

import (
	"context"
	"fmt"

	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"

	"github.com/glusterkube/glusterkube/volume"
)

// Delete removes a released PV's heketi volume (already gone counts as
// done), then, for an in-tree PV, its Service and Endpoints. It needs no
// StorageClass: the PV's annotations say where the volume lives. PVs this
// provisioner did not make are ignored.
func (p *Provisioner) Delete(ctx context.Context, pv *v1.PersistentVolume) error {
	id := heketiVolumeID(pv)
	if (pv.Spec.Glusterfs == nil && !isOurCSI(pv)) || id == "" {
		return &controller.IgnoredError{Reason: fmt.Sprintf("PV %s has no heketi volume (no glusterfs or glusterkube CSI source, or no %s annotation)", pv.Name, AnnHeketiVolumeID)}
	}
	if by := pv.Annotations[AnnProvisionedBy]; by != p.cfg.Name {
		return &controller.IgnoredError{Reason: fmt.Sprintf("PV %s was provisioned by %q, not %q", pv.Name, by, p.cfg.Name)}
	}
	return p.deleteVolume(ctx, pv, id)
}

// deleteVolume deletes the heketi volume id of a PV glusterkube made and,
// for an in-tree PV, its Service and Endpoints.
func (p *Provisioner) deleteVolume(ctx context.Context, pv *v1.PersistentVolume, id string) error {
	name := heketiVolumeName(pv)
	logger := klog.LoggerWithValues(klog.FromContext(ctx), "pv", klog.KObj(pv), "heketiVolume", name, "heketiVolumeID", id)
	ctx = klog.NewContext(ctx, logger)

	if err := p.ensureGIDs(ctx); err != nil {
		return err
	}
	cr, err := p.pvCreds(ctx, pv)
	if err != nil {
		return err
	}
	sv, err := p.vols.Server(cr)
	if err != nil {
		return err
	}
	if err := sv.Delete(ctx, id, name); err != nil {
		return fmt.Errorf("PV %s: %w", pv.Name, err)
	}
	return p.deleteEndpoints(ctx, pv)
}

// heketiVolumeID is the heketi volume id a PV records: its annotation,
// else (a CSI PV) the one in its volume handle.
func heketiVolumeID(pv *v1.PersistentVolume) string {
	if id := pv.Annotations[AnnHeketiVolumeID]; id != "" {
		return id
	}
	if isOurCSI(pv) {
		if id, err := volume.ParseID(pv.Spec.CSI.VolumeHandle); err == nil {
			return id.Heketi
		}
	}
	return ""
}
