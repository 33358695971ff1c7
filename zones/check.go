package zones

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/heketi/heketi/pkg/glusterfs/api"
	corev1 "k8s.io/api/core/v1"

	"github.com/glusterkube/glusterkube/nodes"
	"github.com/glusterkube/glusterkube/topology"
	"github.com/glusterkube/glusterkube/volume"
)

// Member is one storage node of the topology, seen by heketi and by
// Kubernetes.
type Member struct {
	// Manage is the node's first manage hostname, its identity.
	Manage string `json:"manage"`
	// Path locates it in the topology, e.g. clusters[0].nodes[2].
	Path string `json:"path"`
	// Node is the Kubernetes Node it matches ("" when none or several).
	Node string `json:"node,omitempty"`
	// Zone is that Node's zone label ("" when it has none).
	Zone string `json:"zone,omitempty"`
	// HeketiZone is heketi's zone number for the node; for a node heketi
	// does not hold yet, the topology's.
	HeketiZone int `json:"heketiZone"`
	// HeketiID and Cluster identify the node in heketi, when it is there.
	HeketiID string `json:"heketiId,omitempty"`
	Cluster  string `json:"cluster,omitempty"`
	// Tag is the zone heketi's tag volume.ZoneTag names ("" when none).
	Tag string `json:"tag,omitempty"`
	// Bricks counts the bricks on the node's devices in heketi.
	Bricks int `json:"bricks"`
}

// InHeketi reports whether heketi holds the node.
func (m *Member) InHeketi() bool { return m.HeketiID != "" }

// Kind is a kind of disagreement between heketi's zones and the Nodes'.
type Kind string

// Kinds of Problem.
const (
	// Shared: one heketi zone holds storage nodes of several Kubernetes
	// zones; strict zone checking may put two bricks of a replica set in
	// one Kubernetes zone.
	Shared Kind = "shared"
	// Split: one Kubernetes zone is spread over several heketi zones;
	// strict zone checking may count it twice.
	Split Kind = "split"
	// NoZone: storage nodes whose Node has no zone label, while others
	// have one.
	NoZone Kind = "no-zone"
	// NoNode: storage nodes that match no Node, so their zone is unknown.
	NoNode Kind = "no-node"
	// Tags: heketi's zone tags (volume.ZoneTag), which local placement
	// selects on, are missing or out of step with the Nodes.
	Tags Kind = "tags"
)

// Problem is one disagreement, in words, with the storage nodes involved.
type Problem struct {
	Kind    Kind     `json:"kind"`
	Message string   `json:"message"`
	Nodes   []string `json:"nodes"`
	// Paths locate the nodes in the topology.
	Paths []string `json:"paths,omitempty"`
}

// Report is what Check found.
type Report struct {
	Members  []Member  `json:"members"`
	Problems []Problem `json:"problems"`
	// Numbers are the heketi zone numbers the Kubernetes zones get when
	// heketi follows the Nodes: each zone keeps the number most of its
	// nodes already have in heketi, when no other zone claims it; the
	// others get numbers heketi does not use yet.
	Numbers map[string]int `json:"numbers"`
}

// Agrees reports whether heketi's zone numbers agree with the Nodes' zones
// (no zone shared or split): what strict zone checking needs to spread
// replica sets over Kubernetes zones.
func (r *Report) Agrees() bool {
	for _, p := range r.Problems {
		if p.Kind == Shared || p.Kind == Split {
			return false
		}
	}
	return true
}

// Check matches the topology's nodes to the Nodes (package nodes' rules)
// and compares heketi's zone numbers (cur; the topology's own for nodes
// heketi does not hold) with the Nodes' zone labels. With topo nil, the
// topology is heketi's own. It makes no call.
func Check(topo *topology.Topology, cur *api.TopologyInfoResponse, kubeNodes []corev1.Node) *Report {
	if topo == nil {
		topo = topology.Export(cur)
	}
	inHeketi := map[string]*api.NodeInfoResponse{}
	clusterOf := map[string]string{}
	if cur != nil {
		for ci := range cur.ClusterList {
			c := &cur.ClusterList[ci]
			for ni := range c.Nodes {
				n := &c.Nodes[ni]
				if len(n.Hostnames.Manage) > 0 {
					inHeketi[n.Hostnames.Manage[0]] = n
					clusterOf[n.Id] = c.Id
				}
			}
		}
	}
	byName := map[string]*corev1.Node{}
	for i := range kubeNodes {
		byName[kubeNodes[i].Name] = &kubeNodes[i]
	}
	matched := map[string]string{} // path -> Node
	m := nodes.MatchNodes(topo, kubeNodes)
	for _, mt := range m.Matches {
		matched[mt.Path] = mt.Node
	}

	r := &Report{Members: []Member{}, Problems: []Problem{}, Numbers: map[string]int{}}
	for ci, c := range topo.Clusters {
		for ni, n := range c.Nodes {
			path := fmt.Sprintf("clusters[%d].nodes[%d]", ci, ni)
			mem := Member{Path: path, HeketiZone: n.Node.Zone}
			if len(n.Node.Hostnames.Manage) > 0 {
				mem.Manage = n.Node.Hostnames.Manage[0]
			}
			if node := matched[path]; node != "" {
				mem.Node = node
				mem.Zone, _ = Of(byName[node])
			}
			if hn := inHeketi[mem.Manage]; hn != nil && mem.Manage != "" {
				mem.HeketiID, mem.Cluster, mem.HeketiZone = hn.Id, clusterOf[hn.Id], hn.Zone
				if v := hn.Tags[volume.ZoneTag]; v != "" {
					mem.Tag = volume.ZoneFromTag(v)
				}
				for _, d := range hn.DevicesInfo {
					mem.Bricks += len(d.Bricks)
				}
			}
			r.Members = append(r.Members, mem)
		}
	}
	r.Numbers = numbers(r.Members, cur)
	r.Problems = problems(r.Members)
	return r
}

// numbers assigns heketi zone numbers to the Kubernetes zones, keeping
// what heketi has where it can (fewest nodes to re-add).
func numbers(members []Member, cur *api.TopologyInfoResponse) map[string]int {
	type pair struct {
		zone string
		num  int
	}
	count := map[pair]int{}
	var zones []string
	for _, m := range members {
		if m.Zone == "" {
			continue
		}
		if !slices.Contains(zones, m.Zone) {
			zones = append(zones, m.Zone)
		}
		if m.InHeketi() {
			count[pair{m.Zone, m.HeketiZone}]++
		}
	}
	sort.Strings(zones)
	pairs := slices.Collect(maps.Keys(count))
	sort.Slice(pairs, func(i, j int) bool {
		a, b := pairs[i], pairs[j]
		if count[a] != count[b] {
			return count[a] > count[b]
		}
		if a.zone != b.zone {
			return a.zone < b.zone
		}
		return a.num < b.num
	})
	out := map[string]int{}
	taken := map[int]bool{}
	for _, p := range pairs {
		if _, done := out[p.zone]; done || taken[p.num] {
			continue
		}
		out[p.zone], taken[p.num] = p.num, true
	}
	// New numbers avoid every number heketi uses, so no node that is left
	// alone (unmatched, in another cluster) ends up in a zone by accident.
	if cur != nil {
		for _, c := range cur.ClusterList {
			for _, n := range c.Nodes {
				taken[n.Zone] = true
			}
		}
	}
	next := 1
	for _, z := range zones {
		if _, done := out[z]; done {
			continue
		}
		for taken[next] {
			next++
		}
		out[z], taken[next] = next, true
	}
	return out
}

func problems(members []Member) []Problem {
	out := []Problem{}
	if !slices.ContainsFunc(members, func(m Member) bool { return m.Zone != "" }) {
		return out // no storage node's Node has a zone label
	}
	// Shared: one heketi zone, several Kubernetes zones.
	byNum := map[int]map[string][]Member{}
	byZone := map[string]map[int][]Member{}
	for _, m := range members {
		if m.Zone == "" {
			continue
		}
		if byNum[m.HeketiZone] == nil {
			byNum[m.HeketiZone] = map[string][]Member{}
		}
		byNum[m.HeketiZone][m.Zone] = append(byNum[m.HeketiZone][m.Zone], m)
		if byZone[m.Zone] == nil {
			byZone[m.Zone] = map[int][]Member{}
		}
		byZone[m.Zone][m.HeketiZone] = append(byZone[m.Zone][m.HeketiZone], m)
	}
	for _, num := range slices.Sorted(maps.Keys(byNum)) {
		zs := byNum[num]
		if len(zs) < 2 {
			continue
		}
		var parts []string
		var involved []Member
		for _, z := range slices.Sorted(maps.Keys(zs)) {
			parts = append(parts, fmt.Sprintf("%s (%s)", z, names(zs[z])))
			involved = append(involved, zs[z]...)
		}
		out = append(out, problem(Shared, involved, "heketi zone %d holds storage nodes of %d Kubernetes zones: %s; heketi takes them for one zone, so a replica set may keep two bricks in one Kubernetes zone, or fail to spread", num, len(zs), strings.Join(parts, ", ")))
	}
	for _, z := range slices.Sorted(maps.Keys(byZone)) {
		nums := byZone[z]
		if len(nums) < 2 {
			continue
		}
		var parts []string
		var involved []Member
		for _, num := range slices.Sorted(maps.Keys(nums)) {
			parts = append(parts, fmt.Sprintf("%d (%s)", num, names(nums[num])))
			involved = append(involved, nums[num]...)
		}
		out = append(out, problem(Split, involved, "Kubernetes zone %s is split over %d heketi zones: %s; heketi takes them for different zones, so a replica set may put two bricks in %s", z, len(nums), strings.Join(parts, ", "), z))
	}
	var noZone, noNode, untagged, stale []Member
	for _, m := range members {
		switch {
		case m.Node == "":
			noNode = append(noNode, m)
		case m.Zone == "":
			noZone = append(noZone, m)
		}
		if m.InHeketi() && m.Tag != m.Zone {
			if m.Zone == "" {
				stale = append(stale, m)
			} else {
				untagged = append(untagged, m)
			}
		}
	}
	if len(noZone) > 0 {
		out = append(out, problem(NoZone, noZone, "%s no zone label (%s or %s), while other storage nodes have one: %s", count(len(noZone), "storage node's Node has", "storage nodes' Nodes have"), LabelZone, LabelZoneBeta, names(noZone)))
	}
	if len(noNode) > 0 {
		out = append(out, problem(NoNode, noNode, "%s no Kubernetes Node, so %s zone is unknown: %s", count(len(noNode), "storage node matches", "storage nodes match"), pick(len(noNode), "its", "their"), names(noNode)))
	}
	if len(untagged) > 0 {
		out = append(out, problem(Tags, untagged, "%s in heketi without the tag %s naming %s Kubernetes zone, which placement: local selects on: %s", count(len(untagged), "storage node is", "storage nodes are"), volume.ZoneTag, pick(len(untagged), "its", "their"), tagNames(untagged)))
	}
	if len(stale) > 0 {
		out = append(out, problem(Tags, stale, "%s a zone tag (%s) in heketi but no zone in Kubernetes: %s", count(len(stale), "storage node has", "storage nodes have"), volume.ZoneTag, tagNames(stale)))
	}
	return out
}

func problem(k Kind, ms []Member, format string, args ...any) Problem {
	p := Problem{Kind: k, Message: fmt.Sprintf(format, args...), Nodes: []string{}}
	for _, m := range ms {
		p.Nodes = append(p.Nodes, m.Manage)
		p.Paths = append(p.Paths, m.Path)
	}
	return p
}

func names(ms []Member) string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Manage
	}
	return strings.Join(out, ", ")
}

func tagNames(ms []Member) string {
	out := make([]string, len(ms))
	for i, m := range ms {
		switch {
		case m.Tag == "":
			out[i] = m.Manage + " (none, want " + m.Zone + ")"
		case m.Zone == "":
			out[i] = m.Manage + " (" + m.Tag + ")"
		default:
			out[i] = m.Manage + " (" + m.Tag + ", want " + m.Zone + ")"
		}
	}
	return strings.Join(out, ", ")
}

func count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

func pick(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
