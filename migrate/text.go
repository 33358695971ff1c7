package migrate

import (
	"fmt"
	"io"
	"strings"
)

// WriteText writes the plan for people: one block per PV, then a summary.
func (p *Plan) WriteText(w io.Writer) {
	for _, it := range p.Items {
		claim := it.Claim
		if claim == "" {
			claim = "<no claim>"
		}
		fmt.Fprintf(w, "PV %s  claim %s  %s", it.PV, claim, it.Phase)
		if it.Origin != "" {
			fmt.Fprintf(w, "  %s", it.Origin)
		}
		fmt.Fprintf(w, "  => %s\n", it.State)
		if it.Reason != "" {
			fmt.Fprintf(w, "  why:     %s\n", it.Reason)
		}
		if it.From != nil && it.From.Kind == "glusterfs" {
			fmt.Fprintf(w, "  source:  glusterfs volume %s via Endpoints %s%s\n", it.From.Path, it.From.Endpoints, readOnly(it.From.ReadOnly))
		}
		if it.To != nil && it.State != StateCannot {
			fmt.Fprintf(w, "     ->    csi %s handle %s volume %s servers %s%s\n", it.To.Driver, it.To.VolumeHandle, it.To.Volume, strings.Join(it.To.Servers, ","), readOnly(it.To.ReadOnly))
		}
		if it.ReclaimPolicy != "" && it.State != StateCannot && it.State != StateCleanup {
			fmt.Fprintf(w, "  reclaim: %s (Retain while converting)\n", it.ReclaimPolicy)
		}
		for _, c := range it.Changes {
			fmt.Fprintf(w, "  change:  %s\n", c)
		}
		if it.RemoveEndpoints != "" && it.State != StateCannot {
			fmt.Fprintf(w, "  then:    delete Endpoints and Service %s (unless something else uses them)\n", it.RemoveEndpoints)
		}
		for _, n := range it.Notes {
			fmt.Fprintf(w, "  note:    %s\n", n)
		}
	}
	fmt.Fprintf(w, "%d PV(s): %d ready, %d in progress, %d in use, %d cannot be converted, %d to clean up; %d already converted.\n",
		len(p.Items), p.Count(StateReady), p.Count(StateInProgress), p.Count(StateInUse), p.Count(StateCannot), p.Count(StateCleanup), p.Converted)
}

func readOnly(ro bool) string {
	if ro {
		return " (read-only)"
	}
	return ""
}

// WriteText writes one result line.
func (r Result) WriteText(w io.Writer) {
	fmt.Fprintf(w, "%-10s PV %s", r.Outcome, r.PV)
	if r.Claim != "" {
		fmt.Fprintf(w, " (claim %s)", r.Claim)
	}
	if r.Seconds > 0 {
		fmt.Fprintf(w, " in %.1fs", r.Seconds)
	}
	if r.Message != "" {
		fmt.Fprintf(w, ": %s", r.Message)
	}
	fmt.Fprintln(w)
}

// WriteText writes the report's summary.
func (r *Report) WriteText(w io.Writer) {
	fmt.Fprintf(w, "%d converted, %d restored, %d cleaned up, %d refused (in use), %d skipped, %d failed, in %.1fs.\n",
		r.Count(OutcomeConverted), r.Count(OutcomeRestored), r.Count(OutcomeCleaned), r.Count(OutcomeRefused), r.Count(OutcomeSkipped), r.Count(OutcomeFailed), r.Seconds)
	if r.Count(OutcomeFailed) > 0 {
		fmt.Fprintln(w, "Run the same command again to finish the failed ones: every step resumes where it stopped.")
	}
}
