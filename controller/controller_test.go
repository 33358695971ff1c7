package controller_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"

	"github.com/glusterkube/glusterkube/controller"
	"github.com/glusterkube/glusterkube/daemonset"
	"github.com/glusterkube/glusterkube/internal/heketi"
	"github.com/glusterkube/glusterkube/internal/testenv"
	"github.com/glusterkube/glusterkube/nodes"
	"github.com/glusterkube/glusterkube/volume"
)

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, testenv.Options{Kube: true, Nodes: -1}))
}

func topologyJSON(names ...string) string {
	var ns []string
	for i, n := range names {
		ns = append(ns, fmt.Sprintf(`{"node":{"hostnames":{"manage":[%q],"storage":["10.9.0.%d"]},"zone":%d},"devices":["/dev/sdb","/dev/sdc"]}`, n, i+1, i%3+1))
	}
	return `{"clusters":[{"nodes":[` + strings.Join(ns, ",") + `]}]}`
}

// TestControllerReconcilesTopologyConfigMap runs the storage controller on
// the real stack: a topology ConfigMap is loaded into heketi, its nodes are
// labelled and the DaemonSet applied; an invalid edit sends nothing to
// heketi and says why in an Event; a new node in the topology is added.
func TestControllerReconcilesTopologyConfigMap(t *testing.T) {
	env := testenv.Get(t)
	h := testenv.NewHeketi(t, testenv.HeketiOptions{})
	ns := env.Namespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	prefix := strings.ToLower(ns)
	names := []string{prefix + "-a", prefix + "-b", prefix + "-c", prefix + "-d"}
	for _, n := range names {
		if err := env.AddNode(ctx, testenv.NodeSpec{Name: n}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = env.DeleteNode(context.Background(), n) })
	}
	hk, err := heketi.New(heketi.Config{URL: h.URL})
	if err != nil {
		t.Fatal(err)
	}
	label := "glusterkube.io/test-" + ns[len(ns)-5:]
	values, err := daemonset.Defaults()
	if err != nil {
		t.Fatal(err)
	}
	values.Namespace = ns
	f := false
	values.CreateNamespace = &f
	values.NodeSelector = map[string]string{label: "glusterfs"}
	manifest, err := daemonset.Render(values)
	if err != nil {
		t.Fatal(err)
	}

	bc := record.NewBroadcaster()
	bc.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: env.Client.CoreV1().Events("")})
	defer bc.Shutdown()
	cmFactory := informers.NewSharedInformerFactoryWithOptions(env.Client, 0, informers.WithNamespace(ns))
	nodeFactory := informers.NewSharedInformerFactory(env.Client, 0)
	c, err := controller.New(controller.Config{
		Kube: env.Client, Heketi: hk, Namespace: ns, Name: "topology",
		Nodes:     nodes.Options{LabelKey: label, LabelValue: "glusterfs", ZoneLabel: "-"},
		DaemonSet: manifest,
		Recorder:  bc.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "glusterkube"}),
	}, cmFactory, nodeFactory)
	if err != nil {
		t.Fatal(err)
	}
	cmFactory.Start(ctx.Done())
	nodeFactory.Start(ctx.Done())
	go func() { _ = c.Run(ctx) }()

	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "topology", Namespace: ns},
		Data:       map[string]string{"topology.json": topologyJSON(names[:3]...)},
	}
	if _, err := env.Client.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitClean(t, ctx, c)
	assertHeketi(t, ctx, hk, 3, 6)
	assertLabelled(t, ctx, env, label, names[:3], names[3:])
	if _, err := env.Client.AppsV1().DaemonSets(ns).Get(ctx, manifest.DaemonSet.Name, metav1.GetOptions{}); err != nil {
		t.Fatalf("DaemonSet not applied: %v", err)
	}

	// An invalid topology: nothing reaches heketi, a Warning Event says why.
	cm.Data["topology.json"] = `{"clusters":[{"nodes":[{"node":{"hostnames":{"manage":["x"],"storage":["10.9.9.9"]},"zone":0},"devices":["/dev/sdb"]}]}]}`
	if _, err := env.Client.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitClean(t, ctx, c)
	assertHeketi(t, ctx, hk, 3, 6)
	waitEvent(t, ctx, env, ns, controller.ReasonInvalidTopology, "zone")

	// A fourth node joins the topology.
	cm.Data["topology.json"] = topologyJSON(names...)
	if _, err := env.Client.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitClean(t, ctx, c)
	assertHeketi(t, ctx, hk, 4, 8)
	assertLabelled(t, ctx, env, label, names, nil)
}

// waitClean waits for a reconcile that succeeds after the latest change.
func waitClean(t *testing.T, ctx context.Context, c *controller.Controller) {
	t.Helper()
	// Outcomes from before the change may be queued: wait for a success
	// that reflects the newest state by draining until two quiet seconds
	// pass after a success.
	var ok bool
	for {
		select {
		case err := <-c.Synced():
			ok = err == nil
			if err != nil {
				t.Logf("reconcile: %v", err)
			}
		case <-time.After(2 * time.Second):
			if ok {
				return
			}
		case <-ctx.Done():
			t.Fatal("no successful reconcile in time")
		}
	}
}

func assertHeketi(t *testing.T, ctx context.Context, hk *heketi.Client, wantNodes, wantDevices int) {
	t.Helper()
	info, err := hk.TopologyInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n, d := 0, 0
	for _, c := range info.ClusterList {
		n += len(c.Nodes)
		for _, node := range c.Nodes {
			d += len(node.DevicesInfo)
		}
	}
	if n != wantNodes || d != wantDevices || len(info.ClusterList) != 1 {
		t.Fatalf("heketi holds %d clusters, %d nodes, %d devices; want 1, %d, %d", len(info.ClusterList), n, d, wantNodes, wantDevices)
	}
}

func assertLabelled(t *testing.T, ctx context.Context, env *testenv.Env, label string, yes, no []string) {
	t.Helper()
	for _, n := range yes {
		node, err := env.Client.CoreV1().Nodes().Get(ctx, n, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if node.Labels[label] != "glusterfs" {
			t.Errorf("node %s not labelled %s", n, label)
		}
	}
	for _, n := range no {
		node, err := env.Client.CoreV1().Nodes().Get(ctx, n, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := node.Labels[label]; ok {
			t.Errorf("node %s labelled but not in the topology", n)
		}
	}
}

func waitEvent(t *testing.T, ctx context.Context, env *testenv.Env, ns, reason, substr string) {
	t.Helper()
	for {
		evs, err := env.Client.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs.Items {
			if e.Reason == reason && strings.Contains(e.Message, substr) {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no %s Event mentioning %q", reason, substr)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// TestControllerZones: the storage controller reports heketi zones that
// disagree with the Nodes' zone labels and changes nothing; with
// ZonesFromNodes it makes heketi follow them, and follows a Node whose
// zone label changes.
func TestControllerZones(t *testing.T) {
	env := testenv.Get(t)
	h := testenv.NewHeketi(t, testenv.HeketiOptions{})
	ns := env.Namespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	prefix := strings.ToLower(ns)
	zoneOf := map[string]string{prefix + "-a": "zone-a", prefix + "-b": "zone-b", prefix + "-c": "zone-c"}
	var names, ns3 []string
	for _, n := range []string{prefix + "-a", prefix + "-b", prefix + "-c"} {
		if err := env.AddNode(ctx, testenv.NodeSpec{Name: n, Labels: map[string]string{"topology.kubernetes.io/zone": zoneOf[n]}}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = env.DeleteNode(context.Background(), n) })
		names = append(names, n)
		ns3 = append(ns3, fmt.Sprintf(`{"node":{"hostnames":{"manage":[%q],"storage":["10.8.0.%d"]},"zone":1},"devices":["/dev/sdb"]}`, n, len(ns3)+1))
	}
	hk, err := heketi.New(heketi.Config{URL: h.URL})
	if err != nil {
		t.Fatal(err)
	}
	zonesNow := func() map[string]string {
		info, err := hk.TopologyInfo(ctx)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, c := range info.ClusterList {
			for _, n := range c.Nodes {
				out[n.Hostnames.Manage[0]] = fmt.Sprintf("%d %s", n.Zone, volume.ZoneFromTag(n.Tags[volume.ZoneTag]))
			}
		}
		return out
	}
	bc := record.NewBroadcaster()
	bc.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: env.Client.CoreV1().Events("")})
	defer bc.Shutdown()
	start := func(follow bool) (*controller.Controller, context.CancelFunc) {
		cctx, stop := context.WithCancel(ctx)
		cmFactory := informers.NewSharedInformerFactoryWithOptions(env.Client, 0, informers.WithNamespace(ns))
		nodeFactory := informers.NewSharedInformerFactory(env.Client, 0)
		c, err := controller.New(controller.Config{
			Kube: env.Client, Heketi: hk, Namespace: ns, Name: "topology",
			Nodes:          nodes.Options{LabelKey: "glusterkube.io/test-" + ns[len(ns)-5:], LabelValue: "glusterfs", ZoneLabel: "-"},
			ZonesFromNodes: follow,
			Recorder:       bc.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "glusterkube"}),
		}, cmFactory, nodeFactory)
		if err != nil {
			t.Fatal(err)
		}
		cmFactory.Start(cctx.Done())
		nodeFactory.Start(cctx.Done())
		go func() { _ = c.Run(cctx) }()
		return c, stop
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "topology", Namespace: ns},
		Data: map[string]string{"topology.json": `{"clusters":[{"nodes":[` + strings.Join(ns3, ",") + `]}]}`}}
	if _, err := env.Client.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// Reported, not changed.
	c, stop := start(false)
	waitClean(t, ctx, c)
	stop()
	waitEvent(t, ctx, env, ns, controller.ReasonZonesDisagree, "heketi zone 1 holds storage nodes of 3 Kubernetes zones")
	for _, n := range names {
		if got := zonesNow()[n]; got != "1 " {
			t.Fatalf("%s: %q, want heketi zone 1 and no tag", n, got)
		}
	}

	// Followed.
	c, stop = start(true)
	defer stop()
	waitClean(t, ctx, c)
	waitEvent(t, ctx, env, ns, controller.ReasonZonesFollowed, "re-add node")
	want := map[string]string{names[0]: "1 zone-a", names[1]: "2 zone-b", names[2]: "3 zone-c"}
	if got := zonesNow(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("heketi zones %v, want %v", got, want)
	}

	// A Node moves to another zone: heketi follows.
	patch := []byte(`{"metadata":{"labels":{"topology.kubernetes.io/zone":"zone-a"}}}`)
	if _, err := env.Client.CoreV1().Nodes().Patch(ctx, names[2], types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	want[names[2]] = "1 zone-a"
	for fmt.Sprint(zonesNow()) != fmt.Sprint(want) {
		select {
		case <-ctx.Done():
			t.Fatalf("heketi zones %v, want %v", zonesNow(), want)
		case <-c.Synced():
		}
	}
}
