package store

import (
	"context"
	"database/sql"
	"errors"
	"testing"

	"github.com/flowstone-go/flowstone/internal/testdb"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// TestUnflushedStatementsAreTheirOwnTransactions runs statements through
// PgxUnflushed on a pool of one connection: each commits by itself without
// waiting for the disk, a failing one surfaces its error and changes
// nothing, and the connection stays usable, outside any transaction.
func TestUnflushedStatementsAreTheirOwnTransactions(t *testing.T) {
	t.Parallel()
	pg, ok := testdb.Postgres(t)
	if !ok {
		t.Skip("PostgreSQL only: SQLite's commits do not wait for the disk already")
	}
	ctx := context.Background()
	url, schema := pg.New(t)
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	cfg.MaxConns = 1
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	plain, unflushed := Pgx(pool), PgxUnflushed(pool)
	if err := (Store{}).CreateSchema(ctx, plain, schema); err != nil {
		t.Fatal(err)
	}
	if _, err := plain.Exec(ctx, `CREATE TABLE t (id INT PRIMARY KEY, v INT NOT NULL CHECK (v < 10))`); err != nil {
		t.Fatal(err)
	}
	var pid int
	if err := plain.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	setting := func(q Querier) string {
		t.Helper()
		var s string
		if err := q.QueryRow(ctx, `SELECT current_setting('synchronous_commit')`).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	if got := setting(unflushed); got != "off" {
		t.Fatalf("synchronous_commit in an unflushed statement = %q, want off", got)
	}
	if got := setting(plain); got != "on" {
		t.Fatalf("synchronous_commit after it = %q, want on (the setting is the transaction's)", got)
	}

	// Exec, QueryRow and Query commit their rows.
	if n, err := unflushed.Exec(ctx, `INSERT INTO t VALUES (?, ?)`, 1, 1); err != nil || n != 1 {
		t.Fatalf("exec: %d, %v", n, err)
	}
	var id int
	if err := unflushed.QueryRow(ctx, `INSERT INTO t VALUES (?, ?) RETURNING id`, 2, 2).Scan(&id); err != nil || id != 2 {
		t.Fatalf("query row: %d, %v", id, err)
	}
	rs, err := unflushed.Query(ctx, `UPDATE t SET v = v + 1 RETURNING id`)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rs.Next() {
		n++
	}
	rs.Close()
	if err := rs.Err(); err != nil || n != 2 {
		t.Fatalf("query: %d rows, %v", n, err)
	}
	if err := unflushed.QueryRow(ctx, `UPDATE t SET v = 0 WHERE id = 3 RETURNING id`).Scan(&id); !errors.Is(err, sql.ErrNoRows) {
		t.Fatalf("query row of no row: %v, want sql.ErrNoRows", err)
	}

	// A statement that fails part way (the second row breaks the check)
	// fails whole, through each method, and leaves the connection clean.
	const bad = `UPDATE t SET v = v + 7 WHERE id IN (1, 2) RETURNING id`
	if _, err := unflushed.Exec(ctx, bad); err == nil {
		t.Fatal("exec of a failing statement: no error")
	}
	if err := unflushed.QueryRow(ctx, bad).Scan(&id); err == nil || errors.Is(err, sql.ErrNoRows) {
		t.Fatalf("query row of a failing statement: %v", err)
	}
	rs, err = unflushed.Query(ctx, bad)
	if err == nil {
		for rs.Next() {
		}
		rs.Close()
		err = rs.Err()
	}
	if err == nil {
		t.Fatal("query of a failing statement: no error")
	}
	var sum, after int
	if err := plain.QueryRow(ctx, `SELECT sum(v), pg_backend_pid() FROM t`).Scan(&sum, &after); err != nil {
		t.Fatal(err)
	}
	if sum != 5 {
		t.Fatalf("sum(v) = %d after the failed statements, want 5 (none of their rows)", sum)
	}
	if after != pid {
		t.Fatalf("the connection was replaced (pid %d, then %d): it was left in a transaction", pid, after)
	}
	if got := setting(unflushed); got != "off" {
		t.Fatalf("synchronous_commit after the failures = %q", got)
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if s := conn.Conn().PgConn().TxStatus(); s != 'I' {
		t.Fatalf("connection's transaction status %q, want idle", s)
	}
}

// TestUnflushedTxBeginsWithItsFirstStatement runs transactions begun with
// PgxUnflushedTx on a pool of one connection: their statements commit
// together without waiting for the disk, one whose first or a later
// statement fails keeps nothing, Commit of a failed one reports the
// rollback, and the connection stays usable.
func TestUnflushedTxBeginsWithItsFirstStatement(t *testing.T) {
	t.Parallel()
	pg, ok := testdb.Postgres(t)
	if !ok {
		t.Skip("PostgreSQL only")
	}
	ctx := context.Background()
	url, schema := pg.New(t)
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	cfg.MaxConns = 1
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	plain := Pgx(pool)
	if err := (Store{}).CreateSchema(ctx, plain, schema); err != nil {
		t.Fatal(err)
	}
	if _, err := plain.Exec(ctx, `CREATE TABLE t (id INT PRIMARY KEY, v INT NOT NULL CHECK (v < 10))`); err != nil {
		t.Fatal(err)
	}
	begin := func() pgx.Tx {
		t.Helper()
		conn, err := pool.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return PgxUnflushedTx(conn)
	}
	// Committed together, unflushed, whichever method goes first.
	for i, first := range []func(tx pgx.Tx) error{
		func(tx pgx.Tx) error { _, err := tx.Exec(ctx, `INSERT INTO t VALUES (1, 1)`); return err },
		func(tx pgx.Tx) error {
			var id int
			return tx.QueryRow(ctx, `INSERT INTO t VALUES (2, 2) RETURNING id`).Scan(&id)
		},
		func(tx pgx.Tx) error {
			rs, err := tx.Query(ctx, `INSERT INTO t VALUES (3, 3) RETURNING id`)
			if err != nil {
				return err
			}
			for rs.Next() {
			}
			rs.Close()
			return rs.Err()
		},
	} {
		tx := begin()
		if err := first(tx); err != nil {
			t.Fatalf("first statement %d: %v", i, err)
		}
		var s string
		if err := tx.QueryRow(ctx, `SELECT current_setting('synchronous_commit')`).Scan(&s); err != nil || s != "off" {
			t.Fatalf("synchronous_commit %q, %v; want off", s, err)
		}
		if _, err := tx.Exec(ctx, `UPDATE t SET v = v + 1 WHERE id = $1`, i+1); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// A first statement that finds no row.
	tx := begin()
	var id int
	if err := tx.QueryRow(ctx, `SELECT id FROM t WHERE id = 99`).Scan(&id); !errors.Is(err, pgx.ErrNoRows) {
		t.Fatalf("no row: %v, want pgx.ErrNoRows", err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	// Failing first, failing later (after a row that must not stay), and
	// committed after a failure.
	tx = begin()
	if _, err := tx.Exec(ctx, `UPDATE t SET v = v + 7`); err == nil {
		t.Fatal("failing first statement: no error")
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatalf("rollback: %v", err)
	}
	tx = begin()
	if _, err := tx.Exec(ctx, `INSERT INTO t VALUES (4, 4)`); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `UPDATE t SET v = v + 7`); err == nil {
		t.Fatal("failing later statement: no error")
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatalf("rollback: %v", err)
	}
	tx = begin()
	if err := tx.QueryRow(ctx, `UPDATE t SET v = v + 7 RETURNING id`).Scan(&id); err == nil {
		t.Fatal("failing first query: no error")
	}
	if err := tx.Commit(ctx); !errors.Is(err, pgx.ErrTxCommitRollback) {
		t.Fatalf("commit after a failure: %v, want pgx.ErrTxCommitRollback", err)
	}
	var n, sum int
	if err := plain.QueryRow(ctx, `SELECT count(*), sum(v) FROM t`).Scan(&n, &sum); err != nil {
		t.Fatal(err)
	}
	if n != 3 || sum != 9 {
		t.Fatalf("%d rows summing to %d, want 3 summing to 9", n, sum)
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if s := conn.Conn().PgConn().TxStatus(); s != 'I' {
		t.Fatalf("connection's transaction status %q, want idle", s)
	}
}

// TestRecordFinishedCommit records finished nodes and commits in one
// pipeline: it returns the dependents' readiness read after the record,
// commits, and on a failing record surfaces the error, keeps nothing, and
// leaves the connection usable.
func TestRecordFinishedCommit(t *testing.T) {
	t.Parallel()
	pg, ok := testdb.Postgres(t)
	if !ok {
		t.Skip("PostgreSQL only: the pipeline is pgx's")
	}
	ctx := context.Background()
	url, schema := pg.New(t)
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	cfg.MaxConns = 1
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	q := Pgx(pool)
	if err := (Store{}).CreateSchema(ctx, q, schema); err != nil {
		t.Fatal(err)
	}
	migrated(t, testDB{q: q, inTx: func(ctx context.Context, fn func(q Querier) error) error {
		return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return fn(Pgx(tx)) })
	}, postgres: true})
	var s Store
	// Leaves a, b, c feed d.
	if _, err := s.InsertRun(ctx, q, NewRun{ID: "r", Pipeline: "p", Targets: "[]", Total: 4}); err != nil {
		t.Fatal(err)
	}
	if err := s.InsertRunAssets(ctx, q, "r", []NodeDeps{{Asset: "a"}, {Asset: "b"}, {Asset: "c"}, {Asset: "d", Deps: 3, Required: 3}}); err != nil {
		t.Fatal(err)
	}
	if err := s.InsertRunEdges(ctx, q, "r", []Edge{{Asset: "d", Upstream: "a", Required: true},
		{Asset: "d", Upstream: "b", Required: true}, {Asset: "d", Upstream: "c", Required: true}}); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Exec(ctx, `UPDATE flowstone_run_assets SET status = ? WHERE asset <> 'd'`, AssetRunning); err != nil {
		t.Fatal(err)
	}
	fin := func(asset, mat string) Finished {
		return Finished{Finish: Finish{Node: Node{Run: "r", Asset: asset}, Status: AssetSucceeded, Materialization: mat},
			M: NewMaterialization{ID: mat, Pipeline: "p", Asset: asset, Run: "r", Status: MatSucceeded}}
	}
	record := func(fins ...Finished) (Recorded, []Pending, error) {
		t.Helper()
		conn, err := pool.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		tx := PgxUnflushedTx(conn)
		rec, deps, err := s.RecordFinishedCommit(ctx, tx, fins)
		if err != nil {
			if rerr := tx.Rollback(ctx); rerr != nil {
				t.Fatalf("rollback: %v", rerr)
			}
			return rec, deps, err
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatalf("commit after the pipeline's: %v", err)
		}
		return rec, deps, nil
	}
	rec, deps, err := record(fin("a", "ma"), fin("b", "mb"))
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Started) != 2 || len(deps) != 1 {
		t.Fatalf("recorded %v, dependents %+v", rec.Started, deps)
	}
	if d := deps[0]; d.Node != (Node{Run: "r", Asset: "d"}) || d.Status != AssetPending || d.Deps != 3 || d.Arrived != 2 || !d.Waits() {
		t.Fatalf("dependent %+v", d)
	}
	// c's record fails (its materialization's id is a's): nothing of it
	// stays, and the connection is clean.
	if _, _, err := record(fin("c", "ma")); err == nil {
		t.Fatal("a failing record: no error")
	}
	ras, err := s.RunAssets(ctx, q, "r")
	if err != nil {
		t.Fatal(err)
	}
	for _, ra := range ras {
		if ra.Asset == "c" && ra.Status != AssetRunning {
			t.Fatalf("c is %s after its failed record", ra.Status)
		}
	}
	rec, deps, err = record(fin("c", "mc"))
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Started) != 1 || len(deps) != 1 || deps[0].Arrived != 3 || deps[0].Waits() {
		t.Fatalf("recorded %v, dependents %+v: want d with every arrival", rec.Started, deps)
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if st := conn.Conn().PgConn().TxStatus(); st != 'I' {
		t.Fatalf("connection's transaction status %q, want idle", st)
	}
}
