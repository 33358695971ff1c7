// Package csi is glusterkube's CSI driver (CSI spec v1.13): an identity,
// a controller and a node server, each a small file over shared pieces.
// The controller is a thin adapter over package volume (the same heketi
// volume service the built-in provisioner uses); the node server mounts
// GlusterFS volumes with the FUSE client, through the long-lived mount
// service of package mounter when one runs, so that restarting or
// upgrading the node plugin never kills the FUSE clients of running pods.
package csi

// DriverName is the CSI driver name: PVs name it in spec.csi.driver, and
// the CSIDriver object and the kubelet registration use it.
const DriverName = "glusterfs.glusterkube.io"

// Volume context keys (a CSI PV's spec.csi.volumeAttributes), written by
// the controller and by the built-in provisioner, read by the node server.
const (
	// ContextServers is the comma-separated list of GlusterFS servers to
	// fetch the volume's volfile from: the hosts of the volume's bricks
	// first; the first is the primary server, the rest are backups.
	ContextServers = "servers"
	// ContextVolume is the GlusterFS volume name.
	ContextVolume = "volume"
)
