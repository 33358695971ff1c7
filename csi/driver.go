package csi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path"
	"sync"
	"time"

	csipb "github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/kubernetes-csi/csi-lib-utils/protosanitizer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/klog/v2"

	"github.com/glusterkube/glusterkube/internal/unixsock"
)

// Config configures a Driver.
type Config struct {
	// Endpoint is where the CSI gRPC server listens: unix:///path/csi.sock.
	Endpoint string
	// Version is the vendor version GetPluginInfo reports.
	Version string
	// Controller serves the controller service; nil means no controller
	// service. When it has a `Probe(context.Context) error` method, the
	// identity Probe calls it.
	Controller csipb.ControllerServer
	// Node configures the node service; nil means no node service.
	Node *NodeConfig
}

// Driver is the CSI driver: the identity service and the configured
// controller and node services on one gRPC server.
type Driver struct {
	cfg      Config
	identity *identityServer
	node     *nodeServer

	srv      *grpc.Server
	ln       net.Listener
	serveErr chan error
	stopOnce sync.Once
}

// stopGrace is how long Stop waits for calls in flight before cutting them.
const stopGrace = 10 * time.Second

// New checks cfg and builds a Driver; Start serves it.
func New(cfg Config) (*Driver, error) {
	if _, err := unixsock.Path(cfg.Endpoint); err != nil {
		return nil, err
	}
	if cfg.Controller == nil && cfg.Node == nil {
		return nil, errors.New("no CSI service to serve: configure the controller, the node service, or both")
	}
	d := &Driver{cfg: cfg}
	if cfg.Node != nil {
		n, err := newNodeServer(*cfg.Node)
		if err != nil {
			return nil, err
		}
		d.node = n
	}
	d.identity = &identityServer{version: cfg.Version, controller: cfg.Controller, node: d.node}
	return d, nil
}

// Start listens on the endpoint (replacing a stale socket, refusing one
// another process serves) and serves in the background until Stop. With
// the node service, it also starts healing the mounts of earlier publishes
// that died while the plugin was away; ctx bounds that work.
func (d *Driver) Start(ctx context.Context) error {
	ln, err := unixsock.Listen(d.cfg.Endpoint, 0o660)
	if err != nil {
		return fmt.Errorf("CSI endpoint: %w", err)
	}
	logger := klog.FromContext(ctx)
	d.ln = ln
	d.srv = grpc.NewServer(grpc.ChainUnaryInterceptor(logCalls(logger)))
	csipb.RegisterIdentityServer(d.srv, d.identity)
	if d.cfg.Controller != nil {
		csipb.RegisterControllerServer(d.srv, d.cfg.Controller)
	}
	if d.node != nil {
		csipb.RegisterNodeServer(d.srv, d.node)
	}
	d.serveErr = make(chan error, 1)
	go func() { d.serveErr <- d.srv.Serve(ln) }()
	logger.Info("CSI driver listening", "endpoint", ln.Addr().String(), "driver", DriverName, "version", d.cfg.Version,
		"controller", d.cfg.Controller != nil, "node", d.node != nil)
	if d.node != nil {
		go d.node.healAll(klog.NewContext(ctx, logger))
	}
	return nil
}

// Addr is the socket path the driver listens on.
func (d *Driver) Addr() string { return d.ln.Addr().String() }

// Stop stops serving: calls in flight get stopGrace to finish. The socket
// is removed. Mounts are not touched.
func (d *Driver) Stop() {
	d.stopOnce.Do(func() {
		if d.srv == nil {
			return
		}
		done := make(chan struct{})
		go func() { d.srv.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-time.After(stopGrace):
			d.srv.Stop()
			<-done
		}
	})
}

// Wait blocks until the server stops and returns the error it ended
// with: nil after Stop.
func (d *Driver) Wait() error {
	err := <-d.serveErr
	d.serveErr <- err
	if errors.Is(err, grpc.ErrServerStopped) {
		return nil
	}
	return err
}

// Probe runs the identity service's Probe: what a liveness probe asks.
func (d *Driver) Probe(ctx context.Context) error {
	_, err := d.identity.Probe(ctx, &csipb.ProbeRequest{})
	return err
}

// quietMethods are called every few seconds by the CO: logged only at
// higher verbosity.
var quietMethods = map[string]bool{
	"Probe": true, "NodeGetCapabilities": true, "NodeGetVolumeStats": true,
	"GetPluginInfo": true, "GetPluginCapabilities": true, "ControllerGetCapabilities": true,
}

// logCalls logs each call with its method, volume id and target, its
// duration and its outcome. Requests are logged (at -v=5, or 6 for the
// quiet methods) through protosanitizer, which strips the fields the CSI
// spec marks as secrets; nothing else of a request is logged.
func logCalls(base klog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		method := path.Base(info.FullMethod)
		logger := base.WithValues("method", method)
		if r, ok := req.(interface{ GetVolumeId() string }); ok && r.GetVolumeId() != "" {
			logger = logger.WithValues("volumeID", r.GetVolumeId())
		}
		if r, ok := req.(interface{ GetTargetPath() string }); ok && r.GetTargetPath() != "" {
			logger = logger.WithValues("target", r.GetTargetPath())
		}
		v := 2
		if quietMethods[method] {
			v = 4
		}
		logger.V(v+3).Info("CSI call", "request", protosanitizer.StripSecrets(req))
		start := time.Now()
		resp, err := handler(klog.NewContext(ctx, logger), req)
		d := time.Since(start).Round(time.Millisecond)
		switch code := status.Code(err); {
		case err == nil:
			logger.V(v).Info("CSI call done", "duration", d)
		case code == codes.Aborted, code == codes.NotFound && method == "NodeGetVolumeStats":
			logger.V(2).Info("CSI call refused", "code", code, "err", status.Convert(err).Message(), "duration", d)
		default:
			logger.Info("CSI call failed", "code", code, "err", status.Convert(err).Message(), "duration", d)
		}
		return resp, err
	}
}
