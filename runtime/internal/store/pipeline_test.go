package store

import (
	"context"
	"errors"
	"testing"

	"github.com/flowstone-go/flowstone/internal/testdb"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// TestLazyTxBeginsWithItsFirstStatement runs transactions begun with
// PgxLazyTx on a pool of one connection: their statements commit together,
// one whose first or a later statement fails keeps nothing, Commit of a
// failed one reports the rollback, and the connection stays usable.
func TestLazyTxBeginsWithItsFirstStatement(t *testing.T) {
	t.Parallel()
	pg, ok := testdb.Postgres(t)
	if !ok {
		t.Skip("PostgreSQL only")
	}
	ctx := context.Background()
	pool, schema := onePool(t, pg)
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
		return PgxLazyTx(conn)
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
		var in bool
		if err := tx.QueryRow(ctx, `SELECT now() <> statement_timestamp()`).Scan(&in); err != nil || !in {
			t.Fatalf("in a transaction: %v, %v", in, err)
		}
		if _, err := tx.Exec(ctx, `UPDATE t SET v = v + 1 WHERE id = $1`, i+1); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// A first Exec without arguments may be several statements.
	tx := begin()
	if _, err := tx.Exec(ctx, `UPDATE t SET v = v + 1 WHERE id = 1; UPDATE t SET v = v - 1 WHERE id = 1`); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	// A first statement that finds no row.
	tx = begin()
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
	pool, schema := onePool(t, pg)
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
		tx := PgxLazyTx(conn)
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

// onePool opens a pool of one connection on a fresh schema of pg, closed
// when t ends.
func onePool(t *testing.T, pg testdb.DB) (*pgxpool.Pool, string) {
	t.Helper()
	url, schema := pg.New(t)
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	cfg.MaxConns = 1
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool, schema
}
