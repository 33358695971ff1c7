package migrate

// Helpers of the in-package tests that the external ones (package
// migrate_test, which may import the command) use too.
var (
	StartProvisioner = startProvisioner
	CleanupPVs       = cleanupPVs
)
