package runtime

import (
	"context"
	"testing"
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
