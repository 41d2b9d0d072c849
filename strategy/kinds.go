package strategy

import (
	"context"
	"time"

	"github.com/flowstone-go/flowstone"
)

// The kinds below are declared so that generated pipelines can name them;
// their execution lands with the strategies issue. Until then they fail
// permanently with ErrNotImplemented rather than run as something else.

// Router is the strategy of a router asset.
type Router struct {
	// Fallback is the branch taken when the router fails for good.
	Fallback string
}

// Run implements Strategy.
func (Router) Run(context.Context, Task) (Result, error) {
	return Result{}, flowstone.Permanent(ErrNotImplemented)
}

// Routed is the strategy of an asset that runs only when Router selects it.
type Routed struct {
	Router string
}

// Run implements Strategy.
func (Routed) Run(context.Context, Task) (Result, error) {
	return Result{}, flowstone.Permanent(ErrNotImplemented)
}

// Join is the strategy of an asset with Outcome dependencies.
type Join struct {
	// Wait, when non-zero, runs the join after Wait with whatever finished.
	Wait time.Duration
}

// Run implements Strategy. Without Wait a join runs like Standard: the
// scheduler already lets Outcome dependencies fail or be skipped.
func (j Join) Run(ctx context.Context, t Task) (Result, error) {
	if j.Wait > 0 {
		return Result{}, flowstone.Permanent(ErrNotImplemented)
	}
	return Standard{}.Run(ctx, t)
}

// Gate is the strategy of an asset whose value waits for an approval.
type Gate struct {
	Timeout   time.Duration
	OnTimeout string
}

// Run implements Strategy.
func (Gate) Run(context.Context, Task) (Result, error) {
	return Result{}, flowstone.Permanent(ErrNotImplemented)
}

// Scatter is the strategy of an asset that runs once per item of Source.
type Scatter struct {
	Source           string
	Batch            int
	MaxConcurrent    int
	PerSecond        float64
	FailureThreshold float64
}

// Run implements Strategy.
func (Scatter) Run(context.Context, Task) (Result, error) {
	return Result{}, flowstone.Permanent(ErrNotImplemented)
}
