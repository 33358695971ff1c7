package csi

import (
	"context"

	csipb "github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// identityServer is the CSI identity service.
type identityServer struct {
	csipb.UnimplementedIdentityServer
	version    string
	controller csipb.ControllerServer
	node       *nodeServer
}

// prober is what a controller implements to make Probe mean something
// (package csi's Controller: heketi answers).
type prober interface {
	Probe(ctx context.Context) error
}

func (s *identityServer) GetPluginInfo(context.Context, *csipb.GetPluginInfoRequest) (*csipb.GetPluginInfoResponse, error) {
	return &csipb.GetPluginInfoResponse{Name: DriverName, VendorVersion: s.version}, nil
}

// GetPluginCapabilities advertises VOLUME_ACCESSIBILITY_CONSTRAINTS (a
// local volume is accessible from its zone only; every other volume from
// every node), the controller service when there is one, and online
// expansion when that controller expands volumes (GlusterFS volumes grow
// while mounted; nothing is done on the node).
func (s *identityServer) GetPluginCapabilities(ctx context.Context, _ *csipb.GetPluginCapabilitiesRequest) (*csipb.GetPluginCapabilitiesResponse, error) {
	resp := &csipb.GetPluginCapabilitiesResponse{Capabilities: []*csipb.PluginCapability{{
		Type: &csipb.PluginCapability_Service_{Service: &csipb.PluginCapability_Service{Type: csipb.PluginCapability_Service_VOLUME_ACCESSIBILITY_CONSTRAINTS}},
	}}}
	if s.controller == nil {
		return resp, nil
	}
	resp.Capabilities = append(resp.Capabilities, &csipb.PluginCapability{
		Type: &csipb.PluginCapability_Service_{Service: &csipb.PluginCapability_Service{Type: csipb.PluginCapability_Service_CONTROLLER_SERVICE}},
	})
	caps, err := s.controller.ControllerGetCapabilities(ctx, &csipb.ControllerGetCapabilitiesRequest{})
	if err != nil {
		return nil, err
	}
	for _, c := range caps.GetCapabilities() {
		if c.GetRpc().GetType() == csipb.ControllerServiceCapability_RPC_EXPAND_VOLUME {
			resp.Capabilities = append(resp.Capabilities, &csipb.PluginCapability{
				Type: &csipb.PluginCapability_VolumeExpansion_{VolumeExpansion: &csipb.PluginCapability_VolumeExpansion{Type: csipb.PluginCapability_VolumeExpansion_ONLINE}},
			})
			break
		}
	}
	return resp, nil
}

// Probe answers ready when every configured service can work: the
// controller's own Probe (heketi answers), and for the node service the
// GlusterFS FUSE client installed, /dev/fuse present and the mount
// service answering when one is configured. A failure is
// FAILED_PRECONDITION with what is wrong, as the spec asks of an unhealthy
// plugin.
func (s *identityServer) Probe(ctx context.Context, _ *csipb.ProbeRequest) (*csipb.ProbeResponse, error) {
	if p, ok := s.controller.(prober); ok && s.controller != nil {
		if err := p.Probe(ctx); err != nil {
			return nil, status.Errorf(codes.FailedPrecondition, "controller: %v", err)
		}
	}
	if s.node != nil {
		if err := s.node.probe(ctx); err != nil {
			return nil, status.Errorf(codes.FailedPrecondition, "node: %v", err)
		}
	}
	return &csipb.ProbeResponse{Ready: wrapperspb.Bool(true)}, nil
}
