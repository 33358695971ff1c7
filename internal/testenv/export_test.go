package testenv

// Pids exposes the running components' pids to the tests.
var Pids = pids
