package provisioner

import (
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/glusterkube/glusterkube/volume"
)

// defaultEPPrefix is the in-tree provisioner's Endpoints/Service prefix.
const defaultEPPrefix = "glusterfs-dynamic"

// VolumeName is the heketi volume name for a claim (volume.Name). It is
// deterministic, so a retry after a crash finds the volume an earlier
// attempt created.
func VolumeName(prefix string, claim *v1.PersistentVolumeClaim, pvName string) string {
	return volume.Name(prefix, claim.Namespace, claim.Name, string(claim.UID), pvName)
}

// EndpointsName is the Endpoints and Service name for a claim:
// <prefix>-<claim> as in-tree (prefix glusterfs-dynamic unless
// customepnameprefix), or, when that is not a valid Service name, a
// shortened form ending in the claim's short UID.
func EndpointsName(prefix string, claim *v1.PersistentVolumeClaim) string {
	if prefix == "" {
		prefix = defaultEPPrefix
	}
	name := prefix + "-" + claim.Name
	if len(validation.IsDNS1035Label(name)) == 0 {
		return name
	}
	suffix := "-" + shortUID(claim)
	body := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '-'
	}, strings.ToLower(claim.Name))
	head := prefix + "-"
	if room := validation.DNS1035LabelMaxLength - len(head) - len(suffix); len(body) > room {
		body = body[:max(room, 0)]
	}
	return strings.TrimRight(head+body, "-") + suffix
}

// AlternateEndpointsName is used when EndpointsName is taken by another PV
// (e.g. a Retained PV of an earlier claim with the same name).
func AlternateEndpointsName(prefix string, claim *v1.PersistentVolumeClaim) string {
	base := EndpointsName(prefix, claim)
	suffix := "-" + shortUID(claim)
	if strings.HasSuffix(base, suffix) {
		// Already the shortened form: make room for a different ending.
		head := strings.TrimSuffix(base, suffix)
		if len(head)+len(suffix)+2 > validation.DNS1035LabelMaxLength {
			head = strings.TrimRight(head[:validation.DNS1035LabelMaxLength-len(suffix)-2], "-")
		}
		return head + suffix + "-1"
	}
	if len(base)+len(suffix) > validation.DNS1035LabelMaxLength {
		base = strings.TrimRight(base[:validation.DNS1035LabelMaxLength-len(suffix)], "-")
	}
	return base + suffix
}

func shortUID(claim *v1.PersistentVolumeClaim) string { return volume.ShortUID(string(claim.UID)) }
