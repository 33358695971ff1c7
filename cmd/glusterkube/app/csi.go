package app

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	csipb "github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/glusterkube/glusterkube/csi"
	"github.com/glusterkube/glusterkube/internal/heketi"
	"github.com/glusterkube/glusterkube/internal/service"
	"github.com/glusterkube/glusterkube/internal/unixsock"
	"github.com/glusterkube/glusterkube/mounter"
)

type csiFlags struct {
	endpoint         string
	nodeID           string
	services         []string
	kubeletDir       string
	register         bool
	registrationPath string
	mounterEndpoint  string
	stateDir         string
	logDir           string
	mountTimeout     time.Duration
	healthAddress    string
	events           bool
	zone             string
}

const defaultPluginDir = "/var/lib/kubelet/plugins/" + csi.DriverName

func csiCommand() *Command {
	f := &csiFlags{}
	return &Command{
		Name:  "csi",
		Short: "serve the CSI driver " + csi.DriverName + " (controller and node services)",
		Usage: "[flags]",
		Flags: func(fs *pflag.FlagSet, g *Globals) {
			fs.StringVar(&f.endpoint, "endpoint", "unix://"+defaultPluginDir+"/csi.sock", "CSI endpoint to serve (unix:///path/csi.sock)")
			fs.StringVar(&f.nodeID, "node-id", "", "this node's name (default $NODE_NAME, else the host name)")
			fs.StringSliceVar(&f.services, "services", []string{"controller", "node"}, "CSI services to serve: controller, node, or both")
			fs.StringVar(&f.kubeletDir, "kubelet-dir", "/var/lib/kubelet", "the kubelet's root folder (registration socket under plugins_registry)")
			fs.BoolVar(&f.register, "kubelet-registration", true, "register the node plugin with the kubelet (no node-driver-registrar sidecar needed)")
			fs.StringVar(&f.registrationPath, "kubelet-registration-path", "", "the CSI socket path as the kubelet sees it (default: the --endpoint path)")
			fs.StringVar(&f.mounterEndpoint, "mounter-endpoint", "", "mount service to make the mounts (unix:///path/mounter.sock), so FUSE clients outlive this plugin; empty mounts in this process")
			fs.StringVar(&f.stateDir, "state-dir", "", "folder of the publish records used to heal dead mounts (default <kubelet-dir>/plugins/"+csi.DriverName+"/state)")
			fs.StringVar(&f.logDir, "log-dir", "/var/log/glusterfs/glusterkube", "folder of the GlusterFS FUSE client logs, one per volume")
			fs.DurationVar(&f.mountTimeout, "mount-timeout", mounter.DefaultTimeout, "longest a mount or unmount may take before its processes are killed")
			fs.StringVar(&f.healthAddress, "health-address", "", "serve /healthz (the identity Probe through the CSI socket, the kubelet registration), /readyz and /metrics on this address, e.g. :9810; empty disables")
			fs.BoolVar(&f.events, "events", true, "record Warning Events on pods whose mounts died (needs API access; off when there is no kubeconfig or in-cluster config)")
			fs.StringVar(&f.zone, "zone", "", "this node's zone, reported as its topology ("+csi.TopologyKeyZone+"); empty reads the Node's zone label through the API")
			g.AddKubeFlags(fs)
			g.AddHeketiFlags(fs)
		},
		Run: func(ctx context.Context, g *Globals, args []string) error {
			if err := NoArgs(args); err != nil {
				return err
			}
			return runCSI(ctx, g, f)
		},
	}
}

func runCSI(ctx context.Context, g *Globals, f *csiFlags) error {
	var controller, node bool
	for _, s := range f.services {
		switch strings.TrimSpace(s) {
		case "controller":
			controller = true
		case "node":
			node = true
		default:
			return Usagef("--services: unknown service %q (want controller, node or both)", s)
		}
	}
	if !controller && !node {
		return Usagef("--services: name controller, node or both")
	}
	if _, err := unixsock.Path(f.endpoint); err != nil {
		return Usagef("--endpoint: %v", err)
	}
	logger := klog.Background().WithValues("driver", csi.DriverName)
	ctx = klog.NewContext(ctx, logger)

	var collectors []prometheus.Collector
	cfg := csi.Config{Endpoint: f.endpoint, Version: Version}
	if controller {
		hm := heketi.NewMetrics("glusterkube")
		collectors = append(collectors, hm.Collectors()...)
		c, err := buildCSIController(g, hm)
		if err != nil {
			return err
		}
		cfg.Controller = c
	}
	// The Kubernetes client is for Events on pods whose mounts died and
	// for the Node's zone label (the node service); the driver itself
	// needs no API access.
	var kube kubernetes.Interface
	if node && (f.events || f.zone == "") {
		k, _, err := g.KubeClient()
		switch {
		case err != nil && g.Kubeconfig != "":
			return err
		case err != nil:
			logger.Info("No Kubernetes client: Events on pods whose mounts died are off, and the node reports no zone unless --zone names it", "err", err)
		default:
			kube = k
		}
	}
	svc, err := service.New(service.Config{Kube: kube, Address: f.healthAddress, Collectors: collectors})
	if err != nil {
		return err
	}
	if node {
		nc, err := nodeConfig(ctx, g, f)
		if err != nil {
			return err
		}
		if kube != nil && f.events {
			nc.Events = svc.RecorderFor(ctx, "glusterkube-csi-node", nc.NodeID)
		}
		switch {
		case f.zone != "":
			nc.Zone = csi.FixedZone(f.zone)
		case kube != nil:
			nc.Zone = csi.NodeZone(kube, nc.NodeID)
		}
		cfg.Node = nc
	}
	d, err := csi.New(cfg)
	if err != nil {
		return err
	}
	if err := d.Start(ctx); err != nil {
		return err
	}
	defer d.Stop()

	var reg *csi.Registration
	if node && f.register {
		path := f.registrationPath
		if path == "" {
			path = d.Addr()
		}
		if reg, err = csi.StartRegistration(ctx, csi.RegistrationConfig{KubeletDir: f.kubeletDir, Endpoint: path}); err != nil {
			return err
		}
		defer reg.Stop()
	}
	// /healthz asks the identity Probe through the CSI socket, so it also
	// proves the gRPC server answers; and the kubelet's verdict on the
	// registration.
	svc.HealthCheck("csi", func() error {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		return probeSocket(pctx, d.Addr())
	})
	if reg != nil {
		svc.HealthCheck("kubelet registration", reg.Err)
	}
	return svc.Run(ctx, func(ctx context.Context) error {
		werr := make(chan error, 1)
		go func() { werr <- d.Wait() }()
		select {
		case <-ctx.Done():
			logger.Info("Stopping the CSI driver")
			return nil
		case err := <-werr:
			return fmt.Errorf("CSI server: %w", err)
		}
	})
}

// buildCSIController builds the CSI controller service on the default
// heketi server of the shared flags: volume ids without a server name
// live there.
func buildCSIController(g *Globals, m *heketi.Metrics) (*csi.Controller, error) {
	hcfg, err := g.HeketiConfig()
	if err != nil {
		return nil, err
	}
	hcfg.Observe = m.Observe
	return csi.NewController(csi.ControllerConfig{Heketi: hcfg})
}

// nodeConfig builds the node service's configuration: node id, mounter
// and folders.
func nodeConfig(ctx context.Context, g *Globals, f *csiFlags) (*csi.NodeConfig, error) {
	logger := klog.FromContext(ctx)
	nodeID := f.nodeID
	if nodeID == "" {
		nodeID = g.Getenv("NODE_NAME")
	}
	if nodeID == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			return nil, Usagef("--node-id: no node name given and the host name is unknown (%v)", err)
		}
		nodeID = h
	}
	if f.mountTimeout <= 0 {
		return nil, Usagef("--mount-timeout must be positive")
	}
	stateDir := f.stateDir
	if stateDir == "" {
		stateDir = filepath.Join(f.kubeletDir, "plugins", csi.DriverName, "state")
	}
	nc := &csi.NodeConfig{NodeID: nodeID, StateDir: stateDir, LogDir: f.logDir, MountTimeout: f.mountTimeout}
	if f.mounterEndpoint != "" {
		c, err := mounter.NewClient(f.mounterEndpoint)
		if err != nil {
			return nil, Usagef("--mounter-endpoint: %v", err)
		}
		nc.Mounter = c
	}
	mode := "in-process (FUSE clients die with this plugin)"
	if nc.Mounter != nil {
		mode = "mount service " + f.mounterEndpoint
	}
	logger.Info("Node service", "node", nodeID, "mounts", mode, "stateDir", stateDir, "logDir", f.logDir)
	return nc, nil
}

func probeSocket(ctx context.Context, socket string) error {
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	resp, err := csipb.NewIdentityClient(conn).Probe(ctx, &csipb.ProbeRequest{})
	if err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	if r := resp.GetReady(); r != nil && !r.GetValue() {
		return fmt.Errorf("probe: not ready")
	}
	return nil
}

type mounterFlags struct {
	endpoint     string
	allowedDir   string
	mountTimeout time.Duration
}

func mounterCommand() *Command {
	f := &mounterFlags{}
	return &Command{
		Name:  "mounter",
		Short: "serve the mount service that owns the GlusterFS FUSE clients, so CSI node plugin restarts never kill them",
		Usage: "[flags]",
		Flags: func(fs *pflag.FlagSet, g *Globals) {
			fs.StringVar(&f.endpoint, "endpoint", "unix://"+defaultPluginDir+"/mounter.sock", "socket to serve (unix:///path.sock, root only)")
			fs.StringVar(&f.allowedDir, "allowed-dir", "/var/lib/kubelet", "mount only under this folder")
			fs.DurationVar(&f.mountTimeout, "mount-timeout", mounter.DefaultTimeout, "longest a mount or unmount may take before its processes are killed")
		},
		Run: func(ctx context.Context, g *Globals, args []string) error {
			if err := NoArgs(args); err != nil {
				return err
			}
			if f.mountTimeout <= 0 {
				return Usagef("--mount-timeout must be positive")
			}
			if f.allowedDir == "" || !filepath.IsAbs(f.allowedDir) {
				return Usagef("--allowed-dir must be an absolute path")
			}
			logger := klog.Background()
			ctx = klog.NewContext(ctx, logger)
			if err := mounter.ProbeClient(); err != nil {
				logger.Error(err, "This mount service cannot mount yet")
			}
			srv, err := mounter.NewServer(f.endpoint, mounter.NewLocal(mounter.LocalConfig{AllowedDir: f.allowedDir, Timeout: f.mountTimeout}), Version)
			if err != nil {
				return err
			}
			logger.Info("Starting the mount service", "version", Version, "allowedDir", f.allowedDir, "pid", os.Getpid())
			err = srv.Serve(ctx)
			logger.Info("Mount service stopped: the FUSE clients it started end with its container")
			return err
		},
	}
}
