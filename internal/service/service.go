// Package service is the process wiring that glusterkube's long-running
// modes (run, provisioner, csi, mounter) share: one Prometheus registry,
// one Event broadcaster, /healthz, /readyz and /metrics on one address,
// and leader election for the modes where one replica works and the
// others wait.
//
// Health and readiness follow the Kubernetes conventions: /healthz fails
// only when restarting the process would help (the leader can no longer
// renew its Lease, a component reports itself broken); /readyz fails
// while the process cannot yet do its work (caches not synced, a first
// reconcile not finished). A standby replica is ready: it is doing what it
// should, which is waiting.
package service

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"

	"github.com/glusterkube/glusterkube/internal/election"
	"github.com/glusterkube/glusterkube/internal/httpserve"
)

// ErrLostLeadership is returned by Run when another replica took the
// Lease over; the process should exit so it restarts as a candidate.
var ErrLostLeadership = election.ErrLost

// Default leader election timing (client-go's usual values).
const (
	DefaultLeaseDuration = 15 * time.Second
	DefaultRenewDeadline = 10 * time.Second
	DefaultRetryPeriod   = 2 * time.Second
)

// Election names the Lease that makes one replica active.
type Election struct {
	Namespace, Name                           string
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
}

// Config configures a Service.
type Config struct {
	// Kube is needed for Events and leader election; nil means neither.
	Kube kubernetes.Interface
	// Address serves /healthz, /readyz and /metrics (off when empty).
	Address string
	// Election, when set, runs the work only while holding the Lease.
	Election *Election
	// Collectors are registered beside the Go and process collectors.
	Collectors []prometheus.Collector
}

// Check is one health or readiness condition: nil means fine.
type Check func() error

// Service is one long-running process's shared wiring.
type Service struct {
	cfg    Config
	reg    *prometheus.Registry
	health *leaderelection.HealthzAdaptor

	mu          sync.Mutex
	broadcaster record.EventBroadcaster
	healthz     map[string]Check
	readyz      map[string]Check

	leading atomic.Bool
}

// New builds a Service. It starts nothing and reads nothing of client-go's
// scheme, so it may be built before the provision controller (see
// provisioner.NewControllers).
func New(cfg Config) (*Service, error) {
	if cfg.Election != nil {
		if cfg.Kube == nil {
			return nil, errors.New("service: leader election needs a Kubernetes client")
		}
		e := *cfg.Election
		if e.Name == "" {
			return nil, errors.New("service: leader election needs a Lease name")
		}
		if e.Namespace == "" {
			e.Namespace = "default"
		}
		if e.LeaseDuration <= 0 {
			e.LeaseDuration = DefaultLeaseDuration
		}
		if e.RenewDeadline <= 0 {
			e.RenewDeadline = DefaultRenewDeadline
		}
		if e.RetryPeriod <= 0 {
			e.RetryPeriod = DefaultRetryPeriod
		}
		if e.RenewDeadline >= e.LeaseDuration {
			return nil, fmt.Errorf("service: the Lease renew deadline (%s) must be shorter than its duration (%s)", e.RenewDeadline, e.LeaseDuration)
		}
		cfg.Election = &e
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if err := registerAll(reg, cfg.Collectors); err != nil {
		return nil, err
	}
	return &Service{
		cfg:     cfg,
		reg:     reg,
		health:  leaderelection.NewLeaderHealthzAdaptor(20 * time.Second),
		healthz: map[string]Check{},
		readyz:  map[string]Check{},
	}, nil
}

func registerAll(reg prometheus.Registerer, cs []prometheus.Collector) error {
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("service: register metrics: %w", err)
		}
	}
	return nil
}

// Register adds metrics collectors to the /metrics registry.
func (s *Service) Register(cs ...prometheus.Collector) error { return registerAll(s.reg, cs) }

// Registerer is the /metrics registry, for code that registers its own.
func (s *Service) Registerer() prometheus.Registerer { return s.reg }

// Recorder returns an Event recorder for component. The first call starts
// the Event broadcaster (and reads client-go's scheme): call it after the
// provision controller is built. Without a Kubernetes client it returns a
// recorder that drops Events.
func (s *Service) Recorder(ctx context.Context, component string) record.EventRecorder {
	return s.RecorderFor(ctx, component, "")
}

// RecorderFor is Recorder with host as the Events' source host, e.g. the
// node a node plugin runs on; empty leaves it out.
func (s *Service) RecorderFor(ctx context.Context, component, host string) record.EventRecorder {
	if s.cfg.Kube == nil {
		return &record.FakeRecorder{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.broadcaster == nil {
		s.broadcaster = record.NewBroadcaster(record.WithContext(ctx))
		s.broadcaster.StartStructuredLogging(3)
		s.broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: s.cfg.Kube.CoreV1().Events("")})
	}
	return s.broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: component, Host: host})
}

// HealthCheck adds a /healthz condition: failing it should get the
// process restarted.
func (s *Service) HealthCheck(name string, c Check) {
	s.mu.Lock()
	s.healthz[name] = c
	s.mu.Unlock()
}

// ReadyCheck adds a /readyz condition. With leader election it is asked
// only while this replica leads: a standby is ready.
func (s *Service) ReadyCheck(name string, c Check) {
	s.mu.Lock()
	s.readyz[name] = c
	s.mu.Unlock()
}

// Leading reports whether the work runs: always true without leader
// election once Run started it.
func (s *Service) Leading() bool { return s.leading.Load() }

// Run serves the HTTP endpoints and runs work: at once without leader
// election, else while this replica holds the Lease. It returns when ctx
// ends (nil), when work returns (its error), or when the Lease is lost
// (ErrLostLeadership); work has finished by then.
func (s *Service) Run(ctx context.Context, work func(ctx context.Context) error) error {
	logger := klog.FromContext(ctx)
	defer func() {
		s.mu.Lock()
		b := s.broadcaster
		s.mu.Unlock()
		if b != nil {
			b.Shutdown()
		}
	}()
	if s.cfg.Address != "" {
		stop, err := httpserve.Start(logger, s.cfg.Address, s.Handler())
		if err != nil {
			return fmt.Errorf("health and metrics address %s: %w", s.cfg.Address, err)
		}
		defer stop()
	}
	lead := func(ctx context.Context) error {
		s.leading.Store(true)
		defer s.leading.Store(false)
		return work(ctx)
	}
	if s.cfg.Election == nil {
		return lead(ctx)
	}
	e := s.cfg.Election
	return election.Run(ctx, election.Config{
		Kube: s.cfg.Kube, Namespace: e.Namespace, Name: e.Name,
		LeaseDuration: e.LeaseDuration, RenewDeadline: e.RenewDeadline, RetryPeriod: e.RetryPeriod,
		Recorder: s.Recorder(ctx, e.Name), Health: s.health,
	}, lead)
}

// Handler serves /healthz, /readyz and /metrics. A failing check answers
// 500 (healthz) or 503 (readyz) with one line per failing check.
func (s *Service) Handler() http.Handler {
	m := http.NewServeMux()
	m.Handle("/metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}))
	m.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		var fails []string
		if s.cfg.Election != nil {
			if err := s.health.Check(r); err != nil {
				fails = append(fails, "leader election: "+err.Error())
			}
		}
		fails = append(fails, s.failing(s.healthz)...)
		answer(w, fails, http.StatusInternalServerError, "ok")
	})
	m.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !s.leading.Load() {
			if s.cfg.Election != nil {
				answer(w, nil, 0, "standby: waiting for the leader election")
				return
			}
			answer(w, []string{"starting"}, http.StatusServiceUnavailable, "")
			return
		}
		answer(w, s.failing(s.readyz), http.StatusServiceUnavailable, "ok")
	})
	return m
}

func (s *Service) failing(checks map[string]Check) []string {
	s.mu.Lock()
	names := make([]string, 0, len(checks))
	for n := range checks {
		names = append(names, n)
	}
	cs := make(map[string]Check, len(checks))
	for n, c := range checks {
		cs[n] = c
	}
	s.mu.Unlock()
	sort.Strings(names)
	var out []string
	for _, n := range names {
		if err := cs[n](); err != nil {
			out = append(out, n+": "+err.Error())
		}
	}
	return out
}

func answer(w http.ResponseWriter, fails []string, code int, ok string) {
	if len(fails) > 0 {
		http.Error(w, strings.Join(fails, "\n"), code)
		return
	}
	_, _ = w.Write([]byte(ok + "\n"))
}
