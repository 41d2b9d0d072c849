package runtime

import (
	"context"
	"testing"
	"time"
)

// A job's transactions commit without waiting for the disk on PostgreSQL
// (River's end of the job, committed after them, flushes them), others
// wait, and a transaction that flushes waits whatever ran it.
func TestJobTransactionsLeaveTheFlushToTheJobsEnd(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		var e *Engine
		// setting reads synchronous_commit in a transaction begun in ctx;
		// on SQLite, which has no such setting, it reports "".
		setting := func(ctx context.Context, flush bool) string {
			t.Helper()
			var s string
			err := e.be.inTx(ctx, func(tx txn) error {
				if flush {
					if err := tx.flush(ctx); err != nil {
						return err
					}
				}
				if e.Dialect() != "postgres" {
					return nil
				}
				return tx.QueryRow(ctx, `SHOW synchronous_commit`).Scan(&s)
			})
			if err != nil {
				t.Fatalf("transaction: %v", err)
			}
			return s
		}
		var inWork, inWorkFlushed string
		p := NewPipeline(PipelineDef{Name: "flush", Assets: []AssetDef{
			def("a", func(ctx context.Context, in *Inputs) (any, error) {
				inWork, inWorkFlushed = setting(ctx, false), setting(ctx, true)
				return 1, nil
			}),
		}})
		e = openEngine(t, db.config(t), Bind(p, nil))
		ctx := context.Background()
		run, err := e.Materialize(ctx, p, Request{Targets: []string{"a"}})
		if err != nil {
			t.Fatal(err)
		}
		if res := waitRun(t, e, run.ID); res.Status != RunSucceeded {
			t.Fatalf("run %s", res.Status)
		}
		want := map[bool]string{true: "off", false: "on"}
		if e.Dialect() != "postgres" {
			want = map[bool]string{true: "", false: ""}
		}
		if got := setting(ctx, false); got != want[false] {
			t.Errorf("outside a job: synchronous_commit %q, want %q", got, want[false])
		}
		if inWork != want[true] {
			t.Errorf("in a job's Work: synchronous_commit %q, want %q", inWork, want[true])
		}
		if inWorkFlushed != want[false] {
			t.Errorf("in a job's Work, flushed: synchronous_commit %q, want %q", inWorkFlushed, want[false])
		}
	})
}

// A job's writes and transactions (on PostgreSQL pipelined with their
// BEGIN and setting, store.PgxUnflushed and store.PgxUnflushedTx) surface
// a failing statement's error, keep nothing of what failed, and leave the
// pool usable: more failures than the pool has connections, then writes
// that succeed.
func TestJobWritesThatFailLeaveThePoolUsable(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		var e *Engine
		var errs []error
		var inWrite string
		work := func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			add := func(id, v int) func(q querier) error {
				return func(q querier) error {
					_, err := q.Exec(ctx, `INSERT INTO hold_t (id, v) VALUES (?, ?)`, id, v)
					return err
				}
			}
			// Breaks the check on the row whose v is 2, after updating
			// the one whose v is 1.
			bad := func(q querier) error {
				_, err := q.Exec(ctx, `UPDATE hold_t SET v = v + 8`)
				return err
			}
			if err := e.be.write(ctx, add(1, 1)); err != nil {
				return err
			}
			if err := e.be.write(ctx, add(2, 2)); err != nil {
				return err
			}
			if e.Dialect() == "postgres" {
				if err := e.be.write(ctx, func(q querier) error {
					return q.QueryRow(ctx, `SHOW synchronous_commit`).Scan(&inWrite)
				}); err != nil {
					return err
				}
			}
			for i := range 20 {
				errs = append(errs, e.be.write(ctx, bad))
				// The failing statement first, then after another.
				errs = append(errs, e.be.inTx(ctx, func(tx txn) error { return bad(tx) }))
				errs = append(errs, e.be.inTx(ctx, func(tx txn) error {
					if err := add(100+i, 1)(tx); err != nil {
						return err
					}
					return bad(tx)
				}))
			}
			if err := e.be.write(ctx, add(3, 3)); err != nil {
				return err
			}
			return e.be.inTx(ctx, func(tx txn) error {
				if err := add(4, 4)(tx); err != nil {
					return err
				}
				return add(5, 5)(tx)
			})
		}
		p := NewPipeline(PipelineDef{Name: "fail", Assets: []AssetDef{
			def("a", func(ctx context.Context, in *Inputs) (any, error) { return 1, work(ctx) }),
		}})
		e = openEngine(t, db.config(t), Bind(p, nil))
		ctx := context.Background()
		if _, err := e.be.pool().Exec(ctx, `CREATE TABLE hold_t (id INTEGER PRIMARY KEY, v INTEGER NOT NULL CHECK (v < 10))`); err != nil {
			t.Fatal(err)
		}
		run, err := e.Materialize(ctx, p, Request{Targets: []string{"a"}})
		if err != nil {
			t.Fatal(err)
		}
		if res := waitRun(t, e, run.ID); res.Status != RunSucceeded {
			t.Fatalf("run %s", res.Status)
		}
		if len(errs) != 60 {
			t.Fatalf("%d failing statements ran, want 60", len(errs))
		}
		for i, err := range errs {
			if err == nil {
				t.Fatalf("failing statement %d: no error", i)
			}
		}
		var n, sum int
		if err := e.be.pool().QueryRow(ctx, `SELECT count(*), sum(v) FROM hold_t`).Scan(&n, &sum); err != nil {
			t.Fatal(err)
		}
		if n != 5 || sum != 15 {
			t.Fatalf("%d rows summing to %d, want 5 summing to 15 (nothing of the failed statements)", n, sum)
		}
		if e.Dialect() == "postgres" && inWrite != "off" {
			t.Errorf("a job's write: synchronous_commit %q, want off", inWrite)
		}
	})
}
