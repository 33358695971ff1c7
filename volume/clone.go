package volume

import (
	"context"
	"fmt"

	"github.com/heketi/heketi/pkg/glusterfs/api"
	"k8s.io/klog/v2"

	"github.com/glusterkube/glusterkube/internal/heketi"
)

// CloneRequest asks for a copy of a volume.
type CloneRequest struct {
	// Name is the clone's heketi volume name (deterministic, as for
	// Create).
	Name string
	// Source is the heketi id of the volume to copy, on the same server.
	Source string
	// SizeGiB, when larger than the source, grows the clone after it is
	// made.
	SizeGiB int
}

// Clone returns the volume named req.Name, making it as a heketi clone
// (snapshot clone) of req.Source unless an earlier attempt did. The clone
// is in the source's cluster with its durability, options and GID (heketi
// keeps the GID; it stays reserved until both volumes are gone).
//
// heketi does not refuse a second clone of the same name, and it hides a
// clone (and its source) while the clone runs; so before cloning, Clone
// asks heketi's pending operations and answers IsInFlight while a clone
// of the source still runs, instead of making a second copy.
func (sv *Server) Clone(ctx context.Context, req CloneRequest) (*Volume, error) {
	if err := sv.Prepare(ctx); err != nil {
		return nil, classify(kindOther, sv.idx.isUncertain(req.Name), err)
	}
	vol, found, err := sv.lookup(ctx, req.Name)
	if err != nil {
		return nil, classify(kindOther, true, err)
	}
	if !found {
		vol, err = sv.clone(ctx, req)
		if err != nil {
			return nil, err
		}
	} else {
		sv.reuse(vol)
	}
	if req.SizeGiB > vol.SizeGiB {
		grown, err := sv.Expand(ctx, vol.ID, req.SizeGiB)
		if err != nil {
			return nil, classify(classOf(err), true, fmt.Errorf("grow clone %s to %d GiB: %w", vol.Name, req.SizeGiB, err))
		}
		grown.Reused = vol.Reused
		vol = grown
	}
	return vol, nil
}

func (sv *Server) clone(ctx context.Context, req CloneRequest) (*Volume, error) {
	if op, err := pendingOn(ctx, sv.h, req.Source, "clone-volume"); err != nil {
		return nil, classify(kindOther, true, wrapHeketi(sv.cr, err, "read heketi's pending operations"))
	} else if op != "" {
		sv.idx.uncertain.Store(req.Name, true)
		return nil, classify(kindInFlight, true, fmt.Errorf("a clone of heketi volume %s is still being made; will look again", req.Source))
	}
	src, err := sv.h.VolumeInfo(ctx, req.Source)
	if err != nil {
		if heketi.IsNotFound(err) {
			return nil, classify(kindNotFound, sv.idx.isUncertain(req.Name), fmt.Errorf("source volume %s not found in heketi %s", req.Source, sv.cr.URL))
		}
		return nil, classify(kindOther, sv.idx.isUncertain(req.Name), wrapHeketi(sv.cr, err, "read source volume %s", req.Source))
	}
	klog.FromContext(ctx).V(4).Info("Cloning heketi volume", "heketiVolume", req.Name, "source", src.Name)
	info, err := sv.h.VolumeClone(ctx, req.Source, &api.VolumeCloneRequest{Name: req.Name})
	if err != nil {
		if heketi.IsNotFound(err) {
			return nil, classify(kindNotFound, sv.idx.isUncertain(req.Name), fmt.Errorf("source volume %s not found in heketi %s", req.Source, sv.cr.URL))
		}
		return sv.createFailed(ctx, req.Name, err, func() error {
			return fmt.Errorf("clone heketi volume %s (%s) as %s: %w", src.Name, req.Source, req.Name, err)
		})
	}
	if info.Gid > 0 {
		sv.svc.gids.Reserve(info.Name, int(info.Gid))
	}
	sv.idx.add(info.Name, volumeRef{ID: info.Id, Cluster: info.Cluster, GID: info.Gid})
	sv.idx.uncertain.Delete(req.Name)
	klog.FromContext(ctx).V(2).Info("Cloned heketi volume", "heketiVolume", info.Name, "heketiVolumeID", info.Id, "source", src.Name)
	return sv.volume(info), nil
}

// classOf is err's class, without its mayExist.
func classOf(err error) kind {
	k, _ := kindOf(err)
	return k
}
