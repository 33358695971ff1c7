package provisioner

import (
	"context"
	"fmt"

	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"

	"github.com/glusterkube/glusterkube/internal/heketi"
)

// Delete removes a released PV's heketi volume (NotFound counts as done),
// then its Service and Endpoints. It needs no StorageClass: the PV's
// annotations say where the volume lives. PVs this provisioner did not make
// are ignored.
func (p *Provisioner) Delete(ctx context.Context, pv *v1.PersistentVolume) error {
	id := pv.Annotations[AnnHeketiVolumeID]
	if pv.Spec.Glusterfs == nil || id == "" {
		return &controller.IgnoredError{Reason: fmt.Sprintf("PV %s has no heketi volume (no glusterfs source or %s annotation)", pv.Name, AnnHeketiVolumeID)}
	}
	if by := pv.Annotations[AnnProvisionedBy]; by != p.cfg.Name {
		return &controller.IgnoredError{Reason: fmt.Sprintf("PV %s was provisioned by %q, not %q", pv.Name, by, p.cfg.Name)}
	}
	name := pv.Annotations[AnnHeketiVolumeName]
	if name == "" {
		name = pv.Spec.Glusterfs.Path
	}
	logger := klog.LoggerWithValues(klog.FromContext(ctx), "pv", klog.KObj(pv), "heketiVolume", name, "heketiVolumeID", id)
	ctx = klog.NewContext(ctx, logger)

	if err := p.ensureGIDs(ctx); err != nil {
		return err
	}
	cr, err := p.pvCreds(ctx, pv)
	if err != nil {
		return err
	}
	h, err := p.clients.get(cr)
	if err != nil {
		return err
	}
	vol, err := h.VolumeInfo(ctx, id)
	switch {
	case heketi.IsNotFound(err):
		logger.V(2).Info("Heketi volume already gone")
	case heketi.IsAdminRequired(err) || heketi.IsUnauthorized(err):
		return adminRequired(cr, err)
	case err != nil:
		return fmt.Errorf("read heketi volume %s (%s) before deleting it: %w", name, id, err)
	case vol.Name != name:
		return fmt.Errorf("refusing to delete heketi volume %s: it is named %q but PV %s expects %q", id, vol.Name, pv.Name, name)
	default:
		if err := h.VolumeDelete(ctx, id); err != nil && !heketi.IsNotFound(err) {
			if heketi.IsAdminRequired(err) || heketi.IsUnauthorized(err) {
				return adminRequired(cr, err)
			}
			return fmt.Errorf("delete heketi volume %s (%s): %w", name, id, err)
		}
		logger.V(2).Info("Deleted heketi volume")
	}
	p.servers.get(cr.URL).remove(name, id)
	p.gids.Release(name)
	p.uncertain.Delete(name)
	if err := p.deleteEndpoints(ctx, pv); err != nil {
		return err
	}
	return nil
}
