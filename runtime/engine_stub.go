package runtime

import (
	"context"

	"github.com/flowstone-go/flowstone"
)

// Engine executes pipelines. (Being built: the runtime issue.)
type Engine struct{}

// Load returns the newest successful value of asset in partition p.
func Load[T any](ctx context.Context, e *Engine, pipeline, asset string, p flowstone.Partition) (T, error) {
	var v T
	return v, ErrNotMaterialized
}
