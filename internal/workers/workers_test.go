package workers

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// Every key is synced; a failing sync is retried with backoff until it
// succeeds, and its failures are then forgotten.
func TestLoopRetriesThenForgets(t *testing.T) {
	q := workqueue.NewTypedRateLimitingQueue(workqueue.NewTypedItemExponentialFailureRateLimiter[string](time.Millisecond, 10*time.Millisecond))
	var mu sync.Mutex
	calls := map[string]int{}
	done := make(chan struct{})
	var once sync.Once
	syncKey := func(_ context.Context, key string) error {
		mu.Lock()
		defer mu.Unlock()
		calls[key]++
		if key == "flaky" && calls[key] < 3 {
			return errors.New("not yet")
		}
		if calls["flaky"] == 3 && calls["a"] == 1 && calls["b"] == 1 {
			once.Do(func() { close(done) })
		}
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		Loop{Queue: q, Synced: []cache.InformerSynced{func() bool { return true }}, Workers: 2, Sync: syncKey, Failed: "sync failed", KeyName: "key"}.Run(ctx)
	}()
	for _, k := range []string{"a", "flaky", "b"} {
		q.Add(k)
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("keys not all synced: %v", calls)
	}
	if n := q.NumRequeues("flaky"); n != 0 {
		t.Errorf("flaky has %d requeues after succeeding, want them forgotten", n)
	}
	cancel()
	<-stopped
	if !q.ShuttingDown() {
		t.Error("the queue is not shut down after Run")
	}
}
