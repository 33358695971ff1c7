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

type provisionerFlags struct {
	name                 string
	workers              int
	leaderElection       bool
	leaderElectionNS     string
	leaseDuration        time.Duration
	renewDeadline        time.Duration
	retryPeriod          time.Duration
	retryIntervalStart   time.Duration
	retryIntervalMax     time.Duration
	metricsAddress       string
	kubeAPIQPS           float32
	kubeAPIBurst         int
	createPVRetries      int
	createPVRetryBackoff time.Duration
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
			fs.IntVar(&g.HeketiInflight, "heketi-inflight", heketi.DefaultMaxInflight, "heketi calls in flight at once (heketi's max_inflight_operations)")
			fs.StringVar(&f.name, "name", provisioner.DefaultName, "provisioner name, as StorageClasses name it in provisioner:")
			fs.IntVar(&f.workers, "worker-threads", 0, "claim and volume workers each (default twice --heketi-inflight)")
			fs.BoolVar(&f.leaderElection, "leader-election", true, "elect one active replica through a Lease")
			fs.StringVar(&f.leaderElectionNS, "leader-election-namespace", "", "namespace of the Lease (default $POD_NAMESPACE, else default)")
			fs.DurationVar(&f.leaseDuration, "leader-election-lease-duration", provisioner.DefaultLeaseDuration, "how long a lost leader's Lease blocks the others")
			fs.DurationVar(&f.renewDeadline, "leader-election-renew-deadline", provisioner.DefaultRenewDeadline, "how long the leader retries renewing before giving up")
			fs.DurationVar(&f.retryPeriod, "leader-election-retry-period", provisioner.DefaultRetryPeriod, "how often candidates try to take the Lease")
			fs.DurationVar(&f.retryIntervalStart, "retry-interval-start", provisioner.DefaultRetryIntervalStart, "first retry delay of a failed provision or delete (doubles each time)")
			fs.DurationVar(&f.retryIntervalMax, "retry-interval-max", provisioner.DefaultRetryIntervalMax, "longest retry delay")
			fs.IntVar(&f.createPVRetries, "create-pv-retries", provisioner.DefaultCreatePVRetries, "tries to save a PV before its new heketi volume is deleted again")
			fs.DurationVar(&f.createPVRetryBackoff, "create-pv-retry-interval", provisioner.DefaultCreatePVInterval, "delay between tries to save a PV")
			fs.StringVar(&f.metricsAddress, "metrics-address", "", "serve Prometheus /metrics and /healthz on this address, e.g. :8080 (off when empty)")
			fs.Float32Var(&f.kubeAPIQPS, "kube-api-qps", 50, "queries per second to the API server")
			fs.IntVar(&f.kubeAPIBurst, "kube-api-burst", 100, "burst of queries to the API server")
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
	if f.retryIntervalStart <= 0 || f.retryIntervalMax < f.retryIntervalStart {
		return Usagef("--retry-interval-start must be positive and at most --retry-interval-max")
	}
	if f.renewDeadline >= f.leaseDuration {
		return Usagef("--leader-election-renew-deadline must be shorter than --leader-election-lease-duration")
	}
	if g.HeketiInflight < 1 {
		return Usagef("--heketi-inflight must be at least 1")
	}
	// The provisioner runs without --heketi-url when every StorageClass
	// names its server (resturl).
	hcfg := heketi.Config{Timeout: g.HeketiTimeout, MaxInflight: g.HeketiInflight}
	if g.HeketiURL != "" || g.Getenv("HEKETI_CLI_SERVER") != "" {
		var err error
		if hcfg, err = g.HeketiConfig(); err != nil {
			return err
		}
	}
	m := heketi.NewMetrics("glusterkube")
	hcfg.Observe = m.Observe

	cfg, err := g.RESTConfig()
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = f.kubeAPIQPS, f.kubeAPIBurst
	// Protobuf costs the API server far less CPU than JSON for the claims,
	// volumes and Endpoints this command writes and watches.
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	cfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	// The glusterfs volume source needs v1 Endpoints, which the API server
	// flags as deprecated on every write: say it once.
	cfg.WarningHandler = rest.NewWarningWriter(g.Err, rest.WarningWriterOptions{Deduplicate: true})
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("build kubernetes client: %w", err)
	}
	p, err := provisioner.New(provisioner.Config{Name: f.name, Kube: kube, Heketi: hcfg})
	if err != nil {
		return err
	}
	ns := f.leaderElectionNS
	if ns == "" {
		ns = os.Getenv("POD_NAMESPACE")
	}
	logger := klog.Background()
	logger.Info("Starting provisioner", "name", f.name, "heketi", hcfg.URL, "heketiUser", hcfg.User, "leaderElection", f.leaderElection)
	return provisioner.Run(klog.NewContext(ctx, logger), p, provisioner.RunOptions{
		Workers:                 f.workers,
		LeaderElection:          f.leaderElection,
		LeaderElectionNamespace: ns,
		LeaseDuration:           f.leaseDuration,
		RenewDeadline:           f.renewDeadline,
		RetryPeriod:             f.retryPeriod,
		RetryIntervalStart:      f.retryIntervalStart,
		RetryIntervalMax:        f.retryIntervalMax,
		CreatePVRetries:         f.createPVRetries,
		CreatePVInterval:        f.createPVRetryBackoff,
		MetricsAddress:          f.metricsAddress,
		Collectors:              m.Collectors(),
	})
}
