package volume

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/heketi/heketi/pkg/glusterfs/api"
	"k8s.io/klog/v2"
)

// SettingZonesFromNodes names the setting that lets glusterkube write
// heketi's zones (zone numbers and ZoneTag) from the Nodes' zone labels;
// the command line maps it to its flags.
const SettingZonesFromNodes = "heketi zones from the Nodes' zone labels"

// Topology says where a volume may go and where it should, in Kubernetes
// zone names (topology.kubernetes.io/zone values).
type Topology struct {
	// Allowed limits the bricks to these zones (a StorageClass's
	// allowedTopologies, CSI's requisite topologies); nil allows every
	// zone.
	Allowed []string
	// Preferred lists zones, most wanted first: the zone of the node the
	// scheduler picked for the pod (WaitForFirstConsumer), CSI's preferred
	// topologies. A local volume goes to the first.
	Preferred []string
}

// Placement is how Create places a volume's bricks.
type Placement struct {
	// Mode is PlacementSpread, PlacementLocal, or "" (heketi places the
	// bricks as it always has: the nodes carry no zones, or the class
	// leaves placement to its own volumeoptions, or the storage spans
	// fewer zones than a replica set has bricks and nothing asks for
	// zones).
	Mode string
	// Zone is where a local volume goes.
	Zone string
	// Zones are the zones a spread volume's bricks may use.
	Zones []string
	// Clusters are the candidate heketi clusters where the placement
	// fits, in order; nil: no restriction.
	Clusters []string
	// Options are the heketi volume options that make heketi place the
	// bricks so (OptionZoneChecking, OptionDeviceTagMatch).
	Options []string
}

// PlacementError is a volume that cannot be placed as its class and
// claim ask: too few zones to spread, too few storage nodes in the zone
// of a local volume, no zone chosen. Nothing was asked of heketi.
type PlacementError struct {
	Class string
	// Msg says what is missing, with the zones and counts.
	Msg string
}

func (e *PlacementError) Error() string {
	class := "StorageClass"
	if e.Class != "" {
		class = fmt.Sprintf("StorageClass %q", e.Class)
	}
	return class + ": " + e.Msg
}

// IsPlacement reports a volume that cannot be placed in the zones asked
// for (CSI: ResourceExhausted, as the spec asks when a volume cannot be
// made in its accessible topology).
func IsPlacement(err error) bool {
	var pe *PlacementError
	return errors.As(err, &pe)
}

// zoneNode is what placement knows of one heketi node.
type zoneNode struct {
	ID, Cluster string
	// HeketiZone is heketi's zone number, which strict zone checking
	// keeps apart.
	HeketiZone int
	// Zone is the Kubernetes zone from ZoneTag; "" when untagged.
	Zone string
	// Usable: online with at least one online device.
	Usable bool
}

func zoneNodeOf(cluster string, n *api.NodeInfoResponse) zoneNode {
	zn := zoneNode{ID: n.Id, Cluster: cluster, HeketiZone: n.Zone}
	if v := n.Tags[ZoneTag]; v != "" {
		zn.Zone = ZoneFromTag(v)
	}
	if n.State == "" || n.State == api.EntryStateOnline {
		for _, d := range n.DevicesInfo {
			if d.State == "" || d.State == api.EntryStateOnline {
				zn.Usable = true
				break
			}
		}
	}
	return zn
}

// SetSize is how many bricks a replica (or disperse) set of the durability
// has: the number of nodes, and of zones to spread, one set needs.
func SetSize(d api.VolumeDurabilityInfo) int {
	switch d.Type {
	case api.DurabilityReplicate:
		return max(d.Replicate.Replica, 1)
	case api.DurabilityEC:
		return d.Disperse.Data + d.Disperse.Redundancy
	}
	return 1
}

func setWords(d api.VolumeDurabilityInfo) string {
	switch d.Type {
	case api.DurabilityReplicate:
		return fmt.Sprintf("a replica-%d volume", SetSize(d))
	case api.DurabilityEC:
		return fmt.Sprintf("a disperse %d+%d volume", d.Disperse.Data, d.Disperse.Redundancy)
	}
	return "a distributed volume"
}

// Place decides how a volume of the class goes over the zones (see
// Decide), reading heketi's nodes when what the service knows of them is
// older than nodeInfoTTL — and once more before it reports that the
// volume does not fit, so that a node tagged a moment ago counts.
func (sv *Server) Place(ctx context.Context, class string, cfg *ClassConfig, topo Topology) (*Placement, error) {
	nodes, fresh, err := sv.idx.zoneNodes(ctx, sv.h, false)
	if err != nil {
		return nil, wrapHeketi(sv.cr, err, "read heketi's nodes")
	}
	pl, err := Decide(class, cfg, topo, nodes)
	if err != nil && IsPlacement(err) && !fresh {
		if nodes, _, rerr := sv.idx.zoneNodes(ctx, sv.h, true); rerr == nil {
			pl, err = Decide(class, cfg, topo, nodes)
		}
	}
	if err == nil && pl.Mode != "" {
		klog.FromContext(ctx).V(2).Info("Placing volume", "placement", pl.Mode, "zone", pl.Zone, "zones", pl.Zones, "clusters", pl.Clusters)
	}
	return pl, err
}

// Decide places a volume of the class over the zones of heketi's nodes:
//
//   - placement spread: every replica set in SetSize different zones
//     (heketi's strict zone checking), within topo.Allowed;
//   - placement local: every brick in one zone, topo.Preferred[0] or the
//     one zone topo.Allowed allows, selected by ZoneTag;
//   - no placement (the default): local when exactly one zone is
//     allowed; spread when the usable nodes span at least SetSize of the
//     allowed zones; else local when a zone is preferred; else, with no
//     zone restriction, heketi's own placement.
//
// Nodes without ZoneTag carry no Kubernetes zone: when none has it, the
// default is heketi's own placement and an explicit placement is an error
// saying how to have the tags written. A class whose volumeoptions set
// heketi's placement options itself is left to them.
func Decide(class string, cfg *ClassConfig, topo Topology, all []zoneNode) (*Placement, error) {
	fail := func(format string, args ...any) error {
		return &PlacementError{Class: class, Msg: fmt.Sprintf(format, args...)}
	}
	if cfg.ownPlacement {
		return &Placement{}, nil
	}
	candidates := map[string]bool{}
	for _, c := range cfg.Clusters {
		candidates[c] = true
	}
	var nodes []zoneNode
	aware := false
	for _, n := range all {
		if len(candidates) > 0 && !candidates[n.Cluster] {
			continue
		}
		if n.Usable {
			nodes = append(nodes, n)
			aware = aware || n.Zone != ""
		}
	}
	need := SetSize(cfg.Durability)
	what := setWords(cfg.Durability)
	if !aware {
		if cfg.Placement == "" {
			return &Placement{}, nil
		}
		return nil, fail("placement: %s needs the Kubernetes zones of heketi's storage nodes, and none of them carries one (heketi node tag %s): have glusterkube write %s first", cfg.Placement, ZoneTag, SettingZonesFromNodes)
	}
	allowed := map[string]bool{}
	for _, z := range topo.Allowed {
		allowed[z] = true
	}
	isAllowed := func(z string) bool { return topo.Allowed == nil || allowed[z] }
	allowedWords := ""
	if topo.Allowed != nil {
		zs := slices.Sorted(maps.Keys(allowed))
		allowedWords = fmt.Sprintf(" of the zones allowed (%s)", strings.Join(zs, ", "))
	}

	// Per cluster: usable nodes by zone, and the heketi zones of each zone.
	type clusterZones struct {
		id       string
		count    map[string]int
		heketi   map[string]map[int]bool
		untagged int
	}
	var order []string
	byCluster := map[string]*clusterZones{}
	for _, n := range nodes {
		cz := byCluster[n.Cluster]
		if cz == nil {
			cz = &clusterZones{id: n.Cluster, count: map[string]int{}, heketi: map[string]map[int]bool{}}
			byCluster[n.Cluster] = cz
			order = append(order, n.Cluster)
		}
		if n.Zone == "" {
			cz.untagged++
			continue
		}
		cz.count[n.Zone]++
		if cz.heketi[n.Zone] == nil {
			cz.heketi[n.Zone] = map[int]bool{}
		}
		cz.heketi[n.Zone][n.HeketiZone] = true
	}
	if len(cfg.Clusters) > 0 {
		order = order[:0]
		for _, c := range cfg.Clusters {
			if byCluster[c] != nil {
				order = append(order, c)
			}
		}
	}
	inCluster := func(id string) string {
		if len(order) > 1 {
			return " in heketi cluster " + id
		}
		return ""
	}
	// eligible are the allowed zones with usable nodes in a cluster, sorted.
	eligible := func(cz *clusterZones) []string {
		var out []string
		for z := range cz.count {
			if isAllowed(z) {
				out = append(out, z)
			}
		}
		sort.Strings(out)
		return out
	}
	counts := func(cz *clusterZones, zones []string) string {
		parts := make([]string, len(zones))
		for i, z := range zones {
			parts[i] = fmt.Sprintf("%s: %s", z, plural(cz.count[z], "node"))
		}
		return strings.Join(parts, ", ")
	}

	mode := cfg.Placement
	localZone := ""
	if len(topo.Preferred) > 0 {
		localZone = topo.Preferred[0]
	} else if len(allowed) == 1 {
		localZone = topo.Allowed[0]
	}
	if mode == "" {
		spreadable := false
		for _, c := range order {
			cz := byCluster[c]
			excluded := 0
			for z := range cz.count {
				if !isAllowed(z) {
					excluded++
				}
			}
			if len(eligible(cz)) >= need && excluded <= 1 {
				spreadable = true
				break
			}
		}
		switch {
		case len(allowed) == 1:
			mode = PlacementLocal
		case spreadable:
			mode = PlacementSpread
		case localZone != "":
			mode = PlacementLocal
		case topo.Allowed == nil:
			// Fewer zones than a set has bricks and nothing asks for a
			// zone: heketi places the bricks as it always has.
			return &Placement{}, nil
		default:
			return nil, fail("the storage nodes span fewer of the allowed zones (%s) than %s needs to spread (%d), and no single zone is chosen: set placement: %s with volumeBindingMode: WaitForFirstConsumer, or allow one zone", strings.Join(slices.Sorted(maps.Keys(allowed)), ", "), what, need, PlacementLocal)
		}
	}

	switch mode {
	case PlacementLocal:
		if localZone == "" {
			return nil, fail("placement: local needs one zone for the volume, and none is chosen: use volumeBindingMode: WaitForFirstConsumer (the volume goes to the zone of the pod's node) or allowedTopologies naming one zone%s", func() string {
				if topo.Allowed != nil {
					return fmt.Sprintf(" (%d are allowed)", len(allowed))
				}
				return ""
			}())
		}
		if !isAllowed(localZone) {
			return nil, fail("placement: local: zone %s, where the pod's node is, is not one%s", localZone, allowedWords)
		}
		best := ""
		var fits []string
		for _, c := range order {
			n := byCluster[c].count[localZone]
			if n >= need {
				fits = append(fits, c)
			}
			if best == "" || n > byCluster[best].count[localZone] {
				best = c
			}
		}
		if len(fits) == 0 {
			have := 0
			if best != "" {
				have = byCluster[best].count[localZone]
			}
			return nil, fail("placement: local: zone %s has %s%s, and %s needs %d (each brick of a replica set on its own node)", localZone, plural(have, "storage node"), inCluster(best), what, need)
		}
		return &Placement{Mode: PlacementLocal, Zone: localZone, Clusters: restrict(cfg, order, fits),
			Options: []string{OptionZoneChecking + " none", OptionDeviceTagMatch + " " + localZoneRule(localZone)}}, nil

	case PlacementSpread:
		var fits []string
		var zones []string
		var rule string
		bestCluster, bestN := "", -1
		var lastErr error
		for _, c := range order {
			cz := byCluster[c]
			el := eligible(cz)
			if len(el) > bestN {
				bestCluster, bestN = c, len(el)
			}
			if len(el) < need {
				continue
			}
			heketiZones := map[int]bool{}
			for _, z := range el {
				for hz := range cz.heketi[z] {
					heketiZones[hz] = true
				}
			}
			if len(heketiZones) < need {
				lastErr = fail("placement: spread: the storage nodes of zones %s%s are in %s, and heketi's strict zone checking needs %d for %s: heketi's zone numbers disagree with the Nodes' zones; have glusterkube write %s", strings.Join(el, ", "), inCluster(c), plural(len(heketiZones), "heketi zone"), need, what, SettingZonesFromNodes)
				continue
			}
			// One tag rule per volume: it can leave out one zone, no more.
			var excluded []string
			for z := range cz.count {
				if !isAllowed(z) {
					excluded = append(excluded, z)
				}
			}
			sort.Strings(excluded)
			r := ""
			switch len(excluded) {
			case 0:
			case 1:
				r = ZoneTag + "!=" + ZoneTagValue(excluded[0])
			default:
				lastErr = fail("placement: spread: the allowed zones leave out %s zones with storage nodes (%s)%s, and heketi takes one tag rule per volume, which can leave out one zone: allow more zones, or use placement: %s", fmt.Sprint(len(excluded)), strings.Join(excluded, ", "), inCluster(c), PlacementLocal)
				continue
			}
			if len(fits) > 0 && r != rule {
				continue // one rule for every candidate cluster
			}
			fits = append(fits, c)
			if zones == nil {
				zones, rule = el, r
			}
		}
		if len(fits) == 0 {
			if lastErr != nil {
				return nil, lastErr
			}
			cz := byCluster[bestCluster]
			el := []string{}
			if cz != nil {
				el = eligible(cz)
			}
			found := "none has storage nodes"
			if len(el) > 0 {
				found = fmt.Sprintf("only %s %s them (%s)", plural(len(el), "zone"), have(len(el)), counts(cz, el))
			}
			return nil, fail("placement: spread: %s needs storage nodes in %d zones%s, and %s%s", what, need, allowedWords, found, inCluster(bestCluster))
		}
		opts := []string{OptionZoneChecking + " strict"}
		if rule != "" {
			opts = append(opts, OptionDeviceTagMatch+" "+rule)
		}
		return &Placement{Mode: PlacementSpread, Zones: zones, Clusters: restrict(cfg, order, fits), Options: opts}, nil
	}
	return nil, fail("unknown placement %q", mode)
}

// restrict returns the clusters to try: nil when every candidate fits
// and the class names none (heketi's own order, and clusters made since),
// else the fitting ones in order.
func restrict(cfg *ClassConfig, order, fits []string) []string {
	if len(cfg.Clusters) == 0 && len(fits) == len(order) {
		return nil
	}
	return fits
}

func have(n int) string {
	if n == 1 {
		return "has"
	}
	return "have"
}

func plural(n int, one string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %ss", n, one)
}
