package runtime

import (
	"context"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// The transactions a job commits while it works (its start, its record,
// advancing its run) do not wait for the disk on PostgreSQL: each commits
// with synchronous_commit off, which spares the job a flush of the
// write-ahead log per transaction (about 3 ms on a disk that syncs for
// real, where the job's own work is a fraction of a millisecond). Nothing
// can be lost by it that a dead worker does not lose already:
//
//   - The job ends after them: River commits its completion (or its retry)
//     once Work returns, and waits for the disk, which flushes the job's
//     transactions too, since the log is written in order.
//   - A server crash loses the end of the log, never a commit without the
//     ones after it. If it takes a job's transactions, it takes the job's
//     end with them: River delivers the job again, as it does when the
//     job's process dies before it ended, and the engine already takes
//     that from any point of the job.
//
// What a crash can undo is what others saw of those commits for the
// moment before it: a page showing an asset succeeded that then runs
// again. A run's end is what users wait for, so the transaction that
// finishes a run waits for the disk (txn.flush in checkRunDone).
//
// Nor does it cost round trips: a job's write (its start) sends the
// setting and its statement together, one pipeline that PostgreSQL runs
// as one implicit transaction (store.PgxUnflushed), and a job's
// transaction sends its BEGIN and setting with its first statement
// (store.PgxUnflushedTx).
//
// SQLite needs none of this: in WAL mode with synchronous=NORMAL its
// commits do not wait for the disk already.

// jobKey marks the context of a job's Work.
type jobKey struct{}

// inJob reports whether ctx is a job's, whose transactions River's end of
// the job makes durable.
func inJob(ctx context.Context) bool { return ctx.Value(jobKey{}) != nil }

// jobMiddleware marks the context of every job's Work (inJob).
func jobMiddleware() rivertype.WorkerMiddleware {
	return river.WorkerMiddlewareFunc(func(ctx context.Context, job *rivertype.JobRow, doInner func(context.Context) error) error {
		return doInner(context.WithValue(ctx, jobKey{}, true))
	})
}
