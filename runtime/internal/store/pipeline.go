package store

import (
	"context"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// lastRows returns the rows of br's next statement, the pipeline's last.
func lastRows(br pgx.BatchResults) (*pipelinedRows, error) {
	rs, err := br.Query()
	if err != nil {
		_ = br.Close()
		return nil, err
	}
	return &pipelinedRows{Rows: rs, br: br}, nil
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

// pipelinedRow is QueryRow's row: the first of the rows, noRows when
// there is none.
type pipelinedRow struct {
	rs     Rows
	err    error
	noRows error
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
		return r.noRows
	}
	if err := r.rs.Scan(dest...); err != nil {
		return err
	}
	r.rs.Close()
	return r.rs.Err()
}

// PgxLazyTx begins a transaction on conn without a round trip of its own:
// its BEGIN is sent with its first statement, as one pipeline (a first
// statement without arguments, which may be several, goes after a BEGIN of
// its own). Like the transaction of a pgxpool.Pool, it releases conn when
// it ends. A first statement that fails leaves the transaction aborted, as
// it would be after a BEGIN of its own: Rollback ends it.
func PgxLazyTx(conn *pgxpool.Conn) pgx.Tx { return &lazyTx{conn: conn} }

// IsLazyTx reports whether tx was begun by PgxLazyTx.
func IsLazyTx(tx pgx.Tx) bool {
	_, ok := tx.(*lazyTx)
	return ok
}

// lazyTx is PgxLazyTx's transaction.
type lazyTx struct {
	conn   *pgxpool.Conn
	begun  bool // BEGIN was sent
	closed bool
	// savepoints numbers the nested transactions' savepoints.
	savepoints int
}

// lazyBegin begins a lazyTx, sent before its first statement.
const lazyBegin = `BEGIN`

// begin sends BEGIN by itself, for what cannot carry it (COPY, a
// savepoint, statements without arguments).
func (t *lazyTx) begin(ctx context.Context) error {
	if t.closed {
		return pgx.ErrTxClosed
	}
	if t.begun {
		return nil
	}
	t.begun = true
	_, err := t.conn.Exec(ctx, lazyBegin)
	return err
}

// first sends BEGIN and query as one pipeline and returns its results
// with BEGIN's read.
func (t *lazyTx) first(ctx context.Context, query string, args []any) (pgx.BatchResults, error) {
	t.begun = true
	b := &pgx.Batch{}
	b.Queue(lazyBegin)
	b.Queue(query, args...)
	br := t.conn.SendBatch(ctx, b)
	if _, err := br.Exec(); err != nil {
		_ = br.Close()
		return nil, err
	}
	return br, nil
}

func (t *lazyTx) Exec(ctx context.Context, query string, args ...any) (pgconn.CommandTag, error) {
	if t.closed {
		return pgconn.CommandTag{}, pgx.ErrTxClosed
	}
	if !t.begun && len(args) == 0 {
		// Possibly several statements (a migration's), which a
		// pipeline's statement cannot be.
		if err := t.begin(ctx); err != nil {
			return pgconn.CommandTag{}, err
		}
	}
	if t.begun {
		return t.conn.Exec(ctx, query, args...)
	}
	br, err := t.first(ctx, query, args)
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	tag, err := br.Exec()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return tag, err
}

func (t *lazyTx) Query(ctx context.Context, query string, args ...any) (pgx.Rows, error) {
	if t.closed {
		return nil, pgx.ErrTxClosed
	}
	if t.begun {
		return t.conn.Query(ctx, query, args...)
	}
	br, err := t.first(ctx, query, args)
	if err != nil {
		return nil, err
	}
	return lastRows(br)
}

func (t *lazyTx) QueryRow(ctx context.Context, query string, args ...any) pgx.Row {
	if t.begun && !t.closed {
		return t.conn.QueryRow(ctx, query, args...)
	}
	rs, err := t.Query(ctx, query, args...)
	return pipelinedRow{rs: rs, err: err, noRows: pgx.ErrNoRows}
}

func (t *lazyTx) CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error) {
	if err := t.begin(ctx); err != nil {
		return 0, err
	}
	return t.conn.CopyFrom(ctx, table, columns, src)
}

// SendBatch sends b, after BEGIN when the transaction has not begun, in
// the same pipeline. b may end with COMMIT (see Commit).
func (t *lazyTx) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	if t.closed {
		return errBatch{pgx.ErrTxClosed}
	}
	if t.begun {
		return t.conn.SendBatch(ctx, b)
	}
	t.begun = true
	all := &pgx.Batch{}
	all.Queue(lazyBegin)
	all.QueuedQueries = append(all.QueuedQueries, b.QueuedQueries...)
	br := t.conn.SendBatch(ctx, all)
	if _, err := br.Exec(); err != nil {
		_ = br.Close()
		return errBatch{err}
	}
	return br
}

func (t *lazyTx) Prepare(ctx context.Context, name, sql string) (*pgconn.StatementDescription, error) {
	if t.closed {
		return nil, pgx.ErrTxClosed
	}
	return t.conn.Conn().Prepare(ctx, name, sql)
}

func (t *lazyTx) LargeObjects() pgx.LargeObjects { return pgx.LargeObjects{} }

func (t *lazyTx) Conn() *pgx.Conn { return t.conn.Conn() }

// Begin begins a nested transaction: a savepoint.
func (t *lazyTx) Begin(ctx context.Context) (pgx.Tx, error) {
	if err := t.begin(ctx); err != nil {
		return nil, err
	}
	t.savepoints++
	name := "sp_" + strconv.Itoa(t.savepoints)
	if _, err := t.conn.Exec(ctx, "SAVEPOINT "+name); err != nil {
		return nil, err
	}
	return &savepointTx{lazyTx: t, name: name}, nil
}

func (t *lazyTx) Commit(ctx context.Context) error {
	if t.closed {
		return pgx.ErrTxClosed
	}
	t.closed = true
	defer t.conn.Release()
	// Not begun, or ended already by a COMMIT at the end of a batch, whose
	// outcome its sender read.
	if !t.begun {
		return nil
	}
	if c := t.conn.Conn(); !c.IsClosed() && c.PgConn().TxStatus() == 'I' {
		return nil
	}
	tag, err := t.conn.Exec(ctx, "COMMIT")
	if err != nil {
		return err
	}
	if tag.String() == "ROLLBACK" {
		return pgx.ErrTxCommitRollback
	}
	return nil
}

func (t *lazyTx) Rollback(ctx context.Context) error {
	if t.closed {
		return pgx.ErrTxClosed
	}
	t.closed = true
	defer t.conn.Release()
	if !t.begun || t.conn.Conn().PgConn().TxStatus() == 'I' {
		return nil
	}
	_, err := t.conn.Exec(ctx, "ROLLBACK")
	return err
}

// savepointTx is a lazyTx's nested transaction.
type savepointTx struct {
	*lazyTx
	name string
	done bool
}

func (s *savepointTx) Commit(ctx context.Context) error {
	if s.done || s.lazyTx.closed {
		return pgx.ErrTxClosed
	}
	s.done = true
	_, err := s.lazyTx.conn.Exec(ctx, "RELEASE SAVEPOINT "+s.name)
	return err
}

func (s *savepointTx) Rollback(ctx context.Context) error {
	if s.done || s.lazyTx.closed {
		return pgx.ErrTxClosed
	}
	s.done = true
	_, err := s.lazyTx.conn.Exec(ctx, "ROLLBACK TO SAVEPOINT "+s.name)
	return err
}

// errBatch is the results of a batch that could not be sent.
type errBatch struct{ err error }

func (b errBatch) Exec() (pgconn.CommandTag, error) { return pgconn.CommandTag{}, b.err }
func (b errBatch) Query() (pgx.Rows, error)         { return nil, b.err }
func (b errBatch) QueryRow() pgx.Row                { return pipelinedRow{err: b.err} }
func (b errBatch) Close() error                     { return b.err }
func (b errBatch) Tx() pgx.Tx                       { return nil }

// Pending is the readiness of a dependent, as RecordFinishedCommit reads
// it.
type Pending struct {
	Node
	Status        AssetStatus
	Deps, Arrived int
	Early         bool
}

// Waits reports whether p waits for more arrivals: pending, fewer arrived
// than it has dependencies, and no deadline passed that could let it run
// on its required ones (the readiness check's own test; Readiness).
func (p Pending) Waits() bool { return p.Status == AssetPending && p.Arrived < p.Deps && !p.Early }

// RecordFinishedCommit is RecordFinished on PostgreSQL followed, in the
// same round trip, by the readiness of the dependents of fins' nodes and
// the commit of tx: one pipeline, with tx's BEGIN when it has not begun
// (PgxLazyTx). The readiness is read in a statement that starts
// after RecordFinished locked the dependents of the nodes it finished, so
// for those it is what Readiness would read there. tx has ended when it
// returns, committed unless it returns an error.
func (Store) RecordFinishedCommit(ctx context.Context, tx pgx.Tx, fins []Finished) (Recorded, []Pending, error) {
	query, args := recordFinishedPgQuery(fins)
	runs, assets, parts := make([]string, len(fins)), make([]string, len(fins)), make([]string, len(fins))
	for i, f := range fins {
		runs[i], assets[i], parts[i] = f.Run, f.Asset, f.Partition
	}
	b := &pgx.Batch{}
	b.Queue(query, args...)
	b.Queue(`SELECT ra.run_id, ra.asset, ra.partition_key, ra.status, ra.deps, ra.early,
		(SELECT count(*) FROM flowstone_arrivals ar WHERE ar.run_id = ra.run_id AND ar.asset = ra.asset AND ar.partition_key = ra.partition_key)
		FROM flowstone_run_assets ra
		WHERE (ra.run_id, ra.asset, ra.partition_key) IN (
			SELECT e.run_id, e.asset, e.partition_key FROM unnest($1::text[], $2::text[], $3::text[]) AS v(vr, va, vp)
			JOIN flowstone_run_edges e ON e.run_id = v.vr AND e.upstream = v.va AND e.upstream_partition = v.vp)`,
		runs, assets, parts)
	b.Queue(`COMMIT`)
	br := tx.SendBatch(ctx, b)
	rs, err := br.Query()
	rec, err := scanRecorded(pgxRows{rs}, err, len(fins))
	if err != nil {
		_ = br.Close()
		return Recorded{}, nil, err
	}
	rs, err = br.Query()
	var deps []Pending
	if err == nil {
		for rs.Next() {
			var p Pending
			var early int
			if err = rs.Scan(&p.Run, &p.Asset, &p.Partition, &p.Status, &p.Deps, &early, &p.Arrived); err != nil {
				break
			}
			p.Early = early == 1
			deps = append(deps, p)
		}
		rs.Close()
		if err == nil {
			err = rs.Err()
		}
	}
	if err != nil {
		_ = br.Close()
		return Recorded{}, nil, fmt.Errorf("readiness of dependents: %w", err)
	}
	tag, err := br.Exec()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err == nil && tag.String() == "ROLLBACK" {
		err = pgx.ErrTxCommitRollback
	}
	if err != nil {
		return Recorded{}, nil, fmt.Errorf("record finished: commit: %w", err)
	}
	return rec, deps, nil
}
