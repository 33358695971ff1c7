package csi

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	csipb "github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"k8s.io/klog/v2/textlogger"
	registerapi "k8s.io/kubelet/pkg/apis/pluginregistration/v1"
)

// fakeController is a controller with optional expansion and a Probe.
type fakeController struct {
	csipb.UnimplementedControllerServer
	expand   bool
	probeErr error
}

func (c *fakeController) ControllerGetCapabilities(context.Context, *csipb.ControllerGetCapabilitiesRequest) (*csipb.ControllerGetCapabilitiesResponse, error) {
	resp := &csipb.ControllerGetCapabilitiesResponse{}
	if c.expand {
		resp.Capabilities = append(resp.Capabilities, &csipb.ControllerServiceCapability{Type: &csipb.ControllerServiceCapability_Rpc{
			Rpc: &csipb.ControllerServiceCapability_RPC{Type: csipb.ControllerServiceCapability_RPC_EXPAND_VOLUME}}})
	}
	return resp, nil
}

func (c *fakeController) Probe(context.Context) error { return c.probeErr }

func TestIdentity(t *testing.T) {
	ctx := context.Background()
	node, _ := newTestNode(t, &fakeMounter{})
	pluginCaps := func(s *identityServer) []string {
		resp, err := s.GetPluginCapabilities(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, c := range resp.GetCapabilities() {
			if svc := c.GetService(); svc != nil {
				out = append(out, svc.GetType().String())
			}
			if e := c.GetVolumeExpansion(); e != nil {
				out = append(out, "expansion:"+e.GetType().String())
			}
		}
		return out
	}
	s := &identityServer{version: "v9", node: node}
	info, _ := s.GetPluginInfo(ctx, nil)
	if info.GetName() != DriverName || info.GetVendorVersion() != "v9" {
		t.Errorf("plugin info %v", info)
	}
	if got := strings.Join(pluginCaps(s), " "); got != "VOLUME_ACCESSIBILITY_CONSTRAINTS" {
		t.Errorf("node only: capabilities %v, want the zones' accessibility constraints only", got)
	}
	s.controller = &fakeController{}
	if got := strings.Join(pluginCaps(s), " "); got != "VOLUME_ACCESSIBILITY_CONSTRAINTS CONTROLLER_SERVICE" {
		t.Errorf("with a controller: %s", got)
	}
	s.controller = &fakeController{expand: true}
	if got := strings.Join(pluginCaps(s), " "); got != "VOLUME_ACCESSIBILITY_CONSTRAINTS CONTROLLER_SERVICE expansion:ONLINE" {
		t.Errorf("with an expanding controller: %s", got)
	}

	if r, err := s.Probe(ctx, nil); err != nil || !r.GetReady().GetValue() {
		t.Errorf("probe %v %v", r, err)
	}
	s.controller = &fakeController{probeErr: errors.New("heketi at http://h does not answer")}
	_, err := s.Probe(ctx, nil)
	wantCode(t, err, codes.FailedPrecondition, "controller: heketi at http://h does not answer")
	s.controller = nil
	node.m = &fakeMounter{probeErr: errors.New("the mount service at unix:///m.sock does not answer")}
	_, err = s.Probe(ctx, nil)
	wantCode(t, err, codes.FailedPrecondition, "node: the mount service")
}

func dial(t *testing.T, path string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient("unix://"+path, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// TestDriverSocket: a stale socket (a killed plugin's) is replaced, one a
// live plugin serves is refused, Stop removes the socket.
func TestDriverSocket(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "csi.sock")
	// A socket file nobody listens on, as a killed process leaves it.
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()

	cfg := Config{Endpoint: "unix://" + sock, Version: "v1", Node: &NodeConfig{NodeID: "n1", Mounter: &fakeMounter{}}}
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		t.Fatalf("start over a stale socket: %v", err)
	}
	info, err := csipb.NewNodeClient(dial(t, sock)).NodeGetInfo(context.Background(), &csipb.NodeGetInfoRequest{})
	if err != nil || info.GetNodeId() != "n1" {
		t.Fatalf("NodeGetInfo %v %v", info, err)
	}
	d2, _ := New(cfg)
	if err := d2.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "another process is serving") {
		t.Errorf("second driver on a live socket: %v", err)
	}
	d.Stop()
	if err := d.Wait(); err != nil {
		t.Errorf("wait: %v", err)
	}
	if _, err := os.Stat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket after Stop: %v", err)
	}

	if _, err := New(Config{Endpoint: "tcp://127.0.0.1:1", Node: cfg.Node}); err == nil {
		t.Error("a tcp endpoint was accepted")
	}
	if _, err := New(Config{Endpoint: cfg.Endpoint}); err == nil {
		t.Error("a driver without services was accepted")
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestLogCallsStripsSecrets: at the highest verbosity the interceptor logs
// requests, never their secrets.
func TestLogCallsStripsSecrets(t *testing.T) {
	var buf lockedBuffer
	logger := textlogger.NewLogger(textlogger.NewConfig(textlogger.Verbosity(10), textlogger.Output(&buf)))
	intercept := logCalls(logger)
	req := &csipb.NodePublishVolumeRequest{VolumeId: "vol-1", TargetPath: "/t", Secrets: map[string]string{"key": "s3cr3t-heketi-key"}}
	_, err := intercept(context.Background(), req, &grpc.UnaryServerInfo{FullMethod: "/csi.v1.Node/NodePublishVolume"},
		func(context.Context, any) (any, error) { return nil, status.Error(codes.Internal, "mount failed") })
	if status.Code(err) != codes.Internal {
		t.Fatal(err)
	}
	out := buf.String()
	if strings.Contains(out, "s3cr3t") {
		t.Errorf("a secret reached the log:\n%s", out)
	}
	for _, want := range []string{`method="NodePublishVolume"`, `volumeID="vol-1"`, `target="/t"`, "mount failed", "***stripped***"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}
}

// TestRegistrationAsKubelet acts as the kubelet's plugin watcher: it dials
// the registration socket, asks GetInfo, dials the endpoint it names and
// asks NodeGetInfo, then reports the registration's outcome.
func TestRegistrationAsKubelet(t *testing.T) {
	dir := t.TempDir()
	kubelet := filepath.Join(dir, "kubelet")
	sock := filepath.Join(dir, "plugins", DriverName, "csi.sock")
	d, err := New(Config{Endpoint: "unix://" + sock, Node: &NodeConfig{NodeID: "node-7", Mounter: &fakeMounter{}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := d.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer d.Stop()
	reg, err := StartRegistration(ctx, RegistrationConfig{KubeletDir: kubelet, Endpoint: "unix://" + sock})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Stop()

	regSock := filepath.Join(kubelet, "plugins_registry", DriverName+"-reg.sock")
	rc := registerapi.NewRegistrationClient(dial(t, regSock))
	info, err := rc.GetInfo(ctx, &registerapi.InfoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if info.GetType() != registerapi.CSIPlugin || info.GetName() != DriverName || info.GetEndpoint() != sock || len(info.GetSupportedVersions()) == 0 {
		t.Fatalf("GetInfo %v", info)
	}
	ni, err := csipb.NewNodeClient(dial(t, info.GetEndpoint())).NodeGetInfo(ctx, &csipb.NodeGetInfoRequest{})
	if err != nil || ni.GetNodeId() != "node-7" {
		t.Fatalf("NodeGetInfo through the registered endpoint: %v %v", ni, err)
	}
	if reg.Registered() || reg.Err() != nil {
		t.Errorf("before the kubelet's verdict: registered %v err %v", reg.Registered(), reg.Err())
	}
	if _, err := rc.NotifyRegistrationStatus(ctx, &registerapi.RegistrationStatus{PluginRegistered: false, Error: "driver name already taken"}); err != nil {
		t.Fatal(err)
	}
	if err := reg.Err(); err == nil || !strings.Contains(err.Error(), "driver name already taken") {
		t.Errorf("after a refusal: %v", err)
	}
	if _, err := rc.NotifyRegistrationStatus(ctx, &registerapi.RegistrationStatus{PluginRegistered: true}); err != nil {
		t.Fatal(err)
	}
	if !reg.Registered() || reg.Err() != nil {
		t.Errorf("after registration: registered %v err %v", reg.Registered(), reg.Err())
	}
	reg.Stop()
	if _, err := os.Stat(regSock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("registration socket after Stop: %v (the kubelet deregisters on its removal)", err)
	}
}

func TestVolumeLocks(t *testing.T) {
	l := NewVolumeLocks()
	if !l.TryAcquire("a") || l.TryAcquire("a") || !l.TryAcquire("b") {
		t.Fatal("locks do not exclude")
	}
	l.Release("a")
	if !l.TryAcquire("a") {
		t.Fatal("a released lock cannot be taken")
	}
}

func TestVolumeLocksAcquireAll(t *testing.T) {
	l := NewVolumeLocks()
	if !l.TryAcquire("b") {
		t.Fatal("b cannot be taken")
	}
	if _, err := l.acquireAll("a", "b"); status.Code(err) != codes.Aborted || !strings.Contains(err.Error(), "in progress") {
		t.Fatalf("acquireAll over a held key = %v, want Aborted in progress", err)
	}
	if !l.TryAcquire("a") {
		t.Fatal("a refused acquireAll took a")
	}
	l.Release("a")
	l.Release("b")
	release, err := l.acquireAll("b", "a", "b")
	if err != nil {
		t.Fatal(err)
	}
	if l.TryAcquire("a") || l.TryAcquire("b") {
		t.Fatal("acquireAll did not take every key")
	}
	release()
	if !l.TryAcquire("a") || !l.TryAcquire("b") {
		t.Fatal("release did not give every key back")
	}
}

func TestRecords(t *testing.T) {
	r := records{dir: filepath.Join(t.TempDir(), "state")}
	if rec, err := r.load("/t1"); rec != nil || err != nil {
		t.Fatalf("empty: %v %v", rec, err)
	}
	for _, target := range []string{"/t1", "/t2"} {
		if err := r.save(record{VolumeID: "v", Target: target, Options: []string{"ro"}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.save(record{VolumeID: "v2", Target: "/t1"}); err != nil { // replaces
		t.Fatal(err)
	}
	recs, errs := r.list()
	if len(recs) != 2 || len(errs) != 0 {
		t.Fatalf("list %v %v", recs, errs)
	}
	if rec, _ := r.load("/t1"); rec.VolumeID != "v2" {
		t.Errorf("t1 %+v", rec)
	}
	if err := r.remove("/t1"); err != nil {
		t.Fatal(err)
	}
	if err := r.remove("/t1"); err != nil {
		t.Fatalf("removing twice: %v", err)
	}
	if recs, _ := r.list(); len(recs) != 1 || recs[0].Target != "/t2" {
		t.Errorf("after remove: %v", recs)
	}
	if entries, _ := os.ReadDir(r.dir); len(entries) != 1 {
		t.Errorf("state folder holds %d files, want 1 (no temp files left)", len(entries))
	}
	var none records
	if err := none.save(record{Target: "/x"}); err != nil {
		t.Errorf("a store without a folder keeps nothing, quietly: %v", err)
	}
}
