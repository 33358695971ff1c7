// Package election runs work behind a Lease, so that of several replicas
// one works and the others wait to take over. It is what `glusterkube run`
// and `glusterkube provisioner` share.
package election

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
)

// ErrLost is returned when another replica took the Lease over; the
// process should exit so it restarts as a candidate.
var ErrLost = errors.New("lost leader election")

// Config names the Lease and its timing.
type Config struct {
	Kube                                      kubernetes.Interface
	Namespace, Name                           string
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	// Recorder records the Lease's leadership Events (optional).
	Recorder record.EventRecorder
	// Health, when set, is the /healthz watchdog: it fails when the
	// leader can no longer renew the Lease.
	Health *leaderelection.HealthzAdaptor
}

// Run campaigns for the Lease and, while leading, runs lead. It returns
// when ctx ends (nil), when lead returns (lead's error; the Lease is
// released), or when the Lease is lost (ErrLost); lead has always finished
// by then. (client-go's elector runs lead in a goroutine of its own and
// does not wait for it.)
func Run(ctx context.Context, cfg Config, lead func(ctx context.Context) error) error {
	logger := klog.FromContext(ctx)
	host, _ := os.Hostname()
	id := host + "_" + string(uuid.NewUUID())
	lock, err := resourcelock.New(resourcelock.LeasesResourceLock, cfg.Namespace, cfg.Name,
		cfg.Kube.CoreV1(), cfg.Kube.CoordinationV1(),
		resourcelock.ResourceLockConfig{Identity: id, EventRecorder: cfg.Recorder})
	if err != nil {
		return fmt.Errorf("leader election lock: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// lead runs in the elector's goroutine; finished (under mu) tells a
	// goroutine started as Run returns not to begin, and leading waits for
	// one that began.
	var (
		leadErr  error
		lost     bool
		mu       sync.Mutex
		finished bool
		leading  sync.WaitGroup
	)
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   cfg.LeaseDuration,
		RenewDeadline:   cfg.RenewDeadline,
		RetryPeriod:     cfg.RetryPeriod,
		ReleaseOnCancel: true,
		Name:            cfg.Name,
		WatchDog:        cfg.Health,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(ctx context.Context) {
				mu.Lock()
				if finished {
					mu.Unlock()
					return
				}
				leading.Add(1)
				mu.Unlock()
				defer leading.Done()
				logger.Info("Leading", "lease", klog.KRef(cfg.Namespace, cfg.Name), "identity", id)
				leadErr = lead(ctx)
				cancel() // lead is over: release the Lease
			},
			OnStoppedLeading: func() {
				if ctx.Err() == nil {
					lost = true
				}
			},
		},
	})
	if err != nil {
		return fmt.Errorf("leader election: %w", err)
	}
	if cfg.Health != nil {
		cfg.Health.SetLeaderElection(le)
	}
	logger.Info("Waiting to lead", "lease", klog.KRef(cfg.Namespace, cfg.Name), "identity", id)
	le.Run(ctx)
	mu.Lock()
	finished = true
	mu.Unlock()
	leading.Wait()
	if leadErr != nil {
		return leadErr
	}
	if lost {
		return ErrLost
	}
	return nil
}
