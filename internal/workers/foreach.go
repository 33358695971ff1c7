package workers

import (
	"context"

	"golang.org/x/sync/errgroup"
)

// ForEach runs fn(ctx, i) for i in 0..n-1, at most parallel (at least
// one) at a time. The first error cancels the context the others get,
// starts no more, and is returned; so is the context's error when it ends
// first.
func ForEach(ctx context.Context, n, parallel int, fn func(context.Context, int) error) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(parallel, 1))
	for i := range n {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err // cancelled while waiting for a free slot
			}
			return fn(gctx, i)
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return ctx.Err()
}
