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
	// SizeGiB is the size asked for: at most the source's (a clone has
	// its source's size, and heketi cannot grow a clone: see Clone).
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
//
// A clone larger than its source is refused (IsInvalid): heketi v10
// cannot expand a cloned volume (its clone entry lacks the durability the
// brick allocator needs, and the expand request panics in heketi), so a
// clone keeps its source's size for good.
func (sv *Server) Clone(ctx context.Context, req CloneRequest) (*Volume, error) {
	if err := sv.Prepare(ctx); err != nil {
		return nil, classify(kindOther, sv.idx.isUncertain(req.Name), err)
	}
	vol, found, err := sv.lookup(ctx, req.Name)
	if err != nil {
		return nil, classify(kindOther, true, err)
	}
	if found {
		return sv.reuse(vol), nil
	}
	return sv.clone(ctx, req)
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
	if req.SizeGiB > src.Size {
		return nil, classify(kindInvalid, sv.idx.isUncertain(req.Name), fmt.Errorf("a clone of heketi volume %s has its %d GiB, not the %d GiB asked for: heketi cannot grow a cloned volume (heketi v10 fails expanding clones); ask for the source's size", src.Name, src.Size, req.SizeGiB))
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
