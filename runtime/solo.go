package runtime

import (
	"context"
	"strings"
	"sync"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"golang.org/x/sync/semaphore"
)

// Crash attribution. When a process dies, every job it was running is
// taken over, so a count of the deaths a job saw blames the jobs that only
// ran next to the one that killed the process as much as that one. The
// engine attributes crashes itself: a node whose job is delivered while
// the node is still running had an attempt whose process died, and is a
// suspect. A suspect's attempt runs alone in its process: it waits for
// the jobs running there to end, and no other job starts until it ends.
// A death during a lone attempt is the attempt's own. The node counts the
// first death once however it happened, and each death while running
// alone again (store.JobState.CountsCrash); at maxCrashes it fails. A job
// that only ran next to a crashing one is a suspect once, runs alone and
// succeeds.

// soloWeight is the share of the lock a lone attempt takes: all of it.
const soloWeight = 1 << 40

// soloLock is held shared by every job of the process while it works and
// exclusively by a suspect's attempt. Waiting is first come, first served:
// once a suspect waits, later jobs wait behind it, so it cannot starve.
type soloLock struct {
	once sync.Once
	sem  *semaphore.Weighted
}

// acquire takes the lock, exclusively when alone, for as long as ctx lives
// or until release is called, whichever comes first: an attempt that
// outlives its context (its timeout, or Close cancelling it) no longer
// holds up a suspect, nor a suspect that outlives its own the rest. It
// fails with ctx's error when ctx ends first.
func (l *soloLock) acquire(ctx context.Context, alone bool) (release func(), err error) {
	l.once.Do(func() { l.sem = semaphore.NewWeighted(soloWeight) })
	n := int64(1)
	if alone {
		n = soloWeight
	}
	if err := l.sem.Acquire(ctx, n); err != nil {
		return nil, err
	}
	var done sync.Once
	free := func() { done.Do(func() { l.sem.Release(n) }) }
	stop := context.AfterFunc(ctx, free)
	return func() {
		stop()
		free()
	}, nil
}

// soloMiddleware holds the lock shared for every job but attempts, which
// take it in workNode once they know whether they are suspects.
func (e *Engine) soloMiddleware() rivertype.WorkerMiddleware {
	return river.WorkerMiddlewareFunc(func(ctx context.Context, job *rivertype.JobRow, doInner func(context.Context) error) error {
		if strings.HasPrefix(job.Kind, "flowstone.") && strings.HasSuffix(job.Kind, ".attempt") {
			return doInner(ctx)
		}
		release, err := e.solo.acquire(ctx, false)
		if err != nil {
			return err
		}
		defer release()
		return doInner(ctx)
	})
}
