package nodes_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heketi/heketi/pkg/glusterfs/api"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/rand"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"

	"github.com/glusterkube/glusterkube/cmd/glusterkube/app"
	"github.com/glusterkube/glusterkube/internal/heketi"
	"github.com/glusterkube/glusterkube/internal/testenv"
	"github.com/glusterkube/glusterkube/nodes"
	"github.com/glusterkube/glusterkube/topology"
)

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, testenv.Options{Kube: true, Heketi: true}))
}

// addNodes creates kwok nodes and waits until they are Ready.
func addNodes(t *testing.T, env *testenv.Env, specs ...testenv.NodeSpec) {
	t.Helper()
	ctx := context.Background()
	var names []string
	for _, s := range specs {
		if err := env.AddNode(ctx, s); err != nil {
			t.Fatal(err)
		}
		names = append(names, s.Name)
		t.Cleanup(func() { _ = env.DeleteNode(context.Background(), s.Name) })
	}
	if err := env.WaitNodesReady(ctx, names...); err != nil {
		t.Fatal(err)
	}
}

func tnode(manage, storage string, zone int) topology.Node {
	n := topology.Node{Node: topology.NodeInfo{Zone: zone, Hostnames: topology.Hostnames{Manage: []string{manage}}}, Devices: []topology.Device{{Name: "/dev/vdb"}}}
	if storage != "" {
		n.Node.Hostnames.Storage = []string{storage}
	}
	return n
}

// countingClient counts the requests it sends, by method.
func countingClient(t *testing.T, cfg *rest.Config) (kubernetes.Interface, map[string]*atomic.Int64) {
	counts := map[string]*atomic.Int64{http.MethodGet: {}, http.MethodPatch: {}, http.MethodPut: {}, http.MethodPost: {}, http.MethodDelete: {}}
	c := rest.CopyConfig(cfg)
	c.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if n, ok := counts[r.Method]; ok {
				n.Add(1)
			}
			return rt.RoundTrip(r)
		})
	})
	cs, err := kubernetes.NewForConfig(c)
	if err != nil {
		t.Fatal(err)
	}
	return cs, counts
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// 3 of 5 Nodes are named in the topology (two by name, one by address);
// one topology node has no Node and one matches two. Only the 3 clear
// matches are labelled, other labels on them survive, and a second run
// writes nothing.
func TestLabelOnRealCluster(t *testing.T) {
	env := testenv.Get(t)
	ctx := context.Background()
	sfx := rand.String(5)
	name := func(i int) string { return fmt.Sprintf("lbl-%s-%d", sfx, i) }
	ipShared := "10.66.0.35"
	addNodes(t, env,
		testenv.NodeSpec{Name: name(1), Labels: map[string]string{"team": "storage"}},
		testenv.NodeSpec{Name: name(2)},
		// kwok replaces the addresses unless both kinds are given.
		testenv.NodeSpec{Name: name(3), Addresses: []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: name(3)}, {Type: corev1.NodeInternalIP, Address: ipShared}}},
		testenv.NodeSpec{Name: name(4), Addresses: []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: "gluster-" + sfx + "-4.example.com"}, {Type: corev1.NodeInternalIP, Address: "10.66.0.4"}}},
		testenv.NodeSpec{Name: name(5), Addresses: []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: name(5)}, {Type: corev1.NodeInternalIP, Address: ipShared}}},
	)
	topo := &topology.Topology{Clusters: []topology.Cluster{{Nodes: []topology.Node{
		tnode(name(1), "10.66.1.1", 1),
		tnode(name(2), "10.66.1.2", 2),
		tnode("gluster-"+sfx+"-4.example.com", "10.66.0.4", 3),
		tnode("ghost-"+sfx, "10.66.9.9", 1),
		tnode("shared-"+sfx, ipShared, 2),
	}}}}
	key := "test.glusterkube.io/storage-" + sfx
	zone := "test.glusterkube.io/zone-" + sfx
	opts := nodes.Options{LabelKey: key, LabelValue: "glusterfs", ZoneLabel: zone}

	client, counts := countingClient(t, env.Config)
	res, err := nodes.Label(ctx, client, topo, opts)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, n := range res.Nodes {
		got[n.Node] = fmt.Sprintf("%s by %s zone %d", n.Action, n.By, n.Zone)
	}
	want := map[string]string{
		name(1): "labelled by name zone 1",
		name(2): "labelled by name zone 2",
		name(4): "labelled by address zone 3",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("labelled = %v, want %v", got, want)
	}
	if len(res.Unmatched) != 1 || res.Unmatched[0].Topology != "ghost-"+sfx {
		t.Errorf("unmatched = %+v", res.Unmatched)
	}
	if len(res.Ambiguous) != 1 || res.Ambiguous[0].Topology != "shared-"+sfx || !reflect.DeepEqual(res.Ambiguous[0].Candidates, []string{name(3), name(5)}) {
		t.Errorf("ambiguous = %+v", res.Ambiguous)
	}
	if !res.Problems() {
		t.Error("Problems() = false with an unmatched and an ambiguous topology node")
	}
	if n := counts[http.MethodPatch].Load(); n != 3 {
		t.Errorf("first run sent %d PATCH requests, want 3", n)
	}
	if n := counts[http.MethodPut].Load(); n != 0 {
		t.Errorf("sent %d PUT (update) requests, want none", n)
	}

	for i := 1; i <= 5; i++ {
		node, err := env.Client.CoreV1().Nodes().Get(ctx, name(i), metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		_, labelled := node.Labels[key]
		if labelled != (i == 1 || i == 2 || i == 4) {
			t.Errorf("%s labelled = %v (%v)", name(i), labelled, node.Labels)
		}
		if i == 4 && node.Labels[zone] != "3" {
			t.Errorf("%s zone label = %q, want 3", name(i), node.Labels[zone])
		}
		if i == 1 && node.Labels["team"] != "storage" {
			t.Errorf("%s lost its other label: %v", name(i), node.Labels)
		}
	}

	// Second run: the same answer and not a single write.
	client2, counts2 := countingClient(t, env.Config)
	res2, err := nodes.Label(ctx, client2, topo, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range res2.Nodes {
		if n.Action != nodes.Unchanged {
			t.Errorf("second run: %s %s", n.Node, n.Action)
		}
	}
	if n := counts2[http.MethodPatch].Load() + counts2[http.MethodPut].Load() + counts2[http.MethodPost].Load(); n != 0 {
		t.Errorf("second run sent %d writes, want 0", n)
	}
}

// Prune is refused, naming the Node and its bricks, while heketi holds
// bricks on it; allowed once the volume is gone.
func TestPruneGuardedByHeketiBricks(t *testing.T) {
	env := testenv.Get(t)
	h := testenv.NewHeketi(t, testenv.HeketiOptions{})
	ctx := context.Background()
	hc, err := heketi.New(heketi.Config{URL: h.URL, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer hc.Close()

	sfx := rand.String(5)
	key := "test.glusterkube.io/storage-" + sfx
	keep, withBricks, empty := "prn-"+sfx+"-keep", "prn-"+sfx+"-bricks", "prn-"+sfx+"-empty"
	lbl := map[string]string{key: "glusterfs"}
	addNodes(t, env,
		testenv.NodeSpec{Name: keep},
		testenv.NodeSpec{Name: withBricks, Labels: lbl, Addresses: []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: withBricks}, {Type: corev1.NodeInternalIP, Address: "10.67.0.2"}}},
		testenv.NodeSpec{Name: empty, Labels: lbl},
	)

	// heketi knows withBricks by its storage address only, and holds a
	// brick of a volume on it.
	cl, err := hc.ClusterCreate(ctx, &api.ClusterCreateRequest{ClusterFlags: api.ClusterFlags{File: true, Block: true}})
	if err != nil {
		t.Fatal(err)
	}
	req := &api.NodeAddRequest{ClusterId: cl.Id, Zone: 1}
	req.Hostnames.Manage = []string{"gluster-" + sfx + ".example.com"}
	req.Hostnames.Storage = []string{"10.67.0.2"}
	hn, err := hc.NodeAdd(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	dreq := &api.DeviceAddRequest{NodeId: hn.Id}
	dreq.Name = "/dev/vdb"
	if err := hc.DeviceAdd(ctx, dreq); err != nil {
		t.Fatal(err)
	}
	vreq := &api.VolumeCreateRequest{Size: 1, Clusters: []string{cl.Id}}
	vreq.Durability.Type = api.DurabilityDistributeOnly
	vol, err := hc.VolumeCreate(ctx, vreq)
	if err != nil {
		t.Fatal(err)
	}

	topo := &topology.Topology{Clusters: []topology.Cluster{{Nodes: []topology.Node{tnode(keep, "", 1)}}}}
	opts := nodes.Options{LabelKey: key, LabelValue: "glusterfs", ZoneLabel: "-", Prune: true, Heketi: hc}

	res, err := nodes.Label(ctx, env.Client, topo, opts)
	if err != nil {
		t.Fatal(err)
	}
	stale := map[string]nodes.Stale{}
	for _, s := range res.Stale {
		stale[s.Node] = s
	}
	if s := stale[withBricks]; s.Action != nodes.Refused || len(s.Bricks) == 0 || s.Bricks[0].Volume != vol.Id {
		t.Errorf("%s: %+v, want refused naming the bricks of volume %s", withBricks, s, vol.Id)
	}
	if s := stale[empty]; s.Action != nodes.Pruned {
		t.Errorf("%s: %+v, want pruned", empty, s)
	}
	if !res.Problems() {
		t.Error("a refused prune is not reported as a problem")
	}
	labelOf := func(n string) (string, bool) {
		node, err := env.Client.CoreV1().Nodes().Get(ctx, n, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		v, ok := node.Labels[key]
		return v, ok
	}
	if _, ok := labelOf(withBricks); !ok {
		t.Errorf("%s lost its label although heketi holds bricks on it", withBricks)
	}
	if _, ok := labelOf(empty); ok {
		t.Errorf("%s still labelled after prune", empty)
	}
	if _, ok := labelOf(keep); !ok {
		t.Errorf("%s (in the topology) not labelled", keep)
	}

	// The command line says the same and fails.
	tf := filepath.Join(t.TempDir(), "topology.yaml")
	if err := os.WriteFile(tf, []byte("clusters:\n- nodes:\n  - node: {hostnames: {manage: ["+keep+"], storage: [192.0.2.7]}, zone: 1}\n    devices: [/dev/vdb]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	err = app.Run(ctx, []string{"nodes", "label", "-f", tf, "--label", key + "=glusterfs", "--zone-label", "", "--prune", "--heketi-url", h.URL, "--kubeconfig", env.Kubeconfig},
		app.Streams{In: strings.NewReader(""), Out: &out, Err: &errOut})
	if !errors.Is(err, app.ErrSilent) || !strings.Contains(out.String(), withBricks) || !strings.Contains(out.String(), "refused: heketi holds 1 bricks") || !strings.Contains(out.String(), vol.Id) {
		t.Errorf("glusterkube nodes label --prune: %v\n%s%s", err, out.String(), errOut.String())
	}
	t.Logf("glusterkube nodes label --prune:\n%s", out.String())

	// Without --prune the same Node is only reported.
	noPrune := opts
	noPrune.Prune, noPrune.Heketi = false, nil
	res, err = nodes.Label(ctx, env.Client, topo, noPrune)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Stale) != 1 || res.Stale[0].Node != withBricks || res.Stale[0].Action != nodes.Kept {
		t.Errorf("without prune: stale = %+v, want %s kept", res.Stale, withBricks)
	}

	if err := hc.VolumeDelete(ctx, vol.Id); err != nil {
		t.Fatal(err)
	}
	res, err = nodes.Label(ctx, env.Client, topo, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Stale) != 1 || res.Stale[0].Action != nodes.Pruned {
		t.Errorf("after the volume is gone: stale = %+v, want %s pruned", res.Stale, withBricks)
	}
	if _, ok := labelOf(withBricks); ok {
		t.Errorf("%s still labelled after its bricks are gone", withBricks)
	}
}

const examplesDir = "../examples/nodes"

// decodeManifests reads every object of a YAML file.
func decodeManifests(t *testing.T, path string) []*unstructured.Unstructured {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(b), 4096)
	var out []*unstructured.Unstructured
	for {
		var obj map[string]any
		if err := dec.Decode(&obj); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if len(obj) == 0 {
			continue
		}
		out = append(out, &unstructured.Unstructured{Object: obj})
	}
	return out
}

// applyManifest server-side applies obj like kubectl apply --server-side.
func applyManifest(ctx context.Context, t *testing.T, cfg *rest.Config, obj *unstructured.Unstructured, dryRun bool) error {
	t.Helper()
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	gvk := obj.GroupVersionKind()
	mapping, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return fmt.Errorf("%s: %w", gvk, err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	data, err := obj.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	opts := metav1.PatchOptions{FieldManager: "kubectl", Force: ptr.To(true)}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	var ri dynamic.ResourceInterface = dyn.Resource(mapping.Resource)
	if ns := obj.GetNamespace(); ns != "" {
		ri = dyn.Resource(mapping.Resource).Namespace(ns)
	}
	_, err = ri.Patch(ctx, obj.GetName(), types.ApplyPatchType, data, opts)
	return err
}

// Every manifest in examples/nodes applies to the real API server (the Job
// with a server-side dry run); the topology in the ConfigMap is
// examples/topology.json; and the Job's exact command, run with exactly
// the ServiceAccount's permissions, labels the Nodes — while the
// ServiceAccount may not do more than get, list and patch Nodes.
func TestNodesExampleManifests(t *testing.T) {
	env := testenv.Get(t)
	ctx := context.Background()
	// Apply in the kustomization's order, which must list every manifest.
	kust := decodeManifests(t, filepath.Join(examplesDir, "kustomization.yaml"))[0]
	resources, _, _ := unstructured.NestedStringSlice(kust.Object, "resources")
	files, err := filepath.Glob(filepath.Join(examplesDir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if b := filepath.Base(f); b != "kustomization.yaml" && !slices.Contains(resources, b) {
			t.Errorf("kustomization.yaml does not list %s", b)
		}
	}
	var job *batchv1.Job
	var cm *corev1.ConfigMap
	for _, r := range resources {
		f := filepath.Join(examplesDir, r)
		for _, obj := range decodeManifests(t, f) {
			isJob := obj.GetKind() == "Job"
			if err := applyManifest(ctx, t, env.Config, obj, isJob); err != nil {
				t.Errorf("%s: apply %s %s: %v", f, obj.GetKind(), obj.GetName(), err)
			}
			switch obj.GetKind() {
			case "Job":
				job = &batchv1.Job{}
				if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, job); err != nil {
					t.Fatal(err)
				}
			case "ConfigMap":
				cm = &corev1.ConfigMap{}
				if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, cm); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if job == nil || cm == nil {
		t.Fatalf("examples lack the Job or the ConfigMap")
	}

	// The ConfigMap holds examples/topology.json.
	fromCM, diags, err := topology.Load("configmap", []byte(cm.Data["topology.json"]))
	if err != nil || topology.HasErrors(diags) {
		t.Fatalf("topology in the ConfigMap: %v %v", err, diags)
	}
	fromFile, _, err := topology.ReadFile("../examples/topology.json", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fromCM, fromFile) {
		t.Error("the ConfigMap's topology differs from examples/topology.json; copy it over")
	}

	// The Job's arguments, with the ConfigMap's file, as its ServiceAccount.
	c := job.Spec.Template.Spec.Containers[0]
	mount := ""
	for _, vm := range c.VolumeMounts {
		mount = vm.MountPath
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "topology.json")
	if err := os.WriteFile(path, []byte(cm.Data["topology.json"]), 0o600); err != nil {
		t.Fatal(err)
	}
	sa := "system:serviceaccount:" + job.Namespace + ":" + job.Spec.Template.Spec.ServiceAccountName
	kubeconfig := impersonatingKubeconfig(t, env.Kubeconfig, sa)
	var args []string
	for _, a := range c.Args {
		args = append(args, strings.Replace(a, mount+"/topology.json", path, 1))
	}
	args = append(args, "--kubeconfig", kubeconfig)
	var out, errOut bytes.Buffer
	err = app.Run(ctx, args, app.Streams{In: strings.NewReader(""), Out: &out, Err: &errOut})
	if err != nil {
		t.Fatalf("glusterkube %s as %s: %v\n%s%s", strings.Join(c.Args, " "), sa, err, out.String(), errOut.String())
	}
	t.Logf("glusterkube %s:\n%s", strings.Join(c.Args, " "), out.String())
	for _, n := range []string{"node-1", "node-2", "node-3"} {
		node, err := env.Client.CoreV1().Nodes().Get(ctx, n, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if node.Labels[nodes.DefaultLabelKey] != nodes.DefaultLabelValue || node.Labels[nodes.DefaultZoneLabel] == "" {
			t.Errorf("%s labels after the Job's command: %v\n%s", n, node.Labels, out.String())
		}
	}

	// Nothing more than get, list, patch on Nodes.
	saCfg := rest.CopyConfig(env.Config)
	saCfg.Impersonate = rest.ImpersonationConfig{UserName: sa}
	saClient := kubernetes.NewForConfigOrDie(saCfg)
	err = saClient.CoreV1().Nodes().Delete(ctx, "node-1", metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}})
	if !apierrors.IsForbidden(err) {
		t.Errorf("ServiceAccount may delete Nodes (err %v), want Forbidden", err)
	}
	_, err = saClient.CoreV1().Nodes().Update(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1"}}, metav1.UpdateOptions{DryRun: []string{metav1.DryRunAll}})
	if !apierrors.IsForbidden(err) {
		t.Errorf("ServiceAccount may update Nodes (err %v), want Forbidden", err)
	}
	_, err = saClient.CoreV1().Secrets(job.Namespace).List(ctx, metav1.ListOptions{})
	if !apierrors.IsForbidden(err) {
		t.Errorf("ServiceAccount may list Secrets (err %v), want Forbidden", err)
	}
}

// impersonatingKubeconfig writes a copy of kubeconfig that acts as user.
func impersonatingKubeconfig(t *testing.T, kubeconfig, user string) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, ai := range cfg.AuthInfos {
		ai.Impersonate = user
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}
