package migrate

import (
	"context"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/glusterkube/glusterkube/internal/testenv"
)

// deployment runs one pod (on a kwok node) that mounts claim.
func deployment(t *testing.T, kube kubernetes.Interface, ns, name, claim string) {
	t.Helper()
	labels := map[string]string{"app": name}
	_, err := kube.AppsV1().Deployments(ns).Create(context.Background(), &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: v1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: v1.PodSpec{
					TerminationGracePeriodSeconds: ptr.To[int64](0),
					Containers:                    []v1.Container{{Name: "app", Image: "busybox", VolumeMounts: []v1.VolumeMount{{Name: "data", MountPath: "/data"}}}},
					Volumes:                       []v1.Volume{{Name: "data", VolumeSource: v1.VolumeSource{PersistentVolumeClaim: &v1.PersistentVolumeClaimVolumeSource{ClaimName: claim}}}},
				},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
}

// runningPod waits for the deployment's pod to run and returns its name.
func runningPod(t *testing.T, kube kubernetes.Interface, ns, app string) string {
	t.Helper()
	var name string
	eventually(t, 2*time.Minute, "pod of "+app+" Running", func(ctx context.Context) (bool, error) {
		list, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + app})
		if err != nil || len(list.Items) != 1 {
			return false, err
		}
		name = list.Items[0].Name
		return list.Items[0].Status.Phase == v1.PodRunning, nil
	})
	return name
}

func scaleToZero(t *testing.T, kube kubernetes.Interface, ns, app string) {
	t.Helper()
	ctx := context.Background()
	s, err := kube.AppsV1().Deployments(ns).GetScale(ctx, app, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s.Spec.Replicas = 0
	if _, err := kube.AppsV1().Deployments(ns).UpdateScale(ctx, app, s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Minute, "pods of "+app+" gone", func(ctx context.Context) (bool, error) {
		list, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + app})
		return err == nil && len(list.Items) == 0, err
	})
}

// A claim used by a running pod is refused, naming the pod and what runs
// it, and nothing changes; once the workload is scaled down, apply
// converts it. A pod that starts after the PV was recorded stops the
// conversion before the PV is deleted (the delete step asks again), and
// the re-run finishes once it is gone.
func TestApplyRefusesClaimInUse(t *testing.T) {
	env := testenv.Get(t)
	ns, recNS := env.Namespace(t), env.Namespace(t)
	h := heketiClient(t, env.Heketi.URL)
	cluster := testenv.HeketiCluster(t, h)
	kube := fastClient(t, env.Config)
	ctx := context.Background()
	testenv.EnsureCSIDriver(context.Background(), t, kube)
	cleanupPVs(t, kube, ns)
	class := createClass(t, kube, testenv.InTreeClass(ns, v1.PersistentVolumeReclaimDelete, map[string]string{"resturl": env.Heketi.URL, "restauthenabled": "false", "clusterid": cluster}))
	vols := makeInTree(t, kube, h, class, ns, "busy", "late")
	deployment(t, kube, ns, "web", "busy")
	pod := runningPod(t, kube, ns, "web")

	m := newMigrator(t, env, "glusterkube.io/"+ns, recNS, nil)
	plan, err := m.Plan(ctx, Selection{Claims: claimsOf(ns, "busy")})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Items) != 1 || plan.Items[0].State != StateInUse || !strings.Contains(plan.Items[0].Reason, ns+"/"+pod) || !strings.Contains(plan.Items[0].Reason, "ReplicaSet web-") {
		t.Fatalf("plan: %+v, want busy in use by %s (ReplicaSet web-...)", plan.Items[0], pod)
	}
	busy := vols["busy"]
	before := getPV(t, kube, busy.PV.Name)
	rep := m.Apply(ctx, plan, nil)
	if rep.Count(OutcomeRefused) != 1 || !strings.Contains(rep.Results[0].Message, pod) {
		t.Fatalf("apply: %+v, want refused naming %s", rep.Results, pod)
	}
	if cur := getPV(t, kube, busy.PV.Name); cur.UID != busy.PV.UID || cur.Spec.Glusterfs == nil || cur.ResourceVersion != before.ResourceVersion {
		t.Errorf("the refused PV changed: %+v", cur)
	}
	if c := getClaim(t, kube, ns, "busy"); c.Annotations[AnnMigrating] != "" {
		t.Errorf("the refused claim was annotated")
	}
	if recs, _ := m.listRecords(ctx); len(recs) != 0 {
		t.Errorf("records: %v", recs)
	}

	scaleToZero(t, kube, ns, "web")
	plan, err = m.Plan(ctx, Selection{Claims: claimsOf(ns, "busy")})
	if err != nil {
		t.Fatal(err)
	}
	if rep := m.Apply(ctx, plan, nil); rep.Count(OutcomeConverted) != 1 {
		t.Fatalf("apply after scaling down: %+v", rep.Results)
	}
	if pv := getPV(t, kube, busy.PV.Name); pv.Spec.CSI == nil {
		t.Errorf("PV %s not converted", pv.Name)
	}

	// A pod comes between the record and the delete.
	crashing := newMigrator(t, env, "glusterkube.io/"+ns, recNS, crashAfter(StepRecord))
	plan, err = crashing.Plan(ctx, Selection{Claims: claimsOf(ns, "late")})
	if err != nil {
		t.Fatal(err)
	}
	crashing.Apply(ctx, plan, nil)
	deployment(t, kube, ns, "late", "late")
	pod = runningPod(t, kube, ns, "late")
	plan, err = m.Plan(ctx, Selection{Claims: claimsOf(ns, "late")})
	if err != nil {
		t.Fatal(err)
	}
	rep = m.Apply(ctx, plan, nil)
	if rep.Count(OutcomeRefused) != 1 || !strings.Contains(rep.Results[0].Message, pod) {
		t.Fatalf("apply with a pod after the record: %+v", rep.Results)
	}
	if cur := getPV(t, kube, vols["late"].PV.Name); cur.UID != vols["late"].PV.UID || cur.Spec.PersistentVolumeReclaimPolicy != v1.PersistentVolumeReclaimRetain {
		t.Errorf("PV late: uid %s policy %s, want the old PV, Retain", cur.UID, cur.Spec.PersistentVolumeReclaimPolicy)
	}
	scaleToZero(t, kube, ns, "late")
	plan, err = m.Plan(ctx, Selection{Claims: claimsOf(ns, "late")})
	if err != nil {
		t.Fatal(err)
	}
	if rep := m.Apply(ctx, plan, nil); rep.Count(OutcomeConverted) != 1 {
		t.Fatalf("apply after the late pod went: %+v", rep.Results)
	}
	bound := waitBound(t, kube, ns, []string{"busy", "late"}, time.Minute)
	for c, v := range vols {
		if pv := getPV(t, kube, bound[c]); pv.Name != v.PV.Name || pv.Spec.CSI == nil || pv.Spec.PersistentVolumeReclaimPolicy != v1.PersistentVolumeReclaimDelete {
			t.Errorf("claim %s: PV %s csi %v policy %s", c, pv.Name, pv.Spec.CSI != nil, pv.Spec.PersistentVolumeReclaimPolicy)
		}
	}
}
