package daemonset

import (
	"fmt"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
)

// Reasons a storage node has no ready, up-to-date pod. Container waiting
// reasons (ErrImagePull, ImagePullBackOff, CrashLoopBackOff,
// CreateContainerConfigError, ...) are reported as they are.
const (
	ReasonNodeNotReady      = "NodeNotReady"
	ReasonTaintNotTolerated = "TaintNotTolerated"
	ReasonFailedCreate      = "FailedCreate"
	ReasonNoPod             = "NoPod"
	ReasonUnschedulable     = "Unschedulable"
	ReasonPending           = "Pending"
	ReasonNotReady          = "NotReady"
	ReasonFailed            = "Failed"
	ReasonTerminating       = "Terminating"
	ReasonOldTemplate       = "OldTemplate"
)

// NodeState is one storage node and its glusterfs pod.
type NodeState struct {
	Node  string `json:"node"`
	Pod   string `json:"pod,omitempty"`
	Ready bool   `json:"ready"`
	// Reason and Message say why the node has no ready, up-to-date pod.
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
}

func (n NodeState) String() string {
	s := n.Node + ": " + n.Reason
	if n.Pod != "" {
		s += " (pod " + n.Pod + ")"
	}
	if n.Message != "" {
		s += ": " + n.Message
	}
	return s
}

// Status is the rollout state of the DaemonSet over its storage nodes.
type Status struct {
	Namespace          string `json:"namespace"`
	Name               string `json:"name"`
	Found              bool   `json:"found"`
	Generation         int64  `json:"generation"`
	ObservedGeneration int64  `json:"observedGeneration"`
	Desired            int32  `json:"desired"`
	Current            int32  `json:"current"`
	Ready              int32  `json:"ready"`
	UpToDate           int32  `json:"upToDate"`
	Available          int32  `json:"available"`
	// StorageNodes counts the Nodes matching the pod nodeSelector. It can
	// exceed Desired: the DaemonSet controller leaves out Nodes whose
	// taints its pods do not tolerate.
	StorageNodes int         `json:"storageNodes"`
	Nodes        []NodeState `json:"nodes"`
	// Warnings are Warning events of the DaemonSet itself.
	Warnings []string `json:"warnings,omitempty"`
}

// Done reports whether every storage node runs a ready, up-to-date pod of
// the current generation: desired == ready == up-to-date == storage nodes,
// and there is at least one storage node (a DaemonSet that runs nowhere is
// not rolled out; the storage nodes are probably not labelled yet).
func (s Status) Done() bool {
	if !s.Found || s.ObservedGeneration < s.Generation || s.StorageNodes == 0 {
		return false
	}
	if s.Desired != s.Ready || s.Desired != s.UpToDate || int(s.Desired) != s.StorageNodes {
		return false
	}
	return len(s.Problems()) == 0
}

// Problems are the storage nodes without a ready, up-to-date pod.
func (s Status) Problems() []NodeState {
	var out []NodeState
	for _, n := range s.Nodes {
		if n.Reason != "" {
			out = append(out, n)
		}
	}
	return out
}

// Summary is one progress line.
func (s Status) Summary() string {
	if !s.Found {
		return fmt.Sprintf("daemonset %s/%s: not found", s.Namespace, s.Name)
	}
	line := fmt.Sprintf("daemonset %s/%s: %d/%d ready, %d/%d up-to-date, %d storage nodes", s.Namespace, s.Name, s.Ready, s.Desired, s.UpToDate, s.Desired, s.StorageNodes)
	if s.ObservedGeneration < s.Generation {
		line += fmt.Sprintf(" (controller has not seen generation %d yet)", s.Generation)
	}
	if s.StorageNodes == 0 {
		line += " (no Node matches the nodeSelector: label the storage nodes with glusterkube nodes label)"
	}
	return line
}

// snapshot is what the status is computed from.
type snapshot struct {
	ds        *appsv1.DaemonSet
	nodes     []*corev1.Node // may include non-storage Nodes; filtered here
	pods      []*corev1.Pod
	revisions []*appsv1.ControllerRevision
	events    []*corev1.Event // optional; enrich messages
}

// evaluate computes the Status of s.ds over its storage nodes.
func evaluate(namespace, name string, s snapshot) Status {
	st := Status{Namespace: namespace, Name: name}
	ds := s.ds
	if ds == nil {
		return st
	}
	st.Found = true
	st.Generation, st.ObservedGeneration = ds.Generation, ds.Status.ObservedGeneration
	st.Desired = ds.Status.DesiredNumberScheduled
	st.Current = ds.Status.CurrentNumberScheduled
	st.Ready = ds.Status.NumberReady
	st.UpToDate = ds.Status.UpdatedNumberScheduled
	st.Available = ds.Status.NumberAvailable

	events := indexEvents(s.events)
	for _, e := range events[ds.UID] {
		if e.Type == corev1.EventTypeWarning {
			st.Warnings = append(st.Warnings, e.Reason+": "+e.Message)
		}
	}
	hash := currentHash(ds, s.revisions)
	selector := labels.SelectorFromSet(ds.Spec.Template.Spec.NodeSelector)
	podsByNode := map[string][]*corev1.Pod{}
	for _, p := range s.pods {
		if !ownedBy(p.OwnerReferences, ds.UID) {
			continue
		}
		if n := podNode(p); n != "" {
			podsByNode[n] = append(podsByNode[n], p)
		}
	}
	for _, n := range s.nodes {
		if !selector.Matches(labels.Set(n.Labels)) {
			continue
		}
		st.StorageNodes++
		st.Nodes = append(st.Nodes, nodeState(ds, n, podsByNode[n.Name], hash, events))
	}
	slices.SortFunc(st.Nodes, func(a, b NodeState) int { return strings.Compare(a.Node, b.Node) })
	return st
}

func nodeState(ds *appsv1.DaemonSet, n *corev1.Node, pods []*corev1.Pod, hash string, events map[types.UID][]*corev1.Event) NodeState {
	ns := NodeState{Node: n.Name}
	notReady := nodeNotReady(n)
	pod := pickPod(pods)
	if pod == nil {
		switch {
		case notReady != "":
			ns.Reason, ns.Message = ReasonNodeNotReady, notReady
		case untolerated(ds, n) != nil:
			t := untolerated(ds, n)
			ns.Reason = ReasonTaintNotTolerated
			ns.Message = fmt.Sprintf("taint %s is not tolerated, so the DaemonSet controller creates no pod here; add %s to %s, or remove the taint", t.ToString(), t.ToString(), SettingTolerations)
		default:
			ns.Reason, ns.Message = ReasonNoPod, "the DaemonSet controller has not created a pod on this node yet"
			for _, e := range events[ds.UID] {
				if e.Type == corev1.EventTypeWarning && (e.Reason == ReasonFailedCreate || strings.Contains(e.Message, n.Name)) {
					ns.Reason, ns.Message = ReasonFailedCreate, e.Message
				}
			}
		}
		return ns
	}
	ns.Pod = pod.Name
	ns.Ready = podReady(pod)
	warning := lastWarning(events[pod.UID])
	switch {
	case pod.DeletionTimestamp != nil:
		ns.Reason, ns.Message = ReasonTerminating, "the pod is being deleted"
	case pod.Status.Phase == corev1.PodFailed:
		ns.Reason, ns.Message = ReasonFailed, join(pod.Status.Reason, pod.Status.Message)
	case pod.Status.Phase == corev1.PodPending && unscheduled(pod) != nil:
		c := unscheduled(pod)
		ns.Reason, ns.Message = ReasonUnschedulable, c.Message
		if ns.Message == "" && warning != nil {
			ns.Message = warning.Message
		}
	case waiting(pod) != nil:
		w := waiting(pod)
		ns.Reason, ns.Message = w.State.Waiting.Reason, w.State.Waiting.Message
		if w.RestartCount > 0 {
			ns.Message = join(ns.Message, fmt.Sprintf("restarted %d times", w.RestartCount))
		}
		if t := w.LastTerminationState.Terminated; t != nil {
			ns.Message = join(ns.Message, fmt.Sprintf("last exit code %d (%s)", t.ExitCode, t.Reason))
		}
		if ns.Reason == "" {
			ns.Reason = ReasonPending
		}
	case pod.Status.Phase == corev1.PodPending:
		ns.Reason, ns.Message = ReasonPending, join(pod.Status.Reason, pod.Status.Message)
	case !ns.Ready:
		ns.Reason = ReasonNotReady
		ns.Message = "the pod runs but its readiness probe does not pass"
		if warning != nil {
			ns.Message = warning.Reason + ": " + warning.Message
		}
	case hash != "" && pod.Labels[appsv1.DefaultDaemonSetUniqueLabelKey] != hash:
		ns.Reason = ReasonOldTemplate
		ns.Message = fmt.Sprintf("the pod runs revision %s, the current one is %s; updateStrategy is OnDelete: delete this pod (one node at a time) to update it", pod.Labels[appsv1.DefaultDaemonSetUniqueLabelKey], hash)
	}
	if notReady != "" && ns.Reason != "" {
		ns.Message = join(ns.Message, "node NotReady: "+notReady)
	}
	if ns.Reason != "" && ns.Reason != ReasonNotReady && warning != nil && !strings.Contains(ns.Message, warning.Message) {
		ns.Message = join(ns.Message, "last event "+warning.Reason+": "+warning.Message)
	}
	return ns
}

func join(parts ...string) string {
	var out []string
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, "; ")
}

func ownedBy(refs []metav1.OwnerReference, uid types.UID) bool {
	for _, r := range refs {
		if r.UID == uid && r.Controller != nil && *r.Controller {
			return true
		}
	}
	return false
}

// podNode is the Node a DaemonSet pod is bound to, or, while Pending, the
// Node its required node affinity names.
func podNode(p *corev1.Pod) string {
	if p.Spec.NodeName != "" {
		return p.Spec.NodeName
	}
	a := p.Spec.Affinity
	if a == nil || a.NodeAffinity == nil || a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return ""
	}
	for _, term := range a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
		for _, f := range term.MatchFields {
			if f.Key == "metadata.name" && f.Operator == corev1.NodeSelectorOpIn && len(f.Values) == 1 {
				return f.Values[0]
			}
		}
	}
	return ""
}

// pickPod prefers a pod not being deleted, then the newest.
func pickPod(pods []*corev1.Pod) *corev1.Pod {
	var best *corev1.Pod
	for _, p := range pods {
		switch {
		case best == nil:
			best = p
		case (best.DeletionTimestamp != nil) != (p.DeletionTimestamp != nil):
			if p.DeletionTimestamp == nil {
				best = p
			}
		case p.CreationTimestamp.After(best.CreationTimestamp.Time):
			best = p
		}
	}
	return best
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func unscheduled(p *corev1.Pod) *corev1.PodCondition {
	for i, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

func waiting(p *corev1.Pod) *corev1.ContainerStatus {
	for _, list := range [][]corev1.ContainerStatus{p.Status.InitContainerStatuses, p.Status.ContainerStatuses} {
		for i, c := range list {
			if c.State.Waiting != nil {
				return &list[i]
			}
		}
	}
	return nil
}

// nodeNotReady returns why n is not Ready, or "".
func nodeNotReady(n *corev1.Node) string {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			if c.Status == corev1.ConditionTrue {
				return ""
			}
			return join(string(c.Status), c.Reason, c.Message)
		}
	}
	return "no Ready condition reported (kubelet not running?)"
}

// daemonTolerations are added by the DaemonSet controller to every pod.
var daemonTolerations = []corev1.Toleration{
	{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute},
	{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute},
	{Key: corev1.TaintNodeDiskPressure, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
	{Key: corev1.TaintNodeMemoryPressure, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
	{Key: corev1.TaintNodePIDPressure, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
	{Key: corev1.TaintNodeUnschedulable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
}

var hostNetworkToleration = corev1.Toleration{Key: corev1.TaintNodeNetworkUnavailable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}

// untolerated returns the first NoSchedule/NoExecute taint of n that the
// DaemonSet's pods do not tolerate, or nil.
func untolerated(ds *appsv1.DaemonSet, n *corev1.Node) *corev1.Taint {
	tols := append(slices.Clone(ds.Spec.Template.Spec.Tolerations), daemonTolerations...)
	if ds.Spec.Template.Spec.HostNetwork {
		tols = append(tols, hostNetworkToleration)
	}
	for i, t := range n.Spec.Taints {
		if t.Effect == corev1.TaintEffectPreferNoSchedule {
			continue
		}
		ok := false
		for _, tol := range tols {
			if tol.ToleratesTaint(klog.Background(), &t, false) {
				ok = true
				break
			}
		}
		if !ok {
			return &n.Spec.Taints[i]
		}
	}
	return nil
}

// currentHash is the controller-revision-hash of the DaemonSet's newest
// ControllerRevision, or "" when unknown.
func currentHash(ds *appsv1.DaemonSet, revs []*appsv1.ControllerRevision) string {
	var newest *appsv1.ControllerRevision
	for _, r := range revs {
		if !ownedBy(r.OwnerReferences, ds.UID) {
			continue
		}
		if newest == nil || r.Revision > newest.Revision {
			newest = r
		}
	}
	if newest == nil {
		return ""
	}
	return newest.Labels[appsv1.DefaultDaemonSetUniqueLabelKey]
}

func indexEvents(events []*corev1.Event) map[types.UID][]*corev1.Event {
	out := map[types.UID][]*corev1.Event{}
	for _, e := range events {
		out[e.InvolvedObject.UID] = append(out[e.InvolvedObject.UID], e)
	}
	for _, list := range out {
		slices.SortStableFunc(list, func(a, b *corev1.Event) int { return eventTime(a).Compare(eventTime(b)) })
	}
	return out
}

func lastWarning(events []*corev1.Event) *corev1.Event {
	for i := len(events) - 1; i >= 0; i-- {
		if events[i].Type == corev1.EventTypeWarning {
			return events[i]
		}
	}
	return nil
}
