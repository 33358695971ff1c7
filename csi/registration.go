package csi

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"

	"google.golang.org/grpc"
	"k8s.io/klog/v2"
	registerapi "k8s.io/kubelet/pkg/apis/pluginregistration/v1"

	"github.com/glusterkube/glusterkube/internal/unixsock"
)

// The kubelet finds CSI node plugins through its plugin watcher: a plugin
// puts a socket in <kubelet-dir>/plugins_registry serving the
// pluginregistration v1 service; the kubelet asks GetInfo (type, name, the
// CSI endpoint, the versions), then dials the CSI endpoint and says with
// NotifyRegistrationStatus whether it took the plugin. This is what the
// node-driver-registrar sidecar does; doing it here needs no sidecar image.

// RegistrationConfig configures the kubelet registration.
type RegistrationConfig struct {
	// KubeletDir is the kubelet's root folder (/var/lib/kubelet).
	KubeletDir string
	// Endpoint is the CSI socket path as the kubelet sees it (it dials
	// it from the host).
	Endpoint string
}

// SupportedVersions are the CSI versions the plugin tells the kubelet.
var SupportedVersions = []string{"1.0.0"}

// RegistrationSocket is where the registration socket goes.
func RegistrationSocket(kubeletDir string) string {
	return filepath.Join(kubeletDir, "plugins_registry", DriverName+"-reg.sock")
}

// Registration serves the kubelet registration socket.
type Registration struct {
	registerapi.UnimplementedRegistrationServer
	endpoint string
	srv      *grpc.Server
	path     string
	logger   klog.Logger

	mu       sync.Mutex
	notified bool
	status   *registerapi.RegistrationStatus
}

// StartRegistration listens on the registration socket and serves it in
// the background until Stop. Start it once the CSI endpoint serves: the
// kubelet dials the endpoint as soon as it sees the socket.
func StartRegistration(ctx context.Context, cfg RegistrationConfig) (*Registration, error) {
	endpoint, err := unixsock.Path(cfg.Endpoint)
	if err != nil {
		return nil, fmt.Errorf("registration: %w", err)
	}
	if cfg.KubeletDir == "" {
		return nil, errors.New("registration: the kubelet folder is empty")
	}
	r := &Registration{endpoint: endpoint, path: RegistrationSocket(cfg.KubeletDir), logger: klog.FromContext(ctx)}
	ln, err := unixsock.Listen("unix://"+r.path, 0o600)
	if err != nil {
		return nil, fmt.Errorf("kubelet registration socket: %w", err)
	}
	r.srv = grpc.NewServer()
	registerapi.RegisterRegistrationServer(r.srv, r)
	go func() { _ = r.srv.Serve(ln) }()
	r.logger.Info("Registering with the kubelet", "socket", r.path, "endpoint", endpoint)
	return r, nil
}

// Path is the registration socket.
func (r *Registration) Path() string { return r.path }

// Stop stops serving and removes the socket, which the kubelet takes as
// the plugin's deregistration.
func (r *Registration) Stop() { r.srv.Stop() }

// GetInfo tells the kubelet what this plugin is and where it serves CSI.
func (r *Registration) GetInfo(context.Context, *registerapi.InfoRequest) (*registerapi.PluginInfo, error) {
	return &registerapi.PluginInfo{
		Type:              registerapi.CSIPlugin,
		Name:              DriverName,
		Endpoint:          r.endpoint,
		SupportedVersions: SupportedVersions,
	}, nil
}

// NotifyRegistrationStatus records what the kubelet made of the plugin.
func (r *Registration) NotifyRegistrationStatus(_ context.Context, st *registerapi.RegistrationStatus) (*registerapi.RegistrationStatusResponse, error) {
	r.mu.Lock()
	r.notified, r.status = true, st
	r.mu.Unlock()
	if st.GetPluginRegistered() {
		r.logger.Info("Registered with the kubelet", "driver", DriverName)
	} else {
		r.logger.Error(errors.New(st.GetError()), "The kubelet refused the plugin's registration", "driver", DriverName)
	}
	return &registerapi.RegistrationStatusResponse{}, nil
}

// Err is nil until the kubelet has refused the plugin, then what it said.
// (A health check fails on it, so the plugin restarts and registers again,
// as node-driver-registrar does by exiting.)
func (r *Registration) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.notified && !r.status.GetPluginRegistered() {
		return fmt.Errorf("the kubelet refused the registration: %s", r.status.GetError())
	}
	return nil
}

// Registered reports whether the kubelet said it took the plugin.
func (r *Registration) Registered() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.notified && r.status.GetPluginRegistered()
}
