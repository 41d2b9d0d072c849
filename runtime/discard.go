package runtime

import (
	"context"
	"fmt"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// discardHandler is River's error handler: a node job that failed its
// last attempt is discarded by the queue, so the engine records its node
// failed and advances the run, which would otherwise never end. (An
// attempt that fails for good cancels its job itself; this catches the
// rest: continuations that keep failing, trouble recording a result.)
type discardHandler struct{ e *Engine }

// HandleError implements river.ErrorHandler.
func (h discardHandler) HandleError(ctx context.Context, job *rivertype.JobRow, err error) *river.ErrorHandlerResult {
	h.lastAttempt(ctx, job, err.Error())
	return nil
}

// HandlePanic implements river.ErrorHandler.
func (h discardHandler) HandlePanic(ctx context.Context, job *rivertype.JobRow, value any, _ string) *river.ErrorHandlerResult {
	h.lastAttempt(ctx, job, fmt.Sprintf("panic: %v", value))
	return nil
}

func (h discardHandler) lastAttempt(ctx context.Context, job *rivertype.JobRow, reason string) {
	if job.Attempt < job.MaxAttempts {
		return
	}
	ctx = context.WithoutCancel(ctx)
	if err := h.e.jobDiscarded(ctx, job, reason); err != nil {
		h.e.log.ErrorContext(ctx, "record a discarded job", "job", job.ID, "kind", job.Kind, "error", err)
	}
}
