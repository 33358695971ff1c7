package volume

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"syscall"

	"github.com/heketi/heketi/pkg/glusterfs/api"
	"k8s.io/klog/v2"

	"github.com/glusterkube/glusterkube/internal/heketi"
)

// CreateRequest asks for one volume.
type CreateRequest struct {
	// Name is the heketi volume name: deterministic (Name, CSIName), so a
	// retry finds what an earlier attempt made.
	Name string
	// SizeGiB is the size (SizeGiB rounds bytes up).
	SizeGiB int
	// Class names the StorageClass in errors; Params are its parsed
	// parameters (placement, durability, GID range, options).
	Class  string
	Params *ClassConfig
	// Topology is where the volume may go and should go, in Kubernetes
	// zones (allowedTopologies, the pod's node's zone; CSI accessibility
	// requirements); Place decides with it.
	Topology Topology
}

// Create returns the volume named req.Name, creating it unless an earlier
// attempt did (then Volume.Reused is set). Its errors are classed (see
// errors.go): IsOutcomeUnknown means the volume may exist and the caller
// must try again rather than forget it.
func (sv *Server) Create(ctx context.Context, req CreateRequest) (*Volume, error) {
	logger := klog.FromContext(ctx)
	if err := sv.Prepare(ctx); err != nil {
		return nil, classify(kindOther, sv.idx.isUncertain(req.Name), err)
	}
	if vol, found, err := sv.lookup(ctx, req.Name); err != nil {
		// Whether the volume exists is not known.
		return nil, classify(kindOther, true, err)
	} else if found {
		return sv.reuse(vol), nil
	}

	cfg := req.Params
	// Placement is decided before anything is reserved or asked of
	// heketi: a volume that cannot be placed leaves nothing behind.
	pl, err := sv.Place(ctx, req.Class, cfg, req.Topology)
	if err != nil {
		k := kindOther
		if IsPlacement(err) {
			k = kindPlacement
		}
		return nil, classify(k, sv.idx.isUncertain(req.Name), err)
	}
	// GIDs other processes gave since the index was built are taken.
	if err := sv.idx.catchUp(ctx, sv.h, sv.svc.gids); err != nil {
		return nil, classify(kindOther, sv.idx.isUncertain(req.Name), err)
	}
	gid, err := sv.svc.gids.Allocate(req.Class, req.Name, cfg.GIDMin, cfg.GIDMax)
	if err != nil {
		return nil, classify(kindOther, sv.idx.isUncertain(req.Name), err)
	}
	hreq := &api.VolumeCreateRequest{
		Size:                 req.SizeGiB,
		Name:                 req.Name,
		Clusters:             cfg.Clusters,
		Durability:           cfg.Durability,
		Gid:                  int64(gid),
		GlusterVolumeOptions: append(slices.Clone(cfg.VolumeOptions), pl.Options...),
	}
	hreq.Snapshot.Enable = true
	hreq.Snapshot.Factor = cfg.SnapFactor

	logger.V(4).Info("Creating heketi volume", "heketiVolume", req.Name, "sizeGiB", req.SizeGiB, "gid", gid)
	candidates, anyCluster := cfg.Clusters, false
	switch {
	case pl.Clusters != nil:
		// The clusters where the placement fits, in order.
		candidates = pl.Clusters
		hreq.Clusters = pl.Clusters
	case len(candidates) == 0:
		candidates, anyCluster = sv.idx.clusterIDs(), true
	}
	info, err := createInOrder(ctx, sv.h, hreq, candidates, anyCluster)
	if err == nil {
		sv.idx.add(info.Name, volumeRef{ID: info.Id, Cluster: info.Cluster, GID: info.Gid})
		sv.idx.uncertain.Delete(req.Name)
		logger.V(2).Info("Created heketi volume", "heketiVolume", info.Name, "heketiVolumeID", info.Id, "cluster", info.Cluster)
		return sv.volume(info), nil
	}
	return sv.createFailed(ctx, req.Name, err, func() error {
		return fmt.Errorf("create heketi volume %s (%d GiB, %s): %w", req.Name, req.SizeGiB, durabilityString(cfg.Durability), err)
	})
}

// createFailed classes a failed create (or clone) of name, or returns the
// volume an earlier attempt made; definite wraps a failure after which
// heketi certainly made no volume.
func (sv *Server) createFailed(ctx context.Context, name string, err error, definite func() error) (*Volume, error) {
	switch {
	case heketi.IsNameInUse(err):
		// An earlier attempt's volume exists (or is still being made).
		sv.idx.invalidate()
		vol, found, ferr := sv.lookup(ctx, name)
		if ferr != nil {
			return nil, classify(kindOther, true, ferr)
		}
		if found {
			return sv.reuse(vol), nil
		}
		sv.idx.uncertain.Store(name, true)
		return nil, classify(kindInFlight, true, fmt.Errorf("heketi volume %s is still being created by an earlier attempt; will retry", name))

	case IsCredentialsRefused(err):
		// With the 'user' account heketi accepts the create and then
		// refuses to show its result: the volume may exist.
		sv.idx.uncertain.Store(name, true)
		sv.idx.invalidate()
		return nil, classify(kindOther, true, adminRequired(sv.cr, err))

	case heketi.IsTransient(err) || ctx.Err() != nil:
		if neverSent(err) {
			return nil, classify(kindOther, sv.idx.isUncertain(name), fmt.Errorf("create heketi volume %s: %w", name, err))
		}
		// Timed out or cut off: heketi may still make the volume. The
		// next attempt rebuilds the index and finds it.
		sv.idx.uncertain.Store(name, true)
		sv.idx.invalidate()
		return nil, classify(kindOther, true, fmt.Errorf("create heketi volume %s: outcome unknown, will look for it on retry: %w", name, err))

	default:
		mayExist := sv.idx.isUncertain(name)
		if !mayExist {
			sv.svc.gids.Release(name)
		}
		k := kindOther
		if noSpace(err) {
			k = kindNoSpace
		}
		return nil, classify(k, mayExist, definite())
	}
}

// Lookup returns the volume named name, or nil when heketi has none.
func (sv *Server) Lookup(ctx context.Context, name string) (*Volume, error) {
	if err := sv.Prepare(ctx); err != nil {
		return nil, err
	}
	vol, found, err := sv.lookup(ctx, name)
	if err != nil || !found {
		return nil, err
	}
	return vol, nil
}

// lookup finds the name in the index and confirms it with heketi.
func (sv *Server) lookup(ctx context.Context, name string) (*Volume, bool, error) {
	if err := sv.idx.ensure(ctx, sv.h, sv.svc.gids); err != nil {
		return nil, false, err
	}
	for {
		ref, ok := sv.idx.lookup(name)
		if !ok {
			return nil, false, nil
		}
		info, err := sv.h.VolumeInfo(ctx, ref.ID)
		if err == nil {
			if info.Gid > 0 {
				sv.svc.gids.Reserve(name, int(info.Gid))
			}
			return sv.volume(info), true, nil
		}
		if !heketi.IsNotFound(err) {
			return nil, false, wrapHeketi(sv.cr, err, "read heketi volume %s (%s)", name, ref.ID)
		}
		sv.idx.remove(name, ref.ID) // deleted behind our back
	}
}

func (sv *Server) reuse(vol *Volume) *Volume {
	sv.idx.uncertain.Delete(vol.Name)
	vol.Reused = true
	return vol
}

// createInOrder creates the volume in one candidate cluster at a time, in
// the given order (heketi's own placement order).
//
// Heketi's volume names are unique per cluster only: given several
// clusters, it skips one that already holds the name and places the volume
// in another; and it hides a volume whose create is still running from
// every list. So after a create that timed out (or a crash), a retry that
// named several clusters would make a second volume elsewhere. Asked for
// one cluster, heketi answers "already in use" instead, which the caller
// turns into finding and reusing the first volume. A cluster that refuses
// for another reason (no space, wrong volume type) passes the request on
// to the next. With anyCluster (the class names none), a last request
// without clusters lets heketi use a cluster created since the index was
// built.
func createInOrder(ctx context.Context, h Heketi, req *api.VolumeCreateRequest, clusters []string, anyCluster bool) (*api.VolumeInfoResponse, error) {
	if len(clusters) <= 1 {
		return h.VolumeCreate(ctx, req)
	}
	var refusals []string
	var last error
	for _, c := range clusters {
		one := *req
		one.Clusters = []string{c}
		vol, err := h.VolumeCreate(ctx, &one)
		if err == nil || !refusedByCluster(err) || ctx.Err() != nil {
			return vol, err
		}
		refusals = append(refusals, fmt.Sprintf("cluster %s: %v", c, err))
		last = err
	}
	if anyCluster {
		all := *req
		all.Clusters = nil
		vol, err := h.VolumeCreate(ctx, &all)
		if err == nil || !refusedByCluster(err) {
			return vol, err
		}
		last = err
	}
	return nil, &refusedError{refusals: refusals, last: last}
}

// refusedError: every candidate cluster refused the volume.
type refusedError struct {
	refusals []string
	last     error
}

func (e *refusedError) Error() string {
	return fmt.Sprintf("every cluster refused (%s): %v", strings.Join(e.refusals, "; "), e.last)
}

func (e *refusedError) Unwrap() error { return e.last }

// noSpace: heketi found no room, in every cluster it was asked about.
func noSpace(err error) bool {
	var re *refusedError
	if errors.As(err, &re) {
		for _, r := range re.refusals {
			if !strings.Contains(r, "No space") && !strings.Contains(r, "Maximum number of bricks reached") {
				return false
			}
		}
	}
	return heketiNoSpace(err)
}

// refusedByCluster reports a definite refusal by heketi that another
// cluster might not give: not a name in use, a credentials problem, or an
// error after which the volume may exist.
func refusedByCluster(err error) bool {
	var he *heketi.Error
	return errors.As(err, &he) && he.Status != 0 &&
		!heketi.IsNameInUse(err) && !IsCredentialsRefused(err) &&
		!heketi.IsTransient(err) && !heketi.IsTimeout(err)
}

// neverSent reports errors where the request cannot have reached heketi.
func neverSent(err error) bool {
	var he *heketi.Error
	if errors.As(err, &he) && (he.Status == http.StatusTooManyRequests || he.Status == http.StatusServiceUnavailable) {
		return true // heketi itself turned the request away
	}
	return errors.Is(err, syscall.ECONNREFUSED)
}

func durabilityString(d api.VolumeDurabilityInfo) string {
	switch d.Type {
	case api.DurabilityReplicate:
		return fmt.Sprintf("replicate:%d", d.Replicate.Replica)
	case api.DurabilityEC:
		return fmt.Sprintf("disperse:%d:%d", d.Disperse.Data, d.Disperse.Redundancy)
	}
	return string(d.Type)
}
