package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/glusterkube/glusterkube/nodes"
	"github.com/glusterkube/glusterkube/topology"
)

func nodesCommand() *Command {
	return &Command{
		Name:  "nodes",
		Short: "label the Kubernetes Nodes named in a topology as storage nodes",
		Sub:   []*Command{nodesLabelCommand()},
	}
}

type nodesLabelFlags struct {
	file      string
	label     string
	zoneLabel string
	dryRun    bool
	prune     bool
	output    string
	timeout   time.Duration
}

func nodesLabelCommand() *Command {
	f := &nodesLabelFlags{}
	return &Command{
		Name:  "label",
		Short: "label the topology's nodes as storage nodes (with their heketi zone)",
		Usage: "-f FILE [--dry-run] [--prune]",
		Flags: func(fs *pflag.FlagSet, g *Globals) {
			fs.StringVarP(&f.file, "file", "f", "", "topology file (heketi's schema, JSON or YAML); - reads stdin")
			fs.StringVar(&f.label, "label", nodes.DefaultLabelKey+"="+nodes.DefaultLabelValue, "storage node label KEY=VALUE (the DaemonSet's nodeSelector)")
			fs.StringVar(&f.zoneLabel, "zone-label", nodes.DefaultZoneLabel, "label key recording the heketi zone; empty disables it")
			fs.BoolVar(&f.dryRun, "dry-run", false, "report what would change, change nothing")
			fs.BoolVar(&f.prune, "prune", false, "remove the label from Nodes no longer in the topology (refused while heketi holds bricks on them)")
			fs.StringVarP(&f.output, "output", "o", "text", "output format: text or json")
			fs.DurationVar(&f.timeout, "timeout", 2*time.Minute, "deadline for the whole operation")
			g.AddKubeFlags(fs)
			g.AddHeketiFlags(fs)
		},
		Run: func(ctx context.Context, g *Globals, args []string) error {
			return runNodesLabel(ctx, g, f, args)
		},
	}
}

func runNodesLabel(ctx context.Context, g *Globals, f *nodesLabelFlags, args []string) error {
	if err := NoArgs(args); err != nil {
		return err
	}
	if f.file == "" {
		return Usagef("pass the topology file with -f FILE (- for stdin)")
	}
	if f.output != "text" && f.output != "json" {
		return Usagef("--output %q: want text or json", f.output)
	}
	key, value, ok := strings.Cut(f.label, "=")
	if !ok || key == "" {
		return Usagef("--label %q: want KEY=VALUE, e.g. storagenode=glusterfs", f.label)
	}
	opts := nodes.Options{LabelKey: key, LabelValue: value, ZoneLabel: f.zoneLabel, DryRun: f.dryRun, Prune: f.prune}
	if opts.ZoneLabel == "" {
		opts.ZoneLabel = "-"
	}

	topo, diags, err := topology.ReadFile(f.file, g.In)
	for _, d := range diags {
		fmt.Fprintln(g.Err, d.String())
	}
	if err != nil {
		return err
	}
	if topology.HasErrors(diags) {
		return ErrSilent
	}

	if f.prune {
		h, err := g.HeketiClient()
		if err != nil {
			return err
		}
		opts.Heketi = h
	}
	client, _, err := g.KubeClient()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	res, err := nodes.Label(ctx, client, topo, opts)
	if res != nil {
		if f.output == "json" {
			enc := json.NewEncoder(g.Out)
			enc.SetIndent("", "  ")
			if e := enc.Encode(res); e != nil {
				return e
			}
		} else {
			printLabelResult(g.Out, res)
		}
	}
	if err != nil {
		return err
	}
	if res.Problems() {
		return ErrSilent
	}
	return nil
}

func printLabelResult(w io.Writer, r *nodes.Result) {
	zone := "no zone label"
	if r.ZoneLabel != "" {
		zone = "zone label " + r.ZoneLabel
	}
	dry := ""
	if r.DryRun {
		dry = " (dry run: nothing changed)"
	}
	fmt.Fprintf(w, "Storage nodes, label %s, %s%s:\n", r.Label, zone, dry)
	if len(r.Nodes) == 0 {
		fmt.Fprintln(w, "  none matched")
	}
	for _, n := range r.Nodes {
		fmt.Fprintf(w, "  %-24s %-12s topology node %s, matched by %s, zone %d\n", n.Node, n.Action, n.Topology, n.By, n.Zone)
	}
	if len(r.Unmatched) > 0 {
		fmt.Fprintln(w, "Topology nodes without a Node (not labelled; no Node has one of these names or addresses):")
		for _, u := range r.Unmatched {
			fmt.Fprintf(w, "  %s (%s): %s\n", u.Topology, u.Path, strings.Join(u.Hostnames, ", "))
		}
	}
	if len(r.Ambiguous) > 0 {
		fmt.Fprintln(w, "Ambiguous topology nodes (not labelled; make the hostnames name one Node):")
		for _, a := range r.Ambiguous {
			fmt.Fprintf(w, "  %s (%s): %s: %s\n", a.Topology, a.Path, a.Reason, strings.Join(a.Candidates, ", "))
		}
	}
	if len(r.Stale) > 0 {
		fmt.Fprintf(w, "Nodes labelled %s but not in the topology:\n", r.Label)
		for _, s := range r.Stale {
			switch s.Action {
			case nodes.Kept:
				fmt.Fprintf(w, "  %-24s kept (pass --prune to remove the label)\n", s.Node)
			case nodes.Refused:
				var bricks []string
				for _, b := range s.Bricks {
					bricks = append(bricks, fmt.Sprintf("%s (volume %s, device %s)", b.ID, b.Volume, b.Device))
				}
				fmt.Fprintf(w, "  %-24s refused: heketi holds %d bricks on it: %s; move or delete them (heketi-cli device remove/delete, node delete) first\n", s.Node, len(s.Bricks), strings.Join(bricks, ", "))
			default:
				fmt.Fprintf(w, "  %-24s %s\n", s.Node, s.Action)
			}
		}
	}
}
