package provisioner

// Event reasons glusterkube records on claims and volumes, beside the
// library's own (Provisioning, ProvisioningSucceeded, ProvisioningFailed,
// VolumeFailedDelete).
const (
	// ReasonDeprecatedParameter: the class uses a parameter that works but
	// should be replaced (restuserkey).
	ReasonDeprecatedParameter = "DeprecatedParameter"
	// ReasonVolumeReused: a retry found the heketi volume an earlier
	// attempt created (e.g. before a crash) and used it.
	ReasonVolumeReused = "HeketiVolumeReused"
	// ReasonHeketiAdminRequired: heketi refused the call for the user's
	// credentials; glusterkube needs the admin user.
	ReasonHeketiAdminRequired = "HeketiAdminRequired"
	// ReasonGIDRangeExhausted: the class's gidMin..gidMax has no free GID.
	ReasonGIDRangeExhausted = "GIDRangeExhausted"
	// ReasonResizing / ReasonResized / ReasonResizeFailed: expansion.
	ReasonResizing     = "Resizing"
	ReasonResized      = "VolumeResizeSuccessful"
	ReasonResizeFailed = "VolumeResizeFailed"
)

// FieldManager names glusterkube's writes.
const FieldManager = "glusterkube-provisioner"
