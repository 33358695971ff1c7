package mounter

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// FSType is the only file system type this package mounts.
const FSType = "glusterfs"

// DefaultTimeout bounds one mount or unmount when the caller's context has
// no earlier deadline. It stays under the kubelet's two-minute deadline for
// a CSI call, so a hung mount is ended here, not abandoned there.
const DefaultTimeout = time.Minute

// Mounter mounts and unmounts GlusterFS volumes. Local does it in this
// process; Client asks a mount service (Server) to.
type Mounter interface {
	// Mount mounts req.Source on req.Target. It fails with a Busy Error
	// while another operation on the target is in flight, and leaves
	// nothing mounted when it fails.
	Mount(ctx context.Context, req MountRequest) error
	// Unmount unmounts target and waits for its FUSE client to exit. A
	// target that is not mounted (or does not exist) is a success; the
	// folder itself is left to the caller.
	Unmount(ctx context.Context, target string) error
	// Probe says whether mounts can be made: the FUSE client is installed,
	// /dev/fuse exists, and the mount service answers.
	Probe(ctx context.Context) error
}

// MountRequest is one mount: `mount -t FSType -o Options Source Target`.
type MountRequest struct {
	Source  string   `json:"source"`
	Target  string   `json:"target"`
	FSType  string   `json:"fstype"`
	Options []string `json:"options,omitempty"`
}

// Code classifies an Error, so callers (the CSI node server) can answer
// with the right gRPC code.
type Code string

// Error codes.
const (
	// Invalid: the request is malformed; nothing was done.
	Invalid Code = "Invalid"
	// Busy: another operation on the same target is in flight.
	Busy Code = "Busy"
	// Timeout: the operation did not finish in time; its processes were
	// killed and nothing is left mounted.
	Timeout Code = "Timeout"
	// NotFound: the servers do not know the volume.
	NotFound Code = "NotFound"
	// Unavailable: the mount service does not answer, or the FUSE client
	// is not installed.
	Unavailable Code = "Unavailable"
	// Failed: anything else.
	Failed Code = "Failed"
)

// Error is a failed operation with its class.
type Error struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Message }

func errorf(code Code, format string, a ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, a...)}
}

// CodeOf returns the class of err: its Error's code, Timeout for a context
// deadline, Failed otherwise.
func CodeOf(err error) Code {
	var e *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Code
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return Timeout
	}
	return Failed
}
