package daemon

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"

	"github.com/glusterkube/glusterkube/controller"
	"github.com/glusterkube/glusterkube/internal/service"
	"github.com/glusterkube/glusterkube/provisioner"
)

// Defaults of Config.
const (
	DefaultLeaseName = "glusterkube"
	DefaultResync    = 10 * time.Minute
)

// Config configures Run.
type Config struct {
	Kube kubernetes.Interface
	// Storage configures the storage controller; nil disables it. Kube
	// and Recorder are filled in by Run.
	Storage *controller.Config
	// Resync re-reads heketi's topology this often even when nothing in
	// the cluster changed (heketi has no watch). Default DefaultResync.
	Resync time.Duration
	// Provisioner, when set, runs the dynamic provisioner with
	// ProvisionerOptions (its own leader election and metrics server are
	// replaced by Run's).
	Provisioner        *provisioner.Provisioner
	ProvisionerOptions provisioner.RunOptions

	// LeaderElection makes one replica active: it holds the Lease
	// LeaseNamespace/LeaseName (default "glusterkube"), the others wait.
	LeaderElection                            bool
	LeaseNamespace, LeaseName                 string
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration

	// Address serves /healthz, /readyz and /metrics (off when empty).
	Address string
	// Collectors are registered beside the controllers' metrics.
	Collectors []prometheus.Collector
}

// ErrLostLeadership is returned when another replica took over; the
// process should exit so it restarts as a candidate.
var ErrLostLeadership = service.ErrLostLeadership

// storageMetrics describe the storage controller's reconciles, for alerts
// on a topology that stopped reaching heketi.
type storageMetrics struct {
	reconciles  *prometheus.CounterVec
	lastSuccess prometheus.Gauge
}

func newStorageMetrics(reg prometheus.Registerer) *storageMetrics {
	m := &storageMetrics{
		reconciles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "glusterkube", Subsystem: "storage", Name: "reconciles_total",
			Help: "Reconciles of the topology ConfigMap (load into heketi, label nodes, apply the DaemonSet), by outcome.",
		}, []string{"outcome"}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "glusterkube", Subsystem: "storage", Name: "last_success_timestamp_seconds",
			Help: "When the last reconcile of the topology ConfigMap succeeded (Unix time).",
		}),
	}
	m.reconciles.WithLabelValues("ok")
	m.reconciles.WithLabelValues("error")
	reg.MustRegister(m.reconciles, m.lastSuccess)
	return m
}

func (m *storageMetrics) observe(err error) {
	if err != nil {
		m.reconciles.WithLabelValues("error").Inc()
		return
	}
	m.reconciles.WithLabelValues("ok").Inc()
	m.lastSuccess.SetToCurrentTime()
}

// storageState is what /readyz says of the storage controller.
type storageState struct {
	done atomic.Bool
	err  atomic.Pointer[string]
}

func (s *storageState) check() error {
	if !s.done.Load() {
		return errors.New("first reconcile not finished")
	}
	if e := s.err.Load(); e != nil {
		return errors.New(*e)
	}
	return nil
}

// Run runs the configured controllers until ctx ends.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Kube == nil {
		return errors.New("daemon: no Kubernetes client")
	}
	if cfg.Storage == nil && cfg.Provisioner == nil {
		return errors.New("daemon: nothing to run: enable the storage controller or the provisioner")
	}
	if cfg.LeaseName == "" {
		cfg.LeaseName = DefaultLeaseName
	}
	if cfg.Resync <= 0 {
		cfg.Resync = DefaultResync
	}

	// The provision controller first, before anything else uses client-go's
	// scheme (see provisioner.NewControllers).
	var prov *provisioner.Controllers
	if cfg.Provisioner != nil {
		if err := cfg.Provisioner.ResolveInTree(ctx); err != nil {
			return err
		}
		prov = provisioner.NewControllers(ctx, cfg.Provisioner, cfg.ProvisionerOptions)
	}
	sc := service.Config{Kube: cfg.Kube, Address: cfg.Address, Collectors: cfg.Collectors}
	if prov != nil {
		sc.Collectors = append(sc.Collectors, prov.Collectors()...)
	}
	if cfg.LeaderElection {
		sc.Election = &service.Election{
			Namespace: cfg.LeaseNamespace, Name: cfg.LeaseName,
			LeaseDuration: cfg.LeaseDuration, RenewDeadline: cfg.RenewDeadline, RetryPeriod: cfg.RetryPeriod,
		}
	}
	svc, err := service.New(sc)
	if err != nil {
		return err
	}
	recorder := svc.Recorder(ctx, "glusterkube")
	if cfg.Provisioner != nil {
		cfg.Provisioner.UseRecorder(svc.Recorder(ctx, "glusterkube-provisioner"))
		svc.ReadyCheck("provisioner", prov.Synced)
	}
	var st *storageState
	var sm *storageMetrics
	if cfg.Storage != nil {
		st = &storageState{}
		svc.ReadyCheck("storage controller", st.check)
		sm = newStorageMetrics(svc.Registerer())
	}
	return svc.Run(ctx, func(ctx context.Context) error {
		if st != nil {
			// A new lead starts from a clean slate.
			st.done.Store(false)
			st.err.Store(nil)
		}
		return runControllers(ctx, &cfg, prov, recorder, sm, st)
	})
}

// runControllers runs the enabled controllers until ctx ends or one of
// them fails to start.
func runControllers(ctx context.Context, cfg *Config, prov *provisioner.Controllers, recorder record.EventRecorder, sm *storageMetrics, st *storageState) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	logger := klog.FromContext(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	errs := make(chan error, 2)

	if cfg.Storage != nil {
		sc := *cfg.Storage
		sc.Kube, sc.Recorder = cfg.Kube, recorder
		cmFactory := informers.NewSharedInformerFactoryWithOptions(cfg.Kube, 0, informers.WithNamespace(sc.Namespace))
		nodeFactory := informers.NewSharedInformerFactory(cfg.Kube, 0)
		c, err := controller.New(sc, cmFactory, nodeFactory)
		if err != nil {
			return err
		}
		cmFactory.Start(ctx.Done())
		nodeFactory.Start(ctx.Done())
		defer cmFactory.Shutdown()
		defer nodeFactory.Shutdown()
		wg.Add(3)
		go func() {
			defer wg.Done()
			if err := c.Run(ctx); err != nil {
				errs <- fmt.Errorf("storage controller: %w", err)
			}
		}()
		go func() {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case err := <-c.Synced():
					sm.observe(err)
					if err != nil {
						msg := err.Error()
						st.err.Store(&msg)
					} else {
						st.err.Store(nil)
					}
					st.done.Store(true)
				}
			}
		}()
		go func() {
			defer wg.Done()
			t := time.NewTicker(cfg.Resync)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					c.Enqueue()
				}
			}
		}()
		logger.Info("Storage controller running", "configMap", klog.KRef(sc.Namespace, sc.Name))
	}

	if prov != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			prov.Run(ctx)
		}()
		logger.Info("Provisioner running", "name", cfg.Provisioner.Name())
	}

	select {
	case <-ctx.Done():
		return nil
	case err := <-errs:
		return err
	}
}
