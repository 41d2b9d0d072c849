package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/riverqueue/river/rivertype"
)

// The lock a suspect takes waits for the shared holders, lets no later
// holder in while it waits, and gives up when its context ends.
func TestSoloLock(t *testing.T) {
	t.Parallel()
	var l soloLock
	ctx := context.Background()
	r1, err := l.acquire(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := l.acquire(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	label := newID("lock_")
	got := make(chan func(), 1)
	later := make(chan func(), 1)
	pprof.Do(ctx, pprof.Labels("flowstone_test_engine", label), func(ctx context.Context) {
		go func() {
			r, err := l.acquire(ctx, true)
			if err != nil {
				t.Error(err)
			}
			got <- r
		}()
		waitForWaiter(t, "(*soloLock).acquire", label)
		// A shared holder that comes later waits behind the suspect.
		go func() {
			r, err := l.acquire(ctx, false)
			if err != nil {
				t.Error(err)
			}
			later <- r
		}()
	})
	r1()
	r1() // releasing twice is harmless
	select {
	case <-got:
		t.Fatal("exclusive while a shared holder remains")
	case <-later:
		t.Fatal("a later shared holder overtook the waiting suspect")
	default:
	}
	r2()
	excl := <-got
	select {
	case <-later:
		t.Fatal("shared while held exclusively")
	default:
	}
	excl()
	(<-later)()

	// A holder whose context ends lets go; a waiter whose context ends
	// gives up.
	hctx, hcancel := context.WithCancel(ctx)
	if _, err := l.acquire(hctx, false); err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer wcancel()
	if _, err := l.acquire(wctx, true); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiter whose context ended: %v; want deadline exceeded", err)
	}
	hcancel()
	r, err := l.acquire(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	r()
}

// waitForWaiter waits until a goroutine labelled label is blocked on the
// lock in fn.
func waitForWaiter(t *testing.T, fn, label string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		var buf bytes.Buffer
		_ = pprof.Lookup("goroutine").WriteTo(&buf, 1)
		for _, g := range strings.Split(buf.String(), "\n\n") {
			if strings.Contains(g, fn) && strings.Contains(g, "semaphore.(*Weighted).Acquire") &&
				strings.Contains(g, `"flowstone_test_engine":"`+label+`"`) {
				return
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no goroutine waits in %s", fn)
}

// soloCase is a run with a slow asset whose first attempt blocks, and a
// suspect: an asset whose node is running when its job is delivered, as
// if its last attempt's process had died. The suspect's job is held out
// of the queue until the slow asset runs, so that the suspect then waits
// for it.
type soloCase struct {
	slow     *slowAsset
	inflight atomic.Int32
	// alone is how many attempts ran at once when the suspect ran; -1
	// until it did.
	alone atomic.Int32
	p     *Pipeline
	cfg   Config
	run   string
	label string
	e     *Engine
	obs   *Engine
}

func newSoloCase(t *testing.T, db testDB) *soloCase {
	t.Helper()
	c := &soloCase{slow: newSlowAsset(), cfg: db.config(t)}
	c.alone.Store(-1)
	slow := c.slow.pipeline().Asset("slow").Run
	c.p = NewPipeline(PipelineDef{Name: "solo", Assets: []AssetDef{
		def("slow", func(ctx context.Context, in *Inputs) (any, error) {
			c.inflight.Add(1)
			defer c.inflight.Add(-1)
			return slow(ctx, in)
		}),
		def("suspect", func(ctx context.Context, in *Inputs) (any, error) {
			n := c.inflight.Add(1)
			defer c.inflight.Add(-1)
			c.alone.Store(n)
			return 1, nil
		}),
	}})
	ctx := context.Background()
	c.obs = openEngine(t, Config{Database: c.cfg.Database, Schema: c.cfg.Schema, NoWorkers: true})
	run, err := c.obs.Materialize(ctx, c.p, Request{})
	if err != nil {
		t.Fatal(err)
	}
	c.run = run.ID
	q := c.obs.be.pool()
	if _, err := q.Exec(ctx, `UPDATE flowstone_run_assets SET status = 'running', attempts = 1 WHERE run_id = ? AND asset = 'suspect'`, c.run); err != nil {
		t.Fatal(err)
	}
	var job int64
	for _, j := range listAllJobs(t, c.obs) {
		var args nodeJob
		if err := json.Unmarshal(j.EncodedArgs, &args); err == nil && args.Asset == "suspect" {
			job = j.ID
		}
	}
	// Held, and with its last attempt taken over from a dead process.
	taken := `'{"at":"2026-01-01T00:00:00Z","attempt":1,"error":"` + takeoverReason + ` for more than 2s"}'`
	errs := `json_array(json(` + taken + `))`
	if c.obs.dialect == "postgres" {
		errs = `ARRAY[` + taken + `::jsonb]`
	}
	if _, err := q.Exec(ctx, `UPDATE river_job SET queue = 'held', errors = `+errs+` WHERE id = ?`, job); err != nil {
		t.Fatal(err)
	}
	c.e, c.label = openLabelled(t, c.cfg, Bind(c.p, nil))
	<-c.slow.started
	if _, err := q.Exec(ctx, `UPDATE river_job SET queue = 'default' WHERE queue = 'held'`); err != nil {
		t.Fatal(err)
	}
	waitForWaiter(t, "(*Engine).workNode", c.label)
	return c
}

// node reads the suspect's node.
func (c *soloCase) node(t *testing.T) (status string, attempts, crashes int) {
	t.Helper()
	if err := c.obs.be.pool().QueryRow(context.Background(), `SELECT status, attempts, crashes FROM flowstone_run_assets
		WHERE run_id = ? AND asset = 'suspect'`, c.run).Scan(&status, &attempts, &crashes); err != nil {
		t.Fatal(err)
	}
	return status, attempts, crashes
}

// A suspect waits for the attempt running in its process, then runs
// alone; Close drains both.
func TestSuspectRunsAloneAndDrains(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		c := newSoloCase(t, db)
		closed := make(chan error, 1)
		go func() { closed <- c.e.Close(context.Background()) }()
		for !c.e.closed.Load() {
			time.Sleep(time.Millisecond)
		}
		if n := c.alone.Load(); n != -1 {
			t.Fatalf("the suspect ran next to the slow asset (%d running)", n)
		}
		close(c.slow.release)
		if err := <-closed; err != nil {
			t.Fatalf("Close: %v", err)
		}
		if n := c.alone.Load(); n != 1 {
			t.Fatalf("%d attempts running when the suspect ran; want 1 (alone)", n)
		}
		if status, attempts, crashes := c.node(t); status != "succeeded" || attempts != 2 || crashes != 1 {
			t.Fatalf("suspect: %s, %d attempts, %d crashes; want succeeded, 2, 1", status, attempts, crashes)
		}
		res, err := c.obs.Run(context.Background(), c.run)
		if err != nil {
			t.Fatal(err)
		}
		if res.Status != RunSucceeded {
			t.Fatalf("run %s: %v", res.Status, res.Counts())
		}
	})
}

// Close with a deadline interrupts a suspect that waits to run alone as
// it does the attempt it waits for; the suspect's crash counts once it
// runs, in the next process.
func TestCloseInterruptsWaitingSuspect(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		c := newSoloCase(t, db)
		ctx := context.Background()
		cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		if err := c.e.Close(cctx); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if left := engineGoroutines(c.label); len(left) > 0 {
			t.Fatalf("%d goroutines of the engine outlived Close:\n%s", len(left), strings.Join(left, "\n\n"))
		}
		if n := c.alone.Load(); n != -1 {
			t.Fatalf("the suspect ran (%d running)", n)
		}
		if status, attempts, crashes := c.node(t); status != "running" || attempts != 1 || crashes != 0 {
			t.Fatalf("suspect after Close: %s, %d attempts, %d crashes; want running, 1, 0", status, attempts, crashes)
		}
		e2 := openEngine(t, c.cfg, Bind(c.p, nil))
		res := waitRun(t, e2, c.run)
		if res.Status != RunSucceeded {
			t.Fatalf("run %s: %v", res.Status, res.Counts())
		}
		if n := c.alone.Load(); n != 1 {
			t.Fatalf("%d attempts running when the suspect ran; want 1 (alone)", n)
		}
		if status, attempts, crashes := c.node(t); status != "succeeded" || attempts != 2 || crashes != 1 {
			t.Fatalf("suspect: %s, %d attempts, %d crashes; want succeeded, 2, 1", status, attempts, crashes)
		}
	})
}

// Only a job whose last attempt was taken over, or rescued by River, had
// a process die under it; one whose attempt returned an error did not.
func TestLastAttemptDied(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		errs []string
		want bool
	}{
		{nil, false},
		{[]string{"record x: database is locked"}, false},
		{[]string{takeoverReason + " for more than 30s"}, true},
		{[]string{riverRescueReason}, true},
		{[]string{takeoverReason + " for more than 30s", "boom"}, false},
	} {
		job := &rivertype.JobRow{}
		for i, e := range c.errs {
			job.Errors = append(job.Errors, rivertype.AttemptError{Attempt: i + 1, Error: e})
		}
		if got := lastAttemptDied(job); got != c.want {
			t.Errorf("errors %q: died %v; want %v", c.errs, got, c.want)
		}
	}
}
