package app

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/glusterkube/glusterkube/migrate"
	"github.com/glusterkube/glusterkube/provisioner"
)

func migrateCommand() *Command {
	return &Command{
		Name:  "migrate",
		Short: "convert glusterfs PVs (in-tree source) into CSI PVs of glusterkube's driver",
		Sub: []*Command{
			migrateSub("plan", "list the glusterfs PVs and what converting them changes; changes nothing", runMigratePlan),
			migrateSub("apply", "convert the PVs (safe to interrupt: run it again to finish)", runMigrateApply),
			migrateSub("restore", "put back the old PVs of conversions that did not finish", runMigrateRestore),
		},
	}
}

type migrateFlags struct {
	selector        string
	output          string
	provisionerName string
	recordNamespace string
	parallel        int
	bindTimeout     time.Duration
	timeout         time.Duration
	client          controllerClient
}

type migrateRun func(ctx context.Context, g *Globals, f *migrateFlags, m *migrate.Migrator, sel migrate.Selection) error

func migrateSub(name, short string, run migrateRun) *Command {
	f := &migrateFlags{}
	return &Command{
		Name:  name,
		Short: short,
		Usage: "[NAMESPACE/CLAIM ...] [--selector LABELS] [-o text|json]",
		Flags: func(fs *pflag.FlagSet, g *Globals) {
			g.AddKubeFlags(fs)
			g.AddHeketiFlags(fs)
			fs.StringVarP(&f.selector, "selector", "l", "", "only PVs with these labels (e.g. app=db)")
			fs.StringVarP(&f.output, "output", "o", "text", "output format: text or json")
			fs.StringVar(&f.provisionerName, "provisioner-name", provisioner.DefaultName, "the glusterkube provisioner that will own converted dynamically provisioned PVs (as its --name)")
			fs.StringVar(&f.recordNamespace, "record-namespace", migrate.DefaultRecordNamespace, "namespace (existing) of the ConfigMaps recording conversions in flight")
			fs.IntVar(&f.parallel, "parallel", migrate.DefaultParallel, "PVs handled at once (plan reads twice as many at once)")
			fs.DurationVar(&f.bindTimeout, "bind-timeout", migrate.DefaultBindTimeout, "apply, restore: how long to wait for a claim to be Bound to its new PV")
			fs.DurationVar(&f.timeout, "timeout", time.Hour, "deadline for the whole run (an interrupted run resumes when run again)")
			f.client.add(fs)
		},
		Run: func(ctx context.Context, g *Globals, args []string) error {
			if f.output != "text" && f.output != "json" {
				return Usagef("--output %q: want text or json", f.output)
			}
			if f.parallel < 1 {
				return Usagef("--parallel must be at least 1")
			}
			sel, err := migrateSelection(f.selector, args)
			if err != nil {
				return err
			}
			// Without a heketi server the plan still maps PVs whose class
			// names one (resturl); the others say they need it.
			hcfg, err := g.OptionalHeketiConfig()
			if err != nil {
				return err
			}
			kube, err := f.client.build(g)
			if err != nil {
				return err
			}
			m, err := migrate.New(migrate.Config{
				Kube: kube, Heketi: hcfg, ProvisionerName: f.provisionerName, RecordNamespace: f.recordNamespace,
				Parallel: f.parallel, BindTimeout: f.bindTimeout,
			})
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(ctx, f.timeout)
			defer cancel()
			return run(ctx, g, f, m, sel)
		},
	}
}

// migrateSelection parses --selector and the NAMESPACE/CLAIM arguments.
func migrateSelection(selector string, args []string) (migrate.Selection, error) {
	var sel migrate.Selection
	if selector != "" {
		s, err := labels.Parse(selector)
		if err != nil {
			return sel, Usagef("--selector %q: %v", selector, err)
		}
		sel.Selector = s
	}
	for _, a := range args {
		ns, name, ok := strings.Cut(a, "/")
		if !ok || len(validation.IsDNS1123Label(ns)) > 0 || len(validation.IsDNS1123Subdomain(name)) > 0 {
			return sel, Usagef("claim %q: want NAMESPACE/NAME, e.g. default/data-web-0", a)
		}
		sel.Claims = append(sel.Claims, types.NamespacedName{Namespace: ns, Name: name})
	}
	return sel, nil
}

func runMigratePlan(ctx context.Context, g *Globals, f *migrateFlags, m *migrate.Migrator, sel migrate.Selection) error {
	plan, err := m.Plan(ctx, sel)
	if err != nil {
		return err
	}
	if f.output == "json" {
		return writeJSON(g, plan)
	}
	plan.WriteText(g.Out)
	return nil
}

func runMigrateApply(ctx context.Context, g *Globals, f *migrateFlags, m *migrate.Migrator, sel migrate.Selection) error {
	return migrateRunPlan(ctx, g, f, m, sel, m.Apply, true)
}

func runMigrateRestore(ctx context.Context, g *Globals, f *migrateFlags, m *migrate.Migrator, sel migrate.Selection) error {
	return migrateRunPlan(ctx, g, f, m, sel, m.Restore, false)
}

func migrateRunPlan(ctx context.Context, g *Globals, f *migrateFlags, m *migrate.Migrator, sel migrate.Selection,
	do func(context.Context, *migrate.Plan, func(migrate.Result)) *migrate.Report, converting bool) error {
	plan, err := m.Plan(ctx, sel)
	if err != nil {
		return err
	}
	var progress func(migrate.Result)
	if f.output == "text" {
		progress = func(r migrate.Result) { r.WriteText(g.Out) }
	}
	rep := do(ctx, plan, progress)
	if f.output == "json" {
		if err := writeJSON(g, rep); err != nil {
			return err
		}
	} else {
		rep.WriteText(g.Out)
	}
	if !rep.OK() {
		return fmt.Errorf("%d PV(s) refused (in use) and %d failed: see above; run again once fixed", rep.Count(migrate.OutcomeRefused), rep.Count(migrate.OutcomeFailed))
	}
	if n := rep.Count(migrate.OutcomeRestored); converting && n > 0 {
		return fmt.Errorf("%d PV(s) could not be converted and have their old PV back: see above", n)
	}
	return nil
}

func writeJSON(g *Globals, v any) error {
	enc := json.NewEncoder(g.Out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
