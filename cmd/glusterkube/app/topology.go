package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/glusterkube/glusterkube/topology"
	"github.com/glusterkube/glusterkube/volume"
	"github.com/glusterkube/glusterkube/zones"
)

// topologyFlags are the flags of the topology subcommands.
type topologyFlags struct {
	file           string
	output         string
	parallel       int
	zonesFromNodes bool
}

func topologyCommand() *Command {
	return &Command{
		Name:  "topology",
		Short: "validate, plan, load and show heketi's topology (clusters, nodes, devices)",
		Sub: []*Command{
			topologyValidateCommand(),
			topologyPlanCommand(),
			topologyLoadCommand(),
			topologyShowCommand(),
		},
	}
}

func (f *topologyFlags) addFile(fs *pflag.FlagSet) {
	fs.StringVarP(&f.file, "file", "f", "", "topology file in heketi's schema, JSON or YAML (- reads stdin)")
}

func (f *topologyFlags) addOutput(fs *pflag.FlagSet, def string, allowed ...string) {
	fs.StringVarP(&f.output, "output", "o", def, "output format: "+joinOr(allowed))
}

func joinOr(s []string) string {
	out := ""
	for i, x := range s {
		switch {
		case i == 0:
		case i == len(s)-1:
			out += " or "
		default:
			out += ", "
		}
		out += x
	}
	return out
}

func (f *topologyFlags) checkOutput(allowed ...string) error {
	for _, a := range allowed {
		if f.output == a {
			return nil
		}
	}
	return Usagef("--output %q: expected %s", f.output, joinOr(allowed))
}

// readTopology reads and validates -f. On errors it prints every diagnostic
// (as text on stderr, or as JSON on stdout with -o json) and returns
// ErrSilent; warnings are printed on stderr and reading goes on.
func (f *topologyFlags) readTopology(g *Globals) (*topology.Topology, []topology.Diagnostic, error) {
	if f.file == "" {
		return nil, nil, Usagef("--file (-f) is required: the topology file to read, or - for stdin")
	}
	t, diags, err := topology.ReadFile(f.file, g.In)
	if err != nil && diags == nil {
		return nil, nil, err // could not read the file at all
	}
	if f.output == "json" && err != nil {
		_ = writeDiagnosticsJSON(g.Out, diags)
		return nil, diags, ErrSilent
	}
	for _, d := range diags {
		fmt.Fprintln(g.Err, d.String())
	}
	if err != nil {
		var ve *topology.ValidationError
		n := 0
		if errors.As(err, &ve) {
			n = len(ve.Diagnostics)
		}
		fmt.Fprintf(g.Err, "%s: %d error(s); nothing was sent to heketi\n", displayName(f.file), n)
		return nil, diags, ErrSilent
	}
	return t, diags, nil
}

func displayName(file string) string {
	if file == "-" {
		return "<stdin>"
	}
	return file
}

type diagnosticsJSON struct {
	OK          bool                  `json:"ok"`
	Diagnostics []topology.Diagnostic `json:"diagnostics"`
}

func writeDiagnosticsJSON(w io.Writer, diags []topology.Diagnostic) error {
	if diags == nil {
		diags = []topology.Diagnostic{}
	}
	return writeIndentedJSON(w, diagnosticsJSON{OK: !topology.HasErrors(diags), Diagnostics: diags})
}

func topologyValidateCommand() *Command {
	f := &topologyFlags{}
	return &Command{
		Name:  "validate",
		Short: "check a topology file against heketi's rules; exit 1 on errors (no heketi needed)",
		Usage: "-f FILE [-o text|json] [--kubeconfig FILE]",
		Flags: func(fs *pflag.FlagSet, g *Globals) {
			f.addFile(fs)
			f.addOutput(fs, "text", "text", "json")
			g.AddOptionalKubeFlags(fs, "the zone checks against the Nodes")
		},
		Run: func(ctx context.Context, g *Globals, args []string) error {
			if err := NoArgs(args); err != nil {
				return err
			}
			if err := f.checkOutput("text", "json"); err != nil {
				return err
			}
			t, diags, err := f.readTopology(g)
			if err != nil {
				return err
			}
			// With cluster access, the file's zone numbers are checked
			// against the Nodes' zone labels (warnings).
			if g.ClusterConfigured() {
				kubeNodes, err := g.listNodes(ctx)
				if err != nil {
					fmt.Fprintf(g.Err, "warning: zones not checked against the Nodes: %v\n", err)
				} else {
					zd := zones.Diagnostics(zones.Check(t, nil, kubeNodes), displayName(f.file))
					if f.output != "json" {
						for _, d := range zd {
							fmt.Fprintln(g.Err, withFlags(d.String()))
						}
					}
					diags = append(diags, zd...)
				}
			}
			if f.output == "json" {
				return writeDiagnosticsJSON(g.Out, diags)
			}
			clusters, nodes, devices := t.Size()
			fmt.Fprintf(g.Out, "%s: valid: %d cluster(s), %d node(s), %d device(s)", displayName(f.file), clusters, nodes, devices)
			if len(diags) > 0 {
				fmt.Fprintf(g.Out, "; %d warning(s)", len(diags))
			}
			fmt.Fprintln(g.Out)
			return nil
		},
	}
}

func topologyPlanCommand() *Command {
	f := &topologyFlags{}
	return &Command{
		Name:  "plan",
		Short: "show what load would add to heketi, and what differs but load leaves alone",
		Usage: "-f FILE [-o text|json] [--zones-from-nodes] [heketi flags] [--kubeconfig FILE]",
		Flags: func(fs *pflag.FlagSet, g *Globals) {
			f.addFile(fs)
			f.addOutput(fs, "text", "text", "json")
			f.addZonesFromNodes(fs, "show what load --zones-from-nodes would change")
			g.AddHeketiFlags(fs)
			g.AddOptionalKubeFlags(fs, "the zone checks against the Nodes")
		},
		Run: func(ctx context.Context, g *Globals, args []string) error {
			if err := NoArgs(args); err != nil {
				return err
			}
			if err := f.checkOutput("text", "json"); err != nil {
				return err
			}
			if err := f.checkZonesFromNodes(g); err != nil {
				return err
			}
			t, _, err := f.readTopology(g)
			if err != nil {
				return err
			}
			h, err := g.HeketiClient()
			if err != nil {
				return err
			}
			defer h.Close()
			cur, err := h.TopologyInfo(ctx)
			if err != nil {
				return fmt.Errorf("read heketi topology: %w", err)
			}
			var zoneDiffs []topology.Difference
			if g.ClusterConfigured() {
				kubeNodes, err := g.listNodes(ctx)
				switch {
				case err != nil && f.zonesFromNodes:
					return err
				case err != nil:
					fmt.Fprintf(g.Err, "warning: zones not checked against the Nodes: %v\n", err)
				case f.zonesFromNodes:
					// What load --zones-from-nodes does, without doing it:
					// nodes it would re-add are planned as new.
					r := zones.Check(t, cur, kubeNodes)
					changes := zones.Plan(r, t, cur)
					zones.Rewrite(t, r)
					cur = zones.WithoutReadded(cur, changes)
					for _, c := range changes {
						zoneDiffs = append(zoneDiffs, topology.Difference{Path: c.Path, Node: c.Manage, Message: "zones: would " + c.String()})
					}
				default:
					zoneDiffs = zones.Differences(zones.Check(t, cur, kubeNodes))
				}
			}
			plan := topology.PlanAgainst(t, cur)
			for _, d := range zoneDiffs {
				d.Message = withFlags(d.Message)
				plan.Differences = append(plan.Differences, d)
			}
			if f.output == "json" {
				return plan.WriteJSON(g.Out)
			}
			return plan.WriteText(g.Out)
		},
	}
}

func topologyLoadCommand() *Command {
	f := &topologyFlags{}
	return &Command{
		Name:  "load",
		Short: "add the file's clusters, nodes and devices to heketi (what is there already is left alone)",
		Usage: "-f FILE [-o text|json] [--parallel N] [--zones-from-nodes] [heketi flags] [--kubeconfig FILE]",
		Flags: func(fs *pflag.FlagSet, g *Globals) {
			f.addFile(fs)
			f.addOutput(fs, "text", "text", "json")
			fs.IntVar(&f.parallel, "parallel", topology.DefaultParallel, "heketi operations run at once")
			f.addZonesFromNodes(fs, "make heketi's zones follow the Nodes' zone labels: new nodes get their zone's number, nodes without bricks in the wrong zone are re-added, every node gets the zone tag "+volume.ZoneTag)
			g.AddHeketiFlags(fs)
			g.AddOptionalKubeFlags(fs, "the zone checks against the Nodes")
		},
		Run: func(ctx context.Context, g *Globals, args []string) error {
			if err := NoArgs(args); err != nil {
				return err
			}
			if err := f.checkOutput("text", "json"); err != nil {
				return err
			}
			if f.parallel < 1 {
				return Usagef("--parallel must be at least 1, got %d", f.parallel)
			}
			if err := f.checkZonesFromNodes(g); err != nil {
				return err
			}
			t, _, err := f.readTopology(g)
			if err != nil {
				return err
			}
			h, err := g.HeketiClient()
			if err != nil {
				return err
			}
			defer h.Close()
			var plan *topology.Plan
			zonesFailed := false
			if f.zonesFromNodes {
				kubeNodes, err := g.listNodes(ctx)
				if err != nil {
					return err
				}
				out, zerr := zones.Reconcile(ctx, h, t, kubeNodes, true)
				if out == nil {
					return zerr
				}
				lines := g.Out
				if f.output == "json" {
					lines = g.Err
				}
				for _, c := range out.Changes {
					fmt.Fprintln(lines, "zones: "+c.String())
				}
				zonesFailed = zerr != nil || len(out.Refused()) > 0
				if zerr != nil && out.Current == nil {
					return zerr
				}
				plan = topology.PlanAgainst(t, out.Current)
			} else if plan, err = topology.MakePlan(ctx, h, t); err != nil {
				return err
			}
			progress := newLoadProgress(g, f.output == "json", planOps(plan))
			report, err := topology.Apply(ctx, h, plan, topology.Options{Parallel: f.parallel, Progress: progress.update})
			progress.finish()
			for i := range report.Results {
				report.Results[i].Hint = withFlags(report.Results[i].Hint)
			}
			if f.output == "json" {
				if werr := report.WriteJSON(g.Out); werr != nil {
					return werr
				}
			} else if werr := report.WriteSummary(g.Out); werr != nil {
				return werr
			}
			if err != nil || zonesFailed {
				return ErrSilent
			}
			return nil
		},
	}
}

func (f *topologyFlags) addZonesFromNodes(fs *pflag.FlagSet, what string) {
	fs.BoolVar(&f.zonesFromNodes, "zones-from-nodes", false, what+" (needs cluster access)")
}

func (f *topologyFlags) checkZonesFromNodes(g *Globals) error {
	if f.zonesFromNodes && !g.ClusterConfigured() {
		return Usagef("--zones-from-nodes reads the Nodes' zone labels: give --kubeconfig (or set $KUBECONFIG, or run in a pod)")
	}
	return nil
}

func planOps(p *topology.Plan) int {
	c := p.Counts()
	return c.Changes() + c.Conflicts
}

// loadProgress shows load's progress: a bar with counts when stderr is a
// terminal, otherwise one line per finished operation (on stdout, or on
// stderr when stdout carries JSON).
type loadProgress struct {
	bar    *progressbar.ProgressBar
	lines  io.Writer
	failed int
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(interface{ Fd() uintptr })
	return ok && term.IsTerminal(int(f.Fd()))
}

func newLoadProgress(g *Globals, jsonOut bool, total int) *loadProgress {
	p := &loadProgress{lines: g.Out}
	if jsonOut {
		p.lines = g.Err
	}
	if total > 0 && isTerminal(g.Err) {
		p.bar = progressbar.NewOptions(total,
			progressbar.OptionSetWriter(g.Err),
			progressbar.OptionSetDescription("loading topology"),
			progressbar.OptionShowCount(),
			progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(50*time.Millisecond),
			progressbar.OptionShowElapsedTimeOnFinish(),
			progressbar.OptionClearOnFinish(),
			progressbar.OptionSetPredictTime(true),
		)
	}
	return p
}

func (p *loadProgress) update(r topology.Result, _, _ int) {
	if p.bar == nil {
		fmt.Fprintln(p.lines, topology.FormatResult(r))
		return
	}
	if r.Status != topology.Done {
		p.failed++
		p.bar.Describe(fmt.Sprintf("loading topology (%d not done)", p.failed))
	}
	_ = p.bar.Add(1)
}

func (p *loadProgress) finish() {
	if p.bar != nil {
		_ = p.bar.Finish()
	}
}

func topologyShowCommand() *Command {
	f := &topologyFlags{}
	return &Command{
		Name:  "show",
		Short: "export heketi's topology as a file load accepts (or as a table)",
		Usage: "[-o json|yaml|table] [heketi flags]",
		Flags: func(fs *pflag.FlagSet, g *Globals) {
			f.addOutput(fs, "json", "json", "yaml", "table")
			g.AddHeketiFlags(fs)
		},
		Run: func(ctx context.Context, g *Globals, args []string) error {
			if err := NoArgs(args); err != nil {
				return err
			}
			if err := f.checkOutput("json", "yaml", "table"); err != nil {
				return err
			}
			h, err := g.HeketiClient()
			if err != nil {
				return err
			}
			defer h.Close()
			cur, err := h.TopologyInfo(ctx)
			if err != nil {
				return fmt.Errorf("read heketi topology: %w", err)
			}
			if f.output != "table" {
				for _, id := range topology.EmptyClusters(cur) {
					fmt.Fprintf(g.Err, "note: heketi cluster %s has no nodes; a topology file cannot hold it, so it is left out\n", id)
				}
			}
			switch f.output {
			case "table":
				return topology.WriteTable(g.Out, cur)
			case "yaml":
				return topology.EncodeYAML(g.Out, topology.Export(cur))
			}
			return topology.EncodeJSON(g.Out, topology.Export(cur))
		},
	}
}

func writeIndentedJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
