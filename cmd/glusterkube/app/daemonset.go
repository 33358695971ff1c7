package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/client-go/kubernetes"

	"github.com/glusterkube/glusterkube/daemonset"
)

func daemonsetCommand() *Command {
	return &Command{
		Name:  "daemonset",
		Short: "render, apply and watch the GlusterFS DaemonSet",
		Sub:   []*Command{daemonsetRenderCommand(), daemonsetApplyCommand(), daemonsetStatusCommand()},
	}
}

// valuesFlags are the DaemonSet's settable fields as flags, layered over a
// values file, layered over the template.
type valuesFlags struct {
	fs              *pflag.FlagSet
	file            string
	name, namespace string
	createNamespace bool
	image           string
	pullPolicy      string
	nodeLabel       string
	cpuRequest      string
	memRequest      string
	cpuLimit        string
	memLimit        string
	tolerations     []string
	priorityClass   string
}

func (f *valuesFlags) add(fs *pflag.FlagSet, d daemonset.Values) {
	f.fs = fs
	fs.StringVar(&f.file, "values", "", "values file (YAML: name, namespace, image, imagePullPolicy, nodeSelector, resources, tolerations, priorityClassName, createNamespace)")
	f.addTarget(fs, d)
	fs.BoolVar(&f.createNamespace, "create-namespace", true, "include the Namespace in the manifest")
	fs.StringVar(&f.image, "image", d.Image, "glusterfs container image")
	fs.StringVar(&f.pullPolicy, "image-pull-policy", string(d.ImagePullPolicy), "Always, IfNotPresent or Never")
	fs.StringVar(&f.nodeLabel, "node-label", selectorString(d.NodeSelector), "storage node label KEY=VALUE the pods select (see glusterkube nodes label --label)")
	fs.StringVar(&f.cpuRequest, "cpu-request", d.Resources.Requests.Cpu().String(), "CPU request")
	fs.StringVar(&f.memRequest, "memory-request", d.Resources.Requests.Memory().String(), "memory request")
	fs.StringVar(&f.cpuLimit, "cpu-limit", "", "CPU limit (default none)")
	fs.StringVar(&f.memLimit, "memory-limit", "", "memory limit (default none)")
	fs.StringArrayVar(&f.tolerations, "toleration", nil, "toleration KEY[=VALUE][:EFFECT] (repeatable), e.g. dedicated=storage:NoSchedule")
	fs.StringVar(&f.priorityClass, "priority-class", d.PriorityClassName, "priority class of the pods, e.g. system-node-critical")
}

// addTarget adds --name and --namespace only (status needs just these).
func (f *valuesFlags) addTarget(fs *pflag.FlagSet, d daemonset.Values) {
	f.fs = fs
	fs.StringVar(&f.name, "name", d.Name, "DaemonSet name")
	fs.StringVarP(&f.namespace, "namespace", "n", d.Namespace, "namespace of the DaemonSet")
}

func selectorString(m map[string]string) string {
	var parts []string
	for k, v := range m {
		parts = append(parts, k+"="+v)
	}
	return strings.Join(parts, ",")
}

// values layers the values file and the flags set on the command line.
func (f *valuesFlags) values() (daemonset.Values, error) {
	var v daemonset.Values
	if f.file != "" {
		fv, err := daemonset.LoadValues(f.file)
		if err != nil {
			return v, err
		}
		v = fv
	}
	changed := f.fs.Changed
	var over daemonset.Values
	if changed("name") {
		over.Name = f.name
	}
	if changed("namespace") {
		over.Namespace = f.namespace
	}
	if changed("create-namespace") {
		over.CreateNamespace = &f.createNamespace
	}
	if changed("image") {
		over.Image = f.image
	}
	if changed("image-pull-policy") {
		over.ImagePullPolicy = corev1.PullPolicy(f.pullPolicy)
	}
	if changed("node-label") {
		k, val, ok := strings.Cut(f.nodeLabel, "=")
		if !ok || k == "" {
			return v, Usagef("--node-label %q: want KEY=VALUE, e.g. storagenode=glusterfs", f.nodeLabel)
		}
		over.NodeSelector = map[string]string{k: val}
	}
	resFlags := []struct {
		flag string
		val  string
		lim  bool
		name corev1.ResourceName
	}{
		{"cpu-request", f.cpuRequest, false, corev1.ResourceCPU},
		{"memory-request", f.memRequest, false, corev1.ResourceMemory},
		{"cpu-limit", f.cpuLimit, true, corev1.ResourceCPU},
		{"memory-limit", f.memLimit, true, corev1.ResourceMemory},
	}
	for _, r := range resFlags {
		if !changed(r.flag) {
			continue
		}
		if over.Resources == nil {
			base := v.Resources
			if base == nil {
				d, err := daemonset.Defaults()
				if err != nil {
					return v, err
				}
				base = d.Resources
			}
			over.Resources = base.DeepCopy()
		}
		list := &over.Resources.Requests
		if r.lim {
			list = &over.Resources.Limits
		}
		if *list == nil {
			*list = corev1.ResourceList{}
		}
		if r.val == "" {
			delete(*list, r.name)
			continue
		}
		q, err := resource.ParseQuantity(r.val)
		if err != nil {
			return v, Usagef("--%s %q: %v", r.flag, r.val, err)
		}
		(*list)[r.name] = q
	}
	if changed("toleration") {
		over.Tolerations = []corev1.Toleration{}
		for _, s := range f.tolerations {
			t, err := daemonset.ParseToleration(s)
			if err != nil {
				return v, Usagef("--toleration: %v", err)
			}
			over.Tolerations = append(over.Tolerations, t)
		}
	}
	if changed("priority-class") {
		over.PriorityClassName = f.priorityClass
	}
	return v.Merge(over), nil
}

func (f *valuesFlags) render() (*daemonset.Manifest, error) {
	v, err := f.values()
	if err != nil {
		return nil, err
	}
	m, err := daemonset.Render(v)
	if err != nil {
		if f.file != "" {
			return nil, fmt.Errorf("values (file %s and flags): %w", f.file, err)
		}
		return nil, fmt.Errorf("values: %w", err)
	}
	return m, nil
}

func daemonsetDefaults() daemonset.Values {
	d, err := daemonset.Defaults()
	if err != nil {
		// The embedded template is tested; this cannot happen in a
		// released binary.
		panic(err)
	}
	return d
}

func daemonsetRenderCommand() *Command {
	f := &valuesFlags{}
	return &Command{
		Name:  "render",
		Short: "print the GlusterFS DaemonSet (and its Namespace) as YAML for kubectl apply -f -",
		Usage: "[--values FILE] [flags]",
		Flags: func(fs *pflag.FlagSet, g *Globals) { f.add(fs, daemonsetDefaults()) },
		Run: func(ctx context.Context, g *Globals, args []string) error {
			if err := NoArgs(args); err != nil {
				return err
			}
			m, err := f.render()
			if err != nil {
				return err
			}
			b, err := m.YAML()
			if err != nil {
				return err
			}
			_, err = g.Out.Write(b)
			return err
		},
	}
}

type waitFlags struct {
	timeout    time.Duration
	stallAfter time.Duration
	output     string
}

func (w *waitFlags) add(fs *pflag.FlagSet) {
	fs.DurationVar(&w.timeout, "timeout", 5*time.Minute, "how long to wait for every storage node to run a ready pod")
	fs.DurationVar(&w.stallAfter, "stall-after", time.Minute, "print a diagnosis when the rollout made no progress for this long (0 disables)")
}

func daemonsetApplyCommand() *Command {
	f := &valuesFlags{}
	w := &waitFlags{}
	var dryRun, wait bool
	return &Command{
		Name:  "apply",
		Short: "server-side apply the GlusterFS DaemonSet; --wait watches the rollout",
		Usage: "[--values FILE] [flags] [--wait]",
		Flags: func(fs *pflag.FlagSet, g *Globals) {
			f.add(fs, daemonsetDefaults())
			fs.BoolVar(&dryRun, "dry-run", false, "server-side dry run: validate and report changes without persisting")
			fs.BoolVar(&wait, "wait", false, "watch until every storage node runs a ready, up-to-date pod")
			w.add(fs)
			g.AddKubeFlags(fs)
		},
		Run: func(ctx context.Context, g *Globals, args []string) error {
			if err := NoArgs(args); err != nil {
				return err
			}
			if dryRun && wait {
				return Usagef("--dry-run and --wait are mutually exclusive")
			}
			m, err := f.render()
			if err != nil {
				return err
			}
			client, _, err := g.KubeClient()
			if err != nil {
				return err
			}
			actx, cancel := context.WithTimeout(ctx, time.Minute)
			res, err := daemonset.Apply(actx, client, m, daemonset.ApplyOptions{DryRun: dryRun})
			cancel()
			suffix := ""
			if dryRun {
				suffix = " (server dry run)"
			}
			for _, r := range res {
				fmt.Fprintln(g.Out, r.String()+suffix)
				if r.TemplateChanged {
					fmt.Fprintln(g.Out, "  the pod template changed; updateStrategy is OnDelete, so running pods keep the old one until deleted: delete them one node at a time (glusterkube daemonset status lists them)")
				}
			}
			if err != nil || !wait {
				return err
			}
			return waitRollout(ctx, g, client, m.DaemonSet.Namespace, m.DaemonSet.Name, w)
		},
	}
}

func daemonsetStatusCommand() *Command {
	f := &valuesFlags{}
	w := &waitFlags{}
	var once bool
	return &Command{
		Name:  "status",
		Short: "watch the GlusterFS DaemonSet until every storage node runs a ready pod, or say why not",
		Usage: "[--name NAME] [--namespace NS] [--once]",
		Flags: func(fs *pflag.FlagSet, g *Globals) {
			f.addTarget(fs, daemonsetDefaults())
			fs.BoolVar(&once, "once", false, "print the current state and diagnosis without waiting")
			w.add(fs)
			fs.StringVarP(&w.output, "output", "o", "text", "output format with --once: text or json")
			g.AddKubeFlags(fs)
		},
		Run: func(ctx context.Context, g *Globals, args []string) error {
			if err := NoArgs(args); err != nil {
				return err
			}
			if w.output != "text" && w.output != "json" {
				return Usagef("--output %q: want text or json", w.output)
			}
			client, _, err := g.KubeClient()
			if err != nil {
				return err
			}
			if !once {
				return waitRollout(ctx, g, client, f.namespace, f.name, w)
			}
			gctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			st, err := daemonset.Get(gctx, client, f.namespace, f.name)
			if err != nil {
				return err
			}
			if w.output == "json" {
				enc := json.NewEncoder(g.Out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(st); err != nil {
					return err
				}
			} else {
				fmt.Fprintln(g.Out, st.Summary())
				printProblems(g.Out, st)
			}
			if !st.Done() {
				return ErrSilent
			}
			return nil
		},
	}
}

func printProblems(w io.Writer, st daemonset.Status) {
	for _, p := range st.Problems() {
		fmt.Fprintf(w, "  %s\n", withFlags(p.String()))
	}
	for _, warn := range st.Warnings {
		fmt.Fprintf(w, "  daemonset: %s\n", warn)
	}
}

func waitRollout(ctx context.Context, g *Globals, client kubernetes.Interface, namespace, name string, w *waitFlags) error {
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	last := ""
	st, err := daemonset.Wait(ctx, client, namespace, name, daemonset.WaitOptions{
		OnProgress: func(s daemonset.Status) {
			if line := s.Summary(); line != last {
				last = line
				fmt.Fprintln(g.Out, line)
			}
		},
		StallAfter: w.stallAfter,
		OnStall: func(s daemonset.Status) {
			fmt.Fprintf(g.Out, "no progress for %s; storage nodes without a ready, up-to-date pod:\n", w.stallAfter)
			printProblems(g.Out, s)
		},
	})
	if nr, ok := daemonset.IsNotReady(err); ok {
		fmt.Fprintf(g.Err, "error: rollout did not finish within %s: %s\n", w.timeout, nr.Status.Summary())
		printProblems(g.Err, nr.Status)
		return ErrSilent
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(g.Out, "daemonset %s/%s rolled out: %d storage nodes run a ready, up-to-date pod\n", namespace, name, st.StorageNodes)
	return nil
}
