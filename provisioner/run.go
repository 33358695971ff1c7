package provisioner

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller/metrics"

	"github.com/glusterkube/glusterkube/internal/service"
)

// RunOptions configures Run. Zero values mean the defaults below.
type RunOptions struct {
	// Workers is the number of claim and volume workers each (default:
	// twice the heketi inflight cap, at least 4), so heketi stays busy
	// while some workers talk to the API server.
	Workers int
	// ExpandWorkers is the number of expansion workers (default 2).
	ExpandWorkers int
	// LeaderElection turns on leader election (a Lease named after the
	// provisioner in LeaderElectionNamespace).
	LeaderElection          bool
	LeaderElectionNamespace string
	LeaseDuration           time.Duration // default 15s
	RenewDeadline           time.Duration // default 10s
	RetryPeriod             time.Duration // default 2s
	// RetryIntervalStart and RetryIntervalMax bound the backoff of failed
	// provisions and deletes (default 1s and 5m).
	RetryIntervalStart, RetryIntervalMax time.Duration
	// CreatePVRetries and CreatePVInterval: how often saving a PV is tried
	// before the library deletes the heketi volume it belongs to (default
	// 5 times, 10s apart).
	CreatePVRetries  int
	CreatePVInterval time.Duration
	// ResyncPeriod of the informers (default 15m).
	ResyncPeriod time.Duration
	// MetricsAddress serves /metrics when set (e.g. ":8080").
	MetricsAddress string
	// Collectors are registered beside the library's metrics (e.g. the
	// heketi call metrics).
	Collectors []prometheus.Collector
	// Ready, when set, is called once the controllers run (as leader).
	Ready func()
}

// Defaults of RunOptions.
const (
	DefaultLeaseDuration      = service.DefaultLeaseDuration
	DefaultRenewDeadline      = service.DefaultRenewDeadline
	DefaultRetryPeriod        = service.DefaultRetryPeriod
	DefaultRetryIntervalStart = time.Second
	DefaultRetryIntervalMax   = 5 * time.Minute
	DefaultCreatePVRetries    = 5
	DefaultCreatePVInterval   = 10 * time.Second
	DefaultResyncPeriod       = 15 * time.Minute
)

// ErrLostLeadership is returned by Run when another replica took over.
var ErrLostLeadership = service.ErrLostLeadership

// Controllers are the provision controller and the expander on one set of
// informers.
type Controllers struct {
	p       *Provisioner
	o       RunOptions
	factory informers.SharedInformerFactory
	pc      *controller.ProvisionController
	exp     *Expander
	// inTreeClaims and inTreeVolumes serve in-tree classes (nil when not).
	inTreeClaims  *inTreeClaims
	inTreeVolumes *inTreeVolumes
	metrics       *metrics.Metrics
	started       atomic.Pointer[struct{}]
}

// NewControllers builds the controllers without running them. Build them
// before starting anything that uses client-go's scheme (clients,
// informers, event recorders): the provision library registers types in
// client-go's global scheme when its controller is built, and that write
// races with — and can crash — decoding running at the same time.
func NewControllers(ctx context.Context, p *Provisioner, o RunOptions) *Controllers {
	o = o.withDefaults(p)
	logger := klog.FromContext(ctx)
	kube := p.cfg.Kube
	limiter := workqueue.NewTypedMaxOfRateLimiter(
		workqueue.NewTypedItemExponentialFailureRateLimiter[string](o.RetryIntervalStart, o.RetryIntervalMax),
		&workqueue.TypedBucketRateLimiter[string]{Limiter: rate.NewLimiter(rate.Limit(50), 300)},
	)
	libMetrics := metrics.New("controller")
	if err := p.ResolveInTree(ctx); err != nil {
		// Run and the daemon resolve it first and fail; a caller that did
		// not gets a provisioner that leaves in-tree classes alone.
		logger.Error(err, "Not serving kubernetes.io/glusterfs StorageClasses")
	}
	serveInTree := p.ServesInTree()
	// One set of informers feeds every controller.
	factory := informers.NewSharedInformerFactory(kube, o.ResyncPeriod)
	libOpts := []func(*controller.ProvisionController) error{
		controller.ClaimsInformer(factory.Core().V1().PersistentVolumeClaims().Informer()),
		controller.VolumesInformer(factory.Core().V1().PersistentVolumes().Informer()),
		controller.ClassesInformer(factory.Storage().V1().StorageClasses().Informer()),
		controller.LeaderElection(false), // Run elects one leader for both controllers
		controller.Threadiness(o.Workers),
		controller.RateLimiter(limiter),
		controller.FailedProvisionThreshold(0), // never forget a volume in progress
		controller.FailedDeleteThreshold(0),
		controller.CreateProvisionedPVRetryCount(o.CreatePVRetries),
		controller.CreateProvisionedPVInterval(o.CreatePVInterval),
		controller.ResyncPeriod(o.ResyncPeriod),
		controller.MetricsInstance(libMetrics),
	}
	if serveInTree {
		// The library then takes claims of kubernetes.io/glusterfs classes
		// (once inTreeClaims names it on them) and makes CSI PVs for them.
		libOpts = append(libOpts, controller.AdditionalProvisionerNames([]string{InTreeName}))
	}
	pc := controller.NewProvisionController(ctx, kube, p.Name(), p, libOpts...)
	exp, err := NewExpander(p, factory)
	if err != nil {
		logger.Error(err, "Expansion disabled")
	}
	c := &Controllers{p: p, o: o, factory: factory, pc: pc, exp: exp, metrics: &libMetrics}
	if serveInTree {
		if c.inTreeClaims, err = newInTreeClaims(p, factory); err != nil {
			logger.Error(err, "Claims of kubernetes.io/glusterfs StorageClasses will not be provisioned")
		}
		if c.inTreeVolumes, err = newInTreeVolumes(p, factory, o.RetryIntervalStart, o.RetryIntervalMax); err != nil {
			logger.Error(err, "PVs of in-tree classes will not be looked after")
		}
	}
	return c
}

// Collectors are the provision library's metrics.
func (c *Controllers) Collectors() []prometheus.Collector {
	m := c.metrics
	return []prometheus.Collector{
		m.PersistentVolumeClaimProvisionTotal,
		m.PersistentVolumeClaimProvisionFailedTotal,
		m.PersistentVolumeClaimProvisionDurationSeconds,
		m.PersistentVolumeDeleteTotal,
		m.PersistentVolumeDeleteFailedTotal,
		m.PersistentVolumeDeleteDurationSeconds,
	}
}

// Synced reports an error until the controllers' informer caches have
// synced: before that the provisioner cannot tell which claims need a
// volume, so it is not ready.
func (c *Controllers) Synced() error {
	if c.started.Load() == nil {
		return errors.New("controllers not started")
	}
	for _, synced := range []cache.InformerSynced{
		c.factory.Core().V1().PersistentVolumeClaims().Informer().HasSynced,
		c.factory.Core().V1().PersistentVolumes().Informer().HasSynced,
		c.factory.Storage().V1().StorageClasses().Informer().HasSynced,
	} {
		if !synced() {
			return errors.New("informer caches of claims, volumes and classes not synced yet")
		}
	}
	return nil
}

// Run runs the controllers until ctx ends. Call it once.
func (c *Controllers) Run(ctx context.Context) {
	c.started.Store(&struct{}{})
	c.factory.Start(ctx.Done())
	var wg sync.WaitGroup
	if c.exp != nil {
		wg.Add(1)
		go func() { defer wg.Done(); c.exp.Run(ctx, c.o.ExpandWorkers) }()
	}
	if c.inTreeClaims != nil {
		wg.Add(1)
		go func() { defer wg.Done(); c.inTreeClaims.run(ctx) }()
	}
	if c.inTreeVolumes != nil {
		wg.Add(1)
		go func() { defer wg.Done(); c.inTreeVolumes.run(ctx, c.o.ExpandWorkers) }()
	}
	if c.o.Ready != nil {
		c.o.Ready()
	}
	c.pc.Run(ctx)
	wg.Wait()
	c.factory.Shutdown()
}

// Run runs the provision controller and the expander until ctx ends,
// behind leader election when asked, with /healthz, /readyz and /metrics
// on MetricsAddress. It records glusterkube's own Events through p unless
// p was built with a Recorder.
func Run(ctx context.Context, p *Provisioner, o RunOptions) error {
	o = o.withDefaults(p)
	if err := p.ResolveInTree(ctx); err != nil {
		return err
	}
	// First, before anything else uses the scheme (see NewControllers).
	ctrls := NewControllers(ctx, p, o)
	cfg := service.Config{Kube: p.cfg.Kube, Address: o.MetricsAddress, Collectors: append(ctrls.Collectors(), o.Collectors...)}
	if o.LeaderElection {
		cfg.Election = &service.Election{
			Namespace: o.LeaderElectionNamespace, Name: strings.ReplaceAll(p.Name(), "/", "-"),
			LeaseDuration: o.LeaseDuration, RenewDeadline: o.RenewDeadline, RetryPeriod: o.RetryPeriod,
		}
	}
	svc, err := service.New(cfg)
	if err != nil {
		return err
	}
	p.UseRecorder(svc.Recorder(ctx, "glusterkube-provisioner"))
	svc.ReadyCheck("provisioner", ctrls.Synced)
	return svc.Run(ctx, func(ctx context.Context) error {
		ctrls.Run(ctx)
		return nil
	})
}

func (o RunOptions) withDefaults(p *Provisioner) RunOptions {
	if o.Workers <= 0 {
		o.Workers = max(2*p.cfg.Heketi.MaxInflight, 4)
	}
	if o.ExpandWorkers <= 0 {
		o.ExpandWorkers = 2
	}
	if o.LeaderElectionNamespace == "" {
		o.LeaderElectionNamespace = "default"
	}
	if o.LeaseDuration <= 0 {
		o.LeaseDuration = DefaultLeaseDuration
	}
	if o.RenewDeadline <= 0 {
		o.RenewDeadline = DefaultRenewDeadline
	}
	if o.RetryPeriod <= 0 {
		o.RetryPeriod = DefaultRetryPeriod
	}
	if o.RetryIntervalStart <= 0 {
		o.RetryIntervalStart = DefaultRetryIntervalStart
	}
	if o.RetryIntervalMax <= 0 {
		o.RetryIntervalMax = DefaultRetryIntervalMax
	}
	if o.CreatePVRetries <= 0 {
		o.CreatePVRetries = DefaultCreatePVRetries
	}
	if o.CreatePVInterval <= 0 {
		o.CreatePVInterval = DefaultCreatePVInterval
	}
	if o.ResyncPeriod <= 0 {
		o.ResyncPeriod = DefaultResyncPeriod
	}
	return o
}
