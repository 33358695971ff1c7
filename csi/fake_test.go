package csi

import (
	"context"
	"sync"

	"github.com/glusterkube/glusterkube/mounter"
)

// fakeMounter records calls; it can fail, or block until released or its
// context ends (a hung mount).
type fakeMounter struct {
	mu       sync.Mutex
	mounts   []mounter.MountRequest
	unmounts []string
	mountErr error
	probeErr error
	block    chan struct{}
}

func (f *fakeMounter) Mount(ctx context.Context, req mounter.MountRequest) error {
	f.mu.Lock()
	f.mounts = append(f.mounts, req)
	block, err := f.block, f.mountErr
	f.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return &mounter.Error{Code: mounter.Timeout, Message: "mount did not finish in time"}
		}
	}
	return err
}

func (f *fakeMounter) Unmount(_ context.Context, target string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.unmounts = append(f.unmounts, target)
	return nil
}

func (f *fakeMounter) Probe(context.Context) error { return f.probeErr }

func (f *fakeMounter) calls() (mounts []mounter.MountRequest, unmounts []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]mounter.MountRequest(nil), f.mounts...), append([]string(nil), f.unmounts...)
}
