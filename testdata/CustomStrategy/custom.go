// Package custom uses a user strategy and an IO manager.
//
//flowstone:pipeline name=custom_pipeline
package custom

import (
	"context"

	"github.com/flowstone-go/flowstone/runtime"
	"github.com/flowstone-go/flowstone/strategy"
)

type twice struct{}

func (twice) Run(ctx context.Context, t strategy.Task) (strategy.Result, error) {
	if _, err := t.Call(ctx); err != nil {
		return strategy.Result{}, err
	}
	v, err := t.Call(ctx)
	return strategy.Done(v), err
}

// Twice runs an asset's function twice.
var Twice strategy.Strategy = twice{}

type memIO struct{}

func (memIO) Store(ctx context.Context, ref runtime.ValueRef, value any) error { return nil }
func (memIO) Load(ctx context.Context, ref runtime.ValueRef, into any) error   { return nil }

// Memory keeps values nowhere.
var Memory = memIO{}

//flowstone:asset strategy=Twice io=Memory
func Counter(ctx context.Context) (int, error) { return 1, nil }
