package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"

	"github.com/flowstone-go/flowstone/runtime"
	"github.com/flowstone-go/flowstone/runtime/web/riverview"
)

// riverView returns River's own view of eng's database for /river/, or
// nil (after saying why on w) where River's view does not support it.
func riverView(ctx context.Context, eng *runtime.Engine, log *slog.Logger, w io.Writer) (http.Handler, error) {
	h, err := riverview.New(ctx, eng, "/river", log)
	if errors.Is(err, riverview.ErrUnsupported) {
		fmt.Fprintf(w, "River's view is not mounted: %v\n", err)
		return nil, nil
	}
	return h, err
}
