package volume

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/klog/v2"

	"github.com/glusterkube/glusterkube/internal/heketi"
	"github.com/glusterkube/glusterkube/internal/workers"
)

// volumeRef is what the index knows of one heketi volume.
type volumeRef struct {
	ID, Cluster string
	GID         int64
}

// index is the service's view of one heketi server: its volumes by name
// and its nodes' storage hosts. It is built from heketi's clusters,
// volumes and nodes the first time the server is used (so after a restart
// the service knows every volume an earlier run created) and kept current
// as volumes are created and deleted. Heketi has no lookup by name, and
// names are unique per cluster only, so this index is what makes a create
// idempotent across clusters without reading every volume per request.
type index struct {
	url string

	mu       sync.Mutex
	built    bool
	building chan struct{}
	byName   map[string][]volumeRef
	hosts    map[string]string // node id -> storage host
	clusters []string          // in heketi's order, which is its placement order
	// nodes are heketi's nodes as placement sees them (zones, tags,
	// usable), read at nodesAt; nodesMu serialises their re-reads.
	nodes   []zoneNode
	nodesAt time.Time
	nodesMu sync.Mutex

	// catchUpMu serialises catch-ups; caughtUpAt is when the last one
	// that succeeded began.
	catchUpMu  sync.Mutex
	caughtUpAt time.Time

	// uncertain holds names whose create (or clone) had an unknown
	// outcome: until the volume is found, a definite failure of a later
	// attempt does not mean that no volume exists.
	uncertain sync.Map
}

// ensure builds the index if needed. Concurrent callers wait for one build.
func (s *index) ensure(ctx context.Context, h Heketi, gids *gidTable) error {
	for {
		s.mu.Lock()
		if s.built {
			s.mu.Unlock()
			return nil
		}
		if ch := s.building; ch != nil {
			s.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		ch := make(chan struct{})
		s.building = ch
		s.mu.Unlock()

		err := s.build(ctx, h, gids)
		s.mu.Lock()
		s.building = nil
		s.built = err == nil
		s.mu.Unlock()
		close(ch)
		return err
	}
}

// indexParallel bounds the concurrent reads of an index build; the
// client's inflight cap applies on top.
const indexParallel = 8

// build reads every cluster, volume and node. heketi has no bulk read (the
// go-client's TopologyInfo is the same calls, one after another), so the
// per-volume reads run in parallel.
func (s *index) build(ctx context.Context, h Heketi, gids *gidTable) error {
	fail := func(err error) error { return fmt.Errorf("list volumes of heketi %s: %w", s.url, err) }
	cl, err := h.ClusterList(ctx)
	if err != nil {
		return fail(err)
	}
	var volIDs []string
	var nodeIDs []clusterNode
	for _, id := range cl.Clusters {
		ci, err := h.ClusterInfo(ctx, id)
		if heketi.IsNotFound(err) {
			continue
		} else if err != nil {
			return fail(err)
		}
		volIDs = append(volIDs, ci.Volumes...)
		for _, n := range ci.Nodes {
			nodeIDs = append(nodeIDs, clusterNode{cluster: id, id: n})
		}
	}
	byName := map[string][]volumeRef{}
	var mu sync.Mutex
	err = forEach(ctx, volIDs, func(ctx context.Context, id string) error {
		v, err := h.VolumeInfo(ctx, id)
		if heketi.IsNotFound(err) {
			return nil // deleted meanwhile
		} else if err != nil {
			return err
		}
		mu.Lock()
		byName[v.Name] = append(byName[v.Name], volumeRef{ID: v.Id, Cluster: v.Cluster, GID: v.Gid})
		mu.Unlock()
		if v.Gid > 0 {
			gids.Reserve(v.Name, int(v.Gid))
		}
		return nil
	})
	if err != nil {
		return fail(err)
	}
	hosts, nodes, err := readNodes(ctx, h, nodeIDs)
	if err != nil {
		return fail(err)
	}
	s.mu.Lock()
	s.byName, s.hosts = byName, hosts
	s.clusters = append([]string(nil), cl.Clusters...)
	s.mu.Unlock()
	s.nodesMu.Lock()
	s.nodes, s.nodesAt = nodes, time.Now()
	s.nodesMu.Unlock()
	klog.FromContext(ctx).V(2).Info("Indexed heketi volumes", "heketi", s.url, "volumes", len(volIDs), "nodes", len(hosts))
	return nil
}

// catchUp indexes the volumes heketi lists that the index does not know:
// those another process (a second provisioner, the CSI controller, an
// operator's heketi-cli) created since the index was built, so that their
// GIDs are taken before this process gives one out. One list call, and one
// read per unknown volume. Concurrent callers share a catch-up that began
// after they asked. A volume whose create is still running is not listed
// by heketi yet: two processes creating at the same moment can still pick
// one GID (give their classes separate gidMin..gidMax ranges to rule it
// out).
func (s *index) catchUp(ctx context.Context, h Heketi, gids *gidTable) error {
	asked := time.Now()
	s.catchUpMu.Lock()
	defer s.catchUpMu.Unlock()
	if s.caughtUpAt.After(asked) {
		return nil
	}
	began := time.Now()
	list, err := h.VolumeList(ctx)
	if err != nil {
		return fmt.Errorf("list volumes of heketi %s: %w", s.url, err)
	}
	s.mu.Lock()
	known := map[string]bool{}
	for _, refs := range s.byName {
		for _, r := range refs {
			known[r.ID] = true
		}
	}
	s.mu.Unlock()
	var unknown []string
	for _, id := range list.Volumes {
		if !known[id] {
			unknown = append(unknown, id)
		}
	}
	err = forEach(ctx, unknown, func(ctx context.Context, id string) error {
		v, err := h.VolumeInfo(ctx, id)
		if heketi.IsNotFound(err) {
			return nil // deleted meanwhile
		} else if err != nil {
			return err
		}
		s.add(v.Name, volumeRef{ID: v.Id, Cluster: v.Cluster, GID: v.Gid})
		if v.Gid > 0 {
			gids.Reserve(v.Name, int(v.Gid))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("read volumes of heketi %s: %w", s.url, err)
	}
	if len(unknown) > 0 {
		klog.FromContext(ctx).V(2).Info("Indexed heketi volumes made elsewhere", "heketi", s.url, "volumes", len(unknown))
	}
	s.caughtUpAt = began
	return nil
}

// clusterNode is a heketi node id and its cluster.
type clusterNode struct{ cluster, id string }

// readNodes reads heketi's nodes: their storage hosts and what placement
// needs of them.
func readNodes(ctx context.Context, h Heketi, ids []clusterNode) (map[string]string, []zoneNode, error) {
	hosts := map[string]string{}
	byID := map[string]string{}
	rank := map[string]int{}
	plain := make([]string, len(ids))
	for i, n := range ids {
		plain[i] = n.id
		byID[n.id] = n.cluster
		if _, ok := rank[n.cluster]; !ok {
			rank[n.cluster] = len(rank)
		}
	}
	var mu sync.Mutex
	var nodes []zoneNode
	err := forEach(ctx, plain, func(ctx context.Context, id string) error {
		n, err := h.NodeInfo(ctx, id)
		if heketi.IsNotFound(err) {
			return nil
		} else if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		if len(n.Hostnames.Storage) > 0 {
			hosts[id] = n.Hostnames.Storage[0]
		}
		nodes = append(nodes, zoneNodeOf(byID[id], n))
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	// Heketi's cluster order (its placement order), then node ids.
	slices.SortFunc(nodes, func(a, b zoneNode) int {
		if c := rank[a.Cluster] - rank[b.Cluster]; c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return hosts, nodes, nil
}

// nodeInfoTTL is how long placement trusts what it read of heketi's
// nodes: zone tags change when the Nodes' labels do, and nodes come and go,
// without the volume service hearing of it.
const nodeInfoTTL = 30 * time.Second

// zoneNodes returns heketi's nodes as placement sees them, read again when
// older than nodeInfoTTL or when fresh is asked; read reports that they
// were read by this call.
func (s *index) zoneNodes(ctx context.Context, h Heketi, fresh bool) (nodes []zoneNode, read bool, err error) {
	s.nodesMu.Lock()
	defer s.nodesMu.Unlock()
	if !fresh && !s.nodesAt.IsZero() && time.Since(s.nodesAt) < nodeInfoTTL {
		return s.nodes, false, nil
	}
	cl, err := h.ClusterList(ctx)
	if err != nil {
		return nil, false, err
	}
	var ids []clusterNode
	for _, id := range cl.Clusters {
		ci, err := h.ClusterInfo(ctx, id)
		if heketi.IsNotFound(err) {
			continue
		} else if err != nil {
			return nil, false, err
		}
		for _, n := range ci.Nodes {
			ids = append(ids, clusterNode{cluster: id, id: n})
		}
	}
	hosts, nodes, err := readNodes(ctx, h, ids)
	if err != nil {
		return nil, false, err
	}
	s.nodes, s.nodesAt = nodes, time.Now()
	s.mu.Lock()
	for id, host := range hosts {
		if s.hosts == nil {
			s.hosts = map[string]string{}
		}
		s.hosts[id] = host
	}
	s.mu.Unlock()
	return nodes, true, nil
}

// forEach runs fn on every id, indexParallel at a time, and returns the
// first error (cancelling the rest).
func forEach(ctx context.Context, ids []string, fn func(context.Context, string) error) error {
	return workers.ForEach(ctx, len(ids), indexParallel, func(ctx context.Context, i int) error { return fn(ctx, ids[i]) })
}

// invalidate makes the next ensure rebuild the index, e.g. after a create
// whose outcome is unknown.
func (s *index) invalidate() {
	s.mu.Lock()
	s.built = false
	s.mu.Unlock()
}

// clusterIDs returns heketi's clusters as of the last build.
func (s *index) clusterIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.clusters...)
}

func (s *index) lookup(name string) (volumeRef, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	refs := s.byName[name]
	if len(refs) == 0 {
		return volumeRef{}, false
	}
	return refs[0], true
}

func (s *index) add(name string, ref volumeRef) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byName == nil {
		s.byName = map[string][]volumeRef{}
	}
	for _, r := range s.byName[name] {
		if r.ID == ref.ID {
			return
		}
	}
	s.byName[name] = append(s.byName[name], ref)
}

func (s *index) remove(name, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	refs := s.byName[name]
	for i, r := range refs {
		if r.ID == id {
			refs = append(refs[:i:i], refs[i+1:]...)
			break
		}
	}
	if len(refs) == 0 {
		delete(s.byName, name)
	} else {
		s.byName[name] = refs
	}
}

// nameOf returns the name of the volume with heketi id id, if indexed.
func (s *index) nameOf(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, refs := range s.byName {
		for _, r := range refs {
			if r.ID == id {
				return name
			}
		}
	}
	return ""
}

// storageHost returns a node's storage host, if known.
func (s *index) storageHost(nodeID string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, ok := s.hosts[nodeID]
	return h, ok
}

// indexes holds one index per heketi URL.
type indexes struct {
	mu sync.Mutex
	m  map[string]*index
}

func (ss *indexes) get(url string) *index {
	url = strings.TrimRight(url, "/")
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.m == nil {
		ss.m = map[string]*index{}
	}
	s, ok := ss.m[url]
	if !ok {
		s = &index{url: url}
		ss.m[url] = s
	}
	return s
}

// isUncertain reports whether an earlier create of name had an unknown
// outcome.
func (s *index) isUncertain(name string) bool {
	_, ok := s.uncertain.Load(name)
	return ok
}
