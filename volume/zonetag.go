package volume

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// ZoneTag is the heketi node tag that carries a storage node's Kubernetes
// zone (its Node's topology.kubernetes.io/zone label) into heketi, where
// placement can select on it: a volume confined to one zone asks heketi for
// devices whose tags match (the volume option user.heketi.device-tag-match
// ZoneTag=<value>). glusterkube writes it (package zones) when asked to
// keep heketi's zones in step with the Nodes.
const ZoneTag = "glusterkube.zone"

// Heketi's volume options that steer brick placement (heketi v10,
// apps/glusterfs/volume_entry.go).
const (
	// OptionZoneChecking is heketi's per-volume zone checking: "strict"
	// puts every brick of a replica (or disperse) set in a different heketi
	// zone, or fails; "none" only prefers different zones.
	OptionZoneChecking = "user.heketi.zone-checking"
	// OptionDeviceTagMatch limits the volume's bricks to devices whose
	// tags (a node's tags, overridden by its device's) pass one rule,
	// "key=value" or "key!=value".
	OptionDeviceTagMatch = "user.heketi.device-tag-match"
)

// ZoneTagValue is the value of ZoneTag for a Kubernetes zone.
//
// Heketi parses a tag rule with ^([a-zA-Z0-9.-_]+)(!?=)([a-zA-Z0-9.-_]+)$,
// where ".-_" is a character range ('.' to '_') that leaves out '-' itself.
// So "glusterkube.zone=us-east-1a" is an invalid rule and fails the
// volume. A zone is a label value ([A-Za-z0-9._-], never ':'), so '-'
// becomes ':', which the range holds: the mapping keeps names readable
// ("us:east:1a") and is reversed by ZoneFromTag.
func ZoneTagValue(zone string) string { return strings.ReplaceAll(zone, "-", ":") }

// ZoneFromTag reverses ZoneTagValue.
func ZoneFromTag(v string) string { return strings.ReplaceAll(v, ":", "-") }

// CheckZoneName reports a zone name that is not a Kubernetes label value
// (and so could not be a Node's zone).
func CheckZoneName(zone string) error {
	if zone == "" {
		return fmt.Errorf("empty zone name")
	}
	if errs := validation.IsValidLabelValue(zone); len(errs) > 0 {
		return fmt.Errorf("zone %q is not a label value: %s", zone, strings.Join(errs, "; "))
	}
	return nil
}

// localZoneRule is the tag rule that confines a volume to zone.
func localZoneRule(zone string) string { return ZoneTag + "=" + ZoneTagValue(zone) }

// zoneOfOptions returns the zone a volume is confined to by its heketi
// options (its device-tag-match rule on ZoneTag with '='), or "".
func zoneOfOptions(opts []string) string {
	for _, o := range opts {
		k, v, ok := strings.Cut(strings.TrimSpace(o), " ")
		if !ok || k != OptionDeviceTagMatch {
			continue
		}
		rule := strings.TrimSpace(v)
		if val, ok := strings.CutPrefix(rule, ZoneTag+"="); ok {
			return ZoneFromTag(val)
		}
	}
	return ""
}
