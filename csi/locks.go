package csi

import (
	"slices"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// VolumeLocks serialises operations by key (the node server uses volume id
// and target path; the controller a create's CSI name and volume ids): a
// second operation on a key in use is refused at once with Aborted, as the
// CSI spec asks, instead of queueing behind the first.
type VolumeLocks struct {
	mu    sync.Mutex
	locks map[string]struct{}
}

// NewVolumeLocks returns an empty set of locks.
func NewVolumeLocks() *VolumeLocks {
	return &VolumeLocks{locks: map[string]struct{}{}}
}

// TryAcquire takes key, and reports false when it is already taken.
func (l *VolumeLocks) TryAcquire(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.locks[key]; ok {
		return false
	}
	l.locks[key] = struct{}{}
	return true
}

// Release gives key back.
func (l *VolumeLocks) Release(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.locks, key)
}

// acquire takes key or returns the Aborted status the spec asks for.
func (l *VolumeLocks) acquire(key, what string) (release func(), err error) {
	if !l.TryAcquire(key) {
		return nil, status.Errorf(codes.Aborted, "an operation on %s is already in progress: retry later", what)
	}
	return func() { l.Release(key) }, nil
}

// acquireAll takes every key or none (a key given twice counts once), or
// returns the Aborted status the spec asks for naming a key in use.
func (l *VolumeLocks) acquireAll(keys ...string) (release func(), err error) {
	keys = slices.Compact(slices.Sorted(slices.Values(keys)))
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		if _, busy := l.locks[k]; busy {
			return nil, status.Errorf(codes.Aborted, "an operation on volume %s is already in progress: retry later", k)
		}
	}
	for _, k := range keys {
		l.locks[k] = struct{}{}
	}
	return func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		for _, k := range keys {
			delete(l.locks, k)
		}
	}, nil
}
