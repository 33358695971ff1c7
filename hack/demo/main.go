// Command demo is `make demo`: it starts a local environment (a control
// plane with 5 kwok nodes and a heketi server) and walks through what
// glusterkube does to it, running the real glusterkube commands.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"

	"github.com/glusterkube/glusterkube/cmd/glusterkube/app"
	"github.com/glusterkube/glusterkube/internal/heketi"
	"github.com/glusterkube/glusterkube/internal/manifest"
	"github.com/glusterkube/glusterkube/internal/testenv"
)

const demoNamespace = "demo"

type demo struct {
	out    io.Writer
	env    *testenv.Env
	root   string
	step   int
	steps  int
	hk     *heketi.Client
	kube   kubernetes.Interface
	failed []string
}

func main() {
	// The demo runs the node's glusterkube processes (mount service, CSI
	// node plugin) as this binary, re-executed.
	testenv.RunCommandIfAsked(func(args []string) int { return app.Main(args, os.Stdin, os.Stdout, os.Stderr) })
	keep := flag.Bool("keep", false, "leave the environment running at the end (Ctrl-C stops it)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code := run(ctx, os.Stdout, *keep)
	testenv.StopAll()
	if left := testenv.Running(); len(left) > 0 {
		fmt.Fprintf(os.Stderr, "demo: processes left running: %s\n", strings.Join(left, ", "))
		code = 1
	} else if left := children(); len(left) > 0 {
		fmt.Fprintf(os.Stderr, "demo: child processes left running: %s\n", strings.Join(left, ", "))
		code = 1
	} else {
		fmt.Println("\nEverything stopped: no process left behind.")
	}
	os.Exit(code)
}

func run(ctx context.Context, out io.Writer, keep bool) int {
	d := &demo{out: out, root: testenv.RepoRoot(), steps: 9}
	d.title("Start a local environment: etcd, kube-apiserver " + testenv.KubeVersion + ", controller-manager, scheduler, 5 kwok nodes, heketi (mock executor)")
	start := time.Now()
	env, err := testenv.Start(ctx, testenv.Options{Kube: true, Heketi: true, Nodes: 5})
	if err != nil {
		fmt.Fprintf(out, "demo: %v\n", err)
		return 1
	}
	defer env.Stop()
	d.env, d.kube = env, env.Client
	d.hk, _ = heketi.New(heketi.Config{URL: env.Heketi.URL})
	os.Setenv("KUBECONFIG", env.Kubeconfig)
	os.Setenv("HEKETI_CLI_SERVER", env.Heketi.URL)
	d.say("up in %s: nodes %s; heketi at %s", time.Since(start).Round(100*time.Millisecond), strings.Join(env.Nodes, ", "), env.Heketi.URL)

	topo := "examples/topology.json"
	d.title("Load the topology into heketi (clusters, nodes, devices)")
	d.glusterkube(ctx, "topology", "plan", "-f", topo)
	d.glusterkube(ctx, "topology", "load", "-f", topo)
	d.glusterkube(ctx, "topology", "load", "-f", topo)

	d.title("Label the storage nodes named in the topology")
	d.glusterkube(ctx, "nodes", "label", "-f", topo)
	d.showNodes(ctx)

	d.title("Roll out the GlusterFS DaemonSet onto the labelled nodes")
	d.glusterkube(ctx, "daemonset", "apply", "--wait", "--timeout", "2m")

	d.title("Start the provisioner (in the background, as `glusterkube run` or a Deployment would)")
	provCtx, stopProv := context.WithCancel(ctx)
	provDone := make(chan error, 1)
	var provLog testenv.Buffer
	go func() {
		provDone <- app.Run(provCtx, []string{"provisioner", "--leader-election=false"}, app.Streams{In: strings.NewReader(""), Out: &provLog, Err: &provLog})
	}()
	provExited := false
	select {
	case err := <-provDone:
		provExited = true
		d.skipOrFail("provisioner", err)
	case <-time.After(2 * time.Second):
		d.say("provisioner running")
	}
	defer func() {
		stopProv()
		if !provExited {
			<-provDone
		}
	}()

	d.title("StorageClasses (Delete and Retain) and a StatefulSet with volumeClaimTemplates, 3 replicas")
	if _, err := d.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: demoNamespace}}, metav1.CreateOptions{}); err != nil {
		d.say("create namespace: %v", err)
	}
	for _, f := range []string{
		"examples/provisioner/00-namespace.yaml",
		"examples/provisioner/20-heketi-secret.yaml",
		"examples/provisioner/40-storageclasses.yaml",
		"examples/provisioner/50-statefulset.yaml",
		"examples/claim-retain.yaml",
	} {
		d.apply(ctx, f)
	}
	d.waitBound(ctx, 2*time.Minute)

	d.title("The claims and their heketi volumes")
	d.showClaims(ctx)
	d.showHeketiVolumes(ctx)

	// The last word is a pod on a real node writing through GlusterFS; a
	// machine that cannot run a real node gets the node plugin as host
	// processes instead, before the claims go.
	realNodeErr := realNodeCheck(ctx)
	if realNodeErr != nil {
		d.title("Mount " + mountClaim + "'s volume through the CSI node plugin, as the kubelet does for pod " + mountPod)
		if testenv.InCI() {
			d.skipOrFail("real node", fmt.Errorf("this machine cannot run a real node: %w", realNodeErr))
		} else {
			d.say("(no real node: %v; the node plugin runs as host processes)", realNodeErr)
		}
		d.mountThroughNodePlugin(ctx)
	}

	d.title("Delete the claims: the Delete class removes its volumes, the Retain class keeps them")
	d.deleteClaims(ctx)
	d.showPVs(ctx)
	d.showHeketiVolumes(ctx)

	if realNodeErr == nil {
		d.title("A real node joins: a pod on it writes to a claim through the CSI driver, installed from examples/csi")
		if err := d.realNodeWrites(ctx); err != nil {
			d.skipOrFail("a pod on the real node writes through GlusterFS", err)
		}
	}

	if len(d.failed) > 0 {
		fmt.Fprintf(d.out, "\nDemo finished with failures: %s\n", strings.Join(d.failed, "; "))
	} else {
		fmt.Fprintf(d.out, "\nDemo finished.\n")
	}
	if keep {
		fmt.Fprintf(d.out, "\nThe environment is still up. Explore it with:\n  export KUBECONFIG=%s\n  export HEKETI_CLI_SERVER=%s\n  go run ./cmd/glusterkube topology show\nCtrl-C stops everything.\n", env.Kubeconfig, env.Heketi.URL)
		<-ctx.Done()
	}
	if len(d.failed) > 0 {
		return 1
	}
	return 0
}

func (d *demo) title(s string) {
	d.step++
	fmt.Fprintf(d.out, "\n[%d/%d] %s\n", d.step, d.steps, s)
}

func (d *demo) say(format string, a ...any) {
	fmt.Fprintf(d.out, "      "+format+"\n", a...)
}

// glusterkube runs one glusterkube command in-process, as a user would on
// the command line, and prints its output indented.
func (d *demo) glusterkube(ctx context.Context, args ...string) {
	fmt.Fprintf(d.out, "    $ glusterkube %s\n", strings.Join(args, " "))
	var buf testenv.Buffer // the background provisioner logs through klog meanwhile
	err := app.Run(ctx, args, app.Streams{In: strings.NewReader(""), Out: &buf, Err: &buf})
	for _, line := range strings.Split(strings.TrimRight(buf.String(), "\n"), "\n") {
		if line != "" {
			fmt.Fprintf(d.out, "      %s\n", line)
		}
	}
	if err != nil {
		d.skipOrFail("glusterkube "+strings.Join(args, " "), err)
	}
}

func (d *demo) skipOrFail(what string, err error) {
	if strings.Contains(err.Error(), "not built yet") {
		d.say("(%s: not built yet; the demo goes on)", what)
		return
	}
	d.say("FAILED: %v", err)
	d.failed = append(d.failed, what)
}

func (d *demo) apply(ctx context.Context, rel string) {
	data, err := os.ReadFile(filepath.Join(d.root, rel))
	if err != nil {
		d.say("(%s: not written yet; skipped)", rel)
		return
	}
	a, err := manifest.NewApplier(d.env.Config, "glusterkube-demo")
	if err != nil {
		d.skipOrFail("apply "+rel, err)
		return
	}
	fmt.Fprintf(d.out, "    $ kubectl apply --server-side -n %s -f %s\n", demoNamespace, rel)
	objs, err := a.Apply(ctx, data, demoNamespace)
	for _, o := range objs {
		d.say("%s/%s applied", strings.ToLower(o.GetKind()), o.GetName())
	}
	if err != nil {
		d.skipOrFail("apply "+rel, err)
	}
}

// waitBound watches the demo namespace's claims until all are Bound.
func (d *demo) waitBound(ctx context.Context, timeout time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	lw := cache.NewListWatchFromClient(d.kube.CoreV1().RESTClient(), "persistentvolumeclaims", demoNamespace, fields.Everything())
	phases := map[string]corev1.PersistentVolumeClaimPhase{}
	reported := -1
	_, err := watchtools.UntilWithSync(ctx, lw, &corev1.PersistentVolumeClaim{}, nil, func(ev watch.Event) (bool, error) {
		pvc, ok := ev.Object.(*corev1.PersistentVolumeClaim)
		if !ok {
			return false, nil
		}
		if ev.Type == watch.Deleted {
			delete(phases, pvc.Name)
		} else {
			phases[pvc.Name] = pvc.Status.Phase
		}
		bound := 0
		for _, p := range phases {
			if p == corev1.ClaimBound {
				bound++
			}
		}
		if bound != reported {
			reported = bound
			d.say("%d/%d claims Bound", bound, len(phases))
		}
		return len(phases) >= 4 && bound == len(phases), nil
	})
	if err != nil {
		d.skipOrFail("claims Bound", fmt.Errorf("%d claims, not all Bound: %w", len(phases), err))
	}
}

func (d *demo) showNodes(ctx context.Context) {
	nodes, err := d.kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		d.say("list nodes: %v", err)
		return
	}
	tw := tabwriter.NewWriter(d.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "      NODE\tSTORAGENODE\tZONE")
	for _, n := range nodes.Items {
		fmt.Fprintf(tw, "      %s\t%s\t%s\n", n.Name, orDash(n.Labels["storagenode"]), orDash(n.Labels["glusterkube.io/zone"]))
	}
	tw.Flush()
}

func (d *demo) showClaims(ctx context.Context) {
	pvcs, err := d.kube.CoreV1().PersistentVolumeClaims(demoNamespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		d.say("list claims: %v", err)
		return
	}
	tw := tabwriter.NewWriter(d.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "      CLAIM\tSTATUS\tVOLUME\tCLASS\tHEKETI VOLUME")
	for _, c := range pvcs.Items {
		hv := "-"
		if c.Spec.VolumeName != "" {
			if pv, err := d.kube.CoreV1().PersistentVolumes().Get(ctx, c.Spec.VolumeName, metav1.GetOptions{}); err == nil {
				hv = heketiVolumeOf(pv)
			}
		}
		fmt.Fprintf(tw, "      %s\t%s\t%s\t%s\t%s\n", c.Name, c.Status.Phase, orDash(c.Spec.VolumeName), orDash(ptrStr(c.Spec.StorageClassName)), hv)
	}
	tw.Flush()
}

func (d *demo) showPVs(ctx context.Context) {
	pvs, err := d.kube.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{})
	if err != nil {
		d.say("list volumes: %v", err)
		return
	}
	if len(pvs.Items) == 0 {
		d.say("no PersistentVolumes left")
		return
	}
	tw := tabwriter.NewWriter(d.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "      PV\tRECLAIM\tSTATUS\tCLAIM\tHEKETI VOLUME")
	for _, pv := range pvs.Items {
		claim := "-"
		if pv.Spec.ClaimRef != nil {
			claim = pv.Spec.ClaimRef.Namespace + "/" + pv.Spec.ClaimRef.Name
		}
		fmt.Fprintf(tw, "      %s\t%s\t%s\t%s\t%s\n", pv.Name, pv.Spec.PersistentVolumeReclaimPolicy, pv.Status.Phase, claim, heketiVolumeOf(&pv))
	}
	tw.Flush()
}

func (d *demo) showHeketiVolumes(ctx context.Context) {
	list, err := d.hk.VolumeList(ctx)
	if err != nil {
		d.say("heketi volume list: %v", err)
		return
	}
	d.say("heketi holds %d volume(s):", len(list.Volumes))
	var lines []string
	for _, id := range list.Volumes {
		v, err := d.hk.VolumeInfo(ctx, id)
		if err != nil {
			continue
		}
		lines = append(lines, fmt.Sprintf("        %s  %-40s %3d GiB  %s:%d  gid %d", v.Id, v.Name, v.Size, v.Durability.Type, v.Durability.Replicate.Replica, v.Gid))
	}
	sort.Strings(lines)
	for _, l := range lines {
		fmt.Fprintln(d.out, l)
	}
}

// deleteClaims deletes the StatefulSet and every claim, then waits until
// the PV controller and the provisioner have acted on each policy: PVs of
// the Delete class gone, PVs of the Retain class Released.
func (d *demo) deleteClaims(ctx context.Context) {
	_ = d.kube.AppsV1().StatefulSets(demoNamespace).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{})
	pvcs, err := d.kube.CoreV1().PersistentVolumeClaims(demoNamespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		d.say("list claims: %v", err)
		return
	}
	for _, c := range pvcs.Items {
		if err := d.kube.CoreV1().PersistentVolumeClaims(demoNamespace).Delete(ctx, c.Name, metav1.DeleteOptions{}); err == nil {
			d.say("deleted claim %s", c.Name)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	lw := cache.NewListWatchFromClient(d.kube.CoreV1().RESTClient(), "persistentvolumes", "", fields.Everything())
	pvs := map[string]*corev1.PersistentVolume{}
	_, err = watchtools.UntilWithSync(ctx, lw, &corev1.PersistentVolume{}, nil, func(ev watch.Event) (bool, error) {
		pv, ok := ev.Object.(*corev1.PersistentVolume)
		if !ok {
			return false, nil
		}
		if ev.Type == watch.Deleted {
			delete(pvs, pv.Name)
		} else {
			pvs[pv.Name] = pv
		}
		for _, p := range pvs {
			if p.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimRetain || p.Status.Phase != corev1.VolumeReleased {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		d.skipOrFail("reclaim", fmt.Errorf("volumes not reclaimed as their policies say: %w", err))
	}
}

func heketiVolumeOf(pv *corev1.PersistentVolume) string {
	for k, v := range pv.Annotations {
		if strings.HasSuffix(k, "heketi-volume-id") {
			return v
		}
	}
	return "-"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func ptrStr(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// children lists processes whose parent is this process.
func children() []string {
	me := fmt.Sprint(os.Getpid())
	entries, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) > 1 && f[1] == me && f[0] != "Z" {
			out = append(out, e.Name()+" "+s[strings.IndexByte(s, '(')+1:i])
		}
	}
	return out
}
