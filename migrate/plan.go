package migrate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"

	"github.com/glusterkube/glusterkube/csi"
	"github.com/glusterkube/glusterkube/internal/workers"
	"github.com/glusterkube/glusterkube/provisioner"
)

// Selection narrows a plan. The zero value selects every glusterfs PV.
type Selection struct {
	// Selector selects PVs by label (nil: all).
	Selector labels.Selector
	// Claims, when not empty, selects the PVs bound to these claims.
	Claims []types.NamespacedName
}

func (s Selection) matches(pv *v1.PersistentVolume) bool {
	if s.Selector != nil && !s.Selector.Matches(labels.Set(pv.Labels)) {
		return false
	}
	if len(s.Claims) == 0 {
		return true
	}
	ref := pv.Spec.ClaimRef
	return ref != nil && slices.Contains(s.Claims, types.NamespacedName{Namespace: ref.Namespace, Name: ref.Name})
}

// State is what apply will do with a PV.
type State string

// States.
const (
	// StateReady: apply converts it.
	StateReady State = "ready"
	// StateInProgress: a conversion was interrupted; apply finishes it
	// (or restores the old PV, when the record says so).
	StateInProgress State = "in-progress"
	// StateInUse: its claim is used by pods that are not terminated;
	// scale the workload down first.
	StateInUse State = "in-use"
	// StateCannot: it cannot be converted; Reason says why.
	StateCannot State = "cannot-convert"
	// StateCleanup: it was converted, but its claim's old Endpoints and
	// Service are still there (the run stopped before removing them).
	StateCleanup State = "cleanup"
)

// Item is one PV of a plan.
type Item struct {
	PV    string `json:"pv"`
	Claim string `json:"claim,omitempty"`
	// Phase is the PV's phase.
	Phase  v1.PersistentVolumePhase `json:"phase"`
	Origin Origin                   `json:"origin,omitempty"`
	State  State                    `json:"state"`
	// Reason says why the PV cannot be converted or is in use.
	Reason string `json:"reason,omitempty"`
	// UsedBy are the pods using the claim.
	UsedBy []PodUse `json:"usedBy,omitempty"`
	// From and To are the old and new volume sources.
	From *Source `json:"from,omitempty"`
	To   *Source `json:"to,omitempty"`
	// ReclaimPolicy is kept (Retain during the conversion).
	ReclaimPolicy v1.PersistentVolumeReclaimPolicy `json:"reclaimPolicy,omitempty"`
	// Changes lists what changes besides the source.
	Changes []string `json:"changes,omitempty"`
	// RemoveEndpoints names the Endpoints and Service removed after.
	RemoveEndpoints string `json:"removeEndpoints,omitempty"`
	// Notes are warnings that do not stop the conversion.
	Notes []string `json:"notes,omitempty"`

	pv     *v1.PersistentVolume
	target *v1.PersistentVolume
	rec    *record
}

// Source is a PV's volume source, flattened for people and scripts.
type Source struct {
	Kind         string   `json:"kind"`
	Endpoints    string   `json:"endpoints,omitempty"`
	Path         string   `json:"path,omitempty"`
	Driver       string   `json:"driver,omitempty"`
	VolumeHandle string   `json:"volumeHandle,omitempty"`
	Servers      []string `json:"servers,omitempty"`
	Volume       string   `json:"volume,omitempty"`
	ReadOnly     bool     `json:"readOnly,omitempty"`
	MountOptions []string `json:"mountOptions,omitempty"`
}

// Plan is what apply would do, PV by PV.
type Plan struct {
	Items []*Item `json:"items"`
	// Converted counts the PVs already converted (not listed).
	Converted int `json:"alreadyConverted"`
}

// Count returns how many items are in state s.
func (p *Plan) Count(s State) int {
	n := 0
	for _, it := range p.Items {
		if it.State == s {
			n++
		}
	}
	return n
}

// Plan lists the selected glusterfs PVs with what will change, and every
// conversion in flight. It changes nothing.
func (m *Migrator) Plan(ctx context.Context, sel Selection) (*Plan, error) {
	pvList, err := m.cfg.Kube.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list PersistentVolumes: %w", err)
	}
	records, err := m.listRecords(ctx)
	if err != nil {
		return nil, err
	}
	classList, err := m.cfg.Kube.StorageV1().StorageClasses().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list StorageClasses: %w", err)
	}
	classes := map[string]*storagev1.StorageClass{}
	for i := range classList.Items {
		classes[classList.Items[i].Name] = &classList.Items[i]
	}
	plan := &Plan{}
	var selected, converted []*v1.PersistentVolume
	for i := range pvList.Items {
		pv := &pvList.Items[i]
		if rec := records[pv.Name]; rec != nil || !sel.matches(pv) {
			continue // one with a record is listed below, from its record
		}
		switch {
		case pv.Spec.Glusterfs != nil:
			selected = append(selected, pv)
		case pv.Annotations[AnnMigratedFrom] != "":
			converted = append(converted, pv)
		}
	}
	// Who uses the claims: one list of every pod (the claims of a
	// cluster-wide migration span many namespaces).
	users, err := m.listClaimUsers(ctx, nil)
	if err != nil {
		return nil, err
	}
	for _, rec := range records {
		plan.Items = append(plan.Items, m.recordItem(ctx, rec, users))
	}
	items := make([]*Item, len(selected)+len(converted))
	err = workers.ForEach(ctx, len(items), m.cfg.Parallel*2, func(ctx context.Context, i int) error {
		if i >= len(selected) {
			pv := converted[i-len(selected)]
			ep, err := m.leftover(ctx, pv)
			if err == nil && ep != "" {
				items[i] = &Item{PV: pv.Name, Phase: pv.Status.Phase, State: StateCleanup, pv: pv, To: csiSource(pv), RemoveEndpoints: ep,
					Reason: "converted; its claim's old Endpoints and Service are left to remove"}
				if ref := pv.Spec.ClaimRef; ref != nil {
					items[i].Claim = ref.Namespace + "/" + ref.Name
				}
			}
			return err
		}
		it, err := m.planPV(ctx, selected[i], classes, users)
		items[i] = it
		return err
	})
	if err != nil {
		return nil, err
	}
	for _, it := range items {
		if it != nil {
			plan.Items = append(plan.Items, it)
		}
	}
	plan.Converted = len(converted) - plan.Count(StateCleanup)
	sort.Slice(plan.Items, func(i, j int) bool { return plan.Items[i].PV < plan.Items[j].PV })
	return plan, nil
}

// planPV plans one glusterfs PV. Only failures to reach the API server
// are errors; a PV that cannot be converted is an item saying why.
func (m *Migrator) planPV(ctx context.Context, pv *v1.PersistentVolume, classes map[string]*storagev1.StorageClass, users claimUsers) (*Item, error) {
	it := &Item{PV: pv.Name, Phase: pv.Status.Phase, ReclaimPolicy: pv.Spec.PersistentVolumeReclaimPolicy, pv: pv, From: glusterfsSource(pv)}
	if orig := pv.Annotations[AnnReclaimPolicy]; orig != "" {
		// Retain was set by an interrupted conversion; the policy is this.
		it.ReclaimPolicy = v1.PersistentVolumeReclaimPolicy(orig)
	}
	if ref := pv.Spec.ClaimRef; ref != nil {
		it.Claim = ref.Namespace + "/" + ref.Name
	}
	if why := m.unconvertible(pv); why != "" {
		it.State, it.Reason = StateCannot, why
		return it, nil
	}
	mp, err := m.mapPV(ctx, pv, classes)
	var un *unmappable
	switch {
	case errors.As(err, &un):
		it.State, it.Reason = StateCannot, un.why
		return it, nil
	case err != nil:
		// heketi unreachable and the like: this PV cannot be planned now.
		it.State, it.Reason = StateCannot, "could not look its volume up: "+err.Error()
		klog.FromContext(ctx).V(2).Info("Planning a PV failed", "pv", pv.Name, "err", err)
		return it, nil
	}
	it.Origin, it.target, it.Notes = mp.origin, mp.target, mp.notes
	it.To = csiSource(mp.target)
	it.Changes = changes(pv, mp.target)
	if mp.cleanup {
		if ns, name, ok := provisioner.EndpointsOf(pv); ok {
			it.RemoveEndpoints = ns + "/" + name
		}
	}
	it.State = StateReady
	if ref := pv.Spec.ClaimRef; ref != nil {
		if it.UsedBy = users.of(ref.Namespace, ref.Name); len(it.UsedBy) > 0 {
			it.State, it.Reason = StateInUse, inUseReason(it.Claim, it.UsedBy)
		}
	}
	if pv.Annotations[AnnReclaimPolicy] != "" && it.State == StateReady {
		it.State = StateInProgress
	}
	return it, nil
}

// unconvertible says why a PV's state rules a conversion out ("" when it
// does not).
func (m *Migrator) unconvertible(pv *v1.PersistentVolume) string {
	if pv.DeletionTimestamp != nil {
		return "it is being deleted"
	}
	switch pv.Status.Phase {
	case v1.VolumeFailed:
		if provisioner.IsInTreePV(pv) && pv.Spec.PersistentVolumeReclaimPolicy == v1.PersistentVolumeReclaimDelete {
			return "its claim is gone and its policy is Delete (the PV controller, without the in-tree plugin, marked it Failed): glusterkube's provisioner, serving in-tree classes, deletes it"
		}
		return "it is Failed (" + pv.Status.Message + "); fix or delete it first"
	case v1.VolumeReleased:
		if pv.Spec.PersistentVolumeReclaimPolicy != v1.PersistentVolumeReclaimRetain {
			return fmt.Sprintf("its claim is gone and its reclaim policy is %s: the volume is waiting for deletion, not for a new source (set Retain to keep and convert it)", pv.Spec.PersistentVolumeReclaimPolicy)
		}
	}
	for _, f := range pv.Finalizers {
		if !slices.Contains(knownFinalizers, f) {
			return fmt.Sprintf("it has finalizer %q, which glusterkube does not know; remove it or wait for its controller", f)
		}
	}
	return ""
}

// knownFinalizers are the finalizers the delete step removes.
var knownFinalizers = []string{provisioner.FinalizerPVProtection, provisioner.FinalizerInTreeDelete, provisioner.FinalizerExternalDelete}

func inUseReason(claim string, pods []PodUse) string {
	names := make([]string, len(pods))
	for i, p := range pods {
		names[i] = p.String()
	}
	return fmt.Sprintf("claim %s is used by pod(s) %s: scale the workload down (e.g. kubectl scale --replicas=0), then run again", claim, strings.Join(names, ", "))
}

// recordItem describes a conversion in flight from its record.
func (m *Migrator) recordItem(ctx context.Context, rec *record, users claimUsers) *Item {
	old := rec.old
	it := &Item{PV: rec.pv(), Phase: old.Status.Phase, State: StateInProgress, rec: rec, pv: old, target: rec.target,
		From: glusterfsSource(old), To: csiSource(rec.target), Changes: changes(old, rec.target)}
	it.ReclaimPolicy = v1.PersistentVolumeReclaimPolicy(old.Annotations[AnnReclaimPolicy])
	if ref := old.Spec.ClaimRef; ref != nil {
		it.Claim = ref.Namespace + "/" + ref.Name
		it.UsedBy = users.of(ref.Namespace, ref.Name)
	}
	it.Reason = "an interrupted conversion: apply finishes it"
	if rec.direction == dirRestore {
		it.Reason = "an interrupted restore: apply puts the old PV back"
	}
	if cur, err := m.cfg.Kube.CoreV1().PersistentVolumes().Get(ctx, rec.pv(), metav1.GetOptions{}); err == nil && cur.UID == old.UID && len(it.UsedBy) > 0 {
		// Not deleted yet: the pods still stop it.
		it.Reason += "; but " + inUseReason(it.Claim, it.UsedBy)
	}
	return it
}

func glusterfsSource(pv *v1.PersistentVolume) *Source {
	gs := pv.Spec.Glusterfs
	if gs == nil {
		return csiSource(pv)
	}
	ns, name, _ := provisioner.EndpointsOf(pv)
	return &Source{Kind: "glusterfs", Endpoints: ns + "/" + name, Path: gs.Path, ReadOnly: gs.ReadOnly, MountOptions: pv.Spec.MountOptions}
}

func csiSource(pv *v1.PersistentVolume) *Source {
	c := pv.Spec.CSI
	if c == nil {
		return nil
	}
	var servers []string
	if s := c.VolumeAttributes[csi.ContextServers]; s != "" {
		servers = strings.Split(s, ",")
	}
	return &Source{Kind: "csi", Driver: c.Driver, VolumeHandle: c.VolumeHandle, Servers: servers,
		Volume: c.VolumeAttributes[csi.ContextVolume], ReadOnly: c.ReadOnly, MountOptions: pv.Spec.MountOptions}
}

// changes lists, for people, what changes besides the source.
func changes(old, target *v1.PersistentVolume) []string {
	var out []string
	keys := map[string]bool{}
	for k := range old.Annotations {
		keys[k] = true
	}
	for k := range target.Annotations {
		keys[k] = true
	}
	sorted := make([]string, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	for _, k := range sorted {
		if k == AnnReclaimPolicy {
			continue
		}
		o, hadOld := old.Annotations[k]
		n, hasNew := target.Annotations[k]
		switch {
		case hadOld && !hasNew:
			out = append(out, fmt.Sprintf("annotation %s dropped (was %q)", k, shorten(o)))
		case !hadOld && hasNew:
			out = append(out, fmt.Sprintf("annotation %s=%q added", k, shorten(n)))
		case o != n:
			out = append(out, fmt.Sprintf("annotation %s: %q -> %q", k, shorten(o), shorten(n)))
		}
	}
	for _, o := range old.Spec.MountOptions {
		if !slices.Contains(target.Spec.MountOptions, o) {
			out = append(out, fmt.Sprintf("mount option %s dropped (the node plugin derives backup servers from the servers)", o))
		}
	}
	return out
}

func shorten(s string) string {
	if len(s) > 60 {
		return s[:57] + "..."
	}
	return s
}
