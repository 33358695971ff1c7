package migrate

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	"github.com/glusterkube/glusterkube/internal/workers"
)

// Outcome is what became of one PV.
type Outcome string

// Outcomes.
const (
	// OutcomeConverted: the PV has the CSI source, its claim is Bound to
	// it, its reclaim policy is back.
	OutcomeConverted Outcome = "converted"
	// OutcomeCleaned: a converted PV's leftover Endpoints and Service went.
	OutcomeCleaned Outcome = "cleaned-up"
	// OutcomeRestored: the old PV is back (Restore, or the API server
	// refused the CSI PV).
	OutcomeRestored Outcome = "restored"
	// OutcomeRefused: pods use the claim; nothing (more) was changed.
	OutcomeRefused Outcome = "refused"
	// OutcomeSkipped: it cannot be converted (the plan says why).
	OutcomeSkipped Outcome = "skipped"
	// OutcomeFailed: an error stopped it; run again to resume.
	OutcomeFailed Outcome = "failed"
)

// Result is the outcome for one PV.
type Result struct {
	PV      string  `json:"pv"`
	Claim   string  `json:"claim,omitempty"`
	Outcome Outcome `json:"outcome"`
	Message string  `json:"message,omitempty"`
	// Seconds is how long its conversion took.
	Seconds float64 `json:"seconds,omitempty"`
}

// Report is the outcome of Apply or Restore.
type Report struct {
	Results []Result `json:"results"`
	Seconds float64  `json:"seconds"`
}

// Count returns how many PVs had outcome o.
func (r *Report) Count(o Outcome) int {
	n := 0
	for _, x := range r.Results {
		if x.Outcome == o {
			n++
		}
	}
	return n
}

// OK reports that every PV that could be worked on was.
func (r *Report) OK() bool {
	return r.Count(OutcomeFailed)+r.Count(OutcomeRefused) == 0
}

// Apply converts the PVs of a plan that are ready, finishes (or, as
// their record says, restores) conversions in flight and removes leftover
// Endpoints; PVs in use and PVs that cannot be converted are reported and
// left alone. Conversions run Config.Parallel at a time; progress, when
// set, gets each result as it comes.
func (m *Migrator) Apply(ctx context.Context, plan *Plan, progress func(Result)) *Report {
	// Without the record namespace no conversion can start: say so once
	// per PV rather than fail each after its retain step.
	nsErr := m.checkRecordNamespace(ctx)
	ctx, stop := m.withPVCache(ctx)
	defer stop()
	return m.run(ctx, plan, progress, func(ctx context.Context, it *Item) Result {
		r := Result{PV: it.PV, Claim: it.Claim}
		switch it.State {
		case StateCannot:
			r.Outcome, r.Message = OutcomeSkipped, it.Reason
			return r
		case StateInUse:
			r.Outcome, r.Message = OutcomeRefused, it.Reason
			return r
		case StateCleanup:
			_, err := m.cleanup(ctx, it.pv)
			return outcome(r, OutcomeCleaned, err)
		case StateReady:
			if nsErr != nil {
				return outcome(r, OutcomeConverted, nsErr)
			}
		}
		restored, err := m.convert(ctx, it)
		if restored {
			r.Outcome = OutcomeRestored
			if err != nil {
				r.Message = err.Error()
			}
			return r
		}
		return outcome(r, OutcomeConverted, err)
	})
}

// checkRecordNamespace checks the record namespace exists.
func (m *Migrator) checkRecordNamespace(ctx context.Context) error {
	_, err := m.cfg.Kube.CoreV1().Namespaces().Get(ctx, m.cfg.RecordNamespace, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("record namespace %s does not exist: create it (kubectl create namespace %s), or choose another record namespace", m.cfg.RecordNamespace, m.cfg.RecordNamespace)
	} else if err != nil && !apierrors.IsForbidden(err) {
		// Forbidden: may not read namespaces; the record's create will tell.
		return fmt.Errorf("read record namespace %s: %w", m.cfg.RecordNamespace, err)
	}
	return nil
}

// outcome turns an error into the result's outcome and message.
func outcome(r Result, ok Outcome, err error) Result {
	switch {
	case err == nil:
		r.Outcome = ok
	case IsInUse(err):
		r.Outcome, r.Message = OutcomeRefused, err.Error()
	default:
		r.Outcome, r.Message = OutcomeFailed, err.Error()
	}
	return r
}

// run runs do on every item of the plan, Config.Parallel at a time.
func (m *Migrator) run(ctx context.Context, plan *Plan, progress func(Result), do func(context.Context, *Item) Result) *Report {
	start := time.Now()
	rep := &Report{Results: make([]Result, len(plan.Items))}
	for i, it := range plan.Items {
		rep.Results[i] = Result{PV: it.PV, Claim: it.Claim, Outcome: OutcomeFailed, Message: "not started: interrupted"}
	}
	var mu sync.Mutex
	_ = workers.ForEach(ctx, len(plan.Items), m.cfg.Parallel, func(ctx context.Context, i int) error {
		t := time.Now()
		r := do(ctx, plan.Items[i])
		r.Seconds = time.Since(t).Seconds()
		if r.Outcome == OutcomeFailed {
			klog.FromContext(ctx).Error(errors.New(r.Message), "Conversion stopped", "pv", r.PV)
		}
		mu.Lock()
		rep.Results[i] = r
		if progress != nil {
			progress(r)
		}
		mu.Unlock()
		return nil
	})
	rep.Seconds = time.Since(start).Seconds()
	return rep
}
