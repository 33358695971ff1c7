package provisioner

import (
	"context"
	"strings"
	"testing"

	"github.com/heketi/heketi/pkg/glusterfs/api"
	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"

	"github.com/glusterkube/glusterkube/internal/heketi"
	"github.com/glusterkube/glusterkube/internal/testenv"
)

// TestProvisionSeveralClustersNoDuplicate, on a real heketi with two
// clusters: heketi places a second volume of the same name in the other
// cluster when a request names both; so a retry whose first volume the
// provisioner cannot see yet (heketi hides a create still running; here
// it was made behind the provisioner's back) must not name both. It finds
// and reuses the first volume instead: one volume, one PV.
func TestProvisionSeveralClustersNoDuplicate(t *testing.T) {
	testenv.Get(t)
	hk := testenv.NewHeketi(t, testenv.HeketiOptions{})
	hc, err := heketi.New(heketi.Config{URL: hk.URL})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	a, b := heketiCluster(t, hc), heketiCluster(t, hc)
	create := func(name string, clusters ...string) (*api.VolumeInfoResponse, error) {
		req := &api.VolumeCreateRequest{Size: 1, Name: name, Clusters: clusters,
			Durability: api.VolumeDurabilityInfo{Type: api.DurabilityReplicate, Replicate: api.ReplicaDurability{Replica: 3}}}
		return hc.VolumeCreate(ctx, req)
	}
	named := func(name string) (clusters []string) {
		for _, c := range []string{a, b} {
			for _, v := range clusterVolumes(t, hc, c) {
				if v.Name == name {
					clusters = append(clusters, c)
				}
			}
		}
		return clusters
	}

	// heketi's own behaviour, the reason for one cluster per request.
	if _, err := create("probe", a); err != nil {
		t.Fatal(err)
	}
	if v, err := create("probe", a, b); err != nil || v.Cluster != b {
		t.Fatalf("heketi with both clusters: %v %v; expected it to place a duplicate in %s", v, err, b)
	}
	if _, err := create("probe", a); !heketi.IsNameInUse(err) {
		t.Fatalf("heketi with one cluster: %v; want a name-in-use refusal", err)
	}

	p, err := New(Config{Kube: fake.NewClientset(), Heketi: heketi.Config{URL: hk.URL}, Recorder: record.NewFakeRecorder(100)})
	if err != nil {
		t.Fatal(err)
	}
	sc := class("two", map[string]string{"clusterid": a + "," + b}, v1.PersistentVolumeReclaimDelete)
	// A first claim builds the provisioner's index of heketi.
	if _, _, err := p.Provision(ctx, provisionOpts(sc, claim("ns1", "first", "u-multi-0001", "1Gi"))); err != nil {
		t.Fatal(err)
	}
	c := claim("ns1", "data", "u-multi-0002", "1Gi")
	name := VolumeName("", c, "pvc-u-multi-0002")
	earlier, err := create(name, a)
	if err != nil {
		t.Fatal(err)
	}
	pv, _, err := p.Provision(ctx, provisionOpts(sc, c))
	if err != nil {
		t.Fatal(err)
	}
	if got := named(name); len(got) != 1 {
		t.Fatalf("heketi holds %d volumes named %s (clusters %s), want 1", len(got), name, strings.Join(got, ", "))
	}
	if id := pv.Annotations[AnnHeketiVolumeID]; id != earlier.Id {
		t.Errorf("PV names heketi volume %s, want the earlier attempt's %s", id, earlier.Id)
	}

	// A cluster that refuses for another reason passes the claim on: a
	// class whose first cluster cannot hold the volume uses the second.
	full := class("full-first", map[string]string{"clusterid": a + "," + b, "volumetype": "replicate:3"}, v1.PersistentVolumeReclaimDelete)
	big := claim("ns1", "big", "u-multi-0003", "1Gi")
	if err := hc.ClusterSetFlags(ctx, a, &api.ClusterSetFlagsRequest{ClusterFlags: api.ClusterFlags{File: false, Block: true}}); err != nil {
		t.Fatal(err)
	}
	pv, _, err = p.Provision(ctx, provisionOpts(full, big))
	if err != nil {
		t.Fatalf("provision with the first cluster refusing file volumes: %v", err)
	}
	if got := pv.Annotations[AnnHeketiCluster]; got != b {
		t.Errorf("volume in cluster %s, want %s", got, b)
	}
}

// The pending-operation reads the expander relies on work against the real
// server (admin routes, JSON shape): a finished expansion is not pending.
func TestExpandRunningRealHeketi(t *testing.T) {
	testenv.Get(t)
	hk := testenv.NewHeketi(t, testenv.HeketiOptions{Auth: true})
	hc, err := heketi.New(heketi.Config{URL: hk.URL, User: "admin", Key: hk.AdminKey})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c := heketiCluster(t, hc)
	v, err := hc.VolumeCreate(ctx, &api.VolumeCreateRequest{Size: 1, Clusters: []string{c},
		Durability: api.VolumeDurabilityInfo{Type: api.DurabilityReplicate, Replicate: api.ReplicaDurability{Replica: 3}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hc.VolumeExpand(ctx, v.Id, &api.VolumeExpandRequest{Size: 1}); err != nil {
		t.Fatal(err)
	}
	busy, err := expandRunning(ctx, hc, v.Id)
	if err != nil || busy {
		t.Fatalf("after a finished expansion: running=%v err=%v", busy, err)
	}
}
