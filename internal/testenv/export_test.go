package testenv

// Pids exposes the running components' pids to the tests.
var Pids = pids

// PidsNaming exposes pidsNaming (the pids whose command line names a
// folder) to the tests.
var PidsNaming = pidsNaming
