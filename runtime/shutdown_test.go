package runtime

import (
	"bytes"
	"context"
	"fmt"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/riverqueue/river/rivertype"
)

// slowAsset is an asset whose first attempt blocks until released or
// until its context ends; later attempts return at once.
type slowAsset struct {
	started  chan struct{} // closed when the first attempt starts
	release  chan struct{} // closed to let the first attempt finish
	calls    atomic.Int32
	returned atomic.Int32
}

func newSlowAsset() *slowAsset {
	return &slowAsset{started: make(chan struct{}), release: make(chan struct{})}
}

func (s *slowAsset) pipeline() *Pipeline {
	return NewPipeline(PipelineDef{Name: "shutdown", Assets: []AssetDef{
		def("slow", func(ctx context.Context, _ *Inputs) (any, error) {
			defer s.returned.Add(1)
			if s.calls.Add(1) > 1 {
				return 2, nil
			}
			close(s.started)
			select {
			case <-s.release:
				return 1, nil
			case <-ctx.Done():
				return nil, fmt.Errorf("slow: %w", ctx.Err())
			}
		}),
		def("after", func(ctx context.Context, in *Inputs) (any, error) {
			return Input[int](ctx, in, "slow")
		}, on("slow")),
	}})
}

// openLabelled opens an engine whose goroutines, and those they start,
// carry a profiler label unique to the test, so that engineGoroutines
// finds them among those of the tests running in parallel.
func openLabelled(t *testing.T, cfg Config, bindings ...Binding) (*Engine, string) {
	t.Helper()
	label := newID("engine_")
	var e *Engine
	var err error
	pprof.Do(context.Background(), pprof.Labels("flowstone_test_engine", label), func(ctx context.Context) {
		e, err = Open(ctx, fastConfig(cfg), bindings...)
	})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return e, label
}

// engineGoroutines returns the stacks of the goroutines labelled label,
// once no such goroutine is left or after a few seconds: a goroutine
// that returned may take a moment to leave the profile.
func engineGoroutines(label string) []string {
	for wait := time.Millisecond; ; wait *= 2 {
		var buf bytes.Buffer
		_ = pprof.Lookup("goroutine").WriteTo(&buf, 1)
		var left []string
		for _, g := range strings.Split(buf.String(), "\n\n") {
			if strings.Contains(g, `"flowstone_test_engine":"`+label+`"`) {
				left = append(left, g)
			}
		}
		if len(left) == 0 || wait > 2*time.Second {
			return left
		}
		time.Sleep(wait)
	}
}

// Close with a deadline shorter than a running job cancels it, waits for
// it to return, records its attempt as interrupted and leaves no
// goroutine behind; another engine then completes the asset once.
func TestCloseWithDeadlineInterruptsRunningJobs(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		cfg := db.config(t)
		slow := newSlowAsset()
		p := slow.pipeline()
		e1, label := openLabelled(t, cfg, Bind(p, nil))
		if n := len(engineGoroutines(label)); n == 0 {
			t.Fatal("no goroutine carries the engine's label: the leak check below would prove nothing")
		}
		run, err := e1.Materialize(ctx, p, Request{})
		if err != nil {
			t.Fatal(err)
		}
		<-slow.started

		cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		if err := e1.Close(cctx); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if slow.returned.Load() != 1 {
			t.Fatal("Close returned before the running job did")
		}
		if left := engineGoroutines(label); len(left) > 0 {
			t.Fatalf("%d goroutines of the engine outlived Close:\n%s", len(left), strings.Join(left, "\n\n"))
		}

		observer := openEngine(t, Config{Database: cfg.Database, Schema: cfg.Schema, NoWorkers: true})
		r, err := observer.Run(ctx, run.ID)
		if err != nil {
			t.Fatal(err)
		}
		if a := r.Assets["slow"]; a.Status != StatusQueued || a.Error != interruptedMsg || a.Attempts != 1 {
			t.Fatalf("slow after Close: %s %q, %d attempts; want queued %q, 1 attempt", a.Status, a.Error, a.Attempts, interruptedMsg)
		}
		for _, j := range listAllJobs(t, observer) {
			if j.State != rivertype.JobStateAvailable || j.Attempt != 0 {
				t.Fatalf("job %d (%s) after Close: %s, attempt %d; want available with its attempt given back", j.ID, j.Kind, j.State, j.Attempt)
			}
		}

		e2 := openEngine(t, cfg, Bind(p, nil))
		res := waitRun(t, e2, run.ID)
		if res.Status != RunSucceeded {
			t.Fatalf("run %s: %v", res.Status, res.Counts())
		}
		if a := res.Assets["slow"]; a.Attempts != 2 || a.Error != "" {
			t.Fatalf("slow: %d attempts, error %q; want 2 (one interrupted), none", a.Attempts, a.Error)
		}
		if n := slow.calls.Load(); n != 2 {
			t.Fatalf("slow ran %d times; want twice (interrupted, then done)", n)
		}
		checkOneSuccessEach(t, observer.be.pool(), run.ID, 2)
	})
}

// Close without a deadline waits for the running job, whose success is
// recorded, and leaves no goroutine behind.
func TestCloseWithoutDeadlineWaitsForRunningJobs(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		cfg := db.config(t)
		slow := newSlowAsset()
		p := slow.pipeline()
		e1, label := openLabelled(t, cfg, Bind(p, nil))
		run, err := e1.Materialize(ctx, p, Request{})
		if err != nil {
			t.Fatal(err)
		}
		<-slow.started

		closed := make(chan error, 1)
		go func() { closed <- e1.Close(ctx) }()
		for !e1.closed.Load() {
			time.Sleep(time.Millisecond)
		}
		close(slow.release) // the job ends once Close is under way
		if err := <-closed; err != nil {
			t.Fatalf("Close: %v", err)
		}
		if left := engineGoroutines(label); len(left) > 0 {
			t.Fatalf("%d goroutines of the engine outlived Close:\n%s", len(left), strings.Join(left, "\n\n"))
		}

		observer := openEngine(t, Config{Database: cfg.Database, Schema: cfg.Schema, NoWorkers: true})
		r, err := observer.Run(ctx, run.ID)
		if err != nil {
			t.Fatal(err)
		}
		if a := r.Assets["slow"]; a.Status != StatusSucceeded || a.Attempts != 1 {
			t.Fatalf("slow after Close: %s, %d attempts, error %q; want succeeded at its first attempt", a.Status, a.Attempts, a.Error)
		}
		if slow.calls.Load() != 1 {
			t.Fatalf("slow ran %d times; want once", slow.calls.Load())
		}
	})
}
