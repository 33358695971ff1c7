package provisioner

import (
	"context"
	"fmt"
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/glusterkube/glusterkube/volume"
	"github.com/glusterkube/glusterkube/zones"
)

// claimTopology is where a claim's volume may go and should go: the zones
// the class's allowedTopologies allows, and the zone of the node the
// scheduler picked for the claim's pod (WaitForFirstConsumer). key is the
// label that node names its zone with, for the PV's node affinity.
func (p *Provisioner) claimTopology(ctx context.Context, class *storagev1.StorageClass, selectedNode string) (topo volume.Topology, key string, err error) {
	allowed, err := allowedZones(class)
	if err != nil {
		return volume.Topology{}, "", err
	}
	topo.Allowed = allowed
	key = zones.LabelZone
	if selectedNode == "" {
		return topo, key, nil
	}
	node, err := p.cfg.Kube.CoreV1().Nodes().Get(ctx, selectedNode, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return topo, key, &selectedNodeGone{node: selectedNode}
	}
	if err != nil {
		return topo, key, fmt.Errorf("read node %s, where the claim's pod is to run: %w", selectedNode, err)
	}
	if z, k := zones.Of(node); z != "" {
		topo.Preferred, key = []string{z}, k
	}
	return topo, key, nil
}

// selectedNodeGone: the node the scheduler picked no longer exists; the
// scheduler must pick again.
type selectedNodeGone struct{ node string }

func (e *selectedNodeGone) Error() string {
	return fmt.Sprintf("node %s, picked for the claim's pod, no longer exists; asking the scheduler to pick again", e.node)
}

// allowedZones reads a class's allowedTopologies: nil when it has none (or
// a term without a zone, which allows every zone), else the zones its
// terms allow. Keys other than the zone labels are refused: glusterkube
// places volumes by zone only.
func allowedZones(class *storagev1.StorageClass) ([]string, error) {
	bad := func(format string, args ...any) error {
		return &volume.ParamError{Class: class.Name, Problem: "allowedTopologies: " + fmt.Sprintf(format, args...)}
	}
	if len(class.AllowedTopologies) == 0 {
		return nil, nil
	}
	set := map[string]bool{}
	for _, term := range class.AllowedTopologies {
		var termZones []string // nil: the term does not name zones
		for _, e := range term.MatchLabelExpressions {
			if !zones.IsZoneKey(e.Key) {
				return nil, bad("key %q is not a zone label: glusterkube places volumes by zone (%s) only", e.Key, zones.LabelZone)
			}
			for _, z := range e.Values {
				if err := volume.CheckZoneName(z); err != nil {
					return nil, bad("%v", err)
				}
			}
			if termZones == nil {
				termZones = slices.Clone(e.Values)
			} else {
				// Expressions of one term all hold (both zone keys named).
				termZones = slices.DeleteFunc(termZones, func(z string) bool { return !slices.Contains(e.Values, z) })
			}
		}
		if termZones == nil {
			return nil, nil
		}
		for _, z := range termZones {
			set[z] = true
		}
	}
	if len(set) == 0 {
		return nil, bad("no zone is allowed by every expression of a term (%s)", termsString(class.AllowedTopologies))
	}
	out := make([]string, 0, len(set))
	for z := range set {
		out = append(out, z)
	}
	slices.Sort(out)
	return out, nil
}

func termsString(terms []v1.TopologySelectorTerm) string {
	var parts []string
	for _, t := range terms {
		for _, e := range t.MatchLabelExpressions {
			parts = append(parts, e.Key+" in ["+strings.Join(e.Values, ",")+"]")
		}
	}
	return strings.Join(parts, "; ")
}

// zoneAffinity pins a PV to the Nodes of one zone, by the label key the
// pod's node named its zone with.
func zoneAffinity(key, zone string) *v1.VolumeNodeAffinity {
	if key == "" {
		key = zones.LabelZone
	}
	return &v1.VolumeNodeAffinity{Required: &v1.NodeSelector{NodeSelectorTerms: []v1.NodeSelectorTerm{{
		MatchExpressions: []v1.NodeSelectorRequirement{{Key: key, Operator: v1.NodeSelectorOpIn, Values: []string{zone}}},
	}}}}
}
