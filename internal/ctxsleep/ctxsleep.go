// Package ctxsleep waits out a duration unless a context ends first: the
// wait of every sampling window (rates, verify, top) on the live system,
// where tests pass a clock of their own instead.
package ctxsleep

import (
	"context"
	"time"
)

// Sleep waits d, or until ctx is done, and then returns ctx's error.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
