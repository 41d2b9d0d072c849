// Package scatter runs one asset over every item of a slice: the
// persistence of barriers and item results (store.go) kept apart from the
// orchestration that launches item batches within concurrency and rate
// limits and decides when the barrier is done (orchestrator.go). The
// strategy in strategy/scatter.go drives both; this file is the small API
// the engine and the CLI read progress through.
package scatter

import (
	"context"
	"time"
)

// DB is the SQL surface the store needs: the engine's database, or the
// transaction recording a result. Queries use ? placeholders.
type DB interface {
	Exec(ctx context.Context, query string, args ...any) (int64, error)
	Query(ctx context.Context, query string, args ...any) (Rows, error)
	QueryRow(ctx context.Context, query string, args ...any) Row
}

// Rows are a query's rows.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

// Row is one row; Scan returns sql.ErrNoRows when there is none.
type Row interface{ Scan(dest ...any) error }

// Ref names one scatter: an asset in a run and partition.
type Ref struct {
	Run       string
	Asset     string
	Partition string
}

// Barrier statuses.
const (
	Running   = "running"
	Completed = "completed"
	Failed    = "failed"
)

// Progress is a scatter's state.
type Progress struct {
	Total, Done, Failed int
	Status              string
	Error               string
	StartedAt           time.Time
	FinishedAt          time.Time
}

// ProgressOf reads the progress of ref; found is false before the scatter
// started.
func ProgressOf(ctx context.Context, db DB, ref Ref) (p Progress, found bool, err error) {
	b, found, err := Store{}.Barrier(ctx, db, ref)
	if !found || err != nil {
		return Progress{}, found, err
	}
	return Progress{Total: b.Total, Done: b.Done, Failed: b.Failed, Status: b.Status, Error: b.Error,
		StartedAt: b.CreatedAt, FinishedAt: b.FinishedAt}, true, nil
}
