// Package fakeheketi is an in-memory heketi with one cluster of three
// nodes (one 100 GiB device each), for unit tests that need failures the
// real server cannot be made to give. Behaviour is proven against the real
// heketi server (internal/testenv); this fake only has to be faithful
// where tests rely on it: ids, names unique per cluster ("already in
// use"), "No space" when the devices are full, 404 "Id not found",
// pending operations.
package fakeheketi

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"sync"

	"github.com/heketi/heketi/pkg/glusterfs/api"

	"github.com/glusterkube/glusterkube/internal/heketi"
)

// Cluster is the fake's one cluster.
const Cluster = "c0000000000000000000000000000001"

// DeviceGiB is the size of each node's one device.
const DeviceGiB = 100

// Nodes are the fake's nodes and their storage hosts.
var Nodes = []struct{ ID, Host string }{
	{"n0000000000000000000000000000001", "10.0.0.1"},
	{"n0000000000000000000000000000002", "10.0.0.2"},
	{"n0000000000000000000000000000003", "10.0.0.3"},
}

// Heketi is the fake server. Set the Fail* hooks and Pending before the
// calls they affect.
type Heketi struct {
	mu      sync.Mutex
	vols    map[string]*api.VolumeInfoResponse
	next    int
	calls   map[string]int
	creates []*api.VolumeCreateRequest

	// FailCreate, when set, decides the outcome of a create: return
	// (keep, err) — keep means the volume is made even though err is
	// returned (a timed-out call whose operation went on).
	FailCreate func(req *api.VolumeCreateRequest) (keep bool, err error)
	// FailInfo, FailExpand, FailClone, FailDelete fail those calls when
	// they return an error; FailExpand and FailClone may keep the change
	// as FailCreate does.
	FailInfo   func(id string) error
	FailExpand func(id string, by int) (keep bool, err error)
	FailClone  func(id, name string) (keep bool, err error)
	FailDelete func(id string) error
	// FailTopo fails ClusterList (and so the index build and credential
	// checks).
	FailTopo func() error
	// Pending are heketi's pending operations, by id.
	Pending map[string]*api.PendingOperationDetails
	// NodeTags are the nodes' tags, by node id (e.g. their zone tags).
	NodeTags map[string]map[string]string
}

// New returns an empty fake.
func New() *Heketi {
	return &Heketi{vols: map[string]*api.VolumeInfoResponse{}, calls: map[string]int{}}
}

// Err is an error as the heketi client returns it.
func Err(op string, status int, msg string) error {
	return &heketi.Error{Op: op, Status: status, Message: msg}
}

// Count returns how often op (e.g. "volume_create") was called.
func (f *Heketi) Count(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

// Creates returns the create requests received.
func (f *Heketi) Creates() []*api.VolumeCreateRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*api.VolumeCreateRequest(nil), f.creates...)
}

// VolumeNames returns the names of the volumes, sorted.
func (f *Heketi) VolumeNames() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var names []string
	for _, v := range f.vols {
		names = append(names, v.Name)
	}
	sort.Strings(names)
	return names
}

// Size returns a volume's size in GiB (0 when it does not exist).
func (f *Heketi) Size(id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if v, ok := f.vols[id]; ok {
		return v.Size
	}
	return 0
}

// SetSize changes a volume's size behind the service's back (an expansion
// made by an earlier process).
func (f *Heketi) SetSize(id string, gib int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if v, ok := f.vols[id]; ok {
		v.Size = gib
	}
}

// usedGiB is what the volumes take on each node's device; f.mu is held.
func (f *Heketi) usedGiB() int {
	used := 0
	for _, v := range f.vols {
		used += v.Size
	}
	return used
}

func (f *Heketi) make(req *api.VolumeCreateRequest) *api.VolumeInfoResponse {
	f.next++
	id := fmt.Sprintf("%032x", f.next)
	v := &api.VolumeInfoResponse{}
	v.VolumeCreateRequest = *req
	v.Id = id
	v.Cluster = Cluster
	if v.Name == "" {
		v.Name = "vol_" + id
	}
	for i, n := range Nodes {
		v.Mount.GlusterFS.Hosts = append(v.Mount.GlusterFS.Hosts, n.Host)
		v.Bricks = append(v.Bricks, api.BrickInfo{Id: fmt.Sprintf("b%d%s", i, id[2:]), NodeId: n.ID, VolumeId: id})
	}
	f.vols[id] = v
	return v
}

// VolumeCreate implements volume.Heketi.
func (f *Heketi) VolumeCreate(_ context.Context, req *api.VolumeCreateRequest) (*api.VolumeInfoResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["volume_create"]++
	f.creates = append(f.creates, req)
	for _, v := range f.vols {
		if req.Name != "" && v.Name == req.Name {
			return nil, Err("volume_create", http.StatusInternalServerError, fmt.Sprintf("Volume name '%s' already in use", req.Name))
		}
	}
	if f.usedGiB()+req.Size > DeviceGiB {
		return nil, Err("volume_create", http.StatusInternalServerError, "No space")
	}
	var err error
	if f.FailCreate != nil {
		var keep bool
		keep, err = f.FailCreate(req)
		if err != nil && !keep {
			return nil, err
		}
	}
	v := f.make(req)
	if err != nil {
		return nil, err
	}
	cp := *v
	return &cp, nil
}

// VolumeClone implements volume.Heketi: the clone shares the source's
// size, durability and GID, as heketi's does.
func (f *Heketi) VolumeClone(_ context.Context, id string, req *api.VolumeCloneRequest) (*api.VolumeInfoResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["volume_clone"]++
	src, ok := f.vols[id]
	if !ok {
		return nil, Err("volume_clone", http.StatusNotFound, "Id not found")
	}
	var err error
	if f.FailClone != nil {
		var keep bool
		keep, err = f.FailClone(id, req.Name)
		if err != nil && !keep {
			return nil, err
		}
	}
	cr := src.VolumeCreateRequest
	cr.Name = req.Name
	cr.Size = src.Size
	v := f.make(&cr)
	if err != nil {
		return nil, err
	}
	cp := *v
	return &cp, nil
}

// VolumeInfo implements volume.Heketi.
func (f *Heketi) VolumeInfo(_ context.Context, id string) (*api.VolumeInfoResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["volume_info"]++
	if f.FailInfo != nil {
		if err := f.FailInfo(id); err != nil {
			return nil, err
		}
	}
	v, ok := f.vols[id]
	if !ok {
		return nil, Err("volume_info", http.StatusNotFound, "Id not found")
	}
	cp := *v
	return &cp, nil
}

// VolumeList implements volume.Heketi.
func (f *Heketi) VolumeList(context.Context) (*api.VolumeListResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["volume_list"]++
	out := &api.VolumeListResponse{Volumes: []string{}}
	for id := range f.vols {
		out.Volumes = append(out.Volumes, id)
	}
	return out, nil
}

// VolumeDelete implements volume.Heketi.
func (f *Heketi) VolumeDelete(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["volume_delete"]++
	if f.FailDelete != nil {
		if err := f.FailDelete(id); err != nil {
			return err
		}
	}
	if _, ok := f.vols[id]; !ok {
		return Err("volume_delete", http.StatusNotFound, "Id not found")
	}
	delete(f.vols, id)
	return nil
}

// VolumeExpand implements volume.Heketi.
func (f *Heketi) VolumeExpand(_ context.Context, id string, req *api.VolumeExpandRequest) (*api.VolumeInfoResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["volume_expand"]++
	v, ok := f.vols[id]
	if !ok {
		return nil, Err("volume_expand", http.StatusNotFound, "Id not found")
	}
	if f.usedGiB()+req.Size > DeviceGiB {
		return nil, Err("volume_expand", http.StatusInternalServerError, "No space")
	}
	var err error
	if f.FailExpand != nil {
		var keep bool
		keep, err = f.FailExpand(id, req.Size)
		if err != nil && !keep {
			return nil, err
		}
	}
	v.Size += req.Size
	if err != nil {
		return nil, err
	}
	cp := *v
	return &cp, nil
}

// ClusterList implements volume.Heketi.
func (f *Heketi) ClusterList(context.Context) (*api.ClusterListResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["cluster_list"]++
	if f.FailTopo != nil {
		if err := f.FailTopo(); err != nil {
			return nil, err
		}
	}
	return &api.ClusterListResponse{Clusters: []string{Cluster}}, nil
}

// ClusterInfo implements volume.Heketi.
func (f *Heketi) ClusterInfo(_ context.Context, id string) (*api.ClusterInfoResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["cluster_info"]++
	if id != Cluster {
		return nil, Err("cluster_info", http.StatusNotFound, "Id not found")
	}
	c := &api.ClusterInfoResponse{Id: Cluster}
	for _, n := range Nodes {
		c.Nodes = append(c.Nodes, n.ID)
	}
	for id := range f.vols {
		c.Volumes = append(c.Volumes, id)
	}
	return c, nil
}

// NodeInfo implements volume.Heketi.
func (f *Heketi) NodeInfo(_ context.Context, id string) (*api.NodeInfoResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, n := range Nodes {
		if n.ID == id {
			ni := &api.NodeInfoResponse{State: api.EntryStateOnline}
			ni.Id = n.ID
			ni.Zone = i + 1
			if t := f.NodeTags[n.ID]; t != nil {
				ni.Tags = map[string]string{}
				for k, v := range t {
					ni.Tags[k] = v
				}
			}
			ni.ClusterId = Cluster
			ni.Hostnames.Storage = []string{n.Host}
			d := api.DeviceInfoResponse{State: api.EntryStateOnline}
			d.Id = "d" + n.ID[1:]
			d.Storage.Total = DeviceGiB << 20 // KiB
			d.Storage.Used = uint64(f.usedGiB()) << 20
			d.Storage.Free = d.Storage.Total - d.Storage.Used
			ni.DevicesInfo = append(ni.DevicesInfo, d)
			return ni, nil
		}
	}
	return nil, Err("node_info", http.StatusNotFound, "Id not found")
}

// PendingOperationList implements volume.PendingOperations.
func (f *Heketi) PendingOperationList(context.Context) (*api.PendingOperationListResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["pending_operation_list"]++
	out := &api.PendingOperationListResponse{PendingOperations: []api.PendingOperationInfo{}}
	for _, op := range f.Pending {
		out.PendingOperations = append(out.PendingOperations, op.PendingOperationInfo)
	}
	return out, nil
}

// PendingOperationDetails implements volume.PendingOperations.
func (f *Heketi) PendingOperationDetails(_ context.Context, id string) (*api.PendingOperationDetails, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	op, ok := f.Pending[id]
	if !ok {
		return nil, Err("pending_operation_details", http.StatusNotFound, "Id not found")
	}
	cp := *op
	return &cp, nil
}
