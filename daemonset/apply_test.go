package daemonset

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func changes(rs []ObjectResult) string {
	var out []string
	for _, r := range rs {
		out = append(out, r.String())
	}
	return strings.Join(out, "; ")
}

func TestApplyFake(t *testing.T) {
	ctx := context.Background()
	cs := fake.NewClientset()
	m, err := Render(Values{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := Apply(ctx, cs, m, ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := changes(res); got != "namespace/glusterfs created; daemonset.apps/glusterfs created" {
		t.Errorf("first apply: %s", got)
	}
	m2, _ := Render(Values{Image: "gluster/gluster-centos:v9"})
	res, err = Apply(ctx, cs, m2, ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := changes(res); !strings.Contains(got, "daemonset.apps/glusterfs configured: spec.template.spec.containers[0].image") || !res[1].TemplateChanged {
		t.Errorf("image change: %s (template changed %v)", got, res[1].TemplateChanged)
	}
	ds, err := cs.AppsV1().DaemonSets("glusterfs").Get(ctx, "glusterfs", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ds.Spec.Template.Spec.Containers[0].Image != "gluster/gluster-centos:v9" {
		t.Errorf("image = %s", ds.Spec.Template.Spec.Containers[0].Image)
	}
}

func TestWaitFake(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ds := testDS(t)
	ds.Status.NumberReady = 0
	cs := fake.NewClientset(ds, storageNode("n1"), revision("rev2", 2))
	pod := dsPod("p1", "n1", pending)
	if _, err := cs.CoreV1().Pods(ds.Namespace).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	progress := make(chan string, 10)
	done := make(chan error, 1)
	go func() {
		_, err := Wait(ctx, cs, ds.Namespace, ds.Name, WaitOptions{OnProgress: func(s Status) {
			line := s.Summary()
			for _, p := range s.Problems() {
				line += " | " + p.Reason
			}
			progress <- line
		}})
		close(progress)
		done <- err
	}()
	if first := <-progress; !strings.Contains(first, "0/1 ready") || !strings.Contains(first, "Unschedulable") {
		t.Errorf("first progress = %q", first)
	}
	// The pod gets scheduled and ready, then the controller counts it.
	ready := dsPod("p1", "n1")
	if _, err := cs.CoreV1().Pods(ds.Namespace).Update(ctx, ready, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	ds2 := ds.DeepCopy()
	ds2.Status.NumberReady = 1
	if _, err := cs.AppsV1().DaemonSets(ds.Namespace).UpdateStatus(ctx, ds2, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	var last string
	for l := range progress {
		last = l
	}
	if err := <-done; err != nil {
		t.Fatalf("wait: %v", err)
	}
	if !strings.Contains(last, "1/1 ready") {
		t.Errorf("last progress = %q", last)
	}
}

func TestWaitTimeoutDiagnoses(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	ds := testDS(t)
	ds.Status.NumberReady = 0
	cs := fake.NewClientset(ds, storageNode("n1"), dsPod("p1", "n1", waitingIn("ErrImagePull", "not found", 0)))
	_, err := Wait(ctx, cs, ds.Namespace, ds.Name, WaitOptions{})
	nr, ok := IsNotReady(err)
	if !ok || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want NotReadyError after deadline", err)
	}
	if !strings.Contains(err.Error(), "n1: ErrImagePull (pod p1): not found") || len(nr.Status.Problems()) != 1 {
		t.Errorf("err = %v", err)
	}
}
