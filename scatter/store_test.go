package scatter

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"testing"
	"time"

	_ "modernc.org/sqlite"
)

// sqlDB adapts database/sql to DB.
type sqlDB struct{ db *sql.DB }

func (d sqlDB) Exec(ctx context.Context, q string, args ...any) (int64, error) {
	r, err := d.db.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	return r.RowsAffected()
}

func (d sqlDB) Query(ctx context.Context, q string, args ...any) (Rows, error) {
	rs, err := d.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	return sqlRows{rs}, nil
}

func (d sqlDB) QueryRow(ctx context.Context, q string, args ...any) Row {
	return d.db.QueryRowContext(ctx, q, args...)
}

type sqlRows struct{ *sql.Rows }

func (r sqlRows) Close() { _ = r.Rows.Close() }

// migrated opens a fresh SQLite database with the store's migrations.
func migrated(t *testing.T) sqlDB {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "scatter.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	names, err := fs.Glob(Migrations(), "*.sql")
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(names)
	for _, name := range names {
		data, err := fs.ReadFile(Migrations(), name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(string(data)); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	return sqlDB{db}
}

// results returns the results of items [from, to), failing those listed.
func results(from, to int, failing ...int) []ItemResult {
	var out []ItemResult
	for i := from; i < to; i++ {
		r := ItemResult{Index: i, Raw: json.RawMessage(fmt.Sprint(i)), Value: json.RawMessage(fmt.Sprint(10 * i)), Attempts: 1,
			Started: time.Now(), Finished: time.Now()}
		for _, f := range failing {
			if f == i {
				r.Value, r.Err = nil, fmt.Sprintf("item %d failed", i)
			}
		}
		out = append(out, r)
	}
	return out
}

func startScatter(t *testing.T, db DB, o Orchestrator, ref Ref, n int) {
	t.Helper()
	items := make([]json.RawMessage, n)
	for i := range items {
		items[i] = json.RawMessage(fmt.Sprint(i))
	}
	if _, err := o.Start(context.Background(), db, ref, items, nil, time.Now()); err != nil {
		t.Fatal(err)
	}
}

// The last two batches commit before either settles (as two processes
// may on PostgreSQL): both find no batch left open, and exactly one
// completes the barrier and gathers. A batch delivered again counts none
// of its items twice.
func TestBatchesCountOnTheirRowsAndOneSettles(t *testing.T) {
	ctx := context.Background()
	db := migrated(t)
	o := Orchestrator{Plan: Plan{Batch: 4, FailureThreshold: 0.5}}
	ref := Ref{Run: "r", Asset: "a"}
	startScatter(t, db, o, ref, 10)
	for n := range 3 {
		from, to := o.Range(n)
		b, err := o.Store.PendingItems(ctx, db, ref, n, from, to)
		if err != nil || !b.ByBatch || !b.Running || len(b.Items) != min(to, 10)-from || b.Size != len(b.Items) {
			t.Fatalf("batch %d: %+v, %v", n, b, err)
		}
		if _, err := o.CommitBatch(ctx, db, ref, n, b.Size, results(from, min(to, 10), 5), true); err != nil {
			t.Fatal(err)
		}
	}
	// Batch 1 again: nothing new.
	if stored, _, err := o.Store.RecordBatch(ctx, db, ref, 1, 4, results(4, 8)); err != nil || stored != 0 {
		t.Fatalf("batch 1 recorded again: %d stored, %v", stored, err)
	}
	if b, err := o.Store.PendingItems(ctx, db, ref, 1, 4, 8); err != nil || len(b.Items) != 0 {
		t.Fatalf("batch 1 pending after its results: %+v, %v", b, err)
	}
	p, _, err := ProgressOf(ctx, db, ref)
	if err != nil || p.Done != 10 || p.Failed != 1 || p.Status != Running {
		t.Fatalf("progress %+v, %v; want 10 done, 1 failed, running", p, err)
	}
	for _, n := range []int{2, 1} {
		if settle, err := o.NeedsSettle(ctx, db, ref); err != nil || !settle {
			t.Fatalf("batch %d needs no settling: %v", n, err)
		}
	}
	done := 0
	for _, n := range []int{2, 1} {
		step, err := o.Settle(ctx, db, ref, n, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if step.Done {
			done++
			if string(step.Values) != "[0,10,20,30,40,60,70,80,90]" {
				t.Fatalf("gathered %s", step.Values)
			}
		}
	}
	if done != 1 {
		t.Fatalf("%d batches completed the barrier; want 1", done)
	}
	p, _, err = ProgressOf(ctx, db, ref)
	if err != nil || p.Done != 10 || p.Failed != 1 || p.Status != Completed {
		t.Fatalf("progress %+v, %v; want 10 done, 1 failed, completed", p, err)
	}
	if settle, err := o.NeedsSettle(ctx, db, ref); err != nil || settle {
		t.Fatalf("a completed barrier needs settling: %v", err)
	}
}

// Past the failure threshold the batch that crosses it fails the barrier,
// once; the batches after it find nothing to run.
func TestBatchPastThresholdFailsTheBarrierOnce(t *testing.T) {
	ctx := context.Background()
	db := migrated(t)
	o := Orchestrator{Plan: Plan{Batch: 2}}
	ref := Ref{Run: "r", Asset: "a"}
	startScatter(t, db, o, ref, 6)
	if stop, err := o.CommitBatch(ctx, db, ref, 0, 2, results(0, 1, 0), false); err != nil || !stop {
		t.Fatalf("a group past the threshold does not stop its batch: %v", err)
	}
	failed := 0
	for range 2 {
		step, err := o.Settle(ctx, db, ref, 0, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if step.Failed {
			failed++
		}
	}
	if failed != 1 {
		t.Fatalf("%d settles failed the barrier; want 1", failed)
	}
	if b, err := o.Store.PendingItems(ctx, db, ref, 1, 2, 4); err != nil || b.Running || len(b.Items) != 0 {
		t.Fatalf("batch 1 after the failure: %+v, %v", b, err)
	}
}

// Under max_concurrent a finished batch launches one successor, however
// often it settles.
func TestFinishedBatchClaimsOneSuccessor(t *testing.T) {
	ctx := context.Background()
	db := migrated(t)
	o := Orchestrator{Plan: Plan{Batch: 2, MaxConcurrent: 2}}
	ref := Ref{Run: "r", Asset: "a"}
	startScatter(t, db, o, ref, 6)
	if _, err := o.CommitBatch(ctx, db, ref, 0, 2, results(0, 2), true); err != nil {
		t.Fatal(err)
	}
	var next []Launch
	for range 2 {
		step, err := o.Settle(ctx, db, ref, 0, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		next = append(next, step.Next...)
	}
	if len(next) != 1 || next[0].Batch != 1 {
		t.Fatalf("launched %+v; want batch 1 once", next)
	}
}

// A scatter started before its batch rows counted (by_batch 0) still runs
// to completion by counting on its barrier.
func TestScatterCountedOnItsBarrierStillCompletes(t *testing.T) {
	ctx := context.Background()
	db := migrated(t)
	o := Orchestrator{Plan: Plan{Batch: 2}}
	ref := Ref{Run: "r", Asset: "a"}
	startScatter(t, db, o, ref, 4)
	if _, err := db.Exec(ctx, `UPDATE flowstone_scatter_barriers SET by_batch = 0`); err != nil {
		t.Fatal(err)
	}
	var last Step
	for n := range 2 {
		from, to := o.Range(n)
		b, err := o.Store.PendingItems(ctx, db, ref, n, from, to)
		if err != nil || b.ByBatch || len(b.Items) != 2 {
			t.Fatalf("batch %d: %+v, %v", n, b, err)
		}
		if last, err = o.Complete(ctx, db, ref, results(from, to), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if !last.Done || string(last.Values) != "[0,10,20,30]" {
		t.Fatalf("last step %+v", last)
	}
	if p, _, err := ProgressOf(ctx, db, ref); err != nil || p.Done != 4 || p.Status != Completed {
		t.Fatalf("progress %+v, %v", p, err)
	}
}
