package scatter

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone/internal/testdb"
	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"
)

// sqlDB adapts database/sql to DB; on PostgreSQL (pg) it rewrites ?
// placeholders to $1, $2, ...
type sqlDB struct {
	db *sql.DB
	pg bool
}

func (d sqlDB) bind(q string) string {
	if !d.pg {
		return q
	}
	var b strings.Builder
	n := 0
	for _, c := range q {
		if c == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

func (d sqlDB) Exec(ctx context.Context, q string, args ...any) (int64, error) {
	r, err := d.db.ExecContext(ctx, d.bind(q), args...)
	if err != nil {
		return 0, err
	}
	return r.RowsAffected()
}

func (d sqlDB) Query(ctx context.Context, q string, args ...any) (Rows, error) {
	rs, err := d.db.QueryContext(ctx, d.bind(q), args...)
	if err != nil {
		return nil, err
	}
	return sqlRows{rs}, nil
}

func (d sqlDB) QueryRow(ctx context.Context, q string, args ...any) Row {
	return d.db.QueryRowContext(ctx, d.bind(q), args...)
}

type sqlRows struct{ *sql.Rows }

func (r sqlRows) Close() { _ = r.Rows.Close() }

// eachDB runs fn on a fresh SQLite database with the store's migrations,
// and on a fresh PostgreSQL schema when FLOWSTONE_TEST_DATABASE_URL is set.
func eachDB(t *testing.T, fn func(t *testing.T, db sqlDB)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, migrated(t)) })
	if pg, ok := testdb.Postgres(t); ok {
		t.Run("postgres", func(t *testing.T) {
			url, schema := pg.New(t)
			admin, err := sql.Open("pgx", url)
			if err != nil {
				t.Fatal(err)
			}
			defer admin.Close()
			if _, err := admin.Exec(`CREATE SCHEMA ` + schema); err != nil {
				t.Fatal(err)
			}
			sep := "?"
			if strings.Contains(url, "?") {
				sep = "&"
			}
			db, err := sql.Open("pgx", url+sep+"search_path="+schema)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			fn(t, migrate(t, sqlDB{db: db, pg: true}))
		})
	}
}

// migrated opens a fresh SQLite database with the store's migrations.
func migrated(t testing.TB) sqlDB {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "scatter.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return migrate(t, sqlDB{db: db})
}

// migrate applies the store's migrations to db.
func migrate(t testing.TB, d sqlDB) sqlDB {
	t.Helper()
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
		if _, err := d.db.Exec(string(data)); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	return d
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

// pending reads batch n's pending items.
func pending(t *testing.T, db DB, o Orchestrator, ref Ref, n int) Batch {
	t.Helper()
	from, to := o.Range(n)
	b, err := o.Store.PendingItems(context.Background(), db, ref, n, from, to)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func startScatter(t testing.TB, db DB, o Orchestrator, ref Ref, n int) {
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
	eachDB(t, func(t *testing.T, db sqlDB) {
		o := Orchestrator{Plan: Plan{Batch: 4, FailureThreshold: 0.5}}
		ref := Ref{Run: "r", Asset: "a"}
		startScatter(t, db, o, ref, 10)
		for n := range 3 {
			from, to := o.Range(n)
			b, err := o.Store.PendingItems(ctx, db, ref, n, from, to)
			if err != nil || b.Layout != BatchRows || !b.Running || len(b.Items) != min(to, 10)-from || b.Size != len(b.Items) {
				t.Fatalf("batch %d: %+v, %v", n, b, err)
			}
			if _, err := o.CommitBatch(ctx, db, ref, b, results(from, min(to, 10), 5), true); err != nil {
				t.Fatal(err)
			}
		}
		// Batch 1 again: nothing new.
		if stored, _, err := o.Store.RecordBatch(ctx, db, ref, Batch{N: 1, From: 4, Size: 4, Layout: BatchRows}, results(4, 8)); err != nil || stored != 0 {
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
	})
}

// Past the failure threshold the batch that crosses it fails the barrier,
// once; the batches after it find nothing to run.
func TestBatchPastThresholdFailsTheBarrierOnce(t *testing.T) {
	ctx := context.Background()
	eachDB(t, func(t *testing.T, db sqlDB) {
		o := Orchestrator{Plan: Plan{Batch: 2}}
		ref := Ref{Run: "r", Asset: "a"}
		startScatter(t, db, o, ref, 6)
		if stop, err := o.CommitBatch(ctx, db, ref, pending(t, db, o, ref, 0), results(0, 1, 0), false); err != nil || !stop {
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
	})
}

// Under max_concurrent a finished batch launches one successor, however
// often it settles.
func TestFinishedBatchClaimsOneSuccessor(t *testing.T) {
	ctx := context.Background()
	eachDB(t, func(t *testing.T, db sqlDB) {
		o := Orchestrator{Plan: Plan{Batch: 2, MaxConcurrent: 2}}
		ref := Ref{Run: "r", Asset: "a"}
		startScatter(t, db, o, ref, 6)
		if _, err := o.CommitBatch(ctx, db, ref, pending(t, db, o, ref, 0), results(0, 2), true); err != nil {
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
	})
}

// A scatter started before its batch rows counted (by_batch 0) still runs
// to completion by counting on its barrier.
func TestScatterCountedOnItsBarrierStillCompletes(t *testing.T) {
	ctx := context.Background()
	eachDB(t, func(t *testing.T, db sqlDB) {
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
			if err != nil || b.Layout != OnBarrier || len(b.Items) != 2 {
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
	})
}

// Two deliveries of a batch at once (a worker taken over while still
// running) each commit what they ran: the results are appended once, in
// item order, counted once, and each delivery's next read starts after
// them.
func TestConcurrentDeliveriesOfABatchRecordEachItemOnce(t *testing.T) {
	ctx := context.Background()
	eachDB(t, func(t *testing.T, db sqlDB) {
		o := Orchestrator{Plan: Plan{Batch: 5, FailureThreshold: 1}}
		ref := Ref{Run: "r", Asset: "a"}
		startScatter(t, db, o, ref, 5)
		a, b := pending(t, db, o, ref, 0), pending(t, db, o, ref, 0)
		for _, step := range []struct {
			b              Batch
			from, to, want int
		}{
			{a, 0, 2, 2}, // a records 0 and 1
			{b, 0, 3, 1}, // b ran 0 to 2: only 2 is new
			{a, 2, 4, 1}, // a ran 2 and 3: only 3 is new
		} {
			stored, _, err := o.Store.RecordBatch(ctx, db, ref, step.b, results(step.from, step.to, 1))
			if err != nil || stored != step.want {
				t.Fatalf("items %d to %d: %d stored, %v; want %d", step.from, step.to-1, stored, err, step.want)
			}
		}
		if got := pending(t, db, o, ref, 0); len(got.Items) != 1 || got.Items[0].Index != 4 {
			t.Fatalf("pending after 4 recorded: %+v", got.Items)
		}
		if _, err := o.CommitBatch(ctx, db, ref, b, results(3, 5, 1), true); err != nil {
			t.Fatal(err)
		}
		p, _, err := ProgressOf(ctx, db, ref)
		if err != nil || p.Done != 5 || p.Failed != 1 {
			t.Fatalf("progress %+v, %v; want 5 done, 1 failed", p, err)
		}
		step, err := o.Settle(ctx, db, ref, 0, time.Now())
		if err != nil || !step.Done || string(step.Values) != "[0,20,30,40]" ||
			string(step.Outcomes) != `[{"value":0},{"value":null,"error":"item 1 failed"},{"value":20},{"value":30},{"value":40}]` {
			t.Fatalf("step %+v, %v", step, err)
		}
		var got []int
		if err := Records(ctx, db, "r", func(r ItemRecord) error {
			got = append(got, r.Index)
			if r.Attempts != 1 || r.Key != fmt.Sprint(r.Index) || r.Started.IsZero() {
				t.Errorf("record %+v", r)
			}
			return nil
		}); err != nil || fmt.Sprint(got) != "[0 1 2 3 4]" {
			t.Fatalf("records of items %v, %v", got, err)
		}
	})
}

// A scatter started before migration 004 (by_batch 1: results in item
// rows) and still running after the upgrade finishes as it started: its
// results go to item rows, a batch delivered again counts nothing twice,
// and the gather, the failure's first item and Records read the item rows.
func TestScatterStartedWithItemRowsFinishesAfterTheUpgrade(t *testing.T) {
	ctx := context.Background()
	eachDB(t, func(t *testing.T, db sqlDB) {
		o := Orchestrator{Plan: Plan{Batch: 3, FailureThreshold: 0.5}}
		ref := Ref{Run: "r", Asset: "a"}
		startScatter(t, db, o, ref, 7)
		if _, err := db.Exec(ctx, `UPDATE flowstone_scatter_barriers SET by_batch = 1`); err != nil {
			t.Fatal(err)
		}
		for n := range 3 {
			b := pending(t, db, o, ref, n)
			if b.Layout != ItemRows {
				t.Fatalf("batch %d: layout %d", n, b.Layout)
			}
			from := b.Items[0].Index
			if _, err := o.CommitBatch(ctx, db, ref, b, results(from, from+len(b.Items), 4), true); err != nil {
				t.Fatal(err)
			}
			if n == 1 { // delivered again
				if _, err := o.CommitBatch(ctx, db, ref, b, results(from, from+len(b.Items), 4), true); err != nil {
					t.Fatal(err)
				}
			}
		}
		var rows int
		var withResults int
		if err := db.QueryRow(ctx, `SELECT (SELECT count(*) FROM flowstone_scatter_items),
		(SELECT count(*) FROM flowstone_scatter_batches WHERE results IS NOT NULL)`).Scan(&rows, &withResults); err != nil || rows != 7 || withResults != 0 {
			t.Fatalf("%d item rows, %d batches with results, %v; want 7 and 0", rows, withResults, err)
		}
		if idx, msg, ok, err := o.Store.FirstError(ctx, db, ref, ItemRows); err != nil || !ok || idx != 4 || msg != "item 4 failed" {
			t.Fatalf("first error: %d %q %v %v", idx, msg, ok, err)
		}
		step, err := o.Settle(ctx, db, ref, 2, time.Now())
		if err != nil || !step.Done || string(step.Values) != "[0,10,20,30,50,60]" ||
			!strings.Contains(string(step.Outcomes), `{"value":30},{"value":null,"error":"item 4 failed"},{"value":50}`) {
			t.Fatalf("step %+v, %v", step, err)
		}
		n := 0
		if err := Records(ctx, db, "r", func(r ItemRecord) error {
			if r.Index != n || (r.Status == ItemFailed) != (n == 4) {
				t.Errorf("record %d: %+v", n, r)
			}
			n++
			return nil
		}); err != nil || n != 7 {
			t.Fatalf("%d records, %v", n, err)
		}
	})
}

// A batch's job carries its items from Start (keys too): the batch its
// first delivery builds from them is the one a read of its row returns,
// and a first delivery racing a redelivery of its job (which reads its
// row) still records each item once. Items over CarryLimit are not
// carried.
func TestCarriedBatchIsTheReadOneAndCountsOnce(t *testing.T) {
	ctx := context.Background()
	eachDB(t, func(t *testing.T, db sqlDB) {
		o := Orchestrator{Plan: Plan{Batch: 3, FailureThreshold: 1}}
		ref := Ref{Run: "r", Asset: "a"}
		items := []json.RawMessage{json.RawMessage(`"a"`), json.RawMessage(`"b"`), json.RawMessage(`"c"`),
			json.RawMessage(`"d"`), json.RawMessage(`"` + strings.Repeat("e", CarryLimit) + `"`)}
		keys := []string{"ka", "kb", "kc", "kd", "ke"}
		launches, err := o.Start(ctx, db, ref, items, keys, time.Now())
		if err != nil || len(launches) != 2 {
			t.Fatalf("launches %+v, %v", launches, err)
		}
		if launches[1].Items != nil || launches[1].Keys != nil {
			t.Fatalf("batch 1 over CarryLimit carries %d items", len(launches[1].Items))
		}
		first, ok := o.Carried(0, launches[0].Items, launches[0].Keys)
		if read := pending(t, db, o, ref, 0); !ok || fmt.Sprint(first) != fmt.Sprint(read) {
			t.Fatalf("carried %+v, %v\nread    %+v", first, ok, read)
		}
		if _, ok := o.Carried(0, launches[0].Items, keys); ok {
			t.Fatal("carried with 5 keys for 3 items")
		}
		// The redelivery reads the row before either records, and records
		// items 0 and 1; the first delivery then records all three.
		again := pending(t, db, o, ref, 0)
		if stored, _, err := o.Store.RecordBatch(ctx, db, ref, again, results(0, 2)); err != nil || stored != 2 {
			t.Fatalf("redelivery: %d stored, %v", stored, err)
		}
		if stored, _, err := o.Store.RecordBatch(ctx, db, ref, first, results(0, 3)); err != nil || stored != 1 {
			t.Fatalf("first delivery: %d stored, %v; want 1", stored, err)
		}
		if p, _, err := ProgressOf(ctx, db, ref); err != nil || p.Done != 3 {
			t.Fatalf("progress %+v, %v; want 3 done", p, err)
		}
	})
}
