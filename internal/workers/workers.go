// Package workers is the workqueue loop glusterkube's small controllers
// share: wait for the informer caches, then run workers that take a key,
// sync it, requeue it with backoff when the sync fails and forget its
// failures when it succeeds (the sample-controller pattern).
package workers

import (
	"context"
	"time"

	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// Loop is one controller's queue and what syncs its keys.
type Loop struct {
	Queue workqueue.TypedRateLimitingInterface[string]
	// Synced are the informers the sync reads from.
	Synced []cache.InformerSynced
	// Workers is how many keys are synced at once (at least 1).
	Workers int
	// Sync reconciles one key; an error requeues it with backoff.
	Sync func(ctx context.Context, key string) error
	// Failed is the log message of a failed sync ("… failed; will
	// retry"), and KeyName the log key the key is logged under (claim,
	// pv, …).
	Failed, KeyName string
}

// Run runs the workers until ctx ends, then shuts the queue down. It
// returns at once, doing nothing, if the caches never sync (ctx ended).
func (l Loop) Run(ctx context.Context) {
	defer utilruntime.HandleCrash()
	defer l.Queue.ShutDown()
	if !cache.WaitForCacheSync(ctx.Done(), l.Synced...) {
		return
	}
	for range max(l.Workers, 1) {
		go wait.UntilWithContext(ctx, func(ctx context.Context) {
			for l.next(ctx) {
			}
		}, time.Second)
	}
	<-ctx.Done()
}

func (l Loop) next(ctx context.Context) bool {
	key, quit := l.Queue.Get()
	if quit {
		return false
	}
	defer l.Queue.Done(key)
	if err := l.Sync(ctx, key); err != nil {
		utilruntime.HandleErrorWithContext(ctx, err, l.Failed, l.KeyName, key)
		l.Queue.AddRateLimited(key)
		return true
	}
	l.Queue.Forget(key)
	return true
}
