package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"

	"github.com/glusterkube/glusterkube/controller"
	"github.com/glusterkube/glusterkube/internal/election"
	"github.com/glusterkube/glusterkube/internal/httpserve"
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
var ErrLostLeadership = election.ErrLost

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

// state is what /readyz reports.
type state struct {
	leading     atomic.Bool
	provReady   atomic.Bool
	storageDone atomic.Bool
	storageErr  atomic.Pointer[string]
}

func (s *state) ready(cfg *Config) (bool, string) {
	if cfg.LeaderElection && !s.leading.Load() {
		return true, "standby: waiting for the leader election"
	}
	if cfg.Provisioner != nil && !s.provReady.Load() {
		return false, "provisioner starting"
	}
	if cfg.Storage != nil {
		if !s.storageDone.Load() {
			return false, "storage controller: first reconcile not finished"
		}
		if e := s.storageErr.Load(); e != nil {
			return false, "storage controller: " + *e
		}
	}
	return true, "ok"
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
	if cfg.LeaseNamespace == "" {
		cfg.LeaseNamespace = "default"
	}
	if cfg.LeaseDuration <= 0 {
		cfg.LeaseDuration = provisioner.DefaultLeaseDuration
	}
	if cfg.RenewDeadline <= 0 {
		cfg.RenewDeadline = provisioner.DefaultRenewDeadline
	}
	if cfg.RetryPeriod <= 0 {
		cfg.RetryPeriod = provisioner.DefaultRetryPeriod
	}
	if cfg.Resync <= 0 {
		cfg.Resync = DefaultResync
	}
	logger := klog.FromContext(ctx)
	st := &state{}

	// The provision controller first, before anything else uses client-go's
	// scheme (see provisioner.NewControllers).
	var prov *provisioner.Controllers
	if cfg.Provisioner != nil {
		o := cfg.ProvisionerOptions // its election and metrics fields are Run's: unused here
		ready := o.Ready
		o.Ready = func() {
			st.provReady.Store(true)
			if ready != nil {
				ready()
			}
		}
		prov = provisioner.NewControllers(ctx, cfg.Provisioner, o)
	}

	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartStructuredLogging(3)
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: cfg.Kube.CoreV1().Events("")})
	defer broadcaster.Shutdown()
	recorder := broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "glusterkube"})
	if cfg.Provisioner != nil {
		cfg.Provisioner.UseRecorder(broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "glusterkube-provisioner"}))
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(cfg.Collectors...)
	if prov != nil {
		reg.MustRegister(prov.Collectors()...)
	}
	health := leaderelection.NewLeaderHealthzAdaptor(20 * time.Second)

	if cfg.Address != "" {
		stop, err := httpserve.Start(logger, cfg.Address, mux(reg, st, &cfg, health))
		if err != nil {
			return fmt.Errorf("health and metrics address %s: %w", cfg.Address, err)
		}
		defer stop()
	}

	if !cfg.LeaderElection {
		st.leading.Store(true)
		return runControllers(ctx, &cfg, prov, recorder, reg, st)
	}
	return election.Run(ctx, election.Config{
		Kube: cfg.Kube, Namespace: cfg.LeaseNamespace, Name: cfg.LeaseName,
		LeaseDuration: cfg.LeaseDuration, RenewDeadline: cfg.RenewDeadline, RetryPeriod: cfg.RetryPeriod,
		Recorder: recorder, Health: health,
	}, func(ctx context.Context) error {
		st.leading.Store(true)
		defer st.leading.Store(false)
		return runControllers(ctx, &cfg, prov, recorder, reg, st)
	})
}

// runControllers runs the enabled controllers until ctx ends or one of
// them fails to start.
func runControllers(ctx context.Context, cfg *Config, prov *provisioner.Controllers, recorder record.EventRecorder, reg *prometheus.Registry, st *state) error {
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
		sm := newStorageMetrics(reg)
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
						st.storageErr.Store(&msg)
					} else {
						st.storageErr.Store(nil)
					}
					st.storageDone.Store(true)
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

func mux(reg *prometheus.Registry, st *state, cfg *Config, health *leaderelection.HealthzAdaptor) *http.ServeMux {
	m := http.NewServeMux()
	m.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	m.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if err := health.Check(r); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	m.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		ok, why := st.ready(cfg)
		if !ok {
			http.Error(w, why, http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte(why + "\n"))
	})
	return m
}
