package runtime

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// A job the database records as running under this process since before
// an outage began, and that the process is not working (River's fetch
// committed and the outage took its answer), is put back in the queue
// with why; the jobs it is working, those of other processes and those
// fetched after the outage began are left alone.
func TestJobsWhoseFetchAnOutageLostAreTakenBack(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		if db.name != "postgres" {
			t.Skip("PostgreSQL only: an embedded database's answers are not lost in an outage")
		}
		ctx := context.Background()
		p := NewPipeline(PipelineDef{Name: "orphans", Assets: []AssetDef{def("a", func(ctx context.Context, in *Inputs) (any, error) { return 1, nil })}})
		e := openEngine(t, db.config(t), Bind(p, nil))
		self, q := e.be.clientID(), e.be.pool()
		began := time.Now()
		// A job of a kind nobody works, so that River leaves it where the
		// test puts it.
		running := func(by string, at time.Time) int64 {
			t.Helper()
			var id int64
			if err := q.QueryRow(ctx, `INSERT INTO river_job (args, kind, max_attempts, queue, state, attempt, attempted_at, attempted_by, scheduled_at, priority)
				VALUES ('{}', 'flowstone.test.orphan', 25, 'default', 'running', 1, ?, ARRAY[?]::text[], ?, 1) RETURNING id`, at, by, at).Scan(&id); err != nil {
				t.Fatal(err)
			}
			return id
		}
		lost := running(self, began.Add(-time.Minute))
		worked := running(self, began.Add(-time.Minute))
		e.working.add(worked)
		others := running("proc_other", began.Add(-time.Minute))
		later := running(self, began.Add(time.Second))

		if err := e.takeBackOrphans(ctx, self, began); err != nil {
			t.Fatal(err)
		}
		for id, want := range map[int64]string{lost: "available", worked: "running", others: "running", later: "running"} {
			var state, errs string
			if err := q.QueryRow(ctx, `SELECT state, COALESCE(array_to_string(errors, ' '), '') FROM river_job WHERE id = ?`, id).Scan(&state, &errs); err != nil {
				t.Fatal(err)
			}
			if state != want {
				t.Errorf("job %d: %s, want %s", id, state, want)
			}
			if id == lost && !strings.Contains(errs, "database outage took the fetch's answer") {
				t.Errorf("job put back records %q", errs)
			}
		}
	})
}

// The outage that ended is handed out once, with when it began.
func TestOutageEndedOnce(t *testing.T) {
	o := newOutage(slog.New(slog.DiscardHandler))
	if _, ok := o.ended(); ok {
		t.Fatal("an outage ended before any began")
	}
	o.down(context.DeadlineExceeded)
	o.up()
	if began, ok := o.ended(); !ok || began.IsZero() {
		t.Fatalf("ended: %v, %v", began, ok)
	}
	if _, ok := o.ended(); ok {
		t.Fatal("the same outage ended twice")
	}
}
