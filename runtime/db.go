package runtime

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"strings"

	"github.com/flowstone-go/flowstone/strategy"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// querier is the SQL surface FlowStone's own tables need. Queries are
// written once with ? placeholders; the PostgreSQL adapter rewrites them to
// $n. Both dialects share every statement: times are BIGINT microseconds,
// booleans INTEGER, documents TEXT.
type querier interface {
	Exec(ctx context.Context, query string, args ...any) (int64, error)
	Query(ctx context.Context, query string, args ...any) (rows, error)
	QueryRow(ctx context.Context, query string, args ...any) row
}

// rows and row are the strategy package's, so an engine querier is a
// strategy.Querier.
type (
	rows = strategy.Rows
	row  = strategy.Row
)

// rebind rewrites ? placeholders to $1, $2, ... (no ? appears in literals in
// FlowStone's queries).
func rebind(q string) string {
	if !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 8)
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(q[i])
	}
	return b.String()
}

// pgxQuerier adapts a pgx pool or transaction.
type pgxQuerier struct {
	db interface {
		Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
		Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
		QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	}
}

var _ querier = pgxQuerier{db: (*pgxpool.Pool)(nil)}

func (q pgxQuerier) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	tag, err := q.db.Exec(ctx, rebind(query), args...)
	return tag.RowsAffected(), err
}

func (q pgxQuerier) Query(ctx context.Context, query string, args ...any) (rows, error) {
	r, err := q.db.Query(ctx, rebind(query), args...)
	if err != nil {
		return nil, err
	}
	return pgxRows{r}, nil
}

func (q pgxQuerier) QueryRow(ctx context.Context, query string, args ...any) row {
	return pgxRow{q.db.QueryRow(ctx, rebind(query), args...)}
}

type pgxRows struct{ pgx.Rows }

func (r pgxRows) Close() { r.Rows.Close() }

type pgxRow struct{ r pgx.Row }

func (r pgxRow) Scan(dest ...any) error {
	err := r.r.Scan(dest...)
	if errors.Is(err, pgx.ErrNoRows) {
		return sql.ErrNoRows
	}
	return err
}

// sqlQuerier adapts a database/sql pool or transaction (SQLite).
type sqlQuerier struct {
	db interface {
		ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
		QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
		QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	}
}

func (q sqlQuerier) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := q.db.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (q sqlQuerier) Query(ctx context.Context, query string, args ...any) (rows, error) {
	r, err := q.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return sqlRows{r}, nil
}

func (q sqlQuerier) QueryRow(ctx context.Context, query string, args ...any) row {
	return q.db.QueryRowContext(ctx, query, args...)
}

type sqlRows struct{ *sql.Rows }

func (r sqlRows) Close() { _ = r.Rows.Close() }

// retryable reports whether a transaction failed only because it collided
// with another (serialization failure, deadlock, SQLite busy) and can run
// again from the start.
func retryable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "40001" || pgErr.Code == "40P01"
	}
	msg := err.Error()
	return strings.Contains(msg, "SQLITE_BUSY") || strings.Contains(msg, "database is locked")
}
