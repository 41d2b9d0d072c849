package runtime

import (
	"context"
	"fmt"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/runtime/internal/store"
)

// loadMaterialization decodes the value of materialization id (of asset in
// pipeline p) into into.
func (e *Engine) loadMaterialization(ctx context.Context, p *Pipeline, asset, id string, into any) error {
	var v store.Value
	var found bool
	err := e.out.ride(ctx, func(ctx context.Context) (err error) {
		v, found, err = e.st.Value(ctx, e.be.pool(), id)
		return err
	})
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("%w: materialization %s of %s", ErrNotMaterialized, id, asset)
	}
	value, part := v.JSON, v.Partition
	if v.External {
		a := p.Asset(asset)
		if a == nil || a.IO == nil {
			return fmt.Errorf("asset %s materialization %s: its value lives in an IO manager this pipeline no longer names", asset, id)
		}
		ref := ValueRef{Pipeline: p.name, Asset: asset, Partition: flowstone.Partition(part), Materialization: id}
		if err := a.IO.Load(ctx, ref, into); err != nil {
			return fmt.Errorf("%w: asset %s partition %q materialization %s: %v", ErrDecode, asset, part, id, err)
		}
		return nil
	}
	if !value.Valid {
		return fmt.Errorf("%w: asset %s partition %q materialization %s has no value", ErrNotMaterialized, asset, part, id)
	}
	if err := decodeValue([]byte(value.String), into); err != nil {
		return fmt.Errorf("%w: asset %s partition %q materialization %s into %T: %v", ErrDecode, asset, part, id, into, err)
	}
	return nil
}

// Load returns the newest successful value of asset in partition p of the
// named pipeline. Generated LoadX functions call it. A value that no longer
// decodes into T is an ErrDecode naming asset, partition and
// materialization; nothing materialized yet is ErrNotMaterialized.
func Load[T any](ctx context.Context, e *Engine, pipeline, asset string, p flowstone.Partition) (T, error) {
	var v T
	if err := (Ref{Asset: asset, Partition: p}).valid(); err != nil {
		return v, err
	}
	pl, err := e.pipelineForLoad(pipeline, asset)
	if err != nil {
		return v, err
	}
	id, err := e.latestMaterialization(ctx, pipeline, asset, p)
	if err != nil {
		return v, err
	}
	err = e.loadMaterialization(ctx, pl, asset, id, &v)
	return v, err
}

func (e *Engine) pipelineForLoad(pipeline, asset string) (*Pipeline, error) {
	b, ok := e.bindings[pipeline]
	if !ok {
		// An unbound pipeline's values in the database still load; only an
		// external IO manager needs the definition.
		return &Pipeline{name: pipeline, byKey: map[string]*AssetDef{}}, nil
	}
	if b.pipeline.Asset(asset) == nil {
		return nil, fmt.Errorf("%w: %q in pipeline %s", ErrUnknownAsset, asset, pipeline)
	}
	return b.pipeline, nil
}

func (e *Engine) latestMaterialization(ctx context.Context, pipeline, asset string, p flowstone.Partition) (string, error) {
	var id string
	var found bool
	err := e.out.ride(ctx, func(ctx context.Context) (err error) {
		id, found, err = e.st.LatestSucceeded(ctx, e.be.pool(), pipeline, asset, string(p))
		return err
	})
	if err == nil && !found {
		err = fmt.Errorf("%w: asset %s partition %q of pipeline %s", ErrNotMaterialized, asset, p, pipeline)
	}
	return id, err
}
