package app

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/klog/v2"

	"github.com/glusterkube/glusterkube/controller"
	"github.com/glusterkube/glusterkube/daemon"
	"github.com/glusterkube/glusterkube/internal/heketi"
	"github.com/glusterkube/glusterkube/nodes"
	"github.com/glusterkube/glusterkube/provisioner"
	"github.com/glusterkube/glusterkube/topology"
	"github.com/glusterkube/glusterkube/volume"
)

type runFlags struct {
	topologyConfigMap string
	zoneLabel         string
	zonesFromNodes    bool
	prune             bool
	manageDaemonSet   bool
	ds                valuesFlags
	loadParallel      int
	resync            time.Duration

	provisioner     bool
	provisionerName string
	tuning          provisionerTuning

	leader    leaderFlags
	leaseName string
	address   string
	client    controllerClient
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
			g.addHeketiInflight(fs)
			fs.StringVar(&f.topologyConfigMap, "topology-configmap", "glusterfs/glusterkube-topology", "NAMESPACE/NAME of the ConfigMap holding the topology (key topology.json or topology.yaml); empty disables the storage controller")
			fs.IntVar(&f.loadParallel, "parallel", topology.DefaultParallel, "heketi node and device adds in flight when loading the topology")
			fs.DurationVar(&f.resync, "resync", daemon.DefaultResync, "re-check heketi's topology this often even when nothing changed")
			fs.StringVar(&f.zoneLabel, "zone-label", nodes.DefaultZoneLabel, "label key recording the heketi zone; empty disables it")
			fs.BoolVar(&f.zonesFromNodes, "zones-from-nodes", false, "make heketi's zones follow the Nodes' zone labels (zone numbers of new and empty nodes, the zone tag "+volume.ZoneTag+"); without it, disagreements are only reported in Events")
			fs.BoolVar(&f.prune, "prune", false, "remove the storage label from Nodes no longer in the topology (refused while heketi holds bricks on them)")
			fs.BoolVar(&f.manageDaemonSet, "daemonset", true, "apply the GlusterFS DaemonSet onto the storage nodes")
			f.ds.add(fs, daemonsetDefaults())
			fs.BoolVar(&f.provisioner, "provisioner", true, "run the dynamic provisioner")
			fs.StringVar(&f.provisionerName, "provisioner-name", provisioner.DefaultName, "provisioner name, as StorageClasses name it in provisioner:")
			f.tuning.add(fs)
			f.leader.add(fs)
			fs.StringVar(&f.leaseName, "leader-election-name", daemon.DefaultLeaseName, "name of the Lease")
			fs.StringVar(&f.address, "address", ":8080", "serve /healthz, /readyz and /metrics here; empty disables")
			f.client.add(fs)
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
	for _, err := range []error{f.tuning.validate(), f.leader.validate(), g.validateHeketiInflight()} {
		if err != nil {
			return err
		}
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

	kube, err := f.client.build(g)
	if err != nil {
		return err
	}

	dc := daemon.Config{
		Kube:           kube,
		Resync:         f.resync,
		LeaderElection: f.leader.enabled,
		LeaseNamespace: f.leader.leaseNamespace(),
		LeaseName:      f.leaseName,
		LeaseDuration:  f.leader.leaseDuration,
		RenewDeadline:  f.leader.renewDeadline,
		RetryPeriod:    f.leader.retryPeriod,
		Address:        f.address,
		Collectors:     m.Collectors(),
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
			// Heketi's zones change only when asked.
			ZonesFromNodes: f.zonesFromNodes,
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
		p, err := provisioner.New(provisioner.Config{Name: f.provisionerName, Kube: kube, Heketi: hcfg, InTreeClasses: f.tuning.inTree()})
		if err != nil {
			return err
		}
		dc.Provisioner = p
		dc.ProvisionerOptions = f.tuning.runOptions()
	}

	logger := klog.Background()
	logger.Info("Starting glusterkube", "version", Version, "heketi", hcfg.URL, "heketiUser", hcfg.User,
		"topologyConfigMap", f.topologyConfigMap, "provisioner", f.provisioner, "leaderElection", f.leader.enabled)
	err = daemon.Run(klog.NewContext(ctx, logger), dc)
	if errors.Is(err, daemon.ErrLostLeadership) {
		return fmt.Errorf("%w: exiting so this replica restarts as a candidate", err)
	}
	return err
}
