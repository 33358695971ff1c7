package migrate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"

	"github.com/glusterkube/glusterkube/provisioner"
)

// The record of a conversion in flight: one ConfigMap per PV in the
// record namespace (see the package doc for why a ConfigMap).
const (
	labelRecord   = "glusterkube.io/migration-record"
	annRecordPV   = "glusterkube.io/pv"
	keyOld        = "old.json"
	keyTarget     = "target.json"
	keyDirection  = "direction"
	recordPrefix  = "migrate-"
	dirConvert    = "convert"
	dirRestore    = "restore"
	recordHashLen = 10
)

// record is a conversion in flight.
type record struct {
	cm *v1.ConfigMap
	// old is the PV being replaced, as it was after the retain step (its
	// own policy in AnnReclaimPolicy); target the CSI PV it becomes.
	old, target *v1.PersistentVolume
	direction   string
}

func (r *record) pv() string        { return r.old.Name }
func (r *record) oldUID() types.UID { return r.old.UID }

// recordName is the ConfigMap name for PV pv: migrate-<pv>, shortened
// with a hash when that is too long.
func recordName(pv string) string {
	name := recordPrefix + pv
	if len(name) <= validation.DNS1123SubdomainMaxLength {
		return name
	}
	sum := sha256.Sum256([]byte(pv))
	keep := validation.DNS1123SubdomainMaxLength - len(recordPrefix) - recordHashLen - 1
	return recordPrefix + pv[:keep] + "-" + hex.EncodeToString(sum[:])[:recordHashLen]
}

func (m *Migrator) configMaps() typedcorev1.ConfigMapInterface {
	return m.cfg.Kube.CoreV1().ConfigMaps(m.cfg.RecordNamespace)
}

// writeRecord creates the record, or returns the one a run before made
// for the same old PV.
func (m *Migrator) writeRecord(ctx context.Context, old, target *v1.PersistentVolume) (*record, error) {
	oldJSON, err := json.Marshal(old)
	if err != nil {
		return nil, err
	}
	targetJSON, err := json.Marshal(target)
	if err != nil {
		return nil, err
	}
	cm := &v1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{
			Name:        recordName(old.Name),
			Namespace:   m.cfg.RecordNamespace,
			Labels:      map[string]string{provisioner.LabelManagedBy: provisioner.ManagedBy, labelRecord: "true"},
			Annotations: map[string]string{annRecordPV: old.Name},
		},
		Data: map[string]string{keyOld: string(oldJSON), keyTarget: string(targetJSON), keyDirection: dirConvert},
	}
	created, err := m.configMaps().Create(ctx, cm, metav1.CreateOptions{FieldManager: fieldManager})
	if apierrors.IsAlreadyExists(err) {
		rec, err := m.readRecord(ctx, old.Name)
		if err != nil {
			return nil, err
		}
		if rec == nil || rec.oldUID() != old.UID {
			return nil, fmt.Errorf("record %s/%s exists for another PV %s: delete it if it is stale", m.cfg.RecordNamespace, recordName(old.Name), old.Name)
		}
		return rec, nil
	} else if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("record namespace %s does not exist: create it, or choose another record namespace", m.cfg.RecordNamespace)
	} else if err != nil {
		return nil, fmt.Errorf("record PV %s in ConfigMap %s/%s: %w", old.Name, m.cfg.RecordNamespace, cm.Name, err)
	}
	return parseRecord(created)
}

// readRecord returns PV pv's record, or nil.
func (m *Migrator) readRecord(ctx context.Context, pv string) (*record, error) {
	cm, err := m.configMaps().Get(ctx, recordName(pv), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("read the record of PV %s: %w", pv, err)
	}
	return parseRecord(cm)
}

// listRecords returns every record, by PV name.
func (m *Migrator) listRecords(ctx context.Context) (map[string]*record, error) {
	list, err := m.configMaps().List(ctx, metav1.ListOptions{LabelSelector: labelRecord + "=true"})
	if apierrors.IsNotFound(err) {
		return map[string]*record{}, nil
	} else if err != nil {
		return nil, fmt.Errorf("list migration records in %s: %w", m.cfg.RecordNamespace, err)
	}
	out := map[string]*record{}
	for i := range list.Items {
		rec, err := parseRecord(&list.Items[i])
		if err != nil {
			return nil, err
		}
		out[rec.pv()] = rec
	}
	return out, nil
}

func parseRecord(cm *v1.ConfigMap) (*record, error) {
	r := &record{cm: cm, old: &v1.PersistentVolume{}, target: &v1.PersistentVolume{}, direction: cm.Data[keyDirection]}
	if err := json.Unmarshal([]byte(cm.Data[keyOld]), r.old); err != nil || r.old.Name == "" {
		return nil, fmt.Errorf("migration record %s/%s holds no readable PV (%v): it was changed by hand; restore the PV %s from a backup", cm.Namespace, cm.Name, err, cm.Annotations[annRecordPV])
	}
	if err := json.Unmarshal([]byte(cm.Data[keyTarget]), r.target); err != nil {
		return nil, fmt.Errorf("migration record %s/%s holds no readable target PV: %v", cm.Namespace, cm.Name, err)
	}
	if r.direction != dirRestore {
		r.direction = dirConvert
	}
	return r, nil
}

// setDirection turns a record around (convert → restore).
func (m *Migrator) setDirection(ctx context.Context, r *record, dir string) error {
	if r.direction == dir {
		return nil
	}
	upd := r.cm.DeepCopy()
	upd.Data[keyDirection] = dir
	cm, err := m.configMaps().Update(ctx, upd, metav1.UpdateOptions{FieldManager: fieldManager})
	if err != nil {
		return fmt.Errorf("mark the record of PV %s for %s: %w", r.pv(), dir, err)
	}
	r.cm, r.direction = cm, dir
	return nil
}

// forgetRecord deletes the record (UID precondition); gone is success.
func (m *Migrator) forgetRecord(ctx context.Context, r *record) error {
	uid := r.cm.UID
	err := m.configMaps().Delete(ctx, r.cm.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete the record of PV %s: %w", r.pv(), err)
	}
	return nil
}
