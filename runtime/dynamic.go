package runtime

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/flowstone-go/flowstone"
)

// ErrUnknownSet: a pipeline has no dynamic partition set of that name.
var ErrUnknownSet = errors.New("unknown dynamic partition set")

// eachDynamicSet calls fn with every dynamic set of p's assets, including
// the dimensions of multi sets.
func eachDynamicSet(p *Pipeline, fn func(*flowstone.DynamicSet)) {
	var visit func(flowstone.PartitionSet)
	visit = func(ps flowstone.PartitionSet) {
		switch s := ps.(type) {
		case *flowstone.DynamicSet:
			fn(s)
		case interface {
			Dimensions() []flowstone.PartitionSet
		}:
			for _, d := range s.Dimensions() {
				visit(d)
			}
		}
	}
	for _, a := range p.assets {
		visit(a.Partitions)
	}
}

// DynamicSets returns the pipeline's dynamic partition sets (those of
// multi sets included), one per name, sorted by name.
func (p *Pipeline) DynamicSets() []*flowstone.DynamicSet {
	var out []*flowstone.DynamicSet
	eachDynamicSet(p, func(s *flowstone.DynamicSet) {
		if !slices.ContainsFunc(out, func(o *flowstone.DynamicSet) bool { return o.Name() == s.Name() }) {
			out = append(out, s)
		}
	})
	slices.SortFunc(out, func(a, b *flowstone.DynamicSet) int { return strings.Compare(a.Name(), b.Name()) })
	return out
}

// checkDynamicSets refuses a pipeline that declares a dynamic set both
// shared and its own: its keys would live in two places.
func checkDynamicSets(p *Pipeline) error {
	shared := map[string]bool{}
	var errs []error
	eachDynamicSet(p, func(s *flowstone.DynamicSet) {
		if was, seen := shared[s.Name()]; seen && was != s.Shared() {
			errs = append(errs, fmt.Errorf("bind %s: dynamic set %s is declared both Shared and not", p.name, s.Name()))
		}
		shared[s.Name()] = s.Shared()
	})
	return errors.Join(errs...)
}

// dynamicScope is where p's dynamic set keeps its keys: the pipeline's
// name, or "" for a shared set.
func dynamicScope(p *Pipeline, set string) (string, *flowstone.DynamicSet, error) {
	if p == nil {
		return "", nil, fmt.Errorf("%w %q: nil pipeline", ErrUnknownSet, set)
	}
	sets := p.DynamicSets()
	i := slices.IndexFunc(sets, func(s *flowstone.DynamicSet) bool { return s.Name() == set })
	if i < 0 {
		names := make([]string, len(sets))
		for i, s := range sets {
			names[i] = s.Name()
		}
		if len(names) == 0 {
			return "", nil, fmt.Errorf("%w %q: pipeline %s has no dynamic partition sets", ErrUnknownSet, set, p.name)
		}
		return "", nil, fmt.Errorf("%w %q: not a set of pipeline %s (its dynamic sets: %s)", ErrUnknownSet, set, p.name, strings.Join(names, ", "))
	}
	if ds := sets[i]; ds.Shared() {
		return "", ds, nil
	}
	return p.name, sets[i], nil
}

// AddPartitions adds keys to p's dynamic partition set named set (see
// flowstone.Dynamic): p's own keys, or those every pipeline shares when the
// set is declared flowstone.Shared(). Adding a key twice is a no-op.
func (e *Engine) AddPartitions(ctx context.Context, p *Pipeline, set string, keys ...flowstone.Partition) error {
	if err := e.writable(); err != nil {
		return err
	}
	scope, ds, err := dynamicScope(p, set)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := ds.Validate(k); err != nil {
			return err
		}
	}
	return e.be.inTx(ctx, func(tx txn) error {
		for _, k := range keys {
			if err := e.st.AddDynamicPartition(ctx, tx, scope, set, string(k)); err != nil {
				return err
			}
		}
		return nil
	})
}

// RemovePartitions removes keys from p's dynamic set; their
// materializations stay recorded.
func (e *Engine) RemovePartitions(ctx context.Context, p *Pipeline, set string, keys ...flowstone.Partition) error {
	if err := e.writable(); err != nil {
		return err
	}
	scope, ds, err := dynamicScope(p, set)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := ds.Validate(k); err != nil {
			return err
		}
	}
	return e.be.inTx(ctx, func(tx txn) error {
		for _, k := range keys {
			if err := e.st.RemoveDynamicPartition(ctx, tx, scope, set, string(k)); err != nil {
				return err
			}
		}
		return nil
	})
}

// DynamicPartitions lists the keys of p's dynamic set, sorted.
func (e *Engine) DynamicPartitions(ctx context.Context, p *Pipeline, set string) ([]flowstone.Partition, error) {
	scope, _, err := dynamicScope(p, set)
	if err != nil {
		return nil, err
	}
	keys, err := e.st.DynamicPartitions(ctx, e.be.pool(), scope, set)
	if err != nil {
		return nil, err
	}
	out := make([]flowstone.Partition, len(keys))
	for i, k := range keys {
		out[i] = flowstone.Partition(k)
	}
	return out, nil
}

// checkDynamic checks that key belongs to the dynamic sets of p's assets.
func (e *Engine) checkDynamic(ctx context.Context, p *Pipeline, assets []*AssetDef, key flowstone.Partition) error {
	for _, a := range assets {
		ds, ok := a.Partitions.(*flowstone.DynamicSet)
		if !ok {
			continue
		}
		scope, _, err := dynamicScope(p, ds.Name())
		if err != nil {
			return err
		}
		in, err := e.st.HasDynamicPartition(ctx, e.be.pool(), scope, ds.Name(), string(key))
		if err != nil {
			return err
		}
		if !in {
			keys, _ := e.DynamicPartitions(ctx, p, ds.Name())
			example := "none yet: add some with AddPartitions"
			if len(keys) > 0 {
				ks := make([]string, 0, 3)
				for _, k := range keys[:min(3, len(keys))] {
					ks = append(ks, string(k))
				}
				example = "e.g. " + strings.Join(ks, ", ")
			}
			return fmt.Errorf("asset %s: %w %q: not in dynamic set %s of pipeline %s (%s)", a.Key, flowstone.ErrInvalidPartition, key, ds.Name(), p.name, example)
		}
	}
	return nil
}
