package migrate

import (
	"context"
	"fmt"
	"maps"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
)

// restore puts the old PV of a record back (the record is marked for
// restore first, so a crash midway resumes the restore, not the
// conversion): the CSI PV, if one was made, is replaced by the recorded
// old PV, bound to its claim, with its own reclaim policy. The claim's
// Endpoints and Service are still there: they go only after a conversion
// has finished and its record is gone.
func (m *Migrator) restore(ctx context.Context, rec *record) error {
	logger := klog.LoggerWithValues(klog.FromContext(ctx), "pv", rec.pv())
	ctx = klog.NewContext(ctx, logger)
	if err := m.setDirection(ctx, rec, dirRestore); err != nil {
		return err
	}
	cur, err := m.getPV(ctx, rec.pv())
	if err != nil {
		return err
	}
	if cur != nil && cur.UID == rec.oldUID() {
		// Never deleted: undo the retain step.
		if err := m.restorePolicy(ctx, cur); err != nil {
			return err
		}
		if err := m.unmarkClaim(ctx, rec.old); err != nil {
			return err
		}
		return m.forgetRecord(ctx, rec)
	}
	if cur != nil && madeBy(cur, rec) && cur.Spec.CSI != nil {
		if err := m.replace(ctx, rec, cur); err != nil {
			return err
		}
		cur = nil
	}
	if cur == nil {
		if cur, err = m.create(ctx, rec, m.oldPV(rec)); err != nil {
			return fmt.Errorf("restore PV %s from record %s/%s: %w", rec.pv(), m.cfg.RecordNamespace, rec.cm.Name, err)
		}
	}
	if !madeBy(cur, rec) || cur.Spec.Glusterfs == nil {
		return fmt.Errorf("PV %s exists but is neither the old PV (uid %s) nor one made from its record: left alone; inspect it, then delete record %s/%s to give up", rec.pv(), rec.oldUID(), m.cfg.RecordNamespace, rec.cm.Name)
	}
	return m.settle(ctx, rec, cur)
}

// oldPV is the recorded old PV, to create again: its name, labels,
// annotations, finalizer-less metadata and spec (Retain, its own policy
// in AnnReclaimPolicy, as recorded), tied to the record.
func (m *Migrator) oldPV(rec *record) *v1.PersistentVolume {
	o := rec.old.DeepCopy()
	ann := maps.Clone(o.Annotations)
	if ann == nil {
		ann = map[string]string{}
	}
	ann[AnnMigration] = string(rec.oldUID())
	ann[AnnRestored] = "true"
	return &v1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: o.Name, Labels: o.Labels, Annotations: ann},
		Spec:       o.Spec,
	}
}

// Restore puts back the old PV of every conversion in flight that the
// plan lists, and undoes the retain step of those interrupted before
// their record was written. Finished conversions are not undone.
func (m *Migrator) Restore(ctx context.Context, plan *Plan, progress func(Result)) *Report {
	return m.run(ctx, plan, progress, func(ctx context.Context, it *Item) Result {
		r := Result{PV: it.PV, Claim: it.Claim}
		if it.State != StateInProgress {
			r.Outcome = OutcomeSkipped
			r.Message = "no conversion in flight"
			return r
		}
		var err error
		if it.rec != nil {
			err = m.restore(ctx, it.rec)
		} else {
			err = m.restorePolicy(ctx, it.pv)
		}
		return outcome(r, OutcomeRestored, err)
	})
}
