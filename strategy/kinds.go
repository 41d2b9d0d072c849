package strategy

import (
	"context"

	"github.com/flowstone-go/flowstone"
)

// Scatter is declared so that generated pipelines can name it; its
// execution lands with the scatter issue. Until then it fails permanently
// with ErrNotImplemented rather than run as something else.

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
