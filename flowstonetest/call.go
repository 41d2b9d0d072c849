package flowstonetest

import (
	"context"
	"fmt"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/runtime"
)

// Inputs are the stubbed inputs of one asset call (see runtime.Stub for
// the forms Values takes).
type Inputs struct {
	// Partition is the key being materialized.
	Partition flowstone.Partition
	// Values holds upstream values by asset key: a T for a value
	// dependency; for an Outcome dependency a T, an error (failed) or
	// runtime.ErrSkipped; a map[flowstone.Partition]T for a partition map;
	// a []T or []flowstone.Outcome[T] for a scatter's items; under the
	// asset's own key, a flowstone.Previous[T].
	Values map[string]any
	// Config is the run config, a value of the pipeline's config type.
	Config any
	// Resources is the Resources struct the asset's resources come from.
	Resources any
	// Item is the item of a scatter asset.
	Item any
}

// Call runs one asset of p through its generated call wrapper with
// stubbed inputs: no engine, no database, no strategy (a router returns
// its Route, a gate's value is returned without waiting, a scatter asset
// runs for in.Item). Values reach the function through JSON, as stored
// values do. The function's value is returned as T (use any for an asset
// without a value).
func Call[T any](ctx context.Context, p *runtime.Pipeline, asset string, in Inputs) (T, error) {
	var zero T
	a := p.Asset(asset)
	if a == nil {
		return zero, fmt.Errorf("%w: %q in pipeline %s", runtime.ErrUnknownAsset, asset, p.Name())
	}
	ins, err := runtime.NewInputs(runtime.Stub{Asset: asset, Partition: in.Partition, Values: in.Values,
		Config: in.Config, Resources: in.Resources, Item: in.Item})
	if err != nil {
		return zero, err
	}
	v, err := a.Run(ctx, ins)
	if err != nil {
		return zero, err
	}
	if v == nil {
		return zero, nil
	}
	out, ok := v.(T)
	if !ok {
		return zero, fmt.Errorf("asset %s returned %T, not %T", asset, v, zero)
	}
	return out, nil
}
