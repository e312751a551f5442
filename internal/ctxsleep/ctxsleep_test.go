package ctxsleep

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestSleep: a cancelled context ends the wait with its error; an expired
// duration ends it with none.
func TestSleep(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v, want context.Canceled", err)
	}
	if err := Sleep(context.Background(), time.Millisecond); err != nil {
		t.Errorf("expired: %v", err)
	}
}
