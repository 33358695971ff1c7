package zones

import (
	"context"
	"fmt"
	"slices"

	"github.com/heketi/heketi/pkg/glusterfs/api"
	corev1 "k8s.io/api/core/v1"

	"github.com/glusterkube/glusterkube/topology"
	"github.com/glusterkube/glusterkube/volume"
)

// Server is what Reconcile needs of heketi.
type Server interface {
	Heketi
	TopologyInfo(ctx context.Context) (*api.TopologyInfoResponse, error)
}

// Outcome is what Reconcile found and did.
type Outcome struct {
	// Report compares heketi's zones with the Nodes' as they were.
	Report *Report
	// Changes are what following the Nodes took (with their errors) or
	// refused; nil when not following.
	Changes []Change
	// Current is heketi's topology after the changes, for planning the
	// load of the (rewritten) topology against it.
	Current *api.TopologyInfoResponse
}

// Refused returns the changes refused or failed.
func (o *Outcome) Refused() []Change {
	var out []Change
	for _, c := range o.Changes {
		if c.Action == Refused || c.Error != "" {
			out = append(out, c)
		}
	}
	return out
}

// Reconcile reads heketi's topology and checks topo's zones against the
// Nodes. With follow, it makes heketi follow the Nodes (Plan, Fix) and
// rewrites topo so that load adds nodes in their zone; heketi is read again
// after nodes were taken out. Without follow it changes nothing. The error
// is non-nil when heketi could not be read or a change failed; the
// outcome still says what was done, and Current is nil when heketi's
// topology after the changes is not known.
func Reconcile(ctx context.Context, h Server, topo *topology.Topology, kubeNodes []corev1.Node, follow bool) (*Outcome, error) {
	cur, err := h.TopologyInfo(ctx)
	if err != nil {
		return nil, fmt.Errorf("read heketi topology: %w", err)
	}
	o := &Outcome{Report: Check(topo, cur, kubeNodes), Current: cur}
	if !follow {
		return o, nil
	}
	changes := Plan(o.Report, topo, cur)
	o.Changes, err = Fix(ctx, h, changes)
	Rewrite(topo, o.Report)
	for _, c := range o.Changes {
		if c.Action == Readd {
			// Nodes were taken out (or half): plan the load against what
			// heketi holds now.
			cur, rerr := h.TopologyInfo(ctx)
			if rerr != nil {
				o.Current = nil // stale: load must not plan against it
				return o, fmt.Errorf("read heketi topology: %w", rerr)
			}
			o.Current = cur
			break
		}
	}
	return o, err
}

// Differences words the report's problems as plan differences: what
// differs between heketi and the Nodes, which load leaves alone unless
// heketi's zones are to follow the Nodes.
func Differences(r *Report) []topology.Difference {
	var out []topology.Difference
	for _, p := range r.Problems {
		d := topology.Difference{Message: "zones: " + p.Message}
		if len(p.Paths) > 0 {
			d.Path = p.Paths[0]
		}
		if len(p.Nodes) == 1 {
			d.Node = p.Nodes[0]
		}
		switch p.Kind {
		case Shared, Split, Tags:
			d.Message += "; have glusterkube write " + volume.SettingZonesFromNodes + " to fix it"
		}
		out = append(out, d)
	}
	return out
}

// Diagnostics words the report's problems as warnings on the topology
// file (its zone numbers, checked without heketi).
func Diagnostics(r *Report, file string) []topology.Diagnostic {
	var out []topology.Diagnostic
	for _, p := range r.Problems {
		if p.Kind == Tags {
			continue // tags live in heketi, not in the file
		}
		d := topology.Diagnostic{File: file, Severity: topology.Warning, Message: "zones: " + p.Message}
		if len(p.Paths) > 0 {
			d.Path = p.Paths[0] + ".node.zone"
		}
		out = append(out, d)
	}
	return out
}

// WithoutReadded is cur without the nodes the changes re-add: what heketi
// holds once Fix took them out, for previewing a load.
func WithoutReadded(cur *api.TopologyInfoResponse, changes []Change) *api.TopologyInfoResponse {
	out := map[string]bool{}
	for _, c := range changes {
		if c.Action == Readd {
			out[c.HeketiID] = true
		}
	}
	if cur == nil || len(out) == 0 {
		return cur
	}
	cp := *cur
	cp.ClusterList = slices.Clone(cur.ClusterList)
	for i := range cp.ClusterList {
		cp.ClusterList[i].Nodes = slices.DeleteFunc(slices.Clone(cp.ClusterList[i].Nodes), func(n api.NodeInfoResponse) bool { return out[n.Id] })
	}
	return &cp
}
