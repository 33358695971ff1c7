package migrate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"

	"github.com/glusterkube/glusterkube/provisioner"
)

// fieldManager names this package's writes.
const fieldManager = "glusterkube-migrate"

// goneTimeout bounds the wait for a deleted PV to disappear once its
// finalizers are removed.
const goneTimeout = time.Minute

// errInUse stops a conversion whose claim pods use; it is not a failure.
type errInUse struct{ reason string }

func (e *errInUse) Error() string { return e.reason }

// IsInUse reports an error that stopped a conversion because pods use
// the claim.
func IsInUse(err error) bool {
	var e *errInUse
	return errors.As(err, &e)
}

// convert runs (or resumes) the conversion of one PV; see the package
// doc for the steps. restored says the old PV is back instead (a restore
// in flight finished, or the API server refused the CSI PV: then err says
// why).
func (m *Migrator) convert(ctx context.Context, it *Item) (restored bool, err error) {
	logger := klog.LoggerWithValues(klog.FromContext(ctx), "pv", it.PV)
	ctx = klog.NewContext(ctx, logger)
	rec, err := m.readRecord(ctx, it.PV)
	if err != nil {
		return false, err
	}
	if rec == nil {
		if it.target == nil {
			return false, fmt.Errorf("PV %s has no planned CSI PV: plan again", it.PV)
		}
		if rec, err = m.begin(ctx, it); err != nil {
			return false, err
		}
	}
	if rec.direction == dirRestore {
		return true, m.restore(ctx, rec)
	}
	return m.finish(ctx, rec)
}

// begin runs steps 1 and 2 on the PV the plan saw: retain, record.
func (m *Migrator) begin(ctx context.Context, it *Item) (*record, error) {
	cur, err := m.getPV(ctx, it.PV)
	if err != nil {
		return nil, err
	}
	if cur == nil || cur.UID != it.pv.UID || cur.Spec.Glusterfs == nil {
		return nil, fmt.Errorf("PV %s changed since the plan (deleted, replaced or converted): plan again", it.PV)
	}
	if err := m.checkUnused(ctx, cur); err != nil {
		return nil, err
	}
	if cur, err = m.retain(ctx, cur); err != nil {
		return nil, err
	}
	if err := m.after(ctx, it.PV, StepRetain); err != nil {
		return nil, err
	}
	target := it.target.DeepCopy()
	target.Spec.PersistentVolumeReclaimPolicy = v1.PersistentVolumeReclaimPolicy(cur.Annotations[AnnReclaimPolicy])
	rec, err := m.writeRecord(ctx, cur, target)
	if err != nil {
		return nil, err
	}
	if err := m.markClaim(ctx, rec.old, rec.pv()); err != nil {
		return nil, err
	}
	klog.FromContext(ctx).V(2).Info("Recorded the PV", "record", klog.KObj(rec.cm))
	return rec, m.after(ctx, it.PV, StepRecord)
}

// finish runs steps 3 to 8 from a record.
func (m *Migrator) finish(ctx context.Context, rec *record) (restored bool, err error) {
	cur, err := m.getPV(ctx, rec.pv())
	if err != nil {
		return false, err
	}
	if cur != nil && cur.UID == rec.oldUID() {
		if err := m.replace(ctx, rec, cur); err != nil {
			return false, err
		}
		if err := m.after(ctx, rec.pv(), StepDelete); err != nil {
			return false, err
		}
		cur = nil
	}
	if cur == nil {
		cur, err = m.create(ctx, rec, m.newPV(rec))
		if apierrors.IsInvalid(err) || apierrors.IsBadRequest(err) {
			// The API server refuses the CSI PV (an old server, an
			// admission policy): put the old PV back rather than leave
			// the claim without one.
			klog.FromContext(ctx).Error(err, "The API server refused the CSI PV; restoring the old PV")
			if rerr := m.restore(ctx, rec); rerr != nil {
				return false, fmt.Errorf("the API server refused the CSI PV (%w), and restoring the old PV failed: %w; run again to finish the restore", err, rerr)
			}
			return true, fmt.Errorf("the API server refused the CSI PV, so the old PV is back: %w", err)
		} else if err != nil {
			return false, err
		}
		if err := m.after(ctx, rec.pv(), StepCreate); err != nil {
			return false, err
		}
	}
	if !madeBy(cur, rec) || cur.Spec.CSI == nil {
		return false, fmt.Errorf("PV %s exists but is neither the old PV (uid %s) nor its conversion: left alone; inspect it, then delete record %s/%s to give up", rec.pv(), rec.oldUID(), m.cfg.RecordNamespace, rec.cm.Name)
	}
	return false, m.settle(ctx, rec, cur)
}

// settle runs the steps after the new PV exists: bind, reclaim, forget,
// cleanup (the last only for a conversion).
func (m *Migrator) settle(ctx context.Context, rec *record, cur *v1.PersistentVolume) error {
	if err := m.bind(ctx, rec, cur); err != nil {
		return err
	}
	if err := m.after(ctx, rec.pv(), StepBind); err != nil {
		return err
	}
	if err := m.restorePolicy(ctx, cur); err != nil {
		return err
	}
	if err := m.after(ctx, rec.pv(), StepReclaim); err != nil {
		return err
	}
	if err := m.unmarkClaim(ctx, rec.old); err != nil {
		return err
	}
	if err := m.forgetRecord(ctx, rec); err != nil {
		return err
	}
	if err := m.after(ctx, rec.pv(), StepForget); err != nil {
		return err
	}
	if rec.direction == dirRestore {
		return nil
	}
	// After the record is gone, so a restore never lacks the Endpoints;
	// a crash before this leaves them to the next plan (StateCleanup).
	if _, err := m.cleanup(ctx, cur); err != nil {
		return err
	}
	return m.after(ctx, rec.pv(), StepCleanup)
}

// madeBy reports a PV made by the conversion (or restore) of rec.
func madeBy(pv *v1.PersistentVolume, rec *record) bool {
	return pv != nil && pv.Annotations[AnnMigration] == string(rec.oldUID())
}

// newPV is the CSI PV to create: the record's target, Retain until the
// claim is bound again, its own policy in AnnReclaimPolicy, tied to the
// record by the old PV's UID.
func (m *Migrator) newPV(rec *record) *v1.PersistentVolume {
	t := rec.target.DeepCopy()
	t.ObjectMeta = metav1.ObjectMeta{Name: t.Name, Labels: t.Labels, Annotations: maps.Clone(t.Annotations)}
	if t.Annotations == nil {
		t.Annotations = map[string]string{}
	}
	t.Annotations[AnnReclaimPolicy] = rec.old.Annotations[AnnReclaimPolicy]
	t.Annotations[AnnMigration] = string(rec.oldUID())
	t.Spec.PersistentVolumeReclaimPolicy = v1.PersistentVolumeReclaimRetain
	t.Status = v1.PersistentVolumeStatus{}
	return t
}

// create creates pv; one a run before made (same record) is returned.
func (m *Migrator) create(ctx context.Context, rec *record, pv *v1.PersistentVolume) (*v1.PersistentVolume, error) {
	out, err := m.cfg.Kube.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{FieldManager: fieldManager})
	if apierrors.IsAlreadyExists(err) {
		cur, gerr := m.getPV(ctx, pv.Name)
		if gerr != nil {
			return nil, gerr
		}
		if madeBy(cur, rec) {
			return cur, nil
		}
		return nil, fmt.Errorf("create PV %s: another PV of that name exists (uid %s): left alone; inspect it, then delete record %s/%s to give up", pv.Name, cur.UID, m.cfg.RecordNamespace, rec.cm.Name)
	} else if err != nil {
		return nil, err
	}
	klog.FromContext(ctx).V(2).Info("Created the PV", "source", sourceKind(out))
	return out, nil
}

// replace deletes cur (the PV a record replaces): the claim must be
// unused (asked again now), the PV Retain; then delete with a UID
// precondition, remove the protection finalizers that would hold it
// forever, and wait until it is gone.
func (m *Migrator) replace(ctx context.Context, rec *record, cur *v1.PersistentVolume) error {
	if err := m.checkUnused(ctx, cur); err != nil {
		return err
	}
	cur, err := m.retain(ctx, cur)
	if err != nil {
		return err
	}
	uid := cur.UID
	if cur.DeletionTimestamp == nil {
		err := m.cfg.Kube.CoreV1().PersistentVolumes().Delete(ctx, cur.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete PV %s: %w", cur.Name, err)
		}
	}
	if err := provisioner.RemoveFinalizers(ctx, m.cfg.Kube, cur.Name, uid, knownFinalizers...); err != nil {
		return err
	}
	_, err = m.waitPV(ctx, cur.Name, goneTimeout, "PV "+cur.Name+" gone after its delete", func(pv *v1.PersistentVolume) bool {
		return pv == nil || pv.UID != uid
	})
	if err != nil {
		return fmt.Errorf("%w (another finalizer?)", err)
	}
	klog.FromContext(ctx).V(2).Info("Deleted the PV (recorded)", "record", klog.KObj(rec.cm))
	return nil
}

// checkUnused fails with errInUse when pods that are not terminated use
// the PV's claim.
func (m *Migrator) checkUnused(ctx context.Context, pv *v1.PersistentVolume) error {
	ref := pv.Spec.ClaimRef
	if ref == nil {
		return nil
	}
	users, err := m.usersOf(ctx, ref.Namespace, ref.Name)
	if err != nil {
		return err
	}
	if len(users) > 0 {
		return &errInUse{reason: inUseReason(ref.Namespace+"/"+ref.Name, users)}
	}
	return nil
}

// retain makes pv Retain, keeping its own policy in AnnReclaimPolicy in
// the same write; an annotation already there is never overwritten (it
// holds the policy from before the first attempt).
func (m *Migrator) retain(ctx context.Context, pv *v1.PersistentVolume) (*v1.PersistentVolume, error) {
	if pv.Spec.PersistentVolumeReclaimPolicy == v1.PersistentVolumeReclaimRetain && pv.Annotations[AnnReclaimPolicy] != "" {
		return pv, nil
	}
	return m.updatePV(ctx, pv.Name, pv.UID, func(upd *v1.PersistentVolume) bool {
		if upd.Spec.PersistentVolumeReclaimPolicy == v1.PersistentVolumeReclaimRetain && upd.Annotations[AnnReclaimPolicy] != "" {
			return false
		}
		if upd.Annotations == nil {
			upd.Annotations = map[string]string{}
		}
		if upd.Annotations[AnnReclaimPolicy] == "" {
			upd.Annotations[AnnReclaimPolicy] = string(upd.Spec.PersistentVolumeReclaimPolicy)
		}
		upd.Spec.PersistentVolumeReclaimPolicy = v1.PersistentVolumeReclaimRetain
		return true
	})
}

// restorePolicy puts back the policy kept in AnnReclaimPolicy.
func (m *Migrator) restorePolicy(ctx context.Context, pv *v1.PersistentVolume) error {
	_, err := m.updatePV(ctx, pv.Name, pv.UID, func(upd *v1.PersistentVolume) bool {
		orig, ok := upd.Annotations[AnnReclaimPolicy]
		if !ok {
			return false
		}
		if orig != "" {
			upd.Spec.PersistentVolumeReclaimPolicy = v1.PersistentVolumeReclaimPolicy(orig)
		}
		delete(upd.Annotations, AnnReclaimPolicy)
		return true
	})
	return err
}

// updatePV changes PV name (when it is still uid) with change, on the
// current object, again on conflicts; change returns false for nothing to
// do.
func (m *Migrator) updatePV(ctx context.Context, name string, uid types.UID, change func(*v1.PersistentVolume) bool) (*v1.PersistentVolume, error) {
	pvs := m.cfg.Kube.CoreV1().PersistentVolumes()
	var out *v1.PersistentVolume
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := pvs.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if cur.UID != uid {
			return fmt.Errorf("PV %s was replaced (uid %s, expected %s)", name, cur.UID, uid)
		}
		upd := cur.DeepCopy()
		if !change(upd) {
			out = cur
			return nil
		}
		out, err = pvs.Update(ctx, upd, metav1.UpdateOptions{FieldManager: fieldManager})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("update PV %s: %w", name, err)
	}
	return out, nil
}

// bind gets the claim Bound to the new PV. The PV controller binds a
// claim whose volumeName names a PV pre-bound to it (claimRef with its
// UID) — also from Lost, which it became when the old PV went — on the
// claim's next sync. It first sets the PV Bound (which shows it has the
// PV in its cache); then a claim update makes it sync the claim now
// rather than at its next resync.
func (m *Migrator) bind(ctx context.Context, rec *record, pv *v1.PersistentVolume) error {
	ref := rec.old.Spec.ClaimRef
	if ref == nil || ref.UID == "" {
		return nil
	}
	claim, err := m.getClaim(ctx, ref.Namespace, ref.Name)
	if err != nil {
		return err
	}
	if claim == nil || claim.UID != ref.UID {
		klog.FromContext(ctx).Info("The PV's claim is gone; nothing to bind", "claim", klog.KRef(ref.Namespace, ref.Name))
		return nil
	}
	bound := func(c *v1.PersistentVolumeClaim) bool {
		return c == nil || c.UID != ref.UID || (c.Status.Phase == v1.ClaimBound && c.Spec.VolumeName == pv.Name)
	}
	// Wait for the PV controller to set the new PV Bound first: it has
	// then stored the new PV after the old one's deletion (one informer,
	// in order), so any later sync of the claim finds it. A claim read as
	// Bound before that may still turn Lost from the old PV's deletion.
	uid := pv.UID
	_, err = m.waitPV(ctx, pv.Name, m.cfg.BindTimeout, fmt.Sprintf("the PV controller to see PV %s bound to claim %s/%s", pv.Name, ref.Namespace, ref.Name), func(cur *v1.PersistentVolume) bool {
		return cur == nil || cur.UID != uid || cur.Status.Phase == v1.VolumeBound
	})
	if err != nil {
		return err
	}
	if claim, err = m.getClaim(ctx, ref.Namespace, ref.Name); err != nil || bound(claim) {
		return err
	}
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{
		"uid": ref.UID, "annotations": map[string]string{AnnMigrating: pv.Name + " rebind " + time.Now().UTC().Format(time.RFC3339Nano)},
	}})
	if _, err := m.cfg.Kube.CoreV1().PersistentVolumeClaims(ref.Namespace).Patch(ctx, ref.Name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: fieldManager}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("touch claim %s/%s so the PV controller binds it: %w", ref.Namespace, ref.Name, err)
	}
	c, err := m.waitClaim(ctx, ref.Namespace, ref.Name, m.cfg.BindTimeout, fmt.Sprintf("claim %s/%s Bound to PV %s", ref.Namespace, ref.Name, pv.Name), bound)
	if err != nil && c != nil {
		return fmt.Errorf("%w (claim phase %s, volume %q)", err, c.Status.Phase, c.Spec.VolumeName)
	}
	return err
}

// markClaim annotates the PV's claim with the PV being converted.
func (m *Migrator) markClaim(ctx context.Context, pv *v1.PersistentVolume, value string) error {
	ref := pv.Spec.ClaimRef
	if ref == nil || ref.UID == "" {
		return nil
	}
	claim, err := m.getClaim(ctx, ref.Namespace, ref.Name)
	if err != nil || claim == nil || claim.UID != ref.UID || claim.Annotations[AnnMigrating] != "" {
		return err
	}
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"uid": ref.UID, "annotations": map[string]string{AnnMigrating: value}}})
	_, err = m.cfg.Kube.CoreV1().PersistentVolumeClaims(ref.Namespace).Patch(ctx, ref.Name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: fieldManager})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("annotate claim %s/%s: %w", ref.Namespace, ref.Name, err)
	}
	return nil
}

// unmarkClaim removes the annotation.
func (m *Migrator) unmarkClaim(ctx context.Context, pv *v1.PersistentVolume) error {
	ref := pv.Spec.ClaimRef
	if ref == nil || ref.UID == "" {
		return nil
	}
	claim, err := m.getClaim(ctx, ref.Namespace, ref.Name)
	if err != nil || claim == nil || claim.UID != ref.UID {
		return err
	}
	if _, ok := claim.Annotations[AnnMigrating]; !ok {
		return nil
	}
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"uid": ref.UID, "annotations": map[string]any{AnnMigrating: nil}}})
	_, err = m.cfg.Kube.CoreV1().PersistentVolumeClaims(ref.Namespace).Patch(ctx, ref.Name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: fieldManager})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("remove annotation %s from claim %s/%s: %w", AnnMigrating, ref.Namespace, ref.Name, err)
	}
	return nil
}

func (m *Migrator) getPV(ctx context.Context, name string) (*v1.PersistentVolume, error) {
	pv, err := m.cfg.Kube.CoreV1().PersistentVolumes().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("read PV %s: %w", name, err)
	}
	return pv, nil
}

func (m *Migrator) getClaim(ctx context.Context, ns, name string) (*v1.PersistentVolumeClaim, error) {
	c, err := m.cfg.Kube.CoreV1().PersistentVolumeClaims(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("read claim %s/%s: %w", ns, name, err)
	}
	return c, nil
}

func sourceKind(pv *v1.PersistentVolume) string {
	switch {
	case pv.Spec.CSI != nil:
		return "csi"
	case pv.Spec.Glusterfs != nil:
		return "glusterfs"
	}
	return "other"
}
