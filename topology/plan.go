package topology

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/heketi/heketi/pkg/glusterfs/api"
)

// Heketi is the part of heketi's API that plan, load and show use.
// *heketi.Client (internal/heketi) implements it; tests fake failures with
// their own.
type Heketi interface {
	TopologyInfo(ctx context.Context) (*api.TopologyInfoResponse, error)
	ClusterCreate(ctx context.Context, req *api.ClusterCreateRequest) (*api.ClusterInfoResponse, error)
	ClusterInfo(ctx context.Context, id string) (*api.ClusterInfoResponse, error)
	ClusterDelete(ctx context.Context, id string) error
	NodeAdd(ctx context.Context, req *api.NodeAddRequest) (*api.NodeInfoResponse, error)
	DeviceAdd(ctx context.Context, req *api.DeviceAddRequest) error
}

// Action is what load does with one object of the file.
type Action string

const (
	// Create: the object is not in heketi; load adds it.
	Create Action = "create"
	// Exists: heketi already has it; load leaves it as it is.
	Exists Action = "exists"
	// Reuse: a file cluster whose nodes are all new goes into an empty
	// heketi cluster (left by an interrupted load) instead of a new one.
	Reuse Action = "reuse"
	// Conflict: load cannot add it because heketi already uses one of its
	// hostnames for another node; the file or heketi must change first. A
	// new cluster all of whose nodes conflict is not created.
	Conflict Action = "conflict"
)

// Plan is what load would do to make heketi hold the file's topology. It
// only ever adds: what differs otherwise is listed in Differences and left
// alone.
type Plan struct {
	Clusters    []*ClusterPlan `json:"clusters"`
	Differences []Difference   `json:"differences"`
}

// ClusterPlan is one cluster of the file.
type ClusterPlan struct {
	Path   string `json:"path"`
	ID     string `json:"id,omitempty"` // heketi's id; empty until created
	Action Action `json:"action"`
	// Flags are sent when the cluster is created.
	Flags api.ClusterFlags `json:"flags"`
	Nodes []*NodePlan      `json:"nodes"`
}

// NodePlan is one node of the file.
type NodePlan struct {
	Path     string        `json:"path"`
	Manage   string        `json:"manage"`
	ID       string        `json:"id,omitempty"`
	Cluster  string        `json:"cluster,omitempty"` // the heketi cluster holding it, when it exists
	Action   Action        `json:"action"`
	Conflict string        `json:"conflict,omitempty"`
	Devices  []*DevicePlan `json:"devices"`

	// Request is what load sends to add the node, in heketi's own shape
	// (its cluster is filled in at load time).
	Request api.NodeAddRequest `json:"request"`
}

// DevicePlan is one device of the file.
type DevicePlan struct {
	Path        string            `json:"path"`
	Name        string            `json:"name"`
	ID          string            `json:"id,omitempty"`
	Action      Action            `json:"action"`
	DestroyData bool              `json:"destroydata,omitempty"`
	Tags        map[string]string `json:"tags,omitempty"`
}

// Difference is something that differs between the file and heketi that
// load will not change by itself.
type Difference struct {
	// Path is the place in the file, if the difference is about something
	// in it.
	Path    string `json:"path,omitempty"`
	Cluster string `json:"cluster,omitempty"`
	Node    string `json:"node,omitempty"` // manage hostname
	Device  string `json:"device,omitempty"`
	Message string `json:"message"`
}

// Counts sums up a plan.
type Counts struct {
	ClustersToCreate int `json:"clusters_to_create"`
	NodesToAdd       int `json:"nodes_to_add"`
	DevicesToAdd     int `json:"devices_to_add"`
	ClustersPresent  int `json:"clusters_present"`
	NodesPresent     int `json:"nodes_present"`
	DevicesPresent   int `json:"devices_present"`
	Conflicts        int `json:"conflicts"`
	Differences      int `json:"differences"`
}

// Changes is the number of heketi operations load would run.
func (c Counts) Changes() int { return c.ClustersToCreate + c.NodesToAdd + c.DevicesToAdd }

// Counts sums up the plan.
func (p *Plan) Counts() Counts {
	var c Counts
	for _, cl := range p.Clusters {
		switch cl.Action {
		case Create:
			c.ClustersToCreate++
		case Exists, Reuse:
			c.ClustersPresent++
		}
		for _, n := range cl.Nodes {
			switch n.Action {
			case Create:
				c.NodesToAdd++
			case Exists:
				c.NodesPresent++
			case Conflict:
				c.Conflicts++
			}
			for _, d := range n.Devices {
				switch d.Action {
				case Create:
					if n.Action != Conflict {
						c.DevicesToAdd++
					}
				case Exists:
					c.DevicesPresent++
				}
			}
		}
	}
	c.Differences = len(p.Differences)
	return c
}

// MakePlan reads heketi's topology (one call) and plans t against it.
func MakePlan(ctx context.Context, h Heketi, t *Topology) (*Plan, error) {
	cur, err := h.TopologyInfo(ctx)
	if err != nil {
		return nil, fmt.Errorf("read heketi topology: %w", err)
	}
	return PlanAgainst(t, cur), nil
}

// heketiNode is a node in heketi's topology.
type heketiNode struct {
	cluster string
	info    *api.NodeInfoResponse
}

func manage0(n *api.NodeInfoResponse) string {
	if len(n.Hostnames.Manage) == 0 {
		return ""
	}
	return n.Hostnames.Manage[0]
}

// PlanAgainst plans t against heketi's topology cur. It makes no call. A
// file node is heketi's node with the same manage[0] (heketi-cli's rule); a
// file cluster is the heketi cluster that holds its existing nodes.
func PlanAgainst(t *Topology, cur *api.TopologyInfoResponse) *Plan {
	if cur == nil {
		cur = &api.TopologyInfoResponse{}
	}
	p := &Plan{Clusters: []*ClusterPlan{}, Differences: []Difference{}}
	byManage0 := map[string]heketiNode{}
	manageOwner := map[string]heketiNode{}
	storageOwner := map[string]heketiNode{}
	clusters := map[string]*api.Cluster{}
	for ci := range cur.ClusterList {
		c := &cur.ClusterList[ci]
		clusters[c.Id] = c
		for ni := range c.Nodes {
			n := &c.Nodes[ni]
			hn := heketiNode{cluster: c.Id, info: n}
			if m := manage0(n); m != "" {
				byManage0[m] = hn
			}
			for _, m := range n.Hostnames.Manage {
				manageOwner[m] = hn
			}
			for _, s := range n.Hostnames.Storage {
				storageOwner[s] = hn
			}
		}
	}

	mapped := map[string]string{} // heketi cluster id -> file cluster path
	reused := map[string]bool{}
	for ci, fc := range t.Clusters {
		cp := &ClusterPlan{Path: index("clusters", ci), Nodes: []*NodePlan{}}
		cp.Flags = api.ClusterFlags{Block: fc.Block == nil || *fc.Block, File: fc.File == nil || *fc.File}

		// Which heketi clusters hold this cluster's nodes?
		holding := map[string]int{}
		var order []string
		for _, fn := range fc.Nodes {
			if len(fn.Node.Hostnames.Manage) == 0 {
				continue
			}
			if hn, ok := byManage0[fn.Node.Hostnames.Manage[0]]; ok {
				if holding[hn.cluster] == 0 {
					order = append(order, hn.cluster)
				}
				holding[hn.cluster]++
			}
		}
		switch {
		case len(order) > 0:
			best := order[0]
			for _, id := range order[1:] {
				if holding[id] > holding[best] {
					best = id
				}
			}
			cp.ID, cp.Action = best, Exists
			if len(order) > 1 {
				var where []string
				for _, id := range order {
					where = append(where, fmt.Sprintf("%s (%d)", id, holding[id]))
				}
				p.Differences = append(p.Differences, Difference{Path: cp.Path, Cluster: best,
					Message: fmt.Sprintf("the file's cluster has nodes in %d heketi clusters: %s; new nodes go to %s, existing nodes stay where they are", len(order), strings.Join(where, ", "), best)})
			}
			if other, dup := mapped[best]; dup {
				p.Differences = append(p.Differences, Difference{Path: cp.Path, Cluster: best,
					Message: fmt.Sprintf("%s and %s map to the same heketi cluster %s; the file splits what heketi holds together", other, cp.Path, best)})
			} else {
				mapped[best] = cp.Path
			}
			hc := clusters[best]
			if fc.Block != nil && *fc.Block != hc.Block {
				p.Differences = append(p.Differences, Difference{Path: cp.Path + ".block", Cluster: best,
					Message: fmt.Sprintf("block is %t in the file but %t in heketi cluster %s; load does not change cluster flags (heketi-cli cluster setflags does)", *fc.Block, hc.Block, best)})
			}
			if fc.File != nil && *fc.File != hc.File {
				p.Differences = append(p.Differences, Difference{Path: cp.Path + ".file", Cluster: best,
					Message: fmt.Sprintf("file is %t in the file but %t in heketi cluster %s; load does not change cluster flags (heketi-cli cluster setflags does)", *fc.File, hc.File, best)})
			}
		default:
			cp.Action = Create
			// An empty heketi cluster with the same flags is what an
			// interrupted load leaves behind: fill it instead of making
			// another.
			for _, c := range cur.ClusterList {
				if len(c.Nodes) == 0 && len(c.Volumes) == 0 && len(c.BlockVolumes) == 0 &&
					c.ClusterFlags == cp.Flags && !reused[c.Id] && mapped[c.Id] == "" {
					cp.ID, cp.Action = c.Id, Reuse
					reused[c.Id] = true
					mapped[c.Id] = cp.Path
					break
				}
			}
		}

		adds := 0
		for ni, fn := range fc.Nodes {
			np := planNode(p, cp, index(cp.Path+".nodes", ni), fn, byManage0, manageOwner, storageOwner)
			if np.Action == Create {
				adds++
			}
			cp.Nodes = append(cp.Nodes, np)
		}
		if cp.Action == Create && adds == 0 {
			// Every node conflicts: a new cluster would stay empty.
			cp.Action = Conflict
		}
		p.Clusters = append(p.Clusters, cp)
	}

	// What heketi has that the file does not mention.
	inFile := map[string]bool{}
	for _, fc := range t.Clusters {
		for _, fn := range fc.Nodes {
			if len(fn.Node.Hostnames.Manage) > 0 {
				inFile[fn.Node.Hostnames.Manage[0]] = true
			}
		}
	}
	for _, c := range cur.ClusterList {
		if len(c.Nodes) == 0 {
			continue // empty: nothing to lose, and load may reuse it
		}
		path, isMapped := mapped[c.Id]
		if !isMapped {
			p.Differences = append(p.Differences, Difference{Cluster: c.Id,
				Message: fmt.Sprintf("heketi cluster %s (%s, %s) is not in the file; load leaves it", c.Id, plural(len(c.Nodes), "node", "nodes"), plural(len(c.Volumes), "volume", "volumes"))})
			continue
		}
		for _, n := range c.Nodes {
			if !inFile[manage0(&n)] {
				p.Differences = append(p.Differences, Difference{Path: path, Cluster: c.Id, Node: manage0(&n),
					Message: fmt.Sprintf("node %s (%s) is in heketi cluster %s but not in the file; load leaves it", manage0(&n), n.Id, c.Id)})
			}
		}
	}
	return p
}

func planNode(p *Plan, cp *ClusterPlan, path string, fn Node, byManage0, manageOwner, storageOwner map[string]heketiNode) *NodePlan {
	np := &NodePlan{Path: path, Devices: []*DevicePlan{}}
	if len(fn.Node.Hostnames.Manage) > 0 {
		np.Manage = fn.Node.Hostnames.Manage[0]
	}
	np.Request = api.NodeAddRequest{
		Zone:      fn.Node.Zone,
		Hostnames: api.HostAddresses{Manage: slices.Clone(fn.Node.Hostnames.Manage), Storage: slices.Clone(fn.Node.Hostnames.Storage)},
		Tags:      maps.Clone(fn.Node.Tags),
	}
	devPlans := func(existing map[string]*api.DeviceInfoResponse) {
		for di, fd := range fn.Devices {
			dp := &DevicePlan{Path: index(path+".devices", di), Name: fd.Name, Action: Create, DestroyData: fd.DestroyData, Tags: maps.Clone(fd.Tags)}
			if hd, ok := existing[fd.Name]; ok {
				dp.ID, dp.Action, dp.DestroyData = hd.Id, Exists, false
				if !TagsEqual(fd.Tags, hd.Tags) {
					p.Differences = append(p.Differences, Difference{Path: dp.Path, Cluster: np.Cluster, Node: np.Manage, Device: fd.Name,
						Message: fmt.Sprintf("device %s on %s has tags %s in the file but %s in heketi; load does not change tags (heketi-cli device settags does)", fd.Name, np.Manage, fmtTags(fd.Tags), fmtTags(hd.Tags))})
				}
			}
			np.Devices = append(np.Devices, dp)
		}
	}

	hn, exists := byManage0[np.Manage]
	if !exists {
		// Would heketi refuse it for a hostname another node holds?
		var conflicts []string
		for _, m := range fn.Node.Hostnames.Manage {
			if o, ok := manageOwner[m]; ok {
				conflicts = append(conflicts, fmt.Sprintf("manage hostname %s is already used by heketi node %s (%s) in cluster %s", m, o.info.Id, manage0(o.info), o.cluster))
			}
		}
		for _, s := range fn.Node.Hostnames.Storage {
			if o, ok := storageOwner[s]; ok {
				conflicts = append(conflicts, fmt.Sprintf("storage hostname %s is already used by heketi node %s (%s) in cluster %s", s, o.info.Id, manage0(o.info), o.cluster))
			}
		}
		if len(conflicts) > 0 {
			np.Action = Conflict
			np.Conflict = strings.Join(conflicts, "; ")
		} else {
			np.Action = Create
		}
		devPlans(nil)
		return np
	}

	np.ID, np.Cluster, np.Action = hn.info.Id, hn.cluster, Exists
	hi := hn.info
	diff := func(field, format string, args ...any) {
		p.Differences = append(p.Differences, Difference{Path: path + ".node." + field, Cluster: hn.cluster, Node: np.Manage, Message: fmt.Sprintf(format, args...)})
	}
	if fn.Node.Zone != hi.Zone {
		diff("zone", "node %s is in zone %d in the file but zone %d in heketi; load does not change zones (heketi has no call to change one: remove and re-add the node)", np.Manage, fn.Node.Zone, hi.Zone)
	}
	if !slices.Equal(fn.Node.Hostnames.Storage, []string(hi.Hostnames.Storage)) {
		diff("hostnames.storage", "node %s has storage hostnames %v in the file but %v in heketi; load does not change them (gluster peers know the node by them)", np.Manage, fn.Node.Hostnames.Storage, []string(hi.Hostnames.Storage))
	}
	if !slices.Equal(fn.Node.Hostnames.Manage, []string(hi.Hostnames.Manage)) {
		diff("hostnames.manage", "node %s has manage hostnames %v in the file but %v in heketi; load does not change them", np.Manage, fn.Node.Hostnames.Manage, []string(hi.Hostnames.Manage))
	}
	if !TagsEqual(fn.Node.Tags, hi.Tags) {
		diff("tags", "node %s has tags %s in the file but %s in heketi; load does not change tags (heketi-cli node settags does)", np.Manage, fmtTags(fn.Node.Tags), fmtTags(hi.Tags))
	}
	if hi.State != "" && hi.State != api.EntryStateOnline {
		diff("", "node %s is %s in heketi", np.Manage, hi.State)
	}
	existing := map[string]*api.DeviceInfoResponse{}
	for i := range hi.DevicesInfo {
		existing[hi.DevicesInfo[i].Name] = &hi.DevicesInfo[i]
	}
	devPlans(existing)
	inFile := map[string]bool{}
	for _, fd := range fn.Devices {
		inFile[fd.Name] = true
	}
	for _, hd := range hi.DevicesInfo {
		if !inFile[hd.Name] {
			p.Differences = append(p.Differences, Difference{Path: path + ".devices", Cluster: hn.cluster, Node: np.Manage, Device: hd.Name,
				Message: fmt.Sprintf("device %s (%s) on %s is in heketi but not in the file; load leaves it", hd.Name, hd.Id, np.Manage)})
		} else if hd.State != "" && hd.State != api.EntryStateOnline {
			p.Differences = append(p.Differences, Difference{Path: path + ".devices", Cluster: hn.cluster, Node: np.Manage, Device: hd.Name,
				Message: fmt.Sprintf("device %s on %s is %s in heketi", hd.Name, np.Manage, hd.State)})
		}
	}
	return np
}

// ManagedTagPrefix marks the heketi tags glusterkube keeps itself (the
// zone tag of package zones, from the Nodes' labels): a file need not
// carry them, so plan does not compare them.
const ManagedTagPrefix = "glusterkube."

// ManagedTag reports a tag key glusterkube keeps itself.
func ManagedTag(key string) bool { return strings.HasPrefix(key, ManagedTagPrefix) }

// TagsEqual compares the tags a file and heketi give an object, leaving
// out the ones glusterkube keeps itself.
func TagsEqual(a, b map[string]string) bool {
	own := func(m map[string]string) map[string]string {
		out := map[string]string{}
		for k, v := range m {
			if !ManagedTag(k) {
				out[k] = v
			}
		}
		return out
	}
	return maps.Equal(own(a), own(b))
}

func fmtTags(t map[string]string) string {
	if len(t) == 0 {
		return "{}"
	}
	keys := make([]string, 0, len(t))
	for k := range t {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + t[k]
	}
	return "{" + strings.Join(parts, ", ") + "}"
}
