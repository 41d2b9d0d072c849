package runtime

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// A database outage can leave a live process with a job the database
// records as running under it but that it never ran: River's fetch
// committed, and the outage (a server crash, a cut connection) took its
// answer. Takeover (takeover.go) is for processes that stopped beating,
// and River's rescuer waits past the longest timeout, an hour by default.
// So once an outage has ended, and as long after it as takeover waits for
// a silent process (Config.TakeoverAfter, time for River's completer to
// store the ends of jobs that returned meanwhile), a process puts back
// in the queue the jobs recorded running under its own ID since before
// the outage began that it is not working.

// orphanReason is the error recorded for the attempt of a job put back.
const orphanReason = "its worker process never received it: a database outage took the fetch's answer"

// working is the set of jobs this process is working (in Work).
type working struct {
	mu   sync.Mutex
	jobs map[int64]struct{}
}

func (w *working) add(id int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.jobs == nil {
		w.jobs = map[int64]struct{}{}
	}
	w.jobs[id] = struct{}{}
}

func (w *working) remove(id int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.jobs, id)
}

func (w *working) has(id int64) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, ok := w.jobs[id]
	return ok
}

// workingMiddleware keeps e.working: the jobs in this process's Work.
func (e *Engine) workingMiddleware() rivertype.WorkerMiddleware {
	return river.WorkerMiddlewareFunc(func(ctx context.Context, job *rivertype.JobRow, doInner func(context.Context) error) error {
		e.working.add(job.ID)
		defer e.working.remove(job.ID)
		return doInner(ctx)
	})
}

// takeBackOrphans puts back the jobs the database records as running
// under this process (self) since before the outage that ended began
// (horizon) that the process is not working.
func (e *Engine) takeBackOrphans(ctx context.Context, self string, horizon time.Time) error {
	mine := func(j *rivertype.JobRow) bool {
		return lastAttemptBy(j) == self && j.AttemptedAt != nil && j.AttemptedAt.Before(horizon) && !e.working.has(j.ID)
	}
	discarded, n, err := e.be.takeOver(ctx, mine, horizon, orphanReason)
	if err != nil {
		return fmt.Errorf("take back jobs lost in an outage: %w", err)
	}
	if n > 0 {
		e.log.WarnContext(ctx, "put back jobs whose fetch a database outage lost", "jobs", n)
	}
	return errors.Join(e.discarded(ctx, discarded, orphanReason)...)
}
