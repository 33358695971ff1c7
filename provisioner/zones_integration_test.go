package provisioner

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"

	"github.com/glusterkube/glusterkube/internal/heketi"
	"github.com/glusterkube/glusterkube/internal/testenv"
	"github.com/glusterkube/glusterkube/topology"
	"github.com/glusterkube/glusterkube/volume"
	"github.com/glusterkube/glusterkube/zones"
)

var zoneNames = []string{"zone-a", "zone-b", "zone-c"}

// zoneWorld is nine kwok Nodes in three zones, labelled as a cloud labels
// them, each a storage node of a heketi server of the test's own, loaded
// with heketi zones from the Nodes (numbers and tags).
type zoneWorld struct {
	env   *testenv.Env
	hk    *testenv.Heketi
	admin *heketi.Client
	// nodeZone is each Node's zone; heketiZone each heketi node's.
	nodeZone   map[string]string
	heketiZone map[string]string
}

func newZoneWorld(t *testing.T) *zoneWorld {
	t.Helper()
	env := testenv.Get(t)
	hk := testenv.NewHeketi(t, testenv.HeketiOptions{})
	w := &zoneWorld{env: env, hk: hk, admin: heketiClient(t, hk.URL, "", ""), nodeZone: map[string]string{}, heketiZone: map[string]string{}}
	ctx := context.Background()
	sfx := rand.String(4)
	topo := &topology.Topology{Clusters: []topology.Cluster{{}}}
	var names []string
	for zi, z := range zoneNames {
		for i := 1; i <= 3; i++ {
			name := fmt.Sprintf("z%s-%s-%d", sfx, z, i)
			ip := fmt.Sprintf("10.77.%d.%d", zi+1, i)
			err := env.AddNode(ctx, testenv.NodeSpec{Name: name,
				Labels: map[string]string{
					zones.LabelZone: z, zones.LabelZoneBeta: z,
					"topology.kubernetes.io/region": "region-1", "failure-domain.beta.kubernetes.io/region": "region-1",
				},
				Addresses: []v1.NodeAddress{{Type: v1.NodeInternalIP, Address: ip}}})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = env.DeleteNode(context.Background(), name) })
			names = append(names, name)
			w.nodeZone[name] = z
			// heketi's allocator already alternates zones when each has
			// as many devices; zone-a's extra devices make a volume placed
			// without zone checking put two bricks of a set in zone-a more
			// often than not (55%), so the spread test proves the checking.
			devs := []topology.Device{{Name: "/dev/sdb"}}
			if z == "zone-a" {
				devs = append(devs, topology.Device{Name: "/dev/sdc"}, topology.Device{Name: "/dev/sdd"})
			}
			topo.Clusters[0].Nodes = append(topo.Clusters[0].Nodes, topology.Node{
				Node:    topology.NodeInfo{Zone: zi + 1, Hostnames: topology.Hostnames{Manage: []string{name}, Storage: []string{ip}}},
				Devices: devs,
			})
		}
	}
	if err := env.WaitNodesReady(ctx, names...); err != nil {
		t.Fatal(err)
	}
	list, err := env.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// What topology load --zones-from-nodes does.
	out, err := zones.Reconcile(ctx, w.admin, topo, list.Items, true)
	if err != nil {
		t.Fatal(err)
	}
	if !out.Report.Agrees() {
		t.Fatalf("the file's zones disagree with the Nodes': %+v", out.Report.Problems)
	}
	if _, err := topology.Apply(ctx, w.admin, topology.PlanAgainst(topo, out.Current), topology.Options{}); err != nil {
		t.Fatal(err)
	}
	cur, err := w.admin.TopologyInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cur.ClusterList {
		for _, n := range c.Nodes {
			w.heketiZone[n.Id] = w.nodeZone[n.Hostnames.Manage[0]]
			if got := volume.ZoneFromTag(n.Tags[volume.ZoneTag]); got != w.heketiZone[n.Id] {
				t.Fatalf("heketi node %s has zone tag %q, want %q", n.Hostnames.Manage[0], got, w.heketiZone[n.Id])
			}
		}
	}
	return w
}

// brickZones returns the zones of a PV's bricks, read back from heketi.
func (w *zoneWorld) brickZones(t *testing.T, pv *v1.PersistentVolume) []string {
	t.Helper()
	vol, err := w.admin.VolumeInfo(context.Background(), pv.Annotations[AnnHeketiVolumeID])
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, b := range vol.Bricks {
		out = append(out, w.heketiZone[b.NodeId])
	}
	slices.Sort(out)
	return out
}

func (w *zoneWorld) volumeCount(t *testing.T) int {
	t.Helper()
	l, err := w.admin.VolumeList(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return len(l.Volumes)
}

// affinityZones returns the zones a PV's node affinity allows (nil: none).
func affinityZones(pv *v1.PersistentVolume) []string {
	if pv.Spec.NodeAffinity == nil || pv.Spec.NodeAffinity.Required == nil {
		return nil
	}
	var out []string
	for _, term := range pv.Spec.NodeAffinity.Required.NodeSelectorTerms {
		for _, e := range term.MatchExpressions {
			if zones.IsZoneKey(e.Key) && e.Operator == v1.NodeSelectorOpIn {
				out = append(out, e.Values...)
			}
		}
	}
	return out
}

// waitEvent waits for an Event of the reason on the claim whose message
// holds every part, and returns its message.
func waitEvent(t *testing.T, w *zoneWorld, ns, claimName, typ, reason string, parts ...string) string {
	t.Helper()
	var msg string
	eventually(t, 2*time.Minute, fmt.Sprintf("%s Event %s on claim %s", typ, reason, claimName), func(ctx context.Context) (bool, error) {
		for _, e := range claimEvents(t, w.env.Client, ns, claimName) {
			if e.Type != typ || e.Reason != reason {
				continue
			}
			all := true
			for _, p := range parts {
				all = all && strings.Contains(e.Message, p)
			}
			if all {
				msg = e.Message
				return true, nil
			}
		}
		return false, nil
	})
	return msg
}

// zonePod is a pod of one claim, on a Node of the zone.
func zonePod(ns, name, claim, zone string) *v1.Pod {
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1.PodSpec{
			NodeSelector: map[string]string{zones.LabelZone: zone},
			Containers:   []v1.Container{{Name: "app", Image: "busybox", VolumeMounts: []v1.VolumeMount{{Name: "data", MountPath: "/data"}}}},
			Volumes:      []v1.Volume{{Name: "data", VolumeSource: v1.VolumeSource{PersistentVolumeClaim: &v1.PersistentVolumeClaimVolumeSource{ClaimName: claim}}}},
		},
	}
}

// TestZones: the provisioner places volumes by the zones of the storage
// nodes — spread over the zones, or kept in the pod's zone under
// WaitForFirstConsumer — with the example classes (examples/zones), and
// fails clearly, leaving nothing in heketi, where a volume cannot fit.
func TestZones(t *testing.T) {
	w := newZoneWorld(t)
	env := w.env
	kube := env.Client
	ctx := context.Background()
	ns := env.Namespace(t)
	// The example classes name the default provisioner, and no server of
	// their own: the provisioner's heketi is the test's.
	startProvisioner(t, env, DefaultName, heketi.Config{URL: w.hk.URL}, nil)
	applyManifests(t, env.Config, ns, readManifestsFrom(t, "../examples/zones"))

	t.Run("spread", func(t *testing.T) {
		claims := []string{"spread-0", "spread-1", "spread-2", "spread-3", "spread-4"}
		for _, c := range claims {
			if _, err := kube.CoreV1().PersistentVolumeClaims(ns).Create(ctx, newClaim(ns, c, "glusterfs-spread", "1Gi"), metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		// A class that says nothing of placement spreads too: the storage
		// nodes span three zones, a replica set has three bricks.
		createClass(t, kube, storageClass(ns+"-default", DefaultName, v1.PersistentVolumeReclaimDelete, map[string]string{"volumetype": "replicate:3"}))
		if _, err := kube.CoreV1().PersistentVolumeClaims(ns).Create(ctx, newClaim(ns, "default-0", ns+"-default", "1Gi"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		for c, pv := range waitBound(t, kube, ns, append(claims, "default-0"), 2*time.Minute) {
			got := w.brickZones(t, pv)
			if len(got) == 0 || len(got)%3 != 0 {
				t.Fatalf("%s: bricks in %q", c, got)
			}
			per := map[string]int{}
			for _, z := range got {
				per[z]++
			}
			for _, z := range zoneNames {
				if per[z] != len(got)/3 {
					t.Errorf("%s: bricks in zones %q, want one of each replica set in each zone", c, got)
					break
				}
			}
			if pv.Spec.NodeAffinity != nil {
				t.Errorf("%s: a spread volume pinned by %v", c, pv.Spec.NodeAffinity)
			}
		}
	})

	t.Run("local claim waits for its pod", func(t *testing.T) {
		before := w.volumeCount(t)
		if _, err := kube.CoreV1().PersistentVolumeClaims(ns).Create(ctx, newClaim(ns, "lonely", "glusterfs-local", "1Gi"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		// The PV controller says it waits for a consumer; nothing is made.
		waitEvent(t, w, ns, "lonely", v1.EventTypeNormal, "WaitForFirstConsumer")
		c, err := kube.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "lonely", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if c.Status.Phase != v1.ClaimPending || c.Annotations["volume.kubernetes.io/selected-node"] != "" || w.volumeCount(t) != before {
			t.Fatalf("before its pod: claim %s, annotations %v, %d heketi volumes (had %d)", c.Status.Phase, c.Annotations, w.volumeCount(t), before)
		}
		if _, err := kube.CoreV1().Pods(ns).Create(ctx, zonePod(ns, "lonely-pod", "lonely", "zone-b"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		pv := waitBound(t, kube, ns, []string{"lonely"}, 2*time.Minute)["lonely"]
		if got := w.brickZones(t, pv); strings.Join(slices.Compact(slices.Clone(got)), ",") != "zone-b" {
			t.Errorf("bricks in %q, want all in zone-b", got)
		}
		if got := affinityZones(pv); !slices.Equal(got, []string{"zone-b"}) {
			t.Errorf("PV node affinity zones %q, want zone-b", got)
		}
	})

	t.Run("local StatefulSet one pod per zone", func(t *testing.T) {
		ss := statefulSet(ns, "web", "glusterfs-local", 3)
		app := map[string]string{"app": "web"}
		ss.Spec.Template.Spec.Affinity = &v1.Affinity{
			// On the zoned Nodes only, one pod per zone.
			NodeAffinity: &v1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &v1.NodeSelector{NodeSelectorTerms: []v1.NodeSelectorTerm{{
				MatchExpressions: []v1.NodeSelectorRequirement{{Key: zones.LabelZone, Operator: v1.NodeSelectorOpIn, Values: zoneNames}},
			}}}},
			PodAntiAffinity: &v1.PodAntiAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []v1.PodAffinityTerm{{
				LabelSelector: &metav1.LabelSelector{MatchLabels: app}, TopologyKey: zones.LabelZone,
			}}},
		}
		if _, err := kube.AppsV1().StatefulSets(ns).Create(ctx, ss, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		claims := []string{"data-web-0", "data-web-1", "data-web-2"}
		pvs := waitBound(t, kube, ns, claims, 3*time.Minute)
		// The scheduler binds each pod once its volume is bound.
		pods := map[string]*v1.Pod{}
		eventually(t, 2*time.Minute, "the StatefulSet's pods bound to Nodes", func(ctx context.Context) (bool, error) {
			for i := range claims {
				pod, err := kube.CoreV1().Pods(ns).Get(ctx, fmt.Sprintf("web-%d", i), metav1.GetOptions{})
				if err != nil || pod.Spec.NodeName == "" {
					return false, err
				}
				pods[pod.Name] = pod
			}
			return true, nil
		})
		seen := map[string]bool{}
		for i, c := range claims {
			pod := pods[fmt.Sprintf("web-%d", i)]
			podZone := w.nodeZone[pod.Spec.NodeName]
			seen[podZone] = true
			if got := w.brickZones(t, pvs[c]); strings.Join(slices.Compact(slices.Clone(got)), ",") != podZone {
				t.Errorf("%s: pod in %s (%s), bricks in %q", c, podZone, pod.Spec.NodeName, got)
			}
			if got := affinityZones(pvs[c]); !slices.Equal(got, []string{podZone}) {
				t.Errorf("%s: PV affinity %q, pod in %s", c, got, podZone)
			}
		}
		if len(seen) != 3 {
			t.Errorf("pods in zones %v, want one in each", slices.Collect(maps.Keys(seen)))
		}
	})

	t.Run("allowedTopologies with one zone", func(t *testing.T) {
		sc := storageClass(ns+"-only-c", DefaultName, v1.PersistentVolumeReclaimDelete, map[string]string{"volumetype": "replicate:3"})
		sc.AllowedTopologies = []v1.TopologySelectorTerm{{MatchLabelExpressions: []v1.TopologySelectorLabelRequirement{{Key: zones.LabelZone, Values: []string{"zone-c"}}}}}
		createClass(t, kube, sc)
		if _, err := kube.CoreV1().PersistentVolumeClaims(ns).Create(ctx, newClaim(ns, "only-c", sc.Name, "1Gi"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		pv := waitBound(t, kube, ns, []string{"only-c"}, 2*time.Minute)["only-c"]
		if got := w.brickZones(t, pv); len(got) < 3 || strings.Join(slices.Compact(slices.Clone(got)), ",") != "zone-c" {
			t.Errorf("bricks in %q, want all in zone-c", got)
		}
		if got := affinityZones(pv); !slices.Equal(got, []string{"zone-c"}) {
			t.Errorf("PV affinity %q, want zone-c", got)
		}
	})

	t.Run("local zone with too few nodes", func(t *testing.T) {
		before := w.volumeCount(t)
		wffc := storagev1.VolumeBindingWaitForFirstConsumer
		sc := storageClass(ns+"-local4", DefaultName, v1.PersistentVolumeReclaimDelete, map[string]string{"volumetype": "replicate:4", "placement": "local"})
		sc.VolumeBindingMode = &wffc
		createClass(t, kube, sc)
		if _, err := kube.CoreV1().PersistentVolumeClaims(ns).Create(ctx, newClaim(ns, "four", sc.Name, "1Gi"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := kube.CoreV1().Pods(ns).Create(ctx, zonePod(ns, "four-pod", "four", "zone-a"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		msg := waitEvent(t, w, ns, "four", v1.EventTypeWarning, "ProvisioningFailed", "zone zone-a has 3 storage nodes", "a replica-4 volume needs 4")
		t.Logf("event: %s", msg)
		c, err := kube.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "four", metav1.GetOptions{})
		if err != nil || c.Status.Phase != v1.ClaimPending {
			t.Errorf("claim %v %v, want Pending", c.Status.Phase, err)
		}
		if n := w.volumeCount(t); n != before {
			t.Errorf("heketi holds %d volumes, had %d", n, before)
		}
	})

	t.Run("spread without enough zones", func(t *testing.T) {
		before := w.volumeCount(t)
		sc := storageClass(ns+"-spread-ab", DefaultName, v1.PersistentVolumeReclaimDelete, map[string]string{"volumetype": "replicate:3", "placement": "spread"})
		sc.AllowedTopologies = []v1.TopologySelectorTerm{{MatchLabelExpressions: []v1.TopologySelectorLabelRequirement{{Key: zones.LabelZone, Values: []string{"zone-a", "zone-b"}}}}}
		createClass(t, kube, sc)
		if _, err := kube.CoreV1().PersistentVolumeClaims(ns).Create(ctx, newClaim(ns, "ab", sc.Name, "1Gi"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		msg := waitEvent(t, w, ns, "ab", v1.EventTypeWarning, "ProvisioningFailed",
			"a replica-3 volume needs storage nodes in 3 zones of the zones allowed (zone-a, zone-b)", "only 2 zones have them (zone-a: 3 nodes, zone-b: 3 nodes)")
		t.Logf("event: %s", msg)
		if n := w.volumeCount(t); n != before {
			t.Errorf("heketi holds %d volumes, had %d", n, before)
		}
	})
}
