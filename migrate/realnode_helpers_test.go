package migrate_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"

	"github.com/glusterkube/glusterkube/cmd/glusterkube/app"
	"github.com/glusterkube/glusterkube/internal/testenv"
)

// runCommand runs glusterkube with args and returns what it printed.
func runCommand(ctx context.Context, args ...string) (string, error) {
	var out bytes.Buffer
	err := app.Run(ctx, args, app.Streams{In: strings.NewReader(""), Out: &out, Err: &out})
	return out.String(), err
}

// writeThroughFUSE writes files on a GlusterFS volume through a FUSE
// mount of its own, as a pod did before the upgrade, and unmounts.
func writeThroughFUSE(ctx context.Context, t *testing.T, g *testenv.Glusterd, volume string, files map[string][]byte) {
	t.Helper()
	dir, err := g.Mount(ctx, volume)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := g.Unmount(dir); err != nil {
		t.Fatal(err)
	}
}

// workload is a one-pod Deployment on node running workloadScript on the
// volume of claim.
func workload(node *testenv.RealNode, ns, claim string) *appsv1.Deployment {
	one, grace := int32(1), int64(1)
	labels := map[string]string{"app": "workload"}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "workload"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &one,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: v1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: v1.PodSpec{
					TerminationGracePeriodSeconds: &grace,
					Containers: []v1.Container{{
						Name: "main", Image: testenv.BusyboxImage, ImagePullPolicy: v1.PullNever,
						Command:      []string{"/bin/sh", "-c", workloadScript, "workload", "/data"},
						VolumeMounts: []v1.VolumeMount{{Name: "data", MountPath: "/data"}},
					}},
					Volumes: []v1.Volume{{Name: "data", VolumeSource: v1.VolumeSource{
						PersistentVolumeClaim: &v1.PersistentVolumeClaimVolumeSource{ClaimName: claim},
					}}},
				},
			},
		},
	}
	node.Pin(&dep.Spec.Template.Spec)
	return dep
}

// scale sets the Deployment's replicas and waits until it has that many
// pods (none left terminating).
func scale(ctx context.Context, t *testing.T, kube kubernetes.Interface, dep *appsv1.Deployment, n int32) {
	t.Helper()
	sc, err := kube.AppsV1().Deployments(dep.Namespace).GetScale(ctx, dep.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sc.Spec.Replicas = n
	if _, err := kube.AppsV1().Deployments(dep.Namespace).UpdateScale(ctx, dep.Name, sc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 2*time.Minute, fmt.Sprintf("%d pod(s) of %s", n, dep.Name), func(ctx context.Context) (bool, error) {
		l, err := kube.CoreV1().Pods(dep.Namespace).List(ctx, metav1.ListOptions{LabelSelector: "app=workload"})
		if err != nil {
			return false, err
		}
		for _, p := range l.Items {
			if p.DeletionTimestamp != nil {
				return false, fmt.Errorf("pod %s terminating", p.Name)
			}
		}
		return len(l.Items) == int(n), fmt.Errorf("%d pods", len(l.Items))
	})
}

// onlyPod returns the workload's one pod once it is scheduled.
func onlyPod(ctx context.Context, t *testing.T, kube kubernetes.Interface, ns string) *v1.Pod {
	t.Helper()
	var pod *v1.Pod
	testenv.Eventually(t, time.Minute, "the workload's pod scheduled", func(ctx context.Context) (bool, error) {
		l, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=workload"})
		if err != nil || len(l.Items) != 1 || l.Items[0].Spec.NodeName == "" {
			return false, err
		}
		pod = &l.Items[0]
		return true, nil
	})
	return pod
}

func getPV(ctx context.Context, t *testing.T, kube kubernetes.Interface, name string) *v1.PersistentVolume {
	t.Helper()
	pv, err := kube.CoreV1().PersistentVolumes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return pv
}

// waitClaimBound waits until claim ns/name is Bound to PV pv.
func waitClaimBound(t *testing.T, kube kubernetes.Interface, ns, name, pv string) {
	t.Helper()
	testenv.Eventually(t, 2*time.Minute, "claim "+name+" Bound to "+pv, func(ctx context.Context) (bool, error) {
		c, err := kube.CoreV1().PersistentVolumeClaims(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return c.Status.Phase == v1.ClaimBound && c.Spec.VolumeName == pv, fmt.Errorf("%s on %q", c.Status.Phase, c.Spec.VolumeName)
	})
}

// heketiVolumeIDs lists the volumes of the storage node's heketi cluster.
func heketiVolumeIDs(t *testing.T, s *testenv.StorageNode) []string {
	t.Helper()
	var ids []string
	for _, v := range testenv.ClusterVolumes(t, s.Admin, s.Cluster) {
		ids = append(ids, v.Id)
	}
	slices.Sort(ids)
	return ids
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// claimState is a claim as one watch event showed it.
type claimState struct {
	at     time.Time
	phase  v1.PersistentVolumeClaimPhase
	volume string
	uid    types.UID
}

// claimWatch records every state of one claim.
type claimWatch struct {
	mu     sync.Mutex
	states []claimState
	// cut: the watch could not be resumed; states may be missing.
	cut    bool
	cancel context.CancelFunc
	done   chan struct{}
}

// watchClaim starts recording the states of claim ns/name: its state now,
// then every change. A watch the API server ends is resumed from the last
// state seen (client-go's RetryWatcher), so no change is missed; only a
// resume the API server refuses (its history is gone) marks the record
// cut.
func watchClaim(ctx context.Context, t *testing.T, kube kubernetes.Interface, ns, name string) *claimWatch {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	claims := kube.CoreV1().PersistentVolumeClaims(ns)
	c, err := claims.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	sel := fields.OneTermEqualSelector("metadata.name", name).String()
	w, err := watchtools.NewRetryWatcherWithContext(ctx, c.ResourceVersion, &cache.ListWatch{
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = sel
			return claims.Watch(ctx, o)
		},
	})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	cw := &claimWatch{cancel: cancel, done: make(chan struct{})}
	cw.states = append(cw.states, claimState{at: time.Now(), phase: c.Status.Phase, volume: c.Spec.VolumeName, uid: c.UID})
	go func() {
		defer close(cw.done)
		defer w.Stop()
		for ev := range w.ResultChan() {
			if ev.Type == watch.Error {
				t.Logf("claim %s/%s: watch error %v", ns, name, apierrors.FromObject(ev.Object))
				cw.mu.Lock()
				cw.cut = true
				cw.mu.Unlock()
				continue
			}
			c, ok := ev.Object.(*v1.PersistentVolumeClaim)
			if !ok || ev.Type == watch.Deleted {
				continue
			}
			cw.mu.Lock()
			cw.states = append(cw.states, claimState{at: time.Now(), phase: c.Status.Phase, volume: c.Spec.VolumeName, uid: c.UID})
			cw.mu.Unlock()
		}
	}()
	t.Cleanup(func() { _, _ = cw.stop() })
	return cw
}

// stop ends the watch and returns the states seen; an error when the
// watch ended before.
func (cw *claimWatch) stop() ([]claimState, error) {
	cw.cancel()
	<-cw.done
	cw.mu.Lock()
	defer cw.mu.Unlock()
	if cw.cut {
		return cw.states, errors.New("the claim's watch ended early: states may be missing")
	}
	return slices.Clone(cw.states), nil
}
