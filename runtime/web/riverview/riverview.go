// Package riverview mounts River's own web view (riverqueue.com/riverui)
// on an engine's database, for runtime/web's /river/ link. It is a
// package of its own so a program that embeds the FlowStone page without
// it does not link River's view.
package riverview

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/flowstone-go/flowstone/runtime"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"riverqueue.com/riverui"
	"riverqueue.com/riverui/uiendpoints"
)

// ErrUnsupported: the engine's database has no River view.
var ErrUnsupported = errors.New("river's view is not supported on this database")

// New returns River's view of eng's jobs and queues, answering under
// prefix (as mounted: "/river"). Its background work stops when ctx ends.
func New(ctx context.Context, eng *runtime.Engine, prefix string, log *slog.Logger) (http.Handler, error) {
	var bundle uiendpoints.Bundle
	switch c := eng.RiverClient().(type) {
	case *river.Client[pgx.Tx]:
		bundle = riverui.NewEndpoints(c, nil)
	case *river.Client[*sql.Tx]:
		bundle = riverui.NewEndpoints(c, nil)
	default:
		return nil, fmt.Errorf("%w (%s)", ErrUnsupported, eng.Dialect())
	}
	h, err := riverui.NewHandler(&riverui.HandlerOpts{Endpoints: bundle, Logger: log, Prefix: prefix})
	if err != nil {
		return nil, fmt.Errorf("river's view: %w", err)
	}
	if err := h.Start(ctx); err != nil {
		return nil, fmt.Errorf("start river's view: %w", err)
	}
	return h, nil
}
