// Package mounter mounts GlusterFS volumes with the FUSE client, and owns
// the FUSE client processes for as long as they serve a mount.
//
// A FUSE mount lives only as long as its client process (glusterfs): when
// the client dies, every view of the mount answers "transport endpoint is
// not connected" until it is mounted again. A client started by a CSI node
// plugin belongs to the plugin's container (its PID namespace and cgroup),
// so restarting or upgrading the plugin kills the mounts of every running
// pod — the failure users of FUSE-based CSI drivers report most.
//
// This package is the answer: a small, long-lived mount service
// (`glusterkube mounter`, its own DaemonSet, updated only OnDelete) that
// runs the mounts, so the FUSE clients daemonize into its PID namespace
// and cgroup, not the plugin's. The node plugin reaches it over a unix
// socket with a tiny versioned protocol (JSON over HTTP, see protocol.go)
// and can be restarted and upgraded at will. Without a mount service the
// plugin mounts in-process with Local, the same code the service runs.
//
// Every operation is bounded in time: a mount or unmount that does not
// finish before its deadline has its processes (mount, mount.glusterfs,
// the FUSE client of that target) killed, and whatever it left mounted is
// detached, so one hung server cannot hold a target, or the service,
// forever.
package mounter
