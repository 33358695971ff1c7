package csi

import (
	"strings"

	"github.com/glusterkube/glusterkube/volume"
)

// VolumeContext is the volume context (a CSI PV's volumeAttributes) of a
// heketi volume: what the node server needs to mount it, and nothing that
// changes over the volume's life except through heketi. The controller
// and the built-in provisioner both use it, so their PVs are alike.
func VolumeContext(v *volume.Volume) map[string]string {
	return map[string]string{
		ContextServers: strings.Join(v.Hosts, ","),
		ContextVolume:  v.Name,
	}
}
