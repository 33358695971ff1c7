package csi

import (
	"context"
	"testing"

	csipb "github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/glusterkube/glusterkube/volume"
)

// TestCapabilitiesConsistent checks that what the three services advertise
// fits together, as the COs read them:
//   - SINGLE_NODE_MULTI_WRITER on both the controller and the node service
//     (KEP-2485): the external-provisioner and external-resizer read the
//     controller's bit, the kubelet the node's; with the bit on one side
//     only, a ReadWriteOncePod claim reaches the controller as
//     SINGLE_NODE_WRITER but the node as SINGLE_NODE_SINGLE_WRITER.
//   - online expansion in the identity exactly when the controller expands,
//     and no node expansion: a GlusterFS volume grows while mounted, so the
//     controller answers node_expansion_required false.
//   - no staging, no controller publish (the CSIDriver's attachRequired is
//     false).
//   - accessibility constraints in the identity, and a topology (maybe
//     without segments, for a node with no zone) in NodeGetInfo.
func TestCapabilitiesConsistent(t *testing.T) {
	ctx := context.Background()
	f := newCtrlFixture(t)
	node, _ := newTestNode(t, &fakeMounter{})
	ident := &identityServer{version: "test", controller: f.c, node: node}

	ctrl := map[csipb.ControllerServiceCapability_RPC_Type]bool{}
	cresp, err := f.c.ControllerGetCapabilities(ctx, &csipb.ControllerGetCapabilitiesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cresp.GetCapabilities() {
		ctrl[c.GetRpc().GetType()] = true
	}
	nodeCaps := map[csipb.NodeServiceCapability_RPC_Type]bool{}
	nresp, err := node.NodeGetCapabilities(ctx, &csipb.NodeGetCapabilitiesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range nresp.GetCapabilities() {
		nodeCaps[c.GetRpc().GetType()] = true
	}
	online, accessibility := false, false
	presp, err := ident.GetPluginCapabilities(ctx, &csipb.GetPluginCapabilitiesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range presp.GetCapabilities() {
		if c.GetVolumeExpansion().GetType() == csipb.PluginCapability_VolumeExpansion_ONLINE {
			online = true
		}
		if c.GetService().GetType() == csipb.PluginCapability_Service_VOLUME_ACCESSIBILITY_CONSTRAINTS {
			accessibility = true
		}
	}

	if c, n := ctrl[csipb.ControllerServiceCapability_RPC_SINGLE_NODE_MULTI_WRITER], nodeCaps[csipb.NodeServiceCapability_RPC_SINGLE_NODE_MULTI_WRITER]; c != n {
		t.Errorf("SINGLE_NODE_MULTI_WRITER: controller %v, node %v; both services must advertise it, or neither", c, n)
	}
	if e := ctrl[csipb.ControllerServiceCapability_RPC_EXPAND_VOLUME]; e != online {
		t.Errorf("controller EXPAND_VOLUME %v, identity online expansion %v", e, online)
	}
	if nodeCaps[csipb.NodeServiceCapability_RPC_EXPAND_VOLUME] {
		t.Error("node EXPAND_VOLUME: GlusterFS needs nothing on the node")
	}
	if nodeCaps[csipb.NodeServiceCapability_RPC_STAGE_UNSTAGE_VOLUME] || ctrl[csipb.ControllerServiceCapability_RPC_PUBLISH_UNPUBLISH_VOLUME] {
		t.Error("staging or controller publish advertised")
	}
	info, err := node.NodeGetInfo(ctx, &csipb.NodeGetInfoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if accessibility != (info.GetAccessibleTopology() != nil) {
		t.Errorf("accessibility constraints %v, node topology %v", accessibility, info.GetAccessibleTopology())
	}

	// An expansion answers as the capabilities say.
	vol, err := f.c.CreateVolume(ctx, createReq("pvc-caps", 1, nil))
	if err != nil {
		t.Fatal(err)
	}
	exp, err := f.c.ControllerExpandVolume(ctx, &csipb.ControllerExpandVolumeRequest{VolumeId: vol.GetVolume().GetVolumeId(), CapacityRange: &csipb.CapacityRange{RequiredBytes: 2 * volume.GiB}})
	if err != nil {
		t.Fatal(err)
	}
	if exp.GetNodeExpansionRequired() != nodeCaps[csipb.NodeServiceCapability_RPC_EXPAND_VOLUME] {
		t.Errorf("expansion requires the node: %v, node EXPAND_VOLUME %v", exp.GetNodeExpansionRequired(), nodeCaps[csipb.NodeServiceCapability_RPC_EXPAND_VOLUME])
	}
}

// TestControllerSingleNodeAccessModes: with SINGLE_NODE_MULTI_WRITER
// advertised, the external-provisioner sends SINGLE_NODE_MULTI_WRITER for
// ReadWriteOnce claims and SINGLE_NODE_SINGLE_WRITER for ReadWriteOncePod;
// older COs still send SINGLE_NODE_WRITER, which the spec says must go on
// working. Each is a volume the controller makes and confirms.
func TestControllerSingleNodeAccessModes(t *testing.T) {
	ctx := context.Background()
	f := newCtrlFixture(t)
	for _, mode := range []csipb.VolumeCapability_AccessMode_Mode{
		csipb.VolumeCapability_AccessMode_SINGLE_NODE_WRITER,
		csipb.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER,
		csipb.VolumeCapability_AccessMode_SINGLE_NODE_MULTI_WRITER,
	} {
		t.Run(mode.String(), func(t *testing.T) {
			req := createReq("pvc-"+mode.String(), 1, nil)
			req.VolumeCapabilities = []*csipb.VolumeCapability{mountCap(mode)}
			vol, err := f.c.CreateVolume(ctx, req)
			if err != nil {
				t.Fatalf("create: %v", err)
			}
			v, err := f.c.ValidateVolumeCapabilities(ctx, &csipb.ValidateVolumeCapabilitiesRequest{VolumeId: vol.GetVolume().GetVolumeId(), VolumeCapabilities: req.VolumeCapabilities})
			if err != nil || v.GetConfirmed() == nil {
				t.Errorf("validate: %v %v", v, err)
			}
		})
	}
}
