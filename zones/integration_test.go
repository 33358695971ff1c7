package zones_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/heketi/heketi/pkg/glusterfs/api"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"

	"github.com/glusterkube/glusterkube/cmd/glusterkube/app"
	"github.com/glusterkube/glusterkube/internal/heketi"
	"github.com/glusterkube/glusterkube/internal/testenv"
	"github.com/glusterkube/glusterkube/topology"
	"github.com/glusterkube/glusterkube/volume"
	"github.com/glusterkube/glusterkube/zones"
)

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, testenv.Options{Kube: true, Nodes: -1}))
}

func run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = app.Main(args, strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}

// heketiZones returns each heketi node's zone number and zone tag, by
// manage hostname.
func heketiZones(t *testing.T, h *heketi.Client) map[string]string {
	t.Helper()
	cur, err := h.TopologyInfo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, c := range cur.ClusterList {
		for _, n := range c.Nodes {
			out[n.Hostnames.Manage[0]] = fmt.Sprintf("%d %s", n.Zone, volume.ZoneFromTag(n.Tags[volume.ZoneTag]))
		}
	}
	return out
}

// A topology whose heketi zones disagree with the Nodes' zone labels:
// validate and plan report it (given the cluster), load leaves heketi as
// it is, and load --zones-from-nodes fixes what it can — the nodes without
// bricks re-added in their zone's number, every node tagged — and refuses,
// saying why, the node that holds a brick.
func TestZonesReportedAndFixedOnRequest(t *testing.T) {
	env := testenv.Get(t)
	hk := testenv.NewHeketi(t, testenv.HeketiOptions{})
	h, err := heketi.New(heketi.Config{URL: hk.URL})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	sfx := rand.String(4)
	// n1, n2 in zone-a and n5 in zone-b first (they get the volume's
	// bricks), then n3 in zone-b and n4 in zone-c; the file puts all in
	// heketi zone 1, as a first topology often does.
	zoneOf := map[string]string{"n1": "zone-a", "n2": "zone-a", "n5": "zone-b", "n3": "zone-b", "n4": "zone-c"}
	name := func(n string) string { return "zt" + sfx + "-" + n }
	for i, n := range []string{"n1", "n2", "n5", "n3", "n4"} {
		err := env.AddNode(ctx, testenv.NodeSpec{Name: name(n), Labels: map[string]string{"topology.kubernetes.io/zone": zoneOf[n]},
			Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: fmt.Sprintf("10.88.0.%d", i+1)}}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = env.DeleteNode(context.Background(), name(n)) })
	}
	file := func(nodes ...string) string {
		topo := &topology.Topology{Clusters: []topology.Cluster{{}}}
		for _, n := range nodes {
			topo.Clusters[0].Nodes = append(topo.Clusters[0].Nodes, topology.Node{
				Node:    topology.NodeInfo{Zone: 1, Hostnames: topology.Hostnames{Manage: []string{name(n)}, Storage: []string{"192.0.2." + n[1:]}}},
				Devices: []topology.Device{{Name: "/dev/sdb"}},
			})
		}
		var b bytes.Buffer
		if err := topology.EncodeJSON(&b, topo); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(t.TempDir(), "topology.json")
		if err := os.WriteFile(p, b.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	heketiFlags := []string{"--heketi-url", hk.URL}
	kubeFlags := []string{"--kubeconfig", env.Kubeconfig}

	first := file("n1", "n2", "n5")
	if code, out, errOut := run(t, append([]string{"topology", "load", "-f", first}, heketiFlags...)...); code != 0 {
		t.Fatalf("load: %d\n%s%s", code, out, errOut)
	}
	vol := &api.VolumeCreateRequest{Size: 1, Name: "data", Durability: api.VolumeDurabilityInfo{Type: api.DurabilityReplicate, Replicate: api.ReplicaDurability{Replica: 3}}}
	if _, err := h.VolumeCreate(ctx, vol); err != nil {
		t.Fatal(err)
	}
	all := file("n1", "n2", "n5", "n3", "n4")
	if code, out, errOut := run(t, append([]string{"topology", "load", "-f", all}, heketiFlags...)...); code != 0 {
		t.Fatalf("load: %d\n%s%s", code, out, errOut)
	}
	asLoaded := heketiZones(t, h)
	for _, n := range []string{"n1", "n2", "n3", "n4", "n5"} {
		if asLoaded[name(n)] != "1 " {
			t.Fatalf("%s in heketi: %q, want zone 1 without a tag", n, asLoaded[name(n)])
		}
	}

	// validate, with the cluster: the file's numbers against the Nodes.
	code, out, errOut := run(t, append([]string{"topology", "validate", "-f", all}, kubeFlags...)...)
	if code != 0 || !strings.Contains(errOut, "warning: clusters[0].nodes[0].node.zone: zones: heketi zone 1 holds storage nodes of 3 Kubernetes zones: zone-a ("+name("n1")+", "+name("n2")+"), zone-b ("+name("n5")+", "+name("n3")+"), zone-c ("+name("n4")+")") {
		t.Errorf("validate: exit %d\n%s%s", code, out, errOut)
	}

	// plan, with the cluster: the same, against heketi, and how to fix it.
	code, out, errOut = run(t, append(append([]string{"topology", "plan", "-f", all}, heketiFlags...), kubeFlags...)...)
	if code != 0 || !strings.Contains(out, "zones: heketi zone 1 holds storage nodes of 3 Kubernetes zones") || !strings.Contains(out, "--zones-from-nodes") ||
		!strings.Contains(out, "without the tag glusterkube.zone") {
		t.Errorf("plan: exit %d\n%s%s", code, out, errOut)
	}
	// load without the flag changes no zone.
	if code, out, errOut := run(t, append(append([]string{"topology", "load", "-f", all}, heketiFlags...), kubeFlags...)...); code != 0 {
		t.Fatalf("load: %d\n%s%s", code, out, errOut)
	}
	if got := heketiZones(t, h); fmt.Sprint(got) != fmt.Sprint(asLoaded) {
		t.Errorf("load without --zones-from-nodes changed heketi: %v, was %v", got, asLoaded)
	}

	// plan --zones-from-nodes previews; still nothing changes.
	code, out, errOut = run(t, append(append([]string{"topology", "plan", "-f", all, "--zones-from-nodes"}, heketiFlags...), kubeFlags...)...)
	for _, want := range []string{
		"would re-add node " + name("n3") + " (zone zone-b) in heketi zone 2 instead of 1",
		"would node " + name("n5") + " (zone zone-b) stays in heketi zone 1 instead of 2: it holds 1 brick",
		"+ node " + name("n4") + " (zone 3",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("plan --zones-from-nodes lacks %q: exit %d\n%s%s", want, code, out, errOut)
		}
	}
	if got := heketiZones(t, h); fmt.Sprint(got) != fmt.Sprint(asLoaded) {
		t.Errorf("plan changed heketi: %v", got)
	}

	// load --zones-from-nodes: fixed where it loses nothing; n5 refused.
	code, out, errOut = run(t, append(append([]string{"topology", "load", "-f", all, "--zones-from-nodes"}, heketiFlags...), kubeFlags...)...)
	if code != 1 || !strings.Contains(out, "zones: node "+name("n5")+" (zone zone-b) stays in heketi zone 1 instead of 2: it holds 1 brick") {
		t.Errorf("load --zones-from-nodes: exit %d, want 1 for the refused node\n%s%s", code, out, errOut)
	}
	want := map[string]string{name("n1"): "1 zone-a", name("n2"): "1 zone-a", name("n3"): "2 zone-b", name("n4"): "3 zone-c", name("n5"): "1 zone-b"}
	if got := heketiZones(t, h); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("heketi after load --zones-from-nodes:\n%v\nwant\n%v", got, want)
	}
	// Devices came back with their nodes, the volume is untouched.
	cur, err := h.TopologyInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range cur.ClusterList[0].Nodes {
		if len(n.DevicesInfo) != 1 {
			t.Errorf("%s has %d devices", n.Hostnames.Manage[0], len(n.DevicesInfo))
		}
	}
	if len(cur.ClusterList[0].Volumes) != 1 {
		t.Errorf("volumes %d, want the one", len(cur.ClusterList[0].Volumes))
	}

	// Again: nothing left to do but the refusal.
	code, out, _ = run(t, append(append([]string{"topology", "load", "-f", all, "--zones-from-nodes"}, heketiFlags...), kubeFlags...)...)
	if code != 1 || strings.Contains(out, "re-add node") || strings.Contains(out, "tag node") {
		t.Errorf("second load --zones-from-nodes: exit %d, want 1 (the refusal) and no change\n%s", code, out)
	}
	if got := heketiZones(t, h); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("heketi after a second load: %v", got)
	}

	// The report from the library agrees with the CLI.
	list, err := env.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r := zones.Check(nil, cur, list.Items)
	if r.Agrees() {
		t.Errorf("n5 is still in zone-a's heketi zone, yet the report agrees: %+v", r.Problems)
	}
}
