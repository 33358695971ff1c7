package volume

import (
	"context"
	"sync"

	"github.com/heketi/heketi/pkg/glusterfs/api"

	"github.com/glusterkube/glusterkube/internal/heketi"
)

// Capacity is the room, in bytes, for new volumes of a class: heketi's
// free device space in the clusters the class may use (its clusterid, or
// every cluster), on online nodes and devices, divided by what each byte
// of such a volume takes on the devices — its replica count (disperse:
// (data+redundancy)/data) times the snapshot factor (heketi reserves
// size × factor of thin pool per brick). It is an estimate: heketi places
// whole bricks and keeps a replica set's bricks on different nodes, so a
// single volume may not be able to use all of it.
func (sv *Server) Capacity(ctx context.Context, cfg *ClassConfig) (int64, error) {
	clusters := cfg.Clusters
	if len(clusters) == 0 {
		l, err := sv.h.ClusterList(ctx)
		if err != nil {
			return 0, wrapHeketi(sv.cr, err, "list heketi clusters")
		}
		clusters = l.Clusters
	}
	var nodes []string
	for _, c := range clusters {
		ci, err := sv.h.ClusterInfo(ctx, c)
		if heketi.IsNotFound(err) {
			continue
		} else if err != nil {
			return 0, wrapHeketi(sv.cr, err, "read heketi cluster %s", c)
		}
		nodes = append(nodes, ci.Nodes...)
	}
	var mu sync.Mutex
	var freeKiB uint64
	err := forEach(ctx, nodes, func(ctx context.Context, id string) error {
		n, err := sv.h.NodeInfo(ctx, id)
		if heketi.IsNotFound(err) {
			return nil
		} else if err != nil {
			return wrapHeketi(sv.cr, err, "read heketi node %s", id)
		}
		if n.State != "" && n.State != api.EntryStateOnline {
			return nil
		}
		var free uint64
		for _, d := range n.DevicesInfo {
			if d.State == "" || d.State == api.EntryStateOnline {
				free += d.Storage.Free
			}
		}
		mu.Lock()
		freeKiB += free
		mu.Unlock()
		return nil
	})
	if err != nil {
		return 0, err
	}
	per := perByte(cfg.Durability) * float64(max(cfg.SnapFactor, 1))
	return int64(float64(freeKiB) * 1024 / per), nil
}

// perByte is the device bytes one byte of a volume of durability d takes.
func perByte(d api.VolumeDurabilityInfo) float64 {
	switch d.Type {
	case api.DurabilityReplicate:
		return float64(max(d.Replicate.Replica, 1))
	case api.DurabilityEC:
		if d.Disperse.Data > 0 {
			return float64(d.Disperse.Data+d.Disperse.Redundancy) / float64(d.Disperse.Data)
		}
	}
	return 1
}
