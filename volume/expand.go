package volume

import (
	"context"
	"fmt"
	"strings"

	"github.com/heketi/heketi/pkg/glusterfs/api"
	"k8s.io/klog/v2"

	"github.com/glusterkube/glusterkube/internal/heketi"
)

// Expand grows heketi volume id to at least wantGiB and returns it; a
// volume already that large is returned as it is (volumes never shrink).
//
// heketi's expand adds GiB to a volume, so growing twice is the danger: a
// retry after an expand that timed out would add the GiB again. Expand
// therefore reads the size first and, before it asks heketi, makes sure no
// earlier expansion of the volume is still running (heketi shows the old
// size until it ends): then it answers IsInFlight instead. An expand whose
// outcome is unknown is IsOutcomeUnknown; the next call reads the size
// again and does only what is left.
func (sv *Server) Expand(ctx context.Context, id string, wantGiB int) (*Volume, error) {
	vol, err := sv.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if wantGiB <= vol.SizeGiB {
		return vol, nil
	}
	op, err := pendingOn(ctx, sv.h, id, "expand-volume")
	if err != nil {
		return nil, wrapHeketi(sv.cr, err, "read heketi's pending operations")
	}
	if op != "" {
		return nil, classify(kindInFlight, true, fmt.Errorf("an earlier expansion of heketi volume %s is still running; will look again", vol.Name))
	}
	by := wantGiB - vol.SizeGiB
	klog.FromContext(ctx).V(2).Info("Expanding heketi volume", "heketiVolume", vol.Name, "heketiVolumeID", id, "fromGiB", vol.SizeGiB, "toGiB", wantGiB)
	info, err := sv.h.VolumeExpand(ctx, id, &api.VolumeExpandRequest{Size: by})
	if err != nil {
		switch {
		case heketi.IsNotFound(err):
			return nil, classify(kindNotFound, false, fmt.Errorf("heketi %s has no volume %s", sv.cr.URL, id))
		case noSpace(err):
			return nil, classify(kindNoSpace, false, fmt.Errorf("expand heketi volume %s by %d GiB: %w", vol.Name, by, err))
		case (heketi.IsTransient(err) || ctx.Err() != nil) && !neverSent(err):
			return nil, classify(kindOther, true, fmt.Errorf("expand heketi volume %s by %d GiB: outcome unknown, will read its size again: %w", vol.Name, by, err))
		}
		if strings.Contains(err.Error(), "PANIC") {
			// heketi v10 crashes (and rolls back) expanding a volume made by
			// clone: say so rather than show its stack.
			first, _, _ := strings.Cut(err.Error(), "\n")
			return nil, fmt.Errorf("expand heketi volume %s by %d GiB: heketi failed inside (heketi v10 cannot expand volumes made by volume clone; a clone keeps its size): %s", vol.Name, by, first)
		}
		return nil, wrapHeketi(sv.cr, err, "expand heketi volume %s by %d GiB", vol.Name, by)
	}
	return sv.volume(info), nil
}
