package zones

import (
	corev1 "k8s.io/api/core/v1"
)

// The Node labels that name a zone, in the order they are read.
const (
	// LabelZone is the well-known zone label clouds and kubelets set.
	LabelZone = corev1.LabelTopologyZone
	// LabelZoneBeta is its predecessor, still found on older clusters.
	LabelZoneBeta = corev1.LabelFailureDomainBetaZone
)

// Of returns a Node's zone and the label it was read from ("" and "" when
// the Node has neither label, or an empty one).
func Of(n *corev1.Node) (zone, key string) {
	if n == nil {
		return "", ""
	}
	if z := n.Labels[LabelZone]; z != "" {
		return z, LabelZone
	}
	if z := n.Labels[LabelZoneBeta]; z != "" {
		return z, LabelZoneBeta
	}
	return "", ""
}

// IsZoneKey reports a label key that names a zone.
func IsZoneKey(key string) bool { return key == LabelZone || key == LabelZoneBeta }
