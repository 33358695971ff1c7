package volume

import (
	"context"
	"fmt"
	"slices"

	"k8s.io/klog/v2"

	"github.com/glusterkube/glusterkube/internal/heketi"
)

// Delete removes heketi volume id. A volume already gone is success. When
// name is given, a volume of another name under that id is refused: the
// caller's record is stale and deleting would destroy someone else's data.
//
// heketi hides a volume while an operation on it runs (its create, a
// clone of it, its delete): such a volume reads as not found, so before
// Delete calls a missing volume gone it asks heketi's pending operations,
// and answers IsInFlight while one of them names the volume.
func (sv *Server) Delete(ctx context.Context, id, name string) error {
	logger := klog.FromContext(ctx)
	info, err := sv.h.VolumeInfo(ctx, id)
	switch {
	case heketi.IsNotFound(err):
		if op, err := pendingOn(ctx, sv.h, id, "create-volume", "clone-volume", "delete-volume"); err != nil {
			return wrapHeketi(sv.cr, err, "read heketi's pending operations")
		} else if op != "" {
			return classify(kindInFlight, true, fmt.Errorf("heketi volume %s is hidden by a running %s operation; will look again", id, op))
		}
		logger.V(2).Info("Heketi volume already gone", "heketiVolumeID", id)
	case err != nil:
		return wrapHeketi(sv.cr, err, "read heketi volume %s before deleting it", id)
	case name != "" && info.Name != name:
		return fmt.Errorf("refusing to delete heketi volume %s: it is named %q but the caller expects %q", id, info.Name, name)
	default:
		name = info.Name
		if err := sv.h.VolumeDelete(ctx, id); err != nil && !heketi.IsNotFound(err) {
			return wrapHeketi(sv.cr, err, "delete heketi volume %s (%s)", name, id)
		}
		logger.V(2).Info("Deleted heketi volume", "heketiVolume", name, "heketiVolumeID", id)
	}
	if name == "" {
		name = sv.idx.nameOf(id)
	}
	if name != "" {
		sv.idx.remove(name, id)
		sv.svc.gids.Release(name)
		sv.idx.uncertain.Delete(name)
	}
	return nil
}

// pendingOn returns the type of a running heketi operation (one of types)
// that changes object id, or "". A heketi without pending operations
// (a fake) has none.
func pendingOn(ctx context.Context, h Heketi, id string, types ...string) (string, error) {
	po, ok := h.(PendingOperations)
	if !ok {
		return "", nil
	}
	list, err := po.PendingOperationList(ctx)
	if err != nil {
		return "", err
	}
	for _, op := range list.PendingOperations {
		if !running(op.Status, op.SubStatus) || !slices.Contains(types, op.TypeName) {
			continue
		}
		d, err := po.PendingOperationDetails(ctx, op.Id)
		if heketi.IsNotFound(err) {
			continue // finished meanwhile
		} else if err != nil {
			return "", err
		}
		for _, c := range d.Changes {
			if c.Id == id {
				return op.TypeName, nil
			}
		}
	}
	return "", nil
}

// running: a pending operation heketi still works on has status "" (new;
// sub-status "in-flight" while heketi works on it). A failed or stale
// (heketi restarted) one changed nothing and does not count.
func running(status, subStatus string) bool {
	return status == "" || subStatus == "in-flight"
}
