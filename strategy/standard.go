package strategy

import (
	"context"

	"github.com/flowstone-go/flowstone"
)

// Standard runs the asset's function once and stores its value. A function
// returning flowstone.Skip(...) is recorded as skipped.
type Standard struct{}

// Run implements Strategy.
func (Standard) Run(ctx context.Context, t Task) (Result, error) {
	v, err := t.Call(ctx)
	if err != nil {
		if reason, ok := flowstone.SkipReason(err); ok {
			return Skip(reason), nil
		}
		return Result{}, err
	}
	return Done(v), nil
}
