package daemonset

import (
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

const dsUID = types.UID("ds-uid")

func testDS(t *testing.T) *appsv1.DaemonSet {
	t.Helper()
	m, err := Render(Values{})
	if err != nil {
		t.Fatal(err)
	}
	ds := m.DaemonSet.DeepCopy()
	ds.UID = dsUID
	ds.Generation = 2
	ds.Status = appsv1.DaemonSetStatus{ObservedGeneration: 2, DesiredNumberScheduled: 1, CurrentNumberScheduled: 1, NumberReady: 1, UpdatedNumberScheduled: 1, NumberAvailable: 1}
	return ds
}

func storageNode(name string, mod ...func(*corev1.Node)) *corev1.Node {
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"storagenode": "glusterfs"}},
		Status:     corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}},
	}
	for _, m := range mod {
		m(n)
	}
	return n
}

func dsPod(name, node string, mod ...func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: DefaultNamespace, UID: types.UID(name + "-uid"),
			Labels:          map[string]string{"glusterfs": "pod", "glusterfs-node": "pod", appsv1.DefaultDaemonSetUniqueLabelKey: "rev2"},
			OwnerReferences: []metav1.OwnerReference{{UID: dsUID, Controller: ptr.To(true), Kind: "DaemonSet", Name: "glusterfs", APIVersion: "apps/v1"}},
		},
		Spec: corev1.PodSpec{NodeName: node},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue}, {Type: corev1.PodReady, Status: corev1.ConditionTrue}}},
	}
	for _, m := range mod {
		m(p)
	}
	return p
}

func revision(hash string, rev int64) *appsv1.ControllerRevision {
	return &appsv1.ControllerRevision{
		ObjectMeta: metav1.ObjectMeta{Name: "glusterfs-" + hash, Labels: map[string]string{appsv1.DefaultDaemonSetUniqueLabelKey: hash},
			OwnerReferences: []metav1.OwnerReference{{UID: dsUID, Controller: ptr.To(true)}}},
		Revision: rev,
	}
}

func warningEvent(uid types.UID, reason, msg string, at time.Time) *corev1.Event {
	return &corev1.Event{InvolvedObject: corev1.ObjectReference{UID: uid}, Type: corev1.EventTypeWarning, Reason: reason, Message: msg, LastTimestamp: metav1.NewTime(at)}
}

func pending(p *corev1.Pod) {
	p.Spec.NodeName = ""
	p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
		NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchFields: []corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{"n1"}}}}}}}}
	p.Status = corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "Unschedulable", Message: "0/6 nodes are available: 1 Insufficient cpu."}}}
}

func waitingIn(reason, msg string, restarts int32) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Status.Conditions[1].Status = corev1.ConditionFalse
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "glusterfs", RestartCount: restarts, State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: msg}}}}
		if restarts > 0 {
			p.Status.ContainerStatuses[0].LastTerminationState.Terminated = &corev1.ContainerStateTerminated{ExitCode: 1, Reason: "Error"}
		}
	}
}

func TestEvaluate(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name       string
		nodes      []*corev1.Node
		pods       []*corev1.Pod
		events     []*corev1.Event
		mutateDS   func(*appsv1.DaemonSet)
		done       bool
		wantReason string
		wantMsg    []string
	}{
		{name: "ready and up to date", nodes: []*corev1.Node{storageNode("n1"), {ObjectMeta: metav1.ObjectMeta{Name: "not-storage"}}}, pods: []*corev1.Pod{dsPod("p1", "n1")}, done: true},
		{
			name:       "pending on resources",
			nodes:      []*corev1.Node{storageNode("n1")},
			pods:       []*corev1.Pod{dsPod("p1", "", pending)},
			mutateDS:   func(ds *appsv1.DaemonSet) { ds.Status.NumberReady = 0 },
			wantReason: ReasonUnschedulable, wantMsg: []string{"Insufficient cpu"},
		},
		{
			name: "taint not tolerated: no pod at all",
			nodes: []*corev1.Node{storageNode("n1", func(n *corev1.Node) {
				n.Spec.Taints = []corev1.Taint{{Key: "example.com/maintenance", Value: "yes", Effect: corev1.TaintEffectNoSchedule}}
			})},
			mutateDS:   func(ds *appsv1.DaemonSet) { ds.Status = appsv1.DaemonSetStatus{ObservedGeneration: 2} },
			wantReason: ReasonTaintNotTolerated, wantMsg: []string{"example.com/maintenance=yes:NoSchedule", SettingTolerations},
		},
		{
			name: "taints the DaemonSet tolerates by itself are not blamed",
			nodes: []*corev1.Node{storageNode("n1", func(n *corev1.Node) {
				n.Spec.Taints = []corev1.Taint{{Key: corev1.TaintNodeUnschedulable, Effect: corev1.TaintEffectNoSchedule}}
			})},
			mutateDS: func(ds *appsv1.DaemonSet) {
				ds.Status = appsv1.DaemonSetStatus{ObservedGeneration: 2, DesiredNumberScheduled: 1}
			},
			wantReason: ReasonNoPod,
		},
		{
			name:       "image pull",
			nodes:      []*corev1.Node{storageNode("n1")},
			pods:       []*corev1.Pod{dsPod("p1", "n1", waitingIn("ImagePullBackOff", `Back-off pulling image "gluster/gluster-centos:nope"`, 0))},
			mutateDS:   func(ds *appsv1.DaemonSet) { ds.Status.NumberReady = 0 },
			wantReason: "ImagePullBackOff", wantMsg: []string{"gluster-centos:nope"},
		},
		{
			name:       "crash loop",
			nodes:      []*corev1.Node{storageNode("n1")},
			pods:       []*corev1.Pod{dsPod("p1", "n1", waitingIn("CrashLoopBackOff", "back-off 5m0s restarting failed container", 7))},
			mutateDS:   func(ds *appsv1.DaemonSet) { ds.Status.NumberReady = 0 },
			wantReason: "CrashLoopBackOff", wantMsg: []string{"restarted 7 times", "last exit code 1"},
		},
		{
			name: "node NotReady",
			nodes: []*corev1.Node{storageNode("n1", func(n *corev1.Node) {
				n.Status.Conditions[0] = corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionUnknown, Reason: "NodeStatusUnknown", Message: "Kubelet stopped posting node status."}
			})},
			pods: []*corev1.Pod{dsPod("p1", "n1", func(p *corev1.Pod) {
				p.Status.Conditions[1].Status = corev1.ConditionFalse
			})},
			mutateDS:   func(ds *appsv1.DaemonSet) { ds.Status.NumberReady = 0 },
			wantReason: ReasonNotReady, wantMsg: []string{"node NotReady", "Kubelet stopped posting"},
		},
		{
			name:  "readiness probe failing, from events",
			nodes: []*corev1.Node{storageNode("n1")},
			pods: []*corev1.Pod{dsPod("p1", "n1", func(p *corev1.Pod) {
				p.Status.Conditions[1].Status = corev1.ConditionFalse
			})},
			events: []*corev1.Event{
				warningEvent("p1-uid", "Unhealthy", "old failure", now.Add(-time.Minute)),
				warningEvent("p1-uid", "Unhealthy", "Readiness probe failed: glusterd.service inactive", now),
			},
			mutateDS:   func(ds *appsv1.DaemonSet) { ds.Status.NumberReady = 0 },
			wantReason: ReasonNotReady, wantMsg: []string{"Readiness probe failed: glusterd.service inactive"},
		},
		{
			name:       "old template under OnDelete",
			nodes:      []*corev1.Node{storageNode("n1")},
			pods:       []*corev1.Pod{dsPod("p1", "n1", func(p *corev1.Pod) { p.Labels[appsv1.DefaultDaemonSetUniqueLabelKey] = "rev1" })},
			mutateDS:   func(ds *appsv1.DaemonSet) { ds.Status.UpdatedNumberScheduled = 0 },
			wantReason: ReasonOldTemplate, wantMsg: []string{"rev1", "rev2", "OnDelete"},
		},
		{
			name:       "pod creation forbidden",
			nodes:      []*corev1.Node{storageNode("n1")},
			events:     []*corev1.Event{warningEvent(dsUID, ReasonFailedCreate, `Error creating: pods "glusterfs-x" is forbidden: violates PodSecurity "baseline:latest": privileged`, now)},
			mutateDS:   func(ds *appsv1.DaemonSet) { ds.Status.NumberReady, ds.Status.CurrentNumberScheduled = 0, 0 },
			wantReason: ReasonFailedCreate, wantMsg: []string{"PodSecurity"},
		},
		{
			name:       "a pod of another owner does not count",
			nodes:      []*corev1.Node{storageNode("n1")},
			pods:       []*corev1.Pod{dsPod("p1", "n1", func(p *corev1.Pod) { p.OwnerReferences[0].UID = "other" })},
			mutateDS:   func(ds *appsv1.DaemonSet) { ds.Status.NumberReady = 0 },
			wantReason: ReasonNoPod,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ds := testDS(t)
			if tt.mutateDS != nil {
				tt.mutateDS(ds)
			}
			st := evaluate(ds.Namespace, ds.Name, snapshot{ds: ds, nodes: tt.nodes, pods: tt.pods, events: tt.events,
				revisions: []*appsv1.ControllerRevision{revision("rev1", 1), revision("rev2", 2)}})
			if st.Done() != tt.done {
				t.Errorf("Done() = %v, want %v (%s, %v)", st.Done(), tt.done, st.Summary(), st.Problems())
			}
			if st.StorageNodes != 1 {
				t.Errorf("storage nodes = %d, want 1", st.StorageNodes)
			}
			probs := st.Problems()
			if tt.wantReason == "" {
				if len(probs) > 0 {
					t.Errorf("problems = %v", probs)
				}
				return
			}
			if len(probs) != 1 || probs[0].Node != "n1" || probs[0].Reason != tt.wantReason {
				t.Fatalf("problems = %v, want n1 %s", probs, tt.wantReason)
			}
			for _, m := range tt.wantMsg {
				if !strings.Contains(probs[0].Message, m) {
					t.Errorf("message %q does not contain %q", probs[0].Message, m)
				}
			}
		})
	}
}

func TestNoStorageNodesIsNotDone(t *testing.T) {
	ds := testDS(t)
	ds.Status = appsv1.DaemonSetStatus{ObservedGeneration: 2}
	st := evaluate(ds.Namespace, ds.Name, snapshot{ds: ds})
	if st.Done() {
		t.Error("a DaemonSet with no storage node counts as rolled out")
	}
	if !strings.Contains(st.Summary(), "glusterkube nodes label") {
		t.Errorf("summary %q does not say how to get storage nodes", st.Summary())
	}
}
