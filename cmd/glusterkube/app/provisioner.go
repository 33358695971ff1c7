package app

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"

	"github.com/glusterkube/glusterkube/internal/heketi"
	"github.com/glusterkube/glusterkube/provisioner"
)

// The flag groups `provisioner` and `run` share.

// provisionerTuning are the provision controller's knobs.
type provisionerTuning struct {
	workers          int
	retryStart       time.Duration
	retryMax         time.Duration
	createPVRetries  int
	createPVInterval time.Duration
	inTreeClasses    string
}

func (t *provisionerTuning) add(fs *pflag.FlagSet) {
	fs.IntVar(&t.workers, "worker-threads", 0, "provisioner claim and volume workers each (default twice --heketi-inflight)")
	fs.DurationVar(&t.retryStart, "retry-interval-start", provisioner.DefaultRetryIntervalStart, "first retry delay of a failed provision or delete (doubles each time)")
	fs.DurationVar(&t.retryMax, "retry-interval-max", provisioner.DefaultRetryIntervalMax, "longest retry delay")
	fs.IntVar(&t.createPVRetries, "create-pv-retries", provisioner.DefaultCreatePVRetries, "tries to save a PV before its new heketi volume is deleted again")
	fs.DurationVar(&t.createPVInterval, "create-pv-retry-interval", provisioner.DefaultCreatePVInterval, "delay between tries to save a PV")
	fs.StringVar(&t.inTreeClasses, "serve-intree-classes", string(provisioner.InTreeAuto), "serve StorageClasses with provisioner: kubernetes.io/glusterfs (CSI PVs for their claims) and delete the PVs the in-tree plugin made: auto (when the API server is 1.26 or newer, which no longer has that plugin), true or false; true on an older server makes its controller-manager and glusterkube both provision those claims")
}

func (t *provisionerTuning) validate() error {
	if t.retryStart <= 0 || t.retryMax < t.retryStart {
		return Usagef("--retry-interval-start must be positive and at most --retry-interval-max")
	}
	if _, err := provisioner.ParseInTreeClasses(t.inTreeClasses); err != nil {
		return Usagef("--serve-intree-classes %q: want auto, true or false", t.inTreeClasses)
	}
	return nil
}

// inTree is --serve-intree-classes (validated).
func (t *provisionerTuning) inTree() provisioner.InTreeClasses {
	m, _ := provisioner.ParseInTreeClasses(t.inTreeClasses)
	return m
}

func (t *provisionerTuning) runOptions() provisioner.RunOptions {
	return provisioner.RunOptions{
		Workers:            t.workers,
		RetryIntervalStart: t.retryStart,
		RetryIntervalMax:   t.retryMax,
		CreatePVRetries:    t.createPVRetries,
		CreatePVInterval:   t.createPVInterval,
	}
}

// leaderFlags configure leader election.
type leaderFlags struct {
	enabled       bool
	namespace     string
	leaseDuration time.Duration
	renewDeadline time.Duration
	retryPeriod   time.Duration
}

func (l *leaderFlags) add(fs *pflag.FlagSet) {
	fs.BoolVar(&l.enabled, "leader-election", true, "elect one active replica through a Lease")
	fs.StringVar(&l.namespace, "leader-election-namespace", "", "namespace of the Lease (default $POD_NAMESPACE, else default)")
	fs.DurationVar(&l.leaseDuration, "leader-election-lease-duration", provisioner.DefaultLeaseDuration, "how long a lost leader's Lease blocks the others")
	fs.DurationVar(&l.renewDeadline, "leader-election-renew-deadline", provisioner.DefaultRenewDeadline, "how long the leader retries renewing before giving up")
	fs.DurationVar(&l.retryPeriod, "leader-election-retry-period", provisioner.DefaultRetryPeriod, "how often candidates try to take the Lease")
}

func (l *leaderFlags) validate() error {
	if l.enabled && l.renewDeadline >= l.leaseDuration {
		return Usagef("--leader-election-renew-deadline must be shorter than --leader-election-lease-duration")
	}
	return nil
}

// leaseNamespace is --leader-election-namespace, else the pod's namespace.
func (l *leaderFlags) leaseNamespace() string {
	if l.namespace != "" {
		return l.namespace
	}
	return os.Getenv("POD_NAMESPACE")
}

// controllerClient configures the API client of the long-running commands.
type controllerClient struct {
	qps   float32
	burst int
}

func (c *controllerClient) add(fs *pflag.FlagSet) {
	fs.Float32Var(&c.qps, "kube-api-qps", 50, "queries per second to the API server")
	fs.IntVar(&c.burst, "kube-api-burst", 100, "burst of queries to the API server")
}

func (c *controllerClient) build(g *Globals) (kubernetes.Interface, error) {
	cfg, err := g.RESTConfig()
	if err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst = c.qps, c.burst
	// Protobuf costs the API server far less CPU than JSON for the claims,
	// volumes and Endpoints these commands write and watch.
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	cfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	// The glusterfs volume source needs v1 Endpoints, which the API server
	// flags as deprecated on every write: say it once.
	cfg.WarningHandler = rest.NewWarningWriter(g.Err, rest.WarningWriterOptions{Deduplicate: true})
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("build kubernetes client: %w", err)
	}
	return kube, nil
}

type provisionerFlags struct {
	name           string
	tuning         provisionerTuning
	leader         leaderFlags
	client         controllerClient
	metricsAddress string
}

func provisionerCommand() *Command {
	f := &provisionerFlags{}
	return &Command{
		Name:  "provisioner",
		Short: "run the dynamic provisioner: one heketi volume per PersistentVolumeClaim",
		Usage: "[flags]",
		Flags: func(fs *pflag.FlagSet, g *Globals) {
			g.AddKubeFlags(fs)
			g.AddHeketiFlags(fs)
			g.addHeketiInflight(fs)
			fs.StringVar(&f.name, "name", provisioner.DefaultName, "provisioner name, as StorageClasses name it in provisioner:")
			f.tuning.add(fs)
			f.leader.add(fs)
			fs.StringVar(&f.metricsAddress, "metrics-address", "", "serve /healthz, /readyz and Prometheus /metrics on this address, e.g. :8080 (off when empty)")
			f.client.add(fs)
		},
		Run: func(ctx context.Context, g *Globals, args []string) error {
			if err := NoArgs(args); err != nil {
				return err
			}
			return runProvisioner(ctx, g, f)
		},
	}
}

func runProvisioner(ctx context.Context, g *Globals, f *provisionerFlags) error {
	for _, err := range []error{f.tuning.validate(), f.leader.validate(), g.validateHeketiInflight()} {
		if err != nil {
			return err
		}
	}
	// The provisioner runs without --heketi-url when every StorageClass
	// names its server (resturl).
	hcfg, err := g.OptionalHeketiConfig()
	if err != nil {
		return err
	}
	m := heketi.NewMetrics("glusterkube")
	hcfg.Observe = m.Observe

	kube, err := f.client.build(g)
	if err != nil {
		return err
	}
	p, err := provisioner.New(provisioner.Config{Name: f.name, Kube: kube, Heketi: hcfg, InTreeClasses: f.tuning.inTree()})
	if err != nil {
		return err
	}
	o := f.tuning.runOptions()
	o.LeaderElection = f.leader.enabled
	o.LeaderElectionNamespace = f.leader.leaseNamespace()
	o.LeaseDuration, o.RenewDeadline, o.RetryPeriod = f.leader.leaseDuration, f.leader.renewDeadline, f.leader.retryPeriod
	o.MetricsAddress = f.metricsAddress
	o.Collectors = m.Collectors()
	logger := klog.Background()
	logger.Info("Starting provisioner", "name", f.name, "heketi", hcfg.URL, "heketiUser", hcfg.User, "leaderElection", f.leader.enabled)
	return provisioner.Run(klog.NewContext(ctx, logger), p, o)
}
