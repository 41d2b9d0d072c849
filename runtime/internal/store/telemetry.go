package store

import (
	"context"
	"database/sql"
	"errors"
)

// SaveRunTrace records the trace run belongs to.
func (Store) SaveRunTrace(ctx context.Context, q Querier, run, traceparent string) error {
	_, err := q.Exec(ctx, `INSERT INTO flowstone_run_traces (run_id, traceparent) VALUES (?, ?)
		ON CONFLICT (run_id) DO NOTHING`, run, traceparent)
	return err
}

// RunTrace returns the trace run belongs to and when the run was created;
// traceparent is "" when the run was not traced.
func (Store) RunTrace(ctx context.Context, q Querier, run string) (traceparent string, createdAt int64, err error) {
	err = q.QueryRow(ctx, `SELECT COALESCE(t.traceparent, ''), r.created_at FROM flowstone_runs r
		LEFT JOIN flowstone_run_traces t ON t.run_id = r.id WHERE r.id = ?`, run).Scan(&traceparent, &createdAt)
	if errors.Is(err, sql.ErrNoRows) {
		return "", 0, nil
	}
	return traceparent, createdAt, err
}

// RunsRunning counts the runs not yet finished, of every pipeline.
func (Store) RunsRunning(ctx context.Context, q Querier) (int64, error) {
	var n int64
	err := q.QueryRow(ctx, `SELECT count(*) FROM flowstone_runs WHERE status = ?`, RunRunning).Scan(&n)
	return n, err
}
