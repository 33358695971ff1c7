package provisioner

import (
	"context"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes/fake"
)

// The provisioner is ready only once its informer caches have synced:
// before that it cannot tell which claims need a volume.
func TestControllersReadyAfterSync(t *testing.T) {
	p, err := New(Config{Kube: fake.NewSimpleClientset()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := NewControllers(ctx, p, RunOptions{})
	if err := c.Synced(); err == nil {
		t.Fatal("Synced before Run = nil, want an error")
	}
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	err = wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		return c.Synced() == nil, nil
	})
	if err != nil {
		t.Fatalf("never synced: %v", c.Synced())
	}
	cancel()
	<-done
}
