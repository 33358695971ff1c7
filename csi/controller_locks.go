package csi

import (
	"slices"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// controllerLocks serialises the controller's operations per volume (by
// CSI name for a create, by volume id otherwise): a second operation on a
// volume in use is refused at once with Aborted, as the CSI spec asks, and
// the CO retries. (The node server's VolumeLocks does the same per target;
// the two may become one.)
type controllerLocks struct {
	mu   sync.Mutex
	held map[string]struct{}
}

func newControllerLocks() *controllerLocks {
	return &controllerLocks{held: map[string]struct{}{}}
}

// acquire takes every key or none; release gives them back.
func (l *controllerLocks) acquire(keys ...string) (release func(), err error) {
	keys = slices.Compact(slices.Sorted(slices.Values(keys)))
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		if _, busy := l.held[k]; busy {
			return nil, status.Errorf(codes.Aborted, "an operation on volume %s is already in progress: retry later", k)
		}
	}
	for _, k := range keys {
		l.held[k] = struct{}{}
	}
	return func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		for _, k := range keys {
			delete(l.held, k)
		}
	}, nil
}
