package volume

import (
	"errors"
	"strings"

	"github.com/glusterkube/glusterkube/internal/heketi"
)

// Error classes. The adapters map them: the provisioner to provisioning
// states and Events, the CSI controller to gRPC codes. An error may be in
// more than one class (no space, and the volume of an earlier attempt may
// exist); heketi's own predicates (heketi.IsAdminRequired,
// heketi.IsUnauthorized) also see through these errors.

// kind is the class of a failed operation.
type kind int

const (
	kindOther     kind = iota
	kindInvalid        // the request itself is wrong; retrying it cannot help
	kindNoSpace        // heketi has no room for the volume or its growth
	kindInFlight       // an earlier operation on the same volume still runs
	kindNotFound       // the volume does not exist
	kindPlacement      // the volume cannot be placed in the zones asked for
)

// opError is a failed operation with its class. mayExist says that a
// volume (or a change) may exist although the call failed: the outcome is
// unknown and a retry must look before it acts again.
type opError struct {
	kind     kind
	mayExist bool
	err      error
}

func (e *opError) Error() string { return e.err.Error() }
func (e *opError) Unwrap() error { return e.err }

func classify(k kind, mayExist bool, err error) error {
	if err == nil {
		return nil
	}
	return &opError{kind: k, mayExist: mayExist, err: err}
}

func kindOf(err error) (kind, bool) {
	var oe *opError
	if errors.As(err, &oe) {
		return oe.kind, oe.mayExist
	}
	return kindOther, false
}

// IsInvalid reports a bad request: a StorageClass parameter (*ParamError),
// a size, a name or an id. Retrying the same request cannot succeed; CSI
// answers InvalidArgument, the provisioner a Warning Event.
func IsInvalid(err error) bool {
	var pe *ParamError
	if errors.As(err, &pe) {
		return true
	}
	k, _ := kindOf(err)
	return k == kindInvalid
}

// IsNoSpace reports that heketi has no room for the volume (or for its
// growth) in any cluster it may use (CSI: ResourceExhausted).
func IsNoSpace(err error) bool {
	k, _ := kindOf(err)
	return k == kindNoSpace
}

// IsInFlight reports that an earlier operation on the same volume is still
// running in heketi (a create or an expansion that timed out on our side);
// try again later (CSI: Aborted).
func IsInFlight(err error) bool {
	k, _ := kindOf(err)
	return k == kindInFlight
}

// IsOutcomeUnknown reports that the volume, or the change asked for, may
// exist although the call failed (a timed-out create, heketi still working
// on an earlier attempt): the caller must retry, never forget the volume.
// The provisioner answers ProvisioningInBackground.
func IsOutcomeUnknown(err error) bool {
	_, may := kindOf(err)
	return may
}

// IsNotFound reports that the volume does not exist.
func IsNotFound(err error) bool {
	k, _ := kindOf(err)
	return k == kindNotFound || heketi.IsNotFound(err)
}

// IsGIDExhausted reports that the class's GID range is full.
func IsGIDExhausted(err error) bool {
	var ge *GIDExhaustedError
	return errors.As(err, &ge)
}

// IsCredentialsRefused reports that heketi refused the credentials: a wrong
// key, or a user other than admin.
func IsCredentialsRefused(err error) bool {
	return heketi.IsAdminRequired(err) || heketi.IsUnauthorized(err)
}

// heketiNoSpace reports heketi's refusals for lack of room: "No space"
// (a create found no devices with room) and "Maximum number of bricks
// reached" (an expansion split the growth into ever smaller bricks and
// still found no room).
func heketiNoSpace(err error) bool {
	var he *heketi.Error
	return errors.As(err, &he) && (strings.Contains(he.Message, "No space") || strings.Contains(he.Message, "Maximum number of bricks reached"))
}
