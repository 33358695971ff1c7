package workers

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
)

func TestForEach(t *testing.T) {
	boom := errors.New("boom")
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name     string
		ctx      context.Context
		n, par   int
		failAt   int // -1: none
		wantErr  error
		wantRuns func(int) bool
	}{
		{name: "all run", ctx: context.Background(), n: 50, par: 4, failAt: -1, wantRuns: func(r int) bool { return r == 50 }},
		{name: "zero parallel runs one at a time", ctx: context.Background(), n: 5, par: 0, failAt: -1, wantRuns: func(r int) bool { return r == 5 }},
		{name: "first error stops the rest", ctx: context.Background(), n: 1000, par: 1, failAt: 3, wantErr: boom, wantRuns: func(r int) bool { return r == 4 }},
		{name: "cancelled context", ctx: cancelled, n: 10, par: 2, failAt: -1, wantErr: context.Canceled, wantRuns: func(r int) bool { return r == 0 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var runs, inflight, most atomic.Int32
			var mu sync.Mutex
			err := ForEach(tc.ctx, tc.n, tc.par, func(ctx context.Context, i int) error {
				runs.Add(1)
				mu.Lock()
				if v := inflight.Add(1); v > most.Load() {
					most.Store(v)
				}
				mu.Unlock()
				defer inflight.Add(-1)
				if i == tc.failAt {
					return boom
				}
				return nil
			})
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Errorf("err %v, want %v", err, tc.wantErr)
			}
			if !tc.wantRuns(int(runs.Load())) {
				t.Errorf("%d runs", runs.Load())
			}
			if lim := int32(max(tc.par, 1)); most.Load() > lim {
				t.Errorf("%d at once, limit %d", most.Load(), lim)
			}
		})
	}
}
