package csi

import (
	"context"
	"fmt"
	"slices"
	"time"

	csipb "github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/glusterkube/glusterkube/volume"
	"github.com/glusterkube/glusterkube/zones"
)

// TopologyKeyZone is the one topology key of the driver: the Kubernetes
// zone label. The node plugin reports its Node's zone under it (the
// kubelet then finds the label it already has, with the same value), and
// local volumes are accessible from their zone under it, so the
// external-provisioner writes PV node affinity on the standard key.
const TopologyKeyZone = zones.LabelZone

// ZoneSource tells the node service its zone: a fixed one, or a lookup of
// its Node's zone label (through the API, with a deadline).
type ZoneSource func(ctx context.Context) (string, error)

// FixedZone is a ZoneSource that always answers zone.
func FixedZone(zone string) ZoneSource {
	return func(context.Context) (string, error) { return zone, nil }
}

// zoneLookupTimeout bounds NodeGetInfo's lookup of the node's zone.
const zoneLookupTimeout = 10 * time.Second

// accessibleTopology is what NodeGetInfo reports: the node's zone, or an
// empty topology (no segments) for a node without one. The plugin
// advertises VOLUME_ACCESSIBILITY_CONSTRAINTS, so the topology is never
// nil: a node without a zone reaches volumes that are usable from every
// zone.
func (n *nodeServer) accessibleTopology(ctx context.Context) (*csipb.Topology, error) {
	topo := &csipb.Topology{}
	if n.cfg.Zone == nil {
		return topo, nil
	}
	ctx, cancel := context.WithTimeout(ctx, zoneLookupTimeout)
	defer cancel()
	zone, err := n.cfg.Zone(ctx)
	if err != nil {
		// The kubelet registers the plugin again after a failure.
		return nil, status.Errorf(codes.Unavailable, "read the zone of node %s: %v", n.cfg.NodeID, err)
	}
	if zone == "" {
		klog.FromContext(ctx).Info("Node has no zone label: it reports no zone, and reaches only volumes usable from every zone", "node", n.cfg.NodeID)
		return topo, nil
	}
	if err := volume.CheckZoneName(zone); err != nil {
		return nil, status.Errorf(codes.FailedPrecondition, "node %s: %v", n.cfg.NodeID, err)
	}
	topo.Segments = map[string]string{TopologyKeyZone: zone}
	return topo, nil
}

// requestTopology reads CreateVolume's accessibility requirements as
// zones: the requisite topologies limit the volume's bricks to their zones
// (a topology without a zone segment allows every zone), the preferred
// ones name the zone a local volume goes to, first first.
func requestTopology(req *csipb.TopologyRequirement) (volume.Topology, error) {
	var topo volume.Topology
	if req == nil {
		return topo, nil
	}
	zoneOf := func(t *csipb.Topology, what string) (string, error) {
		z := t.GetSegments()[TopologyKeyZone]
		if z == "" {
			return "", nil
		}
		if err := volume.CheckZoneName(z); err != nil {
			return "", status.Errorf(codes.InvalidArgument, "accessibility_requirements: %s topology %v: %v", what, t.GetSegments(), err)
		}
		return z, nil
	}
	allowed := []string{}
	for _, t := range req.GetRequisite() {
		z, err := zoneOf(t, "requisite")
		if err != nil {
			return topo, err
		}
		if z == "" {
			allowed = nil // this topology allows every zone
			break
		}
		if !slices.Contains(allowed, z) {
			allowed = append(allowed, z)
		}
	}
	if len(req.GetRequisite()) > 0 && allowed != nil {
		slices.Sort(allowed)
		topo.Allowed = allowed
	}
	for _, t := range req.GetPreferred() {
		z, err := zoneOf(t, "preferred")
		if err != nil {
			return topo, err
		}
		if z != "" && !slices.Contains(topo.Preferred, z) {
			topo.Preferred = append(topo.Preferred, z)
		}
	}
	return topo, nil
}

// volumeTopology is where a volume is accessible from: a local volume from
// its zone; any other from every node (nil, as the spec allows).
func volumeTopology(vol *volume.Volume) []*csipb.Topology {
	if vol.Zone == "" {
		return nil
	}
	return []*csipb.Topology{{Segments: map[string]string{TopologyKeyZone: vol.Zone}}}
}

// topologyCompatible checks that a volume found by name can be accessible
// where the request requires; otherwise the name is AlreadyExists.
func topologyCompatible(vol *volume.Volume, topo volume.Topology) error {
	if vol.Zone == "" || topo.Allowed == nil || slices.Contains(topo.Allowed, vol.Zone) {
		return nil
	}
	return status.Error(codes.AlreadyExists, fmt.Sprintf("a volume named %s exists in zone %s, which the requisite topologies (zones %v) do not allow", vol.Name, vol.Zone, topo.Allowed))
}

// NodeZone is a ZoneSource that reads the zone label of the Node named
// node (zones.Of): the cloud or the administrator sets it, the pod spec
// cannot pass it down, and the kubelet, which records the reported zone as
// a Node label, finds the same value there.
func NodeZone(kube kubernetes.Interface, node string) ZoneSource {
	return func(ctx context.Context) (string, error) {
		n, err := kube.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
		if err != nil {
			return "", err
		}
		z, _ := zones.Of(n)
		return z, nil
	}
}
