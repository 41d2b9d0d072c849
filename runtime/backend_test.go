package runtime

import (
	"context"
	"errors"
	"testing"
)

// A transaction's retry pause ends when its context does: a cancelled
// request does not wait out the backoff.
func TestRetryPauseEndsWithItsContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := sleep(ctx, 1<<62); !errors.Is(err, context.Canceled) {
		t.Fatalf("sleep: %v, want context.Canceled", err)
	}
}
