package daemonset_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/rand"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/utils/ptr"

	"github.com/glusterkube/glusterkube/cmd/glusterkube/app"
	"github.com/glusterkube/glusterkube/daemonset"
	"github.com/glusterkube/glusterkube/internal/testenv"
	"github.com/glusterkube/glusterkube/nodes"
	"github.com/glusterkube/glusterkube/topology"
)

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, testenv.Options{Kube: true, Nodes: -1}))
}

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

func tnode(manage string, zone int) topology.Node {
	return topology.Node{Node: topology.NodeInfo{Zone: zone, Hostnames: topology.Hostnames{Manage: []string{manage}, Storage: []string{"192.0.2.1"}}}, Devices: []topology.Device{{Name: "/dev/vdb"}}}
}

// podsByNode lists the DaemonSet's pods by Node.
func podsByNode(t *testing.T, env *testenv.Env, ns string) map[string]string {
	t.Helper()
	pods, err := env.Client.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: "glusterfs-node=pod"})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, p := range pods.Items {
		out[p.Spec.NodeName] = p.Name
	}
	return out
}

// 3 of 5 Nodes are named in a topology and labelled; the DaemonSet rolls
// out to exactly those 3; applying and labelling again changes nothing; a
// new image is reported as a changed field and, under OnDelete, leaves the
// running pods on the old template until deleted.
func TestRolloutToLabelledNodes(t *testing.T) {
	env := testenv.Get(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	ns := env.Namespace(t)
	sfx := rand.String(5)
	var specs []testenv.NodeSpec
	for i := 1; i <= 5; i++ {
		specs = append(specs, testenv.NodeSpec{Name: fmt.Sprintf("ro-%s-%d", sfx, i)})
	}
	addNodes(t, env, specs...)
	key := "test.glusterkube.io/storage-" + sfx
	topo := &topology.Topology{Clusters: []topology.Cluster{{Nodes: []topology.Node{tnode(specs[0].Name, 1), tnode(specs[2].Name, 2), tnode(specs[4].Name, 3)}}}}
	lopts := nodes.Options{LabelKey: key, LabelValue: "glusterfs"}
	if _, err := nodes.Label(ctx, env.Client, topo, lopts); err != nil {
		t.Fatal(err)
	}

	vals := daemonset.Values{Namespace: ns, CreateNamespace: ptr.To(false), NodeSelector: map[string]string{key: "glusterfs"}}
	m, err := daemonset.Render(vals)
	if err != nil {
		t.Fatal(err)
	}
	res, err := daemonset.Apply(ctx, env.Client, m, daemonset.ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || res[0].Change != daemonset.Created {
		t.Fatalf("first apply: %v", res)
	}
	var progress []string
	st, err := daemonset.Wait(ctx, env.Client, ns, "glusterfs", daemonset.WaitOptions{OnProgress: func(s daemonset.Status) { progress = append(progress, s.Summary()) }})
	if err != nil {
		t.Fatalf("wait: %v\nprogress:\n%s", err, strings.Join(progress, "\n"))
	}
	t.Logf("progress:\n%s", strings.Join(progress, "\n"))
	if st.Desired != 3 || st.Ready != 3 || st.UpToDate != 3 || st.StorageNodes != 3 {
		t.Errorf("status = %+v", st)
	}
	got := podsByNode(t, env, ns)
	wantNodes := []string{specs[0].Name, specs[2].Name, specs[4].Name}
	var gotNodes []string
	for n := range got {
		gotNodes = append(gotNodes, n)
	}
	slices.Sort(gotNodes)
	if !slices.Equal(gotNodes, wantNodes) {
		t.Errorf("pods run on %v, want exactly %v", gotNodes, wantNodes)
	}

	// Again: nothing changes.
	res, err = daemonset.Apply(ctx, env.Client, m, daemonset.ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Change != daemonset.Unchanged {
		t.Errorf("second apply: %v", res)
	}
	lres, err := nodes.Label(ctx, env.Client, topo, lopts)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range lres.Nodes {
		if n.Action != nodes.Unchanged {
			t.Errorf("second label: %s %s", n.Node, n.Action)
		}
	}
	if after := podsByNode(t, env, ns); !mapsEqual(after, got) {
		t.Errorf("pods changed after re-apply: %v -> %v", got, after)
	}

	// A new image: one field changed; pods keep the old template (OnDelete).
	vals.Image = "gluster/gluster-centos:v9"
	m2, err := daemonset.Render(vals)
	if err != nil {
		t.Fatal(err)
	}
	res, err = daemonset.Apply(ctx, env.Client, m2, daemonset.ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Change != daemonset.Configured || !slices.Equal(res[0].Fields, []string{"spec.template.spec.containers[0].image"}) || !res[0].TemplateChanged {
		t.Errorf("image change: %+v", res[0])
	}
	wctx, wcancel := context.WithCancel(ctx)
	var last daemonset.Status
	_, err = daemonset.Wait(wctx, env.Client, ns, "glusterfs", daemonset.WaitOptions{OnProgress: func(s daemonset.Status) {
		last = s
		if s.ObservedGeneration == s.Generation && len(s.Problems()) == 3 {
			wcancel() // settled: every pod reported on the old template
		}
	}})
	wcancel()
	nr, ok := daemonset.IsNotReady(err)
	if !ok {
		t.Fatalf("wait after image change: %v (last %s)", err, last.Summary())
	}
	for _, p := range nr.Status.Problems() {
		if p.Reason != daemonset.ReasonOldTemplate {
			t.Errorf("after image change: %s", p)
		}
	}
	if len(nr.Status.Problems()) != 3 {
		t.Errorf("problems = %v", nr.Status.Problems())
	}
	if after := podsByNode(t, env, ns); !mapsEqual(after, got) {
		t.Errorf("OnDelete replaced pods by itself: %v -> %v", got, after)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// A stalled rollout names each storage node without a ready pod and why: a
// Node with a taint the DaemonSet does not tolerate gets no pod at all; a
// Node without room for the pod's CPU request leaves it Pending.
func TestStalledRolloutDiagnosed(t *testing.T) {
	env := testenv.Get(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ns := env.Namespace(t)
	sfx := rand.String(5)
	key := "test.glusterkube.io/storage-" + sfx
	lbl := map[string]string{key: "glusterfs"}
	ok, tainted, small := "st-"+sfx+"-ok", "st-"+sfx+"-tainted", "st-"+sfx+"-small"
	taint := corev1.Taint{Key: "example.com/maintenance", Value: "disk", Effect: corev1.TaintEffectNoSchedule}
	addNodes(t, env,
		testenv.NodeSpec{Name: ok, Labels: lbl},
		testenv.NodeSpec{Name: tainted, Labels: lbl, Taints: []corev1.Taint{taint}},
		testenv.NodeSpec{Name: small, Labels: lbl},
	)
	// Shrink one Node's CPU below the pod's request of 100m.
	patch := []byte(`{"status":{"allocatable":{"cpu":"50m"},"capacity":{"cpu":"50m"}}}`)
	if _, err := env.Client.CoreV1().Nodes().Patch(ctx, small, types.MergePatchType, patch, metav1.PatchOptions{}, "status"); err != nil {
		t.Fatal(err)
	}

	m, err := daemonset.Render(daemonset.Values{Namespace: ns, CreateNamespace: ptr.To(false), NodeSelector: lbl})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := daemonset.Apply(ctx, env.Client, m, daemonset.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	var last daemonset.Status
	_, err = daemonset.Wait(wctx, env.Client, ns, "glusterfs", daemonset.WaitOptions{OnProgress: func(s daemonset.Status) {
		last = s
		reasons := map[string]string{}
		for _, p := range s.Problems() {
			reasons[p.Node] = p.Reason
		}
		// Stop once the rollout has settled in its stalled state.
		if s.Ready == 1 && reasons[tainted] == daemonset.ReasonTaintNotTolerated && reasons[small] == daemonset.ReasonUnschedulable {
			wcancel()
		}
	}})
	nr, isNR := daemonset.IsNotReady(err)
	if !isNR {
		t.Fatalf("wait: %v, want a NotReadyError (last %s %v)", err, last.Summary(), last.Problems())
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("the rollout never settled: %v", err)
	}
	msg := err.Error()
	t.Logf("diagnosis:\n%s", msg)
	for _, want := range []string{
		tainted + ": " + daemonset.ReasonTaintNotTolerated,
		"example.com/maintenance=disk:NoSchedule",
		small + ": " + daemonset.ReasonUnschedulable,
		"Insufficient cpu",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("diagnosis lacks %q", want)
		}
	}
	if strings.Contains(msg, ok+":") {
		t.Errorf("diagnosis blames the healthy node %s", ok)
	}
	if nr.Status.StorageNodes != 3 || nr.Status.Desired != 2 {
		t.Errorf("storage nodes %d, desired %d; want 3 and 2 (the tainted Node is left out)", nr.Status.StorageNodes, nr.Status.Desired)
	}

	// The one-shot status says the same.
	st, err := daemonset.Get(ctx, env.Client, ns, "glusterfs")
	if err != nil {
		t.Fatal(err)
	}
	if st.Done() || len(st.Problems()) != 2 {
		t.Errorf("Get: %s %v", st.Summary(), st.Problems())
	}

	// Waiting again on the stalled rollout reports the stall with the
	// scheduler's event, then keeps waiting.
	sctx, scancel := context.WithCancel(ctx)
	defer scancel()
	var stalled daemonset.Status
	_, err = daemonset.Wait(sctx, env.Client, ns, "glusterfs", daemonset.WaitOptions{StallAfter: 200 * time.Millisecond, OnStall: func(s daemonset.Status) {
		stalled = s
		scancel()
	}})
	if _, isNR := daemonset.IsNotReady(err); !isNR || len(stalled.Problems()) != 2 {
		t.Errorf("stall: %v, problems %v", err, stalled.Problems())
	}
	for _, p := range stalled.Problems() {
		if p.Node == small && !strings.Contains(p.Message, "FailedScheduling") && !strings.Contains(p.Message, "Insufficient cpu") {
			t.Errorf("stall diagnosis of %s: %s", small, p)
		}
	}

	// Tolerating the taint lets the rollout reach the tainted Node. The
	// toleration changes the pod template, so under OnDelete the healthy
	// Node keeps its pod on the old template until someone deletes it.
	m.DaemonSet.Spec.Template.Spec.Tolerations = []corev1.Toleration{{Key: taint.Key, Operator: corev1.TolerationOpExists}}
	if _, err := daemonset.Apply(ctx, env.Client, m, daemonset.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	wctx2, wcancel2 := context.WithCancel(ctx)
	defer wcancel2()
	want := map[string]string{ok: daemonset.ReasonOldTemplate, small: daemonset.ReasonUnschedulable}
	settled := func(s daemonset.Status) bool {
		got := map[string]string{}
		for _, p := range s.Problems() {
			got[p.Node] = p.Reason
		}
		return s.Ready == 2 && mapsEqual(got, want)
	}
	_, err = daemonset.Wait(wctx2, env.Client, ns, "glusterfs", daemonset.WaitOptions{OnProgress: func(s daemonset.Status) {
		last = s
		if settled(s) {
			wcancel2()
		}
	}})
	if nr, isNR := daemonset.IsNotReady(err); !isNR || !settled(nr.Status) {
		t.Errorf("after tolerating the taint: %v, want %v", err, want)
	}
}

// The rendered YAML applies with a server-side dry run, as kubectl apply
// --server-side --dry-run=server does, and through glusterkube's own apply.
func TestRenderedYAMLServerSideDryRun(t *testing.T) {
	env := testenv.Get(t)
	ctx := context.Background()
	// The example's namespace exists (a dry run would not create it for the
	// DaemonSet); only this test in this package's environment uses it.
	if _, err := env.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: daemonset.DefaultNamespace}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = env.Client.CoreV1().Namespaces().Delete(context.Background(), daemonset.DefaultNamespace, metav1.DeleteOptions{})
	})
	b, err := os.ReadFile("../examples/glusterfs-daemonset.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(b), 4096)
	n := 0
	for {
		var obj map[string]any
		if err := dec.Decode(&obj); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		u := &unstructured.Unstructured{Object: obj}
		if err := applyDryRun(ctx, t, env.Config, u); err != nil {
			t.Errorf("apply %s %s: %v", u.GetKind(), u.GetName(), err)
		}
		n++
	}
	if n != 2 {
		t.Errorf("applied %d objects, want Namespace and DaemonSet", n)
	}
	if _, err := env.Client.AppsV1().DaemonSets(daemonset.DefaultNamespace).Get(ctx, "glusterfs", metav1.GetOptions{}); err == nil {
		t.Error("dry run created the DaemonSet")
	}

	m, err := daemonset.Render(daemonset.Values{Namespace: env.Namespace(t), CreateNamespace: ptr.To(false)})
	if err != nil {
		t.Fatal(err)
	}
	res, err := daemonset.Apply(ctx, env.Client, m, daemonset.ApplyOptions{DryRun: true})
	if err != nil || res[0].Change != daemonset.Created {
		t.Errorf("glusterkube dry-run apply: %v %v", res, err)
	}
	if _, err := env.Client.AppsV1().DaemonSets(m.DaemonSet.Namespace).Get(ctx, "glusterfs", metav1.GetOptions{}); err == nil {
		t.Error("dry run created the DaemonSet")
	}

	// A dry run into a namespace that does not exist yet says so, and
	// creates neither.
	fresh := "gk-dry-" + rand.String(5)
	m, err = daemonset.Render(daemonset.Values{Namespace: fresh})
	if err != nil {
		t.Fatal(err)
	}
	res, err = daemonset.Apply(ctx, env.Client, m, daemonset.ApplyOptions{DryRun: true})
	if err != nil || len(res) != 2 || res[0].Change != daemonset.Created || res[1].Note == "" {
		t.Errorf("dry run into a new namespace: %v %v", res, err)
	}
	if _, err := env.Client.CoreV1().Namespaces().Get(ctx, fresh, metav1.GetOptions{}); err == nil {
		t.Error("dry run created the namespace")
	}

	kubectl, err := testenv.Binary(ctx, "kubectl")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(ctx, kubectl, "--kubeconfig", env.Kubeconfig, "apply", "--server-side", "--dry-run=server", "-f", "../examples/glusterfs-daemonset.yaml").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "namespace/glusterfs serverside-applied (server dry run)") || !strings.Contains(string(out), "daemonset.apps/glusterfs serverside-applied (server dry run)") {
		t.Errorf("kubectl apply --server-side --dry-run=server: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}

// `glusterkube daemonset render | kubectl apply -f -` works on a cluster
// that has never seen glusterkube: the rendered stream carries the
// Namespace before the DaemonSet, and kubectl creates them in that order.
func TestRenderPipedToKubectlApply(t *testing.T) {
	env := testenv.Get(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	kubectl, err := testenv.Binary(ctx, "kubectl")
	if err != nil {
		t.Fatal(err)
	}
	fresh := "gk-pipe-" + rand.String(5)
	t.Cleanup(func() {
		_ = env.Client.CoreV1().Namespaces().Delete(context.Background(), fresh, metav1.DeleteOptions{})
	})
	var rendered, errOut bytes.Buffer
	if err := app.Run(ctx, []string{"daemonset", "render", "-n", fresh}, app.Streams{Out: &rendered, Err: &errOut}); err != nil {
		t.Fatalf("render: %v\n%s", err, errOut.String())
	}
	for _, args := range [][]string{{"apply", "-f", "-"}, {"apply", "--server-side", "-f", "-"}} {
		cmd := exec.CommandContext(ctx, kubectl, append([]string{"--kubeconfig", env.Kubeconfig}, args...)...)
		cmd.Stdin = bytes.NewReader(rendered.Bytes())
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("glusterkube daemonset render -n %s | kubectl %s: %v\n%s", fresh, strings.Join(args, " "), err, out)
		}
		t.Logf("kubectl %s:\n%s", strings.Join(args, " "), out)
	}
	if _, err := env.Client.AppsV1().DaemonSets(fresh).Get(ctx, "glusterfs", metav1.GetOptions{}); err != nil {
		t.Errorf("the DaemonSet was not created: %v", err)
	}
}

func applyDryRun(ctx context.Context, t *testing.T, cfg *rest.Config, obj *unstructured.Unstructured) error {
	t.Helper()
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	gvk := obj.GroupVersionKind()
	mapping, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	data, err := obj.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var ri dynamic.ResourceInterface = dyn.Resource(mapping.Resource)
	if ns := obj.GetNamespace(); ns != "" {
		ri = dyn.Resource(mapping.Resource).Namespace(ns)
	}
	_, err = ri.Patch(ctx, obj.GetName(), types.ApplyPatchType, data, metav1.PatchOptions{FieldManager: "kubectl", Force: ptr.To(true), DryRun: []string{metav1.DryRunAll}})
	return err
}

// render layers flags over a values file over the template, and rejects
// a bad values file naming it and the field.
func TestCommandRender(t *testing.T) {
	dir := t.TempDir()
	values := dir + "/values.yaml"
	if err := os.WriteFile(values, []byte("image: example.com/gluster:1\nnamespace: storage\npriorityClassName: system-node-critical\nresources:\n  requests:\n    memory: 1Gi\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	err := app.Run(context.Background(), []string{"daemonset", "render", "--values", values, "--image", "example.com/gluster:2", "--cpu-request", "300m", "--toleration", "dedicated=storage:NoSchedule"}, app.Streams{Out: &out, Err: &errOut})
	if err != nil {
		t.Fatalf("render: %v\n%s", err, errOut.String())
	}
	var ds appsv1.DaemonSet
	docs := strings.Split(out.String(), "\n---\n")
	if len(docs) != 2 {
		t.Fatalf("render printed %d documents, want Namespace and DaemonSet", len(docs))
	}
	if err := utilyaml.Unmarshal([]byte(docs[1]), &ds); err != nil {
		t.Fatal(err)
	}
	c := ds.Spec.Template.Spec.Containers[0]
	switch {
	case ds.Namespace != "storage":
		t.Errorf("namespace = %s, want the values file's", ds.Namespace)
	case c.Image != "example.com/gluster:2":
		t.Errorf("image = %s, want the flag's", c.Image)
	case c.Resources.Requests.Cpu().String() != "300m" || c.Resources.Requests.Memory().String() != "1Gi":
		t.Errorf("requests = %v, want cpu from the flag and memory from the file", c.Resources.Requests)
	case ds.Spec.Template.Spec.PriorityClassName != "system-node-critical" || len(ds.Spec.Template.Spec.Tolerations) != 1:
		t.Errorf("priority class %q, tolerations %v", ds.Spec.Template.Spec.PriorityClassName, ds.Spec.Template.Spec.Tolerations)
	}

	if err := os.WriteFile(values, []byte("imagePullPolicy: Sometimes\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	err = app.Run(context.Background(), []string{"daemonset", "render", "--values", values}, app.Streams{Out: &out, Err: &errOut})
	if err == nil || !strings.Contains(err.Error(), values) || !strings.Contains(err.Error(), `imagePullPolicy "Sometimes"`) || out.Len() != 0 {
		t.Errorf("bad values: %v (printed %d bytes)", err, out.Len())
	}
}

// The command line: apply --wait rolls out and says so; again says
// unchanged; status --once agrees.
func TestCommandApplyWait(t *testing.T) {
	env := testenv.Get(t)
	ctx := context.Background()
	ns := env.Namespace(t)
	sfx := rand.String(5)
	key := "test.glusterkube.io/storage-" + sfx
	addNodes(t, env, testenv.NodeSpec{Name: "cmd-" + sfx + "-1", Labels: map[string]string{key: "glusterfs"}})
	run := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := app.Run(ctx, append(args, "--kubeconfig", env.Kubeconfig), app.Streams{In: strings.NewReader(""), Out: &out, Err: &errOut})
		return out.String() + errOut.String(), err
	}
	common := []string{"--namespace", ns, "--create-namespace=false", "--node-label", key + "=glusterfs"}
	start := time.Now()
	out, err := run(append([]string{"daemonset", "apply", "--wait", "--timeout", "2m"}, common...)...)
	t.Logf("glusterkube daemonset apply --wait (%s):\n%s", time.Since(start).Round(time.Millisecond), out)
	if err != nil || !strings.Contains(out, "daemonset.apps/glusterfs created") || !strings.Contains(out, "rolled out: 1 storage nodes") {
		t.Fatalf("apply --wait: %v\n%s", err, out)
	}
	out, err = run(append([]string{"daemonset", "apply"}, common...)...)
	if err != nil || !strings.Contains(out, "daemonset.apps/glusterfs unchanged") {
		t.Errorf("apply again: %v\n%s", err, out)
	}
	out, err = run("daemonset", "status", "--once", "--namespace", ns)
	if err != nil || !strings.Contains(out, "1/1 ready, 1/1 up-to-date, 1 storage nodes") {
		t.Errorf("status --once: %v\n%s", err, out)
	}
	ds, err := env.Client.AppsV1().DaemonSets(ns).Get(ctx, "glusterfs", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ds.Spec.UpdateStrategy.Type != appsv1.OnDeleteDaemonSetStrategyType {
		t.Errorf("updateStrategy = %s", ds.Spec.UpdateStrategy.Type)
	}
	managers := map[string]bool{}
	for _, mf := range ds.ManagedFields {
		managers[mf.Manager] = true
	}
	if !managers[daemonset.FieldManager] {
		t.Errorf("field managers = %v, want %s", managers, daemonset.FieldManager)
	}
}
