package mounter

// The mount service protocol, version 1: JSON over HTTP on a unix socket.
// The node plugin and the mount service are upgraded separately (the
// service only OnDelete), so the protocol is small and versioned in its
// paths: a new version adds paths, never changes these.
//
//	GET  /v1/info     → 200 Info
//	POST /v1/mount    MountCall   → 200 {} | 4xx/5xx Error
//	POST /v1/unmount  UnmountCall → 200 {} | 4xx/5xx Error
//	GET  /healthz     → 200 "ok" | 503 message (the FUSE client's Probe)

// ProtocolVersion is the version of the protocol this package speaks.
const ProtocolVersion = 1

const (
	pathInfo    = "/v1/info"
	pathMount   = "/v1/mount"
	pathUnmount = "/v1/unmount"
	pathHealth  = "/healthz"
)

// Info is the mount service's answer to GET /v1/info.
type Info struct {
	// Protocol is the newest protocol version the service speaks.
	Protocol int `json:"protocol"`
	// Version is the glusterkube version of the service.
	Version string `json:"version"`
}

// MountCall is the body of POST /v1/mount.
type MountCall struct {
	MountRequest
	// TimeoutMillis is how long the caller waits; the service ends the
	// mount by then (0: the service's own limit).
	TimeoutMillis int64 `json:"timeoutMillis,omitempty"`
}

// UnmountCall is the body of POST /v1/unmount.
type UnmountCall struct {
	Target        string `json:"target"`
	TimeoutMillis int64  `json:"timeoutMillis,omitempty"`
}
