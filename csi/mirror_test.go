package csi_test

import (
	"context"
	"errors"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	csipb "github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/glusterkube/glusterkube/csi"
	"github.com/glusterkube/glusterkube/internal/testenv"
)

// mirror stands between a CSI client (csi-sanity, a test acting as the
// external-provisioner) and the real plugin: a gRPC proxy on a socket of
// its own that passes every call through to the plugin's socket unchanged
// — the request's bytes in, the answer's bytes or status out — and mirrors
// the controller's volumes on the test's glusterd.
//
// Why: heketi's mock executor records volumes without making them, so the
// volume a CreateVolume answer names (volume context "volume") exists in
// heketi only, and the node service could not mount it. So after each
// CreateVolume that succeeds, the mirror makes that GlusterFS volume
// (Glusterd.CreateHeketiVolume: replica 3, folder bricks) before the
// client sees the answer, as a real heketi would have; after each
// DeleteVolume that succeeds, it deletes the volume it made for that id.
// Nothing else is touched: the node service mounts, for real, exactly what
// the controller answered.
type mirror struct {
	t      testing.TB
	g      *testenv.Glusterd
	conn   *grpc.ClientConn
	srv    *grpc.Server
	socket string

	mu      sync.Mutex
	volumes map[string]string // CSI volume id -> GlusterFS volume name
}

// startMirror serves the mirror on socket, passing calls to the plugin at
// plugin; it stops when the test ends.
func startMirror(t testing.TB, g *testenv.Glusterd, plugin, socket string) *mirror {
	t.Helper()
	conn, err := grpc.NewClient("unix://"+plugin, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	m := &mirror{t: t, g: g, conn: conn, socket: socket, volumes: map[string]string{}}
	ln, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	m.srv = grpc.NewServer(grpc.ForceServerCodec(rawCodec{}), grpc.UnknownServiceHandler(m.forward))
	go func() { _ = m.srv.Serve(ln) }()
	t.Cleanup(func() {
		m.srv.Stop()
		conn.Close()
		_ = os.Remove(socket)
	})
	return m
}

// Made reports the GlusterFS volumes the mirror made and has not deleted.
func (m *mirror) Made() map[string]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]string, len(m.volumes))
	for k, v := range m.volumes {
		out[k] = v
	}
	return out
}

const (
	methodCreateVolume = "/csi.v1.Controller/CreateVolume"
	methodDeleteVolume = "/csi.v1.Controller/DeleteVolume"
)

// forward passes one unary call through (CSI has no streaming calls).
func (m *mirror) forward(_ any, stream grpc.ServerStream) error {
	method, ok := grpc.MethodFromServerStream(stream)
	if !ok {
		return status.Error(codes.Internal, "mirror: no method")
	}
	var req, resp []byte
	if err := stream.RecvMsg(&req); err != nil {
		return err
	}
	ctx := stream.Context()
	if err := m.conn.Invoke(ctx, method, &req, &resp, grpc.ForceCodec(rawCodec{})); err != nil {
		return err // the plugin's status, as it is
	}
	switch method {
	case methodCreateVolume:
		var r csipb.CreateVolumeResponse
		if err := proto.Unmarshal(resp, &r); err != nil {
			return status.Errorf(codes.Internal, "mirror: decode CreateVolume answer: %v", err)
		}
		name := r.GetVolume().GetVolumeContext()[csi.ContextVolume]
		if name == "" {
			return status.Errorf(codes.Internal, "mirror: CreateVolume answered volume %q without a %q in its context", r.GetVolume().GetVolumeId(), csi.ContextVolume)
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		if _, err := m.g.CreateHeketiVolume(cctx, name); err != nil {
			return status.Errorf(codes.Internal, "mirror: make GlusterFS volume %s: %v", name, err)
		}
		m.mu.Lock()
		m.volumes[r.GetVolume().GetVolumeId()] = name
		m.mu.Unlock()
	case methodDeleteVolume:
		var r csipb.DeleteVolumeRequest
		if err := proto.Unmarshal(req, &r); err != nil {
			return status.Errorf(codes.Internal, "mirror: decode DeleteVolume request: %v", err)
		}
		m.mu.Lock()
		name, ok := m.volumes[r.GetVolumeId()]
		m.mu.Unlock()
		if ok {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
			defer cancel()
			if err := m.g.DeleteVolume(cctx, name); err != nil {
				return status.Errorf(codes.Internal, "mirror: delete GlusterFS volume %s: %v", name, err)
			}
			m.mu.Lock()
			delete(m.volumes, r.GetVolumeId())
			m.mu.Unlock()
		}
	}
	return stream.SendMsg(&resp)
}

// rawCodec passes messages as the bytes they are on the wire.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) {
	b, ok := v.(*[]byte)
	if !ok {
		return nil, errors.New("rawCodec: not *[]byte")
	}
	return *b, nil
}

func (rawCodec) Unmarshal(data []byte, v any) error {
	b, ok := v.(*[]byte)
	if !ok {
		return errors.New("rawCodec: not *[]byte")
	}
	*b = append([]byte(nil), data...)
	return nil
}

func (rawCodec) Name() string { return "proto" }
