package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"

	"github.com/glusterkube/glusterkube/controller"
	"github.com/glusterkube/glusterkube/daemon"
	"github.com/glusterkube/glusterkube/internal/heketi"
	"github.com/glusterkube/glusterkube/nodes"
	"github.com/glusterkube/glusterkube/provisioner"
	"github.com/glusterkube/glusterkube/topology"
)

type runFlags struct {
	topologyConfigMap string
	zoneLabel         string
	prune             bool
	manageDaemonSet   bool
	ds                valuesFlags
	loadParallel      int
	resync            time.Duration

	provisioner      bool
	provisionerName  string
	workers          int
	retryStart       time.Duration
	retryMax         time.Duration
	createPVRetries  int
	createPVInterval time.Duration

	leaderElection bool
	leaseNamespace string
	leaseName      string
	leaseDuration  time.Duration
	renewDeadline  time.Duration
	retryPeriod    time.Duration
	address        string
	kubeAPIQPS     float32
	kubeAPIBurst   int
}

func runCommand() *Command {
	f := &runFlags{}
	return &Command{
		Name:  "run",
		Short: "run the storage controller and the provisioner continuously (in-cluster daemon)",
		Usage: "[flags]",
		Flags: func(fs *pflag.FlagSet, g *Globals) {
			g.AddKubeFlags(fs)
			g.AddHeketiFlags(fs)
			fs.IntVar(&g.HeketiInflight, "heketi-inflight", heketi.DefaultMaxInflight, "heketi calls in flight at once (heketi's max_inflight_operations)")
			fs.StringVar(&f.topologyConfigMap, "topology-configmap", "glusterfs/glusterkube-topology", "NAMESPACE/NAME of the ConfigMap holding the topology (key topology.json or topology.yaml); empty disables the storage controller")
			fs.IntVar(&f.loadParallel, "parallel", topology.DefaultParallel, "heketi node and device adds in flight when loading the topology")
			fs.DurationVar(&f.resync, "resync", daemon.DefaultResync, "re-check heketi's topology this often even when nothing changed")
			fs.StringVar(&f.zoneLabel, "zone-label", nodes.DefaultZoneLabel, "label key recording the heketi zone; empty disables it")
			fs.BoolVar(&f.prune, "prune", false, "remove the storage label from Nodes no longer in the topology (refused while heketi holds bricks on them)")
			fs.BoolVar(&f.manageDaemonSet, "daemonset", true, "apply the GlusterFS DaemonSet onto the storage nodes")
			f.ds.add(fs, daemonsetDefaults())
			fs.BoolVar(&f.provisioner, "provisioner", true, "run the dynamic provisioner")
			fs.StringVar(&f.provisionerName, "provisioner-name", provisioner.DefaultName, "provisioner name, as StorageClasses name it in provisioner:")
			fs.IntVar(&f.workers, "worker-threads", 0, "provisioner claim and volume workers each (default twice --heketi-inflight)")
			fs.DurationVar(&f.retryStart, "retry-interval-start", provisioner.DefaultRetryIntervalStart, "first retry delay of a failed provision or delete (doubles each time)")
			fs.DurationVar(&f.retryMax, "retry-interval-max", provisioner.DefaultRetryIntervalMax, "longest retry delay")
			fs.IntVar(&f.createPVRetries, "create-pv-retries", provisioner.DefaultCreatePVRetries, "tries to save a PV before its new heketi volume is deleted again")
			fs.DurationVar(&f.createPVInterval, "create-pv-retry-interval", provisioner.DefaultCreatePVInterval, "delay between tries to save a PV")
			fs.BoolVar(&f.leaderElection, "leader-election", true, "elect one active replica through a Lease")
			fs.StringVar(&f.leaseNamespace, "leader-election-namespace", "", "namespace of the Lease (default $POD_NAMESPACE, else default)")
			fs.StringVar(&f.leaseName, "leader-election-name", daemon.DefaultLeaseName, "name of the Lease")
			fs.DurationVar(&f.leaseDuration, "leader-election-lease-duration", provisioner.DefaultLeaseDuration, "how long a lost leader's Lease blocks the others")
			fs.DurationVar(&f.renewDeadline, "leader-election-renew-deadline", provisioner.DefaultRenewDeadline, "how long the leader retries renewing before giving up")
			fs.DurationVar(&f.retryPeriod, "leader-election-retry-period", provisioner.DefaultRetryPeriod, "how often candidates try to take the Lease")
			fs.StringVar(&f.address, "address", ":8080", "serve /healthz, /readyz and /metrics here; empty disables")
			fs.Float32Var(&f.kubeAPIQPS, "kube-api-qps", 50, "queries per second to the API server")
			fs.IntVar(&f.kubeAPIBurst, "kube-api-burst", 100, "burst of queries to the API server")
		},
		Run: func(ctx context.Context, g *Globals, args []string) error {
			if err := NoArgs(args); err != nil {
				return err
			}
			return runDaemon(ctx, g, f)
		},
	}
}

func runDaemon(ctx context.Context, g *Globals, f *runFlags) error {
	if f.topologyConfigMap == "" && !f.provisioner {
		return Usagef("nothing to run: --topology-configmap is empty and --provisioner=false")
	}
	if f.retryStart <= 0 || f.retryMax < f.retryStart {
		return Usagef("--retry-interval-start must be positive and at most --retry-interval-max")
	}
	if f.leaderElection && f.renewDeadline >= f.leaseDuration {
		return Usagef("--leader-election-renew-deadline must be shorter than --leader-election-lease-duration")
	}
	if g.HeketiInflight < 1 {
		return Usagef("--heketi-inflight must be at least 1")
	}
	if f.resync <= 0 {
		return Usagef("--resync must be positive")
	}
	cmNamespace, cmName, ok := strings.Cut(f.topologyConfigMap, "/")
	if f.topologyConfigMap != "" && (!ok || cmNamespace == "" || cmName == "" || strings.Contains(cmName, "/")) {
		return Usagef("--topology-configmap %q: want NAMESPACE/NAME, e.g. glusterfs/glusterkube-topology", f.topologyConfigMap)
	}
	hcfg, err := g.HeketiConfig()
	if err != nil {
		return err
	}
	m := heketi.NewMetrics("glusterkube")
	hcfg.Observe = m.Observe

	cfg, err := g.RESTConfig()
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = f.kubeAPIQPS, f.kubeAPIBurst
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	cfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	cfg.WarningHandler = rest.NewWarningWriter(g.Err, rest.WarningWriterOptions{Deduplicate: true})
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("build kubernetes client: %w", err)
	}

	dc := daemon.Config{
		Kube:           kube,
		Resync:         f.resync,
		LeaderElection: f.leaderElection,
		LeaseNamespace: f.leaseNamespace,
		LeaseName:      f.leaseName,
		LeaseDuration:  f.leaseDuration,
		RenewDeadline:  f.renewDeadline,
		RetryPeriod:    f.retryPeriod,
		Address:        f.address,
		Collectors:     m.Collectors(),
	}
	if dc.LeaseNamespace == "" {
		dc.LeaseNamespace = os.Getenv("POD_NAMESPACE")
	}

	if f.topologyConfigMap != "" {
		h, err := heketi.New(hcfg)
		if err != nil {
			return err
		}
		over, err := f.ds.values()
		if err != nil {
			return err
		}
		values := daemonsetDefaults().Merge(over)
		if len(values.NodeSelector) != 1 {
			return Usagef("the storage node label must be one KEY=VALUE (got %d labels from --node-label / --values)", len(values.NodeSelector))
		}
		sc := &controller.Config{
			Heketi:    h,
			Namespace: cmNamespace,
			Name:      cmName,
			Load:      topology.Options{Parallel: f.loadParallel},
		}
		for k, v := range values.NodeSelector {
			sc.Nodes = nodes.Options{LabelKey: k, LabelValue: v, ZoneLabel: f.zoneLabel, Prune: f.prune, Heketi: h}
		}
		if sc.Nodes.ZoneLabel == "" {
			sc.Nodes.ZoneLabel = "-"
		}
		if f.manageDaemonSet {
			if sc.DaemonSet, err = f.ds.render(); err != nil {
				return err
			}
		}
		dc.Storage = sc
	}

	if f.provisioner {
		p, err := provisioner.New(provisioner.Config{Name: f.provisionerName, Kube: kube, Heketi: hcfg})
		if err != nil {
			return err
		}
		dc.Provisioner = p
		dc.ProvisionerOptions = provisioner.RunOptions{
			Workers:            f.workers,
			RetryIntervalStart: f.retryStart,
			RetryIntervalMax:   f.retryMax,
			CreatePVRetries:    f.createPVRetries,
			CreatePVInterval:   f.createPVInterval,
		}
	}

	logger := klog.Background()
	logger.Info("Starting glusterkube", "version", Version, "heketi", hcfg.URL, "heketiUser", hcfg.User,
		"topologyConfigMap", f.topologyConfigMap, "provisioner", f.provisioner, "leaderElection", f.leaderElection)
	err = daemon.Run(klog.NewContext(ctx, logger), dc)
	if errors.Is(err, daemon.ErrLostLeadership) {
		return fmt.Errorf("%w: exiting so this replica restarts as a candidate", err)
	}
	return err
}
