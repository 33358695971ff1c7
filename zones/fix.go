package zones

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/heketi/heketi/pkg/glusterfs/api"
	"k8s.io/klog/v2"

	"github.com/glusterkube/glusterkube/internal/heketi"
	"github.com/glusterkube/glusterkube/topology"
	"github.com/glusterkube/glusterkube/volume"
)

// Heketi is what Fix needs of heketi. *heketi.Client (internal/heketi)
// implements it.
type Heketi interface {
	NodeSetTags(ctx context.Context, id string, req *api.TagsChangeRequest) error
	DeviceState(ctx context.Context, id string, req *api.StateRequest) error
	DeviceDelete(ctx context.Context, id string) error
	NodeDelete(ctx context.Context, id string) error
}

// Action is what Fix does to one storage node.
type Action string

// Actions.
const (
	// SetTag writes the node's zone into heketi's tag volume.ZoneTag.
	SetTag Action = "set-tag"
	// RemoveTag removes the tag from a node whose Node has no zone (or
	// that matches no Node).
	RemoveTag Action = "remove-tag"
	// Readd takes a node that holds no bricks out of heketi (its devices,
	// then the node), so that load adds it again with its zone's number:
	// heketi has no call to change a node's zone in place.
	Readd Action = "re-add"
	// Refused: the node's zone number is wrong but Fix leaves it; Reason
	// says why and what to do.
	Refused Action = "refused"
)

// Change is one thing Fix does, or would do, to one storage node.
type Change struct {
	Manage   string `json:"manage"`
	Path     string `json:"path"`
	HeketiID string `json:"heketiId"`
	Action   Action `json:"action"`
	// Zone is the node's Kubernetes zone.
	Zone string `json:"zone,omitempty"`
	// From and To are heketi zone numbers (Readd, Refused).
	From int `json:"from,omitempty"`
	To   int `json:"to,omitempty"`
	// Reason says why a change is refused.
	Reason string `json:"reason,omitempty"`
	// Error is set when the change was tried and failed.
	Error string `json:"error,omitempty"`

	devices []string // heketi device ids, for Readd
}

// String says what the change is, for people.
func (c Change) String() string {
	var s string
	switch c.Action {
	case SetTag:
		s = fmt.Sprintf("tag node %s with zone %s", c.Manage, c.Zone)
	case RemoveTag:
		s = fmt.Sprintf("remove the zone tag of node %s", c.Manage)
	case Readd:
		s = fmt.Sprintf("re-add node %s (zone %s) in heketi zone %d instead of %d", c.Manage, c.Zone, c.To, c.From)
	case Refused:
		s = fmt.Sprintf("node %s (zone %s) stays in heketi zone %d instead of %d: %s", c.Manage, c.Zone, c.From, c.To, c.Reason)
	}
	if c.Error != "" {
		s += ": failed: " + c.Error
	}
	return s
}

// Plan lists what makes heketi follow the Nodes' zones for the members heketi
// holds: zone tags set or removed, nodes with the wrong zone number re-added
// when that loses nothing — no bricks, no device or node tag the topology
// file lacks — and refused otherwise. Nodes heketi does not hold yet get
// their zone through Rewrite. cur is heketi's topology the report was made
// from; topo the file (nil: heketi's own).
func Plan(r *Report, topo *topology.Topology, cur *api.TopologyInfoResponse) []Change {
	heketiNodes := map[string]*api.NodeInfoResponse{}
	if cur != nil {
		for ci := range cur.ClusterList {
			for ni := range cur.ClusterList[ci].Nodes {
				n := &cur.ClusterList[ci].Nodes[ni]
				heketiNodes[n.Id] = n
			}
		}
	}
	fileNodes := map[string]topology.Node{}
	if topo != nil {
		for ci, c := range topo.Clusters {
			for ni, n := range c.Nodes {
				fileNodes[fmt.Sprintf("clusters[%d].nodes[%d]", ci, ni)] = n
			}
		}
	}
	var out []Change
	for _, m := range r.Members {
		if !m.InHeketi() {
			continue
		}
		base := Change{Manage: m.Manage, Path: m.Path, HeketiID: m.HeketiID, Zone: m.Zone}
		if m.Zone == "" {
			if m.Tag != "" {
				c := base
				c.Action = RemoveTag
				out = append(out, c)
			}
			continue
		}
		want := r.Numbers[m.Zone]
		if want != 0 && m.HeketiZone != want {
			c := base
			c.From, c.To = m.HeketiZone, want
			hn := heketiNodes[m.HeketiID]
			fn, inFile := fileNodes[m.Path]
			switch {
			case m.Bricks > 0:
				c.Action, c.Reason = Refused, fmt.Sprintf("it holds %s, and heketi cannot change a node's zone in place; move them off (heketi-cli node disable, node remove), then run again to re-add it", count(m.Bricks, "brick", "bricks"))
			case hn == nil || topo == nil || !inFile:
				c.Action, c.Reason = Refused, "it is not in the topology file, which it would be added again from"
			default:
				if lost := lostOnReadd(hn, fn); lost != "" {
					c.Action, c.Reason = Refused, "adding it again from the topology file would lose "+lost+"; put it in the file first"
					break
				}
				c.Action = Readd
				for _, d := range hn.DevicesInfo {
					c.devices = append(c.devices, d.Id)
				}
			}
			out = append(out, c)
			if c.Action == Readd {
				continue // added again with its tag
			}
		}
		if m.Tag != m.Zone {
			c := base
			c.Action = SetTag
			out = append(out, c)
		}
	}
	return out
}

// lostOnReadd names what heketi holds of a node that the topology file
// lacks: devices, or node and device tags (glusterkube's own aside).
func lostOnReadd(hn *api.NodeInfoResponse, fn topology.Node) string {
	fileDevs := map[string]topology.Device{}
	for _, d := range fn.Devices {
		fileDevs[d.Name] = d
	}
	var lost []string
	for _, d := range hn.DevicesInfo {
		fd, ok := fileDevs[d.Name]
		if !ok {
			lost = append(lost, "device "+d.Name)
		} else if !topology.TagsEqual(d.Tags, fd.Tags) {
			lost = append(lost, "the tags of device "+d.Name)
		}
	}
	if !topology.TagsEqual(hn.Tags, fn.Node.Tags) {
		lost = append(lost, "its node tags")
	}
	return strings.Join(lost, ", ")
}

// Rewrite makes a topology file follow the Nodes, in memory: each node
// matched to a Node with a zone gets its zone's heketi number and the zone
// tag, so load adds new (and re-added) nodes in the right zone.
func Rewrite(topo *topology.Topology, r *Report) {
	byPath := map[string]Member{}
	for _, m := range r.Members {
		byPath[m.Path] = m
	}
	for ci := range topo.Clusters {
		for ni := range topo.Clusters[ci].Nodes {
			n := &topo.Clusters[ci].Nodes[ni]
			m, ok := byPath[fmt.Sprintf("clusters[%d].nodes[%d]", ci, ni)]
			if !ok || m.Zone == "" || r.Numbers[m.Zone] == 0 {
				continue
			}
			n.Node.Zone = r.Numbers[m.Zone]
			if n.Node.Tags == nil {
				n.Node.Tags = map[string]string{}
			}
			n.Node.Tags[volume.ZoneTag] = volume.ZoneTagValue(m.Zone)
		}
	}
}

// Fix makes the changes (Refused ones are only returned). Each change is
// safe to repeat: a re-run after a crash plans again from what heketi then
// holds — a node taken out half-way is finished, one taken out entirely is
// added by load from the file. It returns the changes with their errors,
// and an error when any failed.
func Fix(ctx context.Context, h Heketi, changes []Change) ([]Change, error) {
	logger := klog.FromContext(ctx)
	out := slices.Clone(changes)
	failed := 0
	for i := range out {
		c := &out[i]
		var err error
		switch c.Action {
		case SetTag:
			err = h.NodeSetTags(ctx, c.HeketiID, &api.TagsChangeRequest{Change: api.UpdateTags, Tags: map[string]string{volume.ZoneTag: volume.ZoneTagValue(c.Zone)}})
		case RemoveTag:
			err = h.NodeSetTags(ctx, c.HeketiID, &api.TagsChangeRequest{Change: api.DeleteTags, Tags: map[string]string{volume.ZoneTag: ""}})
		case Readd:
			err = takeOut(ctx, h, c)
		default:
			continue
		}
		if err != nil {
			c.Error = err.Error()
			failed++
			logger.Info("Zone change failed", "node", c.Manage, "action", c.Action, "err", err)
			continue
		}
		logger.V(1).Info("Zone change done", "node", c.Manage, "action", c.Action, "zone", c.Zone)
	}
	if failed > 0 {
		return out, fmt.Errorf("%d of %d zone changes failed", failed, len(out))
	}
	return out, nil
}

// takeOut removes an empty node from heketi: each device offline, failed
// (heketi moves its bricks — there are none), deleted; then the node.
func takeOut(ctx context.Context, h Heketi, c *Change) error {
	for _, id := range c.devices {
		for _, st := range []api.EntryState{api.EntryStateOffline, api.EntryStateFailed} {
			if err := h.DeviceState(ctx, id, &api.StateRequest{State: st}); err != nil && !alreadyGone(err) {
				return fmt.Errorf("set device %s %s: %w", id, st, err)
			}
		}
		if err := h.DeviceDelete(ctx, id); err != nil && !alreadyGone(err) {
			return fmt.Errorf("delete device %s: %w", id, err)
		}
	}
	if err := h.NodeDelete(ctx, c.HeketiID); err != nil && !alreadyGone(err) {
		return fmt.Errorf("delete node %s: %w", c.HeketiID, err)
	}
	return nil
}

// alreadyGone: heketi no longer knows the object (a re-run after a crash).
func alreadyGone(err error) bool { return heketi.IsNotFound(err) }
