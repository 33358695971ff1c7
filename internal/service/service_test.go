package service

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code, rec.Body.String()
}

func TestHealthAndReadiness(t *testing.T) {
	var synced, broken atomic.Bool
	svc, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	svc.ReadyCheck("caches", func() error {
		if !synced.Load() {
			return errors.New("not synced")
		}
		return nil
	})
	svc.HealthCheck("worker", func() error {
		if broken.Load() {
			return errors.New("stuck")
		}
		return nil
	})
	h := svc.Handler()

	if code, body := get(t, h, "/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "starting") {
		t.Errorf("readyz before Run = %d %q, want 503 starting", code, body)
	}
	if code, _ := get(t, h, "/healthz"); code != http.StatusOK {
		t.Errorf("healthz = %d, want 200", code)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	running := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- svc.Run(ctx, func(ctx context.Context) error {
			close(running)
			<-ctx.Done()
			return nil
		})
	}()
	<-running
	if code, body := get(t, h, "/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "caches: not synced") {
		t.Errorf("readyz while not synced = %d %q, want 503 naming the check", code, body)
	}
	synced.Store(true)
	if code, _ := get(t, h, "/readyz"); code != http.StatusOK {
		t.Errorf("readyz once synced = %d, want 200", code)
	}
	broken.Store(true)
	if code, body := get(t, h, "/healthz"); code != http.StatusInternalServerError || !strings.Contains(body, "worker: stuck") {
		t.Errorf("healthz with a failing check = %d %q, want 500 naming it", code, body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v", err)
	}
	if code, _ := get(t, h, "/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("readyz after Run = %d, want 503", code)
	}
}

// A standby replica is ready without asking the checks: it is doing what
// it should.
func TestStandbyIsReady(t *testing.T) {
	svc, err := New(Config{Kube: fake.NewSimpleClientset(), Election: &Election{Name: "x"}})
	if err != nil {
		t.Fatal(err)
	}
	svc.ReadyCheck("caches", func() error { return errors.New("not synced") })
	if code, body := get(t, svc.Handler(), "/readyz"); code != http.StatusOK || !strings.Contains(body, "standby") {
		t.Errorf("readyz of a standby = %d %q, want 200 standby", code, body)
	}
}

func TestNewRejects(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"election without a client", Config{Election: &Election{Name: "x"}}, "needs a Kubernetes client"},
		{"election without a name", Config{Kube: fake.NewSimpleClientset(), Election: &Election{}}, "needs a Lease name"},
		{"renew deadline not shorter", Config{Kube: fake.NewSimpleClientset(), Election: &Election{Name: "x", LeaseDuration: 10e9, RenewDeadline: 10e9}}, "must be shorter"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestRecorderForSetsTheSourceHost(t *testing.T) {
	kube := fake.NewSimpleClientset()
	svc, err := New(Config{Kube: kube})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p"}}
	svc.RecorderFor(ctx, "comp", "node-1").Event(pod, corev1.EventTypeWarning, "Reason", "message")
	defer svc.broadcaster.Shutdown()
	deadline := time.Now().Add(10 * time.Second)
	for {
		evs, err := kube.CoreV1().Events("ns").List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(evs.Items) > 0 {
			if src := evs.Items[0].Source; src.Component != "comp" || src.Host != "node-1" {
				t.Errorf("Event source = %+v, want component comp on host node-1", src)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no Event recorded")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
