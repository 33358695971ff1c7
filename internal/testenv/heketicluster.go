package testenv

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/heketi/heketi/pkg/glusterfs/api"

	"github.com/glusterkube/glusterkube/internal/heketi"
)

// hostSeq gives every heketi test cluster its own storage IPs: heketi
// wants hostnames unique per server.
var hostSeq atomic.Int32

// HeketiCluster creates a cluster of three nodes (zones 1–3) with two
// devices each on a heketi test server and returns its id. Its storage
// hosts are addresses of their own (10.x.y.1–3), unique in the test binary.
func HeketiCluster(t testing.TB, h *heketi.Client) string {
	t.Helper()
	n := hostSeq.Add(1)
	var hosts []string
	for i := 1; i <= 3; i++ {
		hosts = append(hosts, fmt.Sprintf("10.%d.%d.%d", 100+n/250, n%250, i))
	}
	return HeketiClusterOn(t, h, hosts...)
}

// HeketiClusterOn creates a cluster of one node per storage host (zones
// 1, 2, 3, …; the host is also the node's manage name) with two devices
// each, and returns its id. Tests that mount heketi's volumes name the
// loopback addresses of a Glusterd (127.0.0.1, 127.0.0.2, 127.0.0.3): the
// volume context then names servers the FUSE client reaches from the
// Glusterd's network namespace.
func HeketiClusterOn(t testing.TB, h *heketi.Client, hosts ...string) string {
	t.Helper()
	ctx := context.Background()
	cl, err := h.ClusterCreate(ctx, &api.ClusterCreateRequest{ClusterFlags: api.ClusterFlags{File: true, Block: true}})
	if err != nil {
		t.Fatalf("heketi cluster: %v", err)
	}
	for i, ip := range hosts {
		req := &api.NodeAddRequest{Zone: i + 1, ClusterId: cl.Id}
		req.Hostnames.Manage = []string{ip}
		req.Hostnames.Storage = []string{ip}
		node, err := h.NodeAdd(ctx, req)
		if err != nil {
			t.Fatalf("heketi node %s: %v", ip, err)
		}
		for _, dev := range []string{"/dev/sdb", "/dev/sdc"} {
			d := &api.DeviceAddRequest{NodeId: node.Id}
			d.Name = dev
			if err := h.DeviceAdd(ctx, d); err != nil {
				t.Fatalf("heketi device %s on %s: %v", dev, ip, err)
			}
		}
	}
	return cl.Id
}

// ClusterVolumes returns the volumes of one heketi cluster.
func ClusterVolumes(t testing.TB, h *heketi.Client, cluster string) []api.VolumeInfoResponse {
	t.Helper()
	topo, err := h.TopologyInfo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range topo.ClusterList {
		if c.Id == cluster {
			return c.Volumes
		}
	}
	t.Fatalf("heketi cluster %s not found", cluster)
	return nil
}
