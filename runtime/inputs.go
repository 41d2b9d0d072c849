package runtime

import (
	"context"
	"errors"
	"fmt"

	"github.com/flowstone-go/flowstone"
)

// Inputs gives a generated call wrapper what its asset function takes: the
// partition, dependency values (decoded into their Go types), run config and
// resources. Values are loaded only when the wrapper asks for them.
type Inputs struct {
	asset     string
	partition flowstone.Partition
	resources any
	config    any
	hasConfig bool
	src       inputSource
	item      []byte
	// cache keeps decoded dependency values for the task: a scatter's
	// items share one load per job.
	cache map[string]any
}

// inputSource is how Inputs reaches stored values; the engine implements it.
type inputSource interface {
	// value decodes asset's value for the current run into into.
	value(ctx context.Context, asset string, into any) error
	// outcome reports asset's state in the run.
	outcome(ctx context.Context, asset string) (upstreamOutcome, error)
	// partitions calls fn for each partition of asset that the current
	// partition covers, in key order.
	partitions(ctx context.Context, asset string, fn func(p flowstone.Partition, decode func(into any) error) error) error
	// previous decodes the asset's own previous partition's value into into.
	previous(ctx context.Context, into any) (p flowstone.Partition, found bool, err error)
	// view decodes the named view of asset's materialization in the run.
	view(ctx context.Context, asset, name string, into any) error
}

// upstreamOutcome is a tolerant dependency's state: failed (errMsg),
// skipped, not finished (a join started by its deadline), or succeeded.
type upstreamOutcome struct {
	errMsg     string
	skipped    bool
	unfinished bool
}

// Partition is the key being materialized.
func (in *Inputs) Partition() flowstone.Partition { return in.partition }

// Asset is the key of the asset being materialized.
func (in *Inputs) Asset() string { return in.asset }

// Input loads the value of a required dependency.
func Input[T any](ctx context.Context, in *Inputs, asset string) (T, error) {
	if c, ok := in.cache[asset].(T); ok {
		return c, nil
	}
	var v T
	if err := in.src.value(ctx, asset, &v); err != nil {
		return v, fmt.Errorf("input %s: %w", asset, err)
	}
	if in.cache != nil {
		in.cache[asset] = v
	}
	return v, nil
}

// InputOutcomes loads every item's outcome of a scatter dependency, in
// source order: the item's value, or the error it failed with, or Skipped
// for an item cancelled before it ran.
func InputOutcomes[T any](ctx context.Context, in *Inputs, asset string) ([]flowstone.Outcome[T], error) {
	key := asset + "\x00outcomes"
	if c, ok := in.cache[key].([]flowstone.Outcome[T]); ok {
		return c, nil
	}
	var out []flowstone.Outcome[T]
	if err := in.src.view(ctx, asset, "outcomes", &out); err != nil {
		return nil, fmt.Errorf("input %s: %w", asset, err)
	}
	if in.cache != nil {
		in.cache[key] = out
	}
	return out, nil
}

// InputOutcome loads a tolerant dependency: its value, or the error it
// failed with, or Skipped.
func InputOutcome[T any](ctx context.Context, in *Inputs, asset string) flowstone.Outcome[T] {
	var o flowstone.Outcome[T]
	u, err := in.src.outcome(ctx, asset)
	switch {
	case err != nil:
		o.Err = fmt.Errorf("input %s: %w", asset, err)
	case u.skipped:
		o.Skipped = true
	case u.unfinished:
		o.Err = &UpstreamError{Asset: asset, Message: "not finished (" + u.errMsg + ") when the wait ended", Err: ErrUnfinished}
	case u.errMsg != "":
		o.Err = &UpstreamError{Asset: asset, Message: u.errMsg}
	default:
		if err := in.src.value(ctx, asset, &o.Value); err != nil {
			o.Err = fmt.Errorf("input %s: %w", asset, err)
		}
	}
	return o
}

// InputPartitions loads the partitions of asset that the materializing
// partition covers.
func InputPartitions[T any](ctx context.Context, in *Inputs, asset string) (map[flowstone.Partition]T, error) {
	out := map[flowstone.Partition]T{}
	err := in.src.partitions(ctx, asset, func(p flowstone.Partition, decode func(any) error) error {
		var v T
		if err := decode(&v); err != nil {
			return err
		}
		out[p] = v
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("input %s: %w", asset, err)
	}
	return out, nil
}

// InputPrevious loads the asset's own previous partition.
func InputPrevious[T any](ctx context.Context, in *Inputs) (flowstone.Previous[T], error) {
	var prev flowstone.Previous[T]
	p, found, err := in.src.previous(ctx, &prev.Value)
	if err != nil {
		return prev, fmt.Errorf("previous partition of %s: %w", in.asset, err)
	}
	prev.Partition, prev.Found = p, found
	return prev, nil
}

// ConfigValue returns the run's config as T. A run without config is an
// error: an asset that takes config never falls back to a zero value.
func ConfigValue[T any](in *Inputs) (T, error) {
	var zero T
	if !in.hasConfig {
		return zero, fmt.Errorf("asset %s: %w", in.asset, ErrMissingConfig)
	}
	c, ok := in.config.(T)
	if !ok {
		return zero, fmt.Errorf("asset %s: %w: stored config is %T, want %T", in.asset, ErrBadConfig, in.config, zero)
	}
	return c, nil
}

// ResourcesValue returns the process's bound Resources struct.
func ResourcesValue[T any](in *Inputs) T {
	r, _ := in.resources.(T)
	return r
}

// UpstreamError is the error an Outcome carries when its upstream failed
// or had not finished.
type UpstreamError struct {
	Asset   string
	Message string
	// Err is ErrUnfinished for an upstream that had not finished.
	Err error
}

func (e *UpstreamError) Error() string {
	if e.Err != nil {
		return "upstream " + e.Asset + " " + e.Message
	}
	return "upstream " + e.Asset + " failed: " + e.Message
}

// Unwrap returns Err.
func (e *UpstreamError) Unwrap() error { return e.Err }

// errNoItem is returned by Item outside a scatter.
var errNoItem = errors.New("no scatter item in this materialization")

// Item returns the scatter item being processed, for a scatter asset's
// wrapper.
func Item[T any](in *Inputs) (T, error) {
	var v T
	if in.item == nil {
		return v, errNoItem
	}
	if err := decodeItem(in.item, &v); err != nil {
		return v, fmt.Errorf("scatter item of %s: %w", in.asset, err)
	}
	return v, nil
}
