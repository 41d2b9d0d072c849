package strategy

import (
	"context"
	"time"
)

// Join is the strategy of an asset with flowstone.Outcome dependencies: it
// runs once they are terminal (succeeded, failed or skipped), each arriving
// as a value or an error. Plain dependencies stay required.
type Join struct {
	// Wait, when non-zero, starts the join at the latest Wait after its run
	// started, with whatever finished; the rest arrive as errors matching
	// runtime.ErrUnfinished. The deadline is a job in the database, so it
	// holds across process restarts.
	Wait time.Duration
}

// Run implements Strategy.
func (j Join) Run(ctx context.Context, t Task) (Result, error) { return Standard{}.Run(ctx, t) }

// Deadline implements Deadliner.
func (j Join) Deadline() time.Duration { return j.Wait }
