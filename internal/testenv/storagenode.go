package testenv

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/heketi/heketi/pkg/glusterfs/api"

	"github.com/glusterkube/glusterkube/internal/heketi"
)

// StorageNode is a real node (kubelet + containerd) that is also the
// GlusterFS storage of a heketi test server of its own: heketi's cluster
// has three nodes whose storage hosts the glusterd in the node's network
// namespace answers (it listens on every address of the namespace), so the
// servers of every PV made on it are servers the node's FUSE clients
// reach. Wrap (or Dial) makes heketi's volumes real on that glusterd.
type StorageNode struct {
	Node     *RealNode
	Glusterd *Glusterd
	Heketi   *Heketi
	// Admin is a client of Heketi (no authentication).
	Admin *heketi.Client
	// Cluster is the heketi cluster of the node's storage hosts.
	Cluster string
	// Hosts are the storage hosts of Cluster.
	Hosts []string

	env    *Env
	t      testing.TB
	mu     sync.Mutex
	bricks map[string][]string // GlusterFS volume name -> brick folders
}

// StorageNodeOptions configures NewStorageNode.
type StorageNodeOptions struct {
	// NodeAddresses makes the storage hosts the node's address (RealNode.IP)
	// and two more added in its network namespace (10.86.0.2, 10.86.0.3)
	// instead of 127.0.0.1–3: Endpoints, which in-tree glusterfs PVs name,
	// cannot hold loopback addresses (the API server refuses them).
	NodeAddresses bool
}

// extraStorageHosts stand for the two other storage nodes when
// StorageNodeOptions.NodeAddresses is set. They exist only in the node's
// network namespace, so every real node may have them.
var extraStorageHosts = []string{"10.86.0.2", "10.86.0.3"}

// NewStorageNode starts a real node, a glusterd on it and a heketi server
// whose one cluster is the node's storage hosts; all stop when the test
// ends. It skips (or fails under CI=true) as NewRealNode does.
func (e *Env) NewStorageNode(t *testing.T, o StorageNodeOptions) *StorageNode {
	t.Helper()
	node := e.NewRealNode(t)
	s := &StorageNode{env: e, t: t, Node: node, Glusterd: node.NewGlusterd(t), Heketi: NewHeketi(t, HeketiOptions{}), bricks: map[string][]string{}}
	admin, err := heketi.New(heketi.Config{URL: s.Heketi.URL})
	if err != nil {
		t.Fatal(err)
	}
	s.Admin = admin
	s.Hosts = []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"}
	if o.NodeAddresses {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for _, ip := range extraStorageHosts {
			if err := s.Glusterd.AddAddress(ctx, ip); err != nil {
				t.Fatal(err)
			}
		}
		s.Hosts = append([]string{node.IP}, extraStorageHosts...)
	}
	s.Cluster = HeketiClusterOn(t, s.Admin, s.Hosts...)
	return s
}

// Dial returns a client of a heketi server wrapped by Wrap: a volume.Dialer
// for the provisioner, the CSI controller or migrate (their Config.Dial,
// converted to the interface they name).
func (s *StorageNode) Dial(cfg heketi.Config) (*GlusterdHeketi, error) {
	c, err := heketi.New(cfg)
	if err != nil {
		return nil, err
	}
	return s.Wrap(c), nil
}

// Wrap returns c, making the volumes it creates on the node's glusterd.
func (s *StorageNode) Wrap(c *heketi.Client) *GlusterdHeketi {
	return &GlusterdHeketi{Client: c, s: s}
}

// VolumeBricks returns the brick folders of the GlusterFS volume made for
// a heketi volume of that name.
func (s *StorageNode) VolumeBricks(name string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bricks[name]
}

// GlusterdHeketi is a heketi client that acts as the test's heketi server
// would with its real executor, for the volumes the real node mounts.
// Heketi's mock executor only records a volume; real heketi has made it on
// the storage nodes by the time it answers the create. So when heketi
// answers a create, GlusterdHeketi makes the volume heketi named on the
// node's glusterd (brick roots as heketi's executor sets them) before its
// caller sees the answer: the PV, and so any pod using it, can only come
// after. A delete removes the GlusterFS volume first, as heketi's executor
// does.
type GlusterdHeketi struct {
	*heketi.Client
	s *StorageNode
}

// VolumeCreate creates the heketi volume, then the GlusterFS volume.
func (h *GlusterdHeketi) VolumeCreate(ctx context.Context, req *api.VolumeCreateRequest) (*api.VolumeInfoResponse, error) {
	vol, err := h.Client.VolumeCreate(ctx, req)
	if err != nil {
		return vol, err
	}
	bricks, err := h.s.Glusterd.CreateHeketiVolume(ctx, vol.Name)
	if err == nil {
		err = setBrickRoots(bricks, int(vol.Gid))
	}
	if err != nil {
		// A caller would find the heketi volume by name on its retry and
		// never create again: fail the test here.
		h.s.t.Errorf("make GlusterFS volume %s for heketi volume %s: %v", vol.Name, vol.Id, err)
		return nil, err
	}
	h.s.mu.Lock()
	h.s.bricks[vol.Name] = bricks
	h.s.mu.Unlock()
	return vol, nil
}

// VolumeDelete deletes the GlusterFS volume, then the heketi volume.
func (h *GlusterdHeketi) VolumeDelete(ctx context.Context, id string) error {
	vol, err := h.Client.VolumeInfo(ctx, id)
	if err == nil {
		if err := h.s.Glusterd.DeleteVolume(ctx, vol.Name); err != nil {
			return fmt.Errorf("delete GlusterFS volume %s: %w", vol.Name, err)
		}
	}
	return h.Client.VolumeDelete(ctx, id)
}

// setBrickRoots sets the brick roots as heketi's real executor does on a
// real brick ("chown :GID" and "chmod 2775" before the volume is made):
// owned by the volume's GID, group-writable and setgid, which is what lets
// a non-root pod in the PV's supplemental group write, and makes its files
// the group's. The mock executor runs no command and the bricks are plain
// folders, so the harness does it.
func setBrickRoots(bricks []string, gid int) error {
	if gid == 0 {
		return nil
	}
	for _, b := range bricks {
		if err := os.Chown(b, 0, gid); err != nil {
			return err
		}
		if err := os.Chmod(b, 0o775|os.ModeSetgid); err != nil {
			return err
		}
	}
	return nil
}
