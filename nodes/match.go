package nodes

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/glusterkube/glusterkube/topology"
)

// Rule says how a topology node was matched to a Node.
type Rule string

// Matching rules, in the order they are tried.
const (
	ByName          Rule = "name"           // manage hostname == Node name
	ByHostnameLabel Rule = "hostname-label" // manage hostname == kubernetes.io/hostname label
	ByAddress       Rule = "address"        // manage or storage hostname == a Hostname/InternalIP address
)

// hostnameLabel is the well-known label the kubelet sets to its hostname.
const hostnameLabel = corev1.LabelHostname

// Match is one topology node matched to exactly one Node.
type Match struct {
	// Topology names the topology node: its first manage hostname.
	Topology string `json:"topology"`
	// Path locates it in the file, e.g. clusters[0].nodes[2].
	Path string `json:"path"`
	Node string `json:"node"`
	By   Rule   `json:"by"`
	Zone int    `json:"zone"`
}

// Unmatched is a topology node no Node matches.
type Unmatched struct {
	Topology string `json:"topology"`
	Path     string `json:"path"`
	// Hostnames are the names that were looked for.
	Hostnames []string `json:"hostnames"`
}

// Ambiguous is a topology node that matches more than one Node, or a Node
// that more than one topology node matches.
type Ambiguous struct {
	Topology   string   `json:"topology"`
	Path       string   `json:"path"`
	Candidates []string `json:"candidates"`
	Reason     string   `json:"reason"`
}

// Matching is the outcome of matching a topology against the Nodes.
type Matching struct {
	Matches   []Match     `json:"matches"`
	Unmatched []Unmatched `json:"unmatched,omitempty"`
	Ambiguous []Ambiguous `json:"ambiguous,omitempty"`
}

// nodeIndex finds Nodes by name, hostname label and address. Keys are
// lower-cased: host names are case-insensitive.
type nodeIndex struct {
	byName  map[string]string
	byLabel map[string][]string
	byAddr  map[string][]string
}

func newNodeIndex(nodes []corev1.Node) nodeIndex {
	ix := nodeIndex{byName: map[string]string{}, byLabel: map[string][]string{}, byAddr: map[string][]string{}}
	for i := range nodes {
		n := &nodes[i]
		ix.byName[strings.ToLower(n.Name)] = n.Name
		if h := n.Labels[hostnameLabel]; h != "" {
			k := strings.ToLower(h)
			ix.byLabel[k] = appendUnique(ix.byLabel[k], n.Name)
		}
		for _, a := range identityAddresses(n) {
			k := strings.ToLower(a)
			ix.byAddr[k] = appendUnique(ix.byAddr[k], n.Name)
		}
	}
	return ix
}

// identityAddresses are the addresses of a Node that identify its host.
func identityAddresses(n *corev1.Node) []string {
	var out []string
	for _, a := range n.Status.Addresses {
		if (a.Type == corev1.NodeHostName || a.Type == corev1.NodeInternalIP) && a.Address != "" {
			out = append(out, a.Address)
		}
	}
	return out
}

// identities are every name by which a Node may appear in a topology.
func identities(n *corev1.Node) []string {
	ids := []string{strings.ToLower(n.Name)}
	if h := n.Labels[hostnameLabel]; h != "" {
		ids = appendUnique(ids, strings.ToLower(h))
	}
	for _, a := range identityAddresses(n) {
		ids = appendUnique(ids, strings.ToLower(a))
	}
	return ids
}

func appendUnique(s []string, v string) []string {
	if slices.Contains(s, v) {
		return s
	}
	return append(s, v)
}

// lookup returns the distinct Nodes that the given keys select in m.
func lookup(m map[string][]string, keys []string) []string {
	var out []string
	for _, k := range keys {
		for _, n := range m[strings.ToLower(k)] {
			out = appendUnique(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// match finds the Node(s) for one topology node, trying the rules in order
// and stopping at the first rule that finds any candidate.
func (ix nodeIndex) match(h topology.Hostnames) ([]string, Rule) {
	var byName []string
	for _, m := range h.Manage {
		if n, ok := ix.byName[strings.ToLower(m)]; ok {
			byName = appendUnique(byName, n)
		}
	}
	if len(byName) > 0 {
		slices.Sort(byName)
		return byName, ByName
	}
	if c := lookup(ix.byLabel, h.Manage); len(c) > 0 {
		return c, ByHostnameLabel
	}
	if c := lookup(ix.byAddr, append(slices.Clone(h.Manage), h.Storage...)); len(c) > 0 {
		return c, ByAddress
	}
	return nil, ""
}

// topologyName names a topology node in reports.
func topologyName(n topology.Node, path string) string {
	if len(n.Node.Hostnames.Manage) > 0 && n.Node.Hostnames.Manage[0] != "" {
		return n.Node.Hostnames.Manage[0]
	}
	if len(n.Node.Hostnames.Storage) > 0 && n.Node.Hostnames.Storage[0] != "" {
		return n.Node.Hostnames.Storage[0]
	}
	return path
}

// MatchNodes matches every node of topo to the Nodes. A Node claimed by more
// than one topology node is ambiguous for all of them.
func MatchNodes(topo *topology.Topology, nodes []corev1.Node) Matching {
	ix := newNodeIndex(nodes)
	var res Matching
	claimed := map[string][]int{} // Node name -> indexes into res.Matches
	for ci, c := range topo.Clusters {
		for ni, n := range c.Nodes {
			path := fmt.Sprintf("clusters[%d].nodes[%d]", ci, ni)
			name := topologyName(n, path)
			cands, rule := ix.match(n.Node.Hostnames)
			switch {
			case len(cands) == 0:
				res.Unmatched = append(res.Unmatched, Unmatched{
					Topology:  name,
					Path:      path,
					Hostnames: append(slices.Clone(n.Node.Hostnames.Manage), n.Node.Hostnames.Storage...),
				})
			case len(cands) > 1:
				res.Ambiguous = append(res.Ambiguous, Ambiguous{
					Topology:   name,
					Path:       path,
					Candidates: cands,
					Reason:     fmt.Sprintf("its hostnames match %d Nodes by %s", len(cands), rule),
				})
			default:
				claimed[cands[0]] = append(claimed[cands[0]], len(res.Matches))
				res.Matches = append(res.Matches, Match{Topology: name, Path: path, Node: cands[0], By: rule, Zone: n.Node.Zone})
			}
		}
	}
	drop := map[int]bool{}
	for node, idx := range claimed {
		if len(idx) < 2 {
			continue
		}
		var others []string
		for _, i := range idx {
			others = append(others, res.Matches[i].Topology)
		}
		for _, i := range idx {
			m := res.Matches[i]
			drop[i] = true
			res.Ambiguous = append(res.Ambiguous, Ambiguous{
				Topology:   m.Topology,
				Path:       m.Path,
				Candidates: []string{node},
				Reason:     fmt.Sprintf("Node %s is matched by %d topology nodes (%s)", node, len(idx), strings.Join(others, ", ")),
			})
		}
	}
	if len(drop) > 0 {
		kept := res.Matches[:0]
		for i, m := range res.Matches {
			if !drop[i] {
				kept = append(kept, m)
			}
		}
		res.Matches = kept
	}
	slices.SortStableFunc(res.Ambiguous, func(a, b Ambiguous) int { return strings.Compare(a.Path, b.Path) })
	return res
}
