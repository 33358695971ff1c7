package provisioner

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"sync"

	"github.com/heketi/heketi/pkg/glusterfs/api"

	"github.com/glusterkube/glusterkube/internal/heketi"
)

// fakeHeketi is an in-memory heketi with one cluster of three nodes, for
// unit tests that need failures the real server cannot be made to give.
type fakeHeketi struct {
	mu      sync.Mutex
	vols    map[string]*api.VolumeInfoResponse
	next    int
	calls   map[string]int
	creates []*api.VolumeCreateRequest

	// failCreate, when set, decides the outcome of a create: return
	// (keep, err) — keep means the volume is made even though err is
	// returned (a timed-out call whose operation went on).
	failCreate func(req *api.VolumeCreateRequest) (keep bool, err error)
	failInfo   func(id string) error
	failTopo   func() error
	// pending are heketi's pending operations, by id.
	pending map[string]*api.PendingOperationDetails
}

func (f *fakeHeketi) PendingOperationList(context.Context) (*api.PendingOperationListResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["pending_operation_list"]++
	out := &api.PendingOperationListResponse{PendingOperations: []api.PendingOperationInfo{}}
	for _, op := range f.pending {
		out.PendingOperations = append(out.PendingOperations, op.PendingOperationInfo)
	}
	return out, nil
}

func (f *fakeHeketi) PendingOperationDetails(_ context.Context, id string) (*api.PendingOperationDetails, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	op, ok := f.pending[id]
	if !ok {
		return nil, herr("pending_operation_details", http.StatusNotFound, "Id not found")
	}
	cp := *op
	return &cp, nil
}

const fakeCluster = "c0000000000000000000000000000001"

var fakeNodes = []struct{ id, host string }{
	{"n0000000000000000000000000000001", "10.0.0.1"},
	{"n0000000000000000000000000000002", "10.0.0.2"},
	{"n0000000000000000000000000000003", "10.0.0.3"},
}

func newFakeHeketi() *fakeHeketi {
	return &fakeHeketi{vols: map[string]*api.VolumeInfoResponse{}, calls: map[string]int{}}
}

func (f *fakeHeketi) count(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

func (f *fakeHeketi) volumeNames() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var names []string
	for _, v := range f.vols {
		names = append(names, v.Name)
	}
	sort.Strings(names)
	return names
}

func herr(op string, status int, msg string) error {
	return &heketi.Error{Op: op, Status: status, Message: msg}
}

func (f *fakeHeketi) VolumeCreate(_ context.Context, req *api.VolumeCreateRequest) (*api.VolumeInfoResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["volume_create"]++
	f.creates = append(f.creates, req)
	for _, v := range f.vols {
		if req.Name != "" && v.Name == req.Name {
			return nil, herr("volume_create", http.StatusInternalServerError, fmt.Sprintf("Volume name '%s' already in use", req.Name))
		}
	}
	var err error
	if f.failCreate != nil {
		var keep bool
		keep, err = f.failCreate(req)
		if err != nil && !keep {
			return nil, err
		}
	}
	f.next++
	id := fmt.Sprintf("%032x", f.next)
	v := &api.VolumeInfoResponse{}
	v.VolumeCreateRequest = *req
	v.Id = id
	v.Cluster = fakeCluster
	if v.Name == "" {
		v.Name = "vol_" + id
	}
	for i, n := range fakeNodes {
		v.Mount.GlusterFS.Hosts = append(v.Mount.GlusterFS.Hosts, n.host)
		v.Bricks = append(v.Bricks, api.BrickInfo{Id: fmt.Sprintf("b%d%s", i, id[2:]), NodeId: n.id, VolumeId: id})
	}
	f.vols[id] = v
	if err != nil {
		return nil, err
	}
	cp := *v
	return &cp, nil
}

func (f *fakeHeketi) VolumeInfo(_ context.Context, id string) (*api.VolumeInfoResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["volume_info"]++
	if f.failInfo != nil {
		if err := f.failInfo(id); err != nil {
			return nil, err
		}
	}
	v, ok := f.vols[id]
	if !ok {
		return nil, herr("volume_info", http.StatusNotFound, "Id not found")
	}
	cp := *v
	return &cp, nil
}

func (f *fakeHeketi) VolumeDelete(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["volume_delete"]++
	if _, ok := f.vols[id]; !ok {
		return herr("volume_delete", http.StatusNotFound, "Id not found")
	}
	delete(f.vols, id)
	return nil
}

func (f *fakeHeketi) VolumeExpand(_ context.Context, id string, req *api.VolumeExpandRequest) (*api.VolumeInfoResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["volume_expand"]++
	v, ok := f.vols[id]
	if !ok {
		return nil, herr("volume_expand", http.StatusNotFound, "Id not found")
	}
	v.Size += req.Size
	cp := *v
	return &cp, nil
}

func (f *fakeHeketi) ClusterList(context.Context) (*api.ClusterListResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["cluster_list"]++
	if f.failTopo != nil {
		if err := f.failTopo(); err != nil {
			return nil, err
		}
	}
	return &api.ClusterListResponse{Clusters: []string{fakeCluster}}, nil
}

func (f *fakeHeketi) ClusterInfo(_ context.Context, id string) (*api.ClusterInfoResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["cluster_info"]++
	if id != fakeCluster {
		return nil, herr("cluster_info", http.StatusNotFound, "Id not found")
	}
	c := &api.ClusterInfoResponse{Id: fakeCluster}
	for _, n := range fakeNodes {
		c.Nodes = append(c.Nodes, n.id)
	}
	for id := range f.vols {
		c.Volumes = append(c.Volumes, id)
	}
	return c, nil
}

func (f *fakeHeketi) NodeInfo(_ context.Context, id string) (*api.NodeInfoResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, n := range fakeNodes {
		if n.id == id {
			ni := &api.NodeInfoResponse{}
			ni.Id = n.id
			ni.Hostnames.Storage = []string{n.host}
			return ni, nil
		}
	}
	return nil, herr("node_info", http.StatusNotFound, "Id not found")
}
