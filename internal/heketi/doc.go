// Package heketi wraps heketi's go-client for glusterkube.
//
// The upstream client has no context support, an http.Client without a
// timeout, a fixed 400 ms poll of asynchronous operations and a 429 retry
// that sleeps 10–30 s. This package replaces all of that behind the same
// calls: every call takes a context and gets a per-call deadline; pending
// operations are polled adaptively (first poll at once, then after ~2 ms,
// backing off by half each time to 400 ms); 429, 503 and refused
// connections (and 502/504 for reads) are retried with a short, bounded,
// jittered backoff; errors are classified once (IsNotFound,
// IsAdminRequired, IsTransient, ...) from the HTTP status heketi answered with,
// not only from its plain-text body.
package heketi
