package store

import (
	"context"
	"database/sql"

	"github.com/jackc/pgx/v5"
)

// PgxBatcher is what PgxUnflushed adapts: a pgx pool or connection.
type PgxBatcher interface {
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// unflushedSetting turns off the commit's wait for the disk until the end
// of the transaction. set_config rather than SET LOCAL: the transaction is
// the implicit one of a pipeline, not a block SET LOCAL would recognise.
const unflushedSetting = `SELECT set_config('synchronous_commit', 'off', true)`

// PgxUnflushed adapts a pgx pool to a Querier whose every statement is a
// transaction of its own that does not wait for the disk at its commit
// (see BeginUnflushed), in one round trip: the setting and the statement
// are sent together as a pipeline, which PostgreSQL runs as one implicit
// transaction, committed at its end, or rolled back whole if a statement
// fails (the connection is then left outside any transaction, ready for
// the next). A statement through it is what the same statement through
// Pgx is, atomic and autocommitted, without the flush.
func PgxUnflushed(db PgxBatcher) Querier { return pgxUnflushed{db: db} }

type pgxUnflushed struct{ db PgxBatcher }

// send sends the setting and query and returns the batch's results with
// the setting's read.
func (q pgxUnflushed) send(ctx context.Context, query string, args []any) (pgx.BatchResults, error) {
	b := &pgx.Batch{}
	b.Queue(unflushedSetting)
	b.Queue(rebind(query), args...)
	br := q.db.SendBatch(ctx, b)
	if _, err := br.Exec(); err != nil {
		_ = br.Close()
		return nil, err
	}
	return br, nil
}

func (q pgxUnflushed) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	br, err := q.send(ctx, query, args)
	if err != nil {
		return 0, err
	}
	tag, err := br.Exec()
	// Close reads the end of the pipeline: the commit's outcome.
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return tag.RowsAffected(), err
}

func (q pgxUnflushed) Query(ctx context.Context, query string, args ...any) (Rows, error) {
	br, err := q.send(ctx, query, args)
	if err != nil {
		return nil, err
	}
	rs, err := br.Query()
	if err != nil {
		_ = br.Close()
		return nil, err
	}
	return &pipelinedRows{Rows: rs, br: br}, nil
}

func (q pgxUnflushed) QueryRow(ctx context.Context, query string, args ...any) Row {
	rs, err := q.Query(ctx, query, args...)
	return pipelinedRow{rs: rs, err: err}
}

// pipelinedRows are the rows of a pipeline's last statement; closing them
// reads the rest of the pipeline, whose error (the commit's) is theirs.
type pipelinedRows struct {
	pgx.Rows
	br     pgx.BatchResults
	closed bool
	err    error
}

func (r *pipelinedRows) Next() bool {
	if r.Rows.Next() {
		return true
	}
	r.Close()
	return false
}

func (r *pipelinedRows) Close() {
	if r.closed {
		return
	}
	r.closed = true
	r.Rows.Close()
	r.err = r.Rows.Err()
	if err := r.br.Close(); r.err == nil {
		r.err = err
	}
}

func (r *pipelinedRows) Err() error {
	if !r.closed {
		return r.Rows.Err()
	}
	return r.err
}

// pipelinedRow is QueryRow's row: the first of the rows, sql.ErrNoRows
// when there is none.
type pipelinedRow struct {
	rs  Rows
	err error
}

func (r pipelinedRow) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	defer r.rs.Close()
	if !r.rs.Next() {
		if err := r.rs.Err(); err != nil {
			return err
		}
		return sql.ErrNoRows
	}
	if err := r.rs.Scan(dest...); err != nil {
		return err
	}
	r.rs.Close()
	return r.rs.Err()
}
