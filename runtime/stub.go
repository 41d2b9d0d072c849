package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	"github.com/flowstone-go/flowstone"
)

// Stub is what one asset call reads when it runs without an engine and a
// database, in a unit test: see NewInputs and the flowstonetest package.
type Stub struct {
	// Asset is the key of the asset called.
	Asset string
	// Partition is the key being materialized.
	Partition flowstone.Partition
	// Values holds the upstream values by asset key, as the asset's
	// parameters take them: a T for a value dependency; for an Outcome
	// dependency a T (succeeded), an error (failed), flowstone.Outcome[T],
	// or ErrSkipped (skipped); a map[flowstone.Partition]T for a
	// partition map; a []T or []flowstone.Outcome[T] for a scatter's
	// items; and, under the asset's own key, a flowstone.Previous[T] for
	// its previous partition (none: the first partition).
	Values map[string]any
	// Config is the run config, a value of the pipeline's config type.
	Config any
	// Resources is the bound Resources struct.
	Resources any
	// Item is the scatter item, for a scatter asset.
	Item any
}

// ErrSkipped, as a stubbed Outcome value, says the upstream was skipped
// (a router did not choose it).
var ErrSkipped = errors.New("skipped")

// errNoStub: the asset read an input the stub does not hold.
var errNoStub = errors.New("no stubbed value")

// NewInputs returns Inputs that serve s, for calling an asset's generated
// RunFunc directly. Stubbed values travel through JSON, as stored values
// do, so what the asset sees is what it would see from the database.
func NewInputs(s Stub) (*Inputs, error) {
	in := &Inputs{asset: s.Asset, partition: s.Partition, resources: s.Resources, config: s.Config, hasConfig: s.Config != nil,
		src: stubSource(s), cache: map[string]any{}}
	if s.Item != nil {
		b, err := json.Marshal(s.Item)
		if err != nil {
			return nil, fmt.Errorf("stub item: %w", err)
		}
		in.item = b
	}
	return in, nil
}

// stubSource serves a Stub's values.
type stubSource Stub

func (s stubSource) get(asset string) (any, error) {
	v, ok := s.Values[asset]
	if !ok {
		return nil, fmt.Errorf("%w for %s (stubbed: %v)", errNoStub, asset, slices.Sorted(maps.Keys(s.Values)))
	}
	return v, nil
}

// roundTrip copies v into into through JSON.
func roundTrip(v, into any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return decodeJSON(b, into)
}

// asOutcome reads a stubbed flowstone.Outcome[T] by its fields: its value,
// error and skipped flag; ok is false for anything else.
func asOutcome(v any) (value any, err error, skipped, ok bool) {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Struct || rv.Type().PkgPath() != reflect.TypeFor[flowstone.Outcome[int]]().PkgPath() {
		return nil, nil, false, false
	}
	f, e, sk := rv.FieldByName("Value"), rv.FieldByName("Err"), rv.FieldByName("Skipped")
	if !f.IsValid() || !e.IsValid() || !sk.IsValid() {
		return nil, nil, false, false
	}
	err, _ = e.Interface().(error)
	return f.Interface(), err, sk.Bool(), true
}

func (s stubSource) value(ctx context.Context, asset string, into any) error {
	v, err := s.get(asset)
	if err != nil {
		return err
	}
	if o, oerr, skipped, ok := asOutcome(v); ok {
		if oerr != nil || skipped {
			return fmt.Errorf("stubbed outcome of %s did not succeed", asset)
		}
		v = o
	}
	return roundTrip(v, into)
}

func (s stubSource) outcome(ctx context.Context, asset string) (upstreamOutcome, error) {
	v, err := s.get(asset)
	if err != nil {
		return upstreamOutcome{}, err
	}
	if e, ok := v.(error); ok {
		if errors.Is(e, ErrSkipped) {
			return upstreamOutcome{skipped: true}, nil
		}
		return upstreamOutcome{errMsg: e.Error()}, nil
	}
	if _, oerr, skipped, ok := asOutcome(v); ok {
		switch {
		case skipped:
			return upstreamOutcome{skipped: true}, nil
		case oerr != nil:
			return upstreamOutcome{errMsg: oerr.Error()}, nil
		}
	}
	return upstreamOutcome{}, nil
}

func (s stubSource) partitions(ctx context.Context, asset string, fn func(flowstone.Partition, func(any) error) error) error {
	v, err := s.get(asset)
	if err != nil {
		return err
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Map || rv.Type().Key() != reflect.TypeFor[flowstone.Partition]() {
		return fmt.Errorf("stub for %s is %T, want a map[flowstone.Partition]T", asset, v)
	}
	keys := rv.MapKeys()
	slices.SortFunc(keys, func(a, b reflect.Value) int {
		return strings.Compare(a.String(), b.String())
	})
	for _, k := range keys {
		elem := rv.MapIndex(k).Interface()
		if err := fn(flowstone.Partition(k.String()), func(into any) error { return roundTrip(elem, into) }); err != nil {
			return err
		}
	}
	return nil
}

func (s stubSource) previous(ctx context.Context, into any) (flowstone.Partition, bool, error) {
	v, ok := s.Values[s.Asset]
	if !ok {
		return "", false, nil
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Struct || !rv.FieldByName("Found").IsValid() || !rv.FieldByName("Partition").IsValid() {
		return "", false, fmt.Errorf("stub for %s's previous partition is %T, want a flowstone.Previous[T]", s.Asset, v)
	}
	if !rv.FieldByName("Found").Bool() {
		return "", false, nil
	}
	if err := roundTrip(rv.FieldByName("Value").Interface(), into); err != nil {
		return "", false, err
	}
	return flowstone.Partition(rv.FieldByName("Partition").String()), true, nil
}

func (s stubSource) view(ctx context.Context, asset, name string, into any) error {
	v, err := s.get(asset)
	if err != nil {
		return err
	}
	if name != "outcomes" {
		return fmt.Errorf("stub for %s has no view %q", asset, name)
	}
	// A []T stubs every item as a success.
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Slice && rv.Len() > 0 {
		if _, _, _, isOutcome := asOutcome(rv.Index(0).Interface()); !isOutcome {
			items := make([]map[string]any, rv.Len())
			for i := range items {
				items[i] = map[string]any{"value": rv.Index(i).Interface()}
			}
			v = items
		}
	}
	return roundTrip(v, into)
}
