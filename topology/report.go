package topology

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}

func flagsText(block, file bool) string {
	var f []string
	if file {
		f = append(f, "file")
	}
	if block {
		f = append(f, "block")
	}
	if len(f) == 0 {
		return "no volumes"
	}
	return strings.Join(f, "+") + " volumes"
}

// WriteText prints the plan for people: + is added by load, = is already in
// heketi, ! cannot be added; then the differences load leaves alone.
func (p *Plan) WriteText(w io.Writer) error {
	ew := &errWriter{w: w}
	for _, cp := range p.Clusters {
		switch cp.Action {
		case Create:
			ew.printf("+ cluster %s: create (%s)\n", cp.Path, flagsText(cp.Flags.Block, cp.Flags.File))
		case Conflict:
			ew.printf("! cluster %s: not created: none of its nodes can be added\n", cp.Path)
		case Reuse:
			ew.printf("~ cluster %s: fill the empty heketi cluster %s\n", cp.Path, cp.ID)
		default:
			ew.printf("= cluster %s: heketi cluster %s\n", cp.Path, cp.ID)
		}
		for _, np := range cp.Nodes {
			add, have := 0, 0
			for _, dp := range np.Devices {
				if dp.Action == Create {
					add++
				} else {
					have++
				}
			}
			switch np.Action {
			case Create:
				ew.printf("  + node %s (zone %d, storage %s)\n", np.Manage, np.Request.Zone, strings.Join(np.Request.Hostnames.Storage, ","))
			case Conflict:
				ew.printf("  ! node %s: cannot be added: %s\n", np.Manage, np.Conflict)
			default:
				if add == 0 {
					ew.printf("  = node %s (%s), %s present\n", np.Manage, np.ID, plural(have, "device", "devices"))
					continue
				}
				ew.printf("  = node %s (%s)\n", np.Manage, np.ID)
			}
			for _, dp := range np.Devices {
				switch {
				case dp.Action == Exists:
					ew.printf("      = device %s\n", dp.Name)
				case np.Action == Conflict:
					ew.printf("      ! device %s (its node cannot be added)\n", dp.Name)
				case dp.DestroyData:
					ew.printf("      + device %s (destroydata: existing data on it is wiped)\n", dp.Name)
				default:
					ew.printf("      + device %s\n", dp.Name)
				}
			}
		}
	}
	if len(p.Differences) > 0 {
		ew.printf("\nDifferences load leaves alone (%d):\n", len(p.Differences))
		for _, d := range p.Differences {
			if d.Path != "" {
				ew.printf("  %s: %s\n", d.Path, d.Message)
			} else {
				ew.printf("  %s\n", d.Message)
			}
		}
	}
	c := p.Counts()
	ew.printf("\nPlan: %s, %s and %s to add; %s, %s and %s already in heketi",
		plural(c.ClustersToCreate, "cluster", "clusters"), plural(c.NodesToAdd, "node", "nodes"), plural(c.DevicesToAdd, "device", "devices"),
		plural(c.ClustersPresent, "cluster", "clusters"), plural(c.NodesPresent, "node", "nodes"), plural(c.DevicesPresent, "device", "devices"))
	if c.Conflicts > 0 {
		ew.printf("; %s", plural(c.Conflicts, "conflict", "conflicts"))
	}
	if c.Differences > 0 {
		ew.printf("; %s not changed", plural(c.Differences, "difference", "differences"))
	}
	ew.printf(".\n")
	return ew.err
}

// PlanJSON is the machine-readable form of a plan (`plan -o json`).
type PlanJSON struct {
	Counts Counts `json:"counts"`
	Plan   *Plan  `json:"plan"`
}

// WriteJSON prints the plan as JSON.
func (p *Plan) WriteJSON(w io.Writer) error {
	return writeJSON(w, PlanJSON{Counts: p.Counts(), Plan: p})
}

// ReportJSON is the machine-readable form of a load (`load -o json`).
type ReportJSON struct {
	OK             bool         `json:"ok"`
	Counts         Counts       `json:"planned"`
	Done           int          `json:"done"`
	Failed         int          `json:"failed"`
	Skipped        int          `json:"skipped"`
	ElapsedSeconds float64      `json:"elapsed_seconds"`
	Results        []Result     `json:"results"`
	Differences    []Difference `json:"differences"`
}

// WriteJSON prints the report as JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	out := ReportJSON{
		OK:             len(r.Failures()) == 0,
		Done:           r.Count(Done),
		Failed:         r.Count(Failed),
		Skipped:        r.Count(Skipped),
		ElapsedSeconds: r.Elapsed.Seconds(),
		Results:        r.Results,
		Differences:    []Difference{},
	}
	if r.Plan != nil {
		out.Counts = r.Plan.Counts()
		out.Differences = r.Plan.Differences
	}
	return writeJSON(w, out)
}

func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// FormatResult is one line about a finished operation (the progress output
// when stdout is not a terminal).
func FormatResult(r Result) string {
	var b strings.Builder
	switch r.Status {
	case Done:
		b.WriteString("ok      ")
	case Failed:
		b.WriteString("FAILED  ")
	default:
		b.WriteString("skipped ")
	}
	switch r.Op {
	case OpClusterCreate:
		b.WriteString("create cluster " + r.Path)
	case OpNodeAdd:
		b.WriteString("add node " + r.Node)
	case OpDeviceAdd:
		b.WriteString("add device " + r.Device + " on " + r.Node)
	default:
		b.WriteString(string(r.Op) + " " + r.Path)
	}
	if r.ID != "" {
		b.WriteString(" (" + r.ID + ")")
	}
	if r.Status == Done {
		fmt.Fprintf(&b, " in %s", r.Duration.Round(time.Millisecond))
	}
	if r.Error != "" {
		b.WriteString(": " + r.Error)
	}
	return b.String()
}

// WriteSummary prints the end of a load for people: what was done, then
// each failure with heketi's message and a hint.
func (r *Report) WriteSummary(w io.Writer) error {
	ew := &errWriter{w: w}
	var clusters, nodes, devices int
	for _, x := range r.Results {
		if x.Status != Done {
			continue
		}
		switch x.Op {
		case OpClusterCreate:
			clusters++
		case OpNodeAdd:
			nodes++
		case OpDeviceAdd:
			devices++
		}
	}
	if len(r.Results) == 0 {
		ew.printf("Nothing to do: heketi already holds the file's topology.\n")
	} else {
		ew.printf("Load took %s: %s created, %s and %s added.\n", r.Elapsed.Round(time.Millisecond),
			plural(clusters, "cluster", "clusters"), plural(nodes, "node", "nodes"), plural(devices, "device", "devices"))
	}
	if r.Plan != nil && len(r.Plan.Differences) > 0 {
		ew.printf("%s between the file and heketi left alone (see `topology plan`).\n", plural(len(r.Plan.Differences), "difference", "differences"))
	}
	fails := r.Failures()
	if len(fails) == 0 {
		return ew.err
	}
	failed := r.Count(Failed)
	ew.printf("\n%s failed, %d skipped:\n", plural(failed, "operation", "operations"), len(fails)-failed)
	for _, x := range fails {
		if x.Status == Skipped {
			continue
		}
		ew.printf("  %s (%s): %s\n", x.Object(), x.Path, x.Error)
		if x.Uncertain {
			ew.printf("    heketi may have done it anyway; a re-run finds out\n")
		}
		if x.Hint != "" {
			ew.printf("    hint: %s\n", x.Hint)
		}
	}
	skipped := map[string]int{}
	var reasons []string
	for _, x := range fails {
		if x.Status == Skipped {
			if skipped[x.Error] == 0 {
				reasons = append(reasons, x.Error)
			}
			skipped[x.Error]++
		}
	}
	for _, why := range reasons {
		ew.printf("  %s skipped: %s\n", plural(skipped[why], "operation", "operations"), strings.TrimPrefix(why, "not attempted: "))
	}
	ew.printf("Fix these and re-run load: it only does what is left.\n")
	return ew.err
}

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, args ...any) {
	if e.err != nil {
		return
	}
	_, e.err = fmt.Fprintf(e.w, format, args...)
}
