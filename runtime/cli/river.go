package cli

import (
	"context"
	"net/http"

	"github.com/flowstone-go/flowstone/runtime"
)

// riverView returns River's own web view of eng's database, or nil when
// it is not available.
func riverView(ctx context.Context, eng *runtime.Engine) (http.Handler, error) {
	return nil, nil
}
