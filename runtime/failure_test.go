package runtime

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone"
)

func TestRetriesThenSucceeds(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		var tries atomic.Int64
		flaky := def("flaky", func(ctx context.Context, in *Inputs) (any, error) {
			if tries.Add(1) < 3 {
				return nil, errors.New("transient")
			}
			return "ok", nil
		})
		flaky.Retries = 2
		p := NewPipeline(PipelineDef{Name: "retry", Assets: []AssetDef{flaky}})
		e := openEngine(t, db.config(t), Bind(p, nil))
		run, err := e.Materialize(context.Background(), p, Request{})
		if err != nil {
			t.Fatal(err)
		}
		res := waitRun(t, e, run.ID)
		if res.Status != RunSucceeded || res.Assets["flaky"].Attempts != 3 {
			t.Fatalf("status %s attempts %d, want succeeded after 3", res.Status, res.Assets["flaky"].Attempts)
		}
	})
}

func TestFinalFailureMarksDependentsUpstreamFailed(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		var downstreamRan atomic.Bool
		broken := def("broken", func(ctx context.Context, in *Inputs) (any, error) {
			return nil, errors.New("disk on fire")
		})
		broken.Retries = 1
		p := NewPipeline(PipelineDef{Name: "fail", Assets: []AssetDef{
			broken,
			def("after", func(ctx context.Context, in *Inputs) (any, error) {
				downstreamRan.Store(true)
				return 1, nil
			}, on("broken")),
			def("later", func(ctx context.Context, in *Inputs) (any, error) { return 2, nil }, on("after")),
			def("join", func(ctx context.Context, in *Inputs) (any, error) {
				o := InputOutcome[string](ctx, in, "broken")
				if o.Err == nil || !strings.Contains(o.Err.Error(), "disk on fire") {
					return nil, errors.New("join saw no error")
				}
				return "joined", nil
			}, Dep{Asset: "broken", Kind: DepOutcome}),
		}})
		e := openEngine(t, db.config(t), Bind(p, nil))
		run, err := e.Materialize(context.Background(), p, Request{})
		if err != nil {
			t.Fatal(err)
		}
		res := waitRun(t, e, run.ID)
		want := map[string]AssetStatus{"broken": StatusFailed, "after": StatusUpstreamFailed, "later": StatusUpstreamFailed, "join": StatusSucceeded}
		for k, st := range want {
			if res.Assets[k].Status != st {
				t.Errorf("%s = %s (%s), want %s", k, res.Assets[k].Status, res.Assets[k].Error, st)
			}
		}
		if res.Status != RunFailed {
			t.Errorf("run = %s, want failed", res.Status)
		}
		if res.Assets["broken"].Attempts != 2 || res.Assets["broken"].Error != "disk on fire" {
			t.Errorf("broken: attempts %d error %q", res.Assets["broken"].Attempts, res.Assets["broken"].Error)
		}
		if !strings.Contains(res.Assets["after"].Error, "broken") {
			t.Errorf("after's error %q does not name broken", res.Assets["after"].Error)
		}
		if downstreamRan.Load() {
			t.Error("a dependent of a failed asset ran")
		}
		ms, err := e.Materializations(context.Background(), "fail", "broken", 5)
		if err != nil || len(ms) != 1 || ms[0].Status != "failed" || ms[0].Attempts != 2 {
			t.Errorf("failed materialization not recorded: %+v %v", ms, err)
		}
	})
}

func TestPermanentFailsWithoutRetry(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		var tries atomic.Int64
		a := def("a", func(ctx context.Context, in *Inputs) (any, error) {
			tries.Add(1)
			return nil, flowstone.Permanent(errors.New("bad row 7"))
		})
		a.Retries = 5
		p := NewPipeline(PipelineDef{Name: "perm", Assets: []AssetDef{a}})
		e := openEngine(t, db.config(t), Bind(p, nil))
		run, _ := e.Materialize(context.Background(), p, Request{})
		res := waitRun(t, e, run.ID)
		if res.Status != RunFailed || tries.Load() != 1 {
			t.Fatalf("status %s after %d tries; want failed after 1", res.Status, tries.Load())
		}
	})
}

func TestPanicIsRecordedWithStack(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		p := NewPipeline(PipelineDef{Name: "panics", Assets: []AssetDef{
			def("boom", func(ctx context.Context, in *Inputs) (any, error) {
				var m map[string]int
				m["x"] = 1 // nil map write
				return nil, nil
			}),
		}})
		e := openEngine(t, db.config(t), Bind(p, nil))
		run, _ := e.Materialize(context.Background(), p, Request{})
		res := waitRun(t, e, run.ID)
		msg := res.Assets["boom"].Error
		if res.Assets["boom"].Status != StatusFailed || !strings.Contains(msg, "panic: assignment to entry in nil map") || !strings.Contains(msg, "failure_test.go") {
			t.Fatalf("boom: %s %q", res.Assets["boom"].Status, msg)
		}
	})
}

func TestTimeoutFailsTheAttempt(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		slow := def("slow", func(ctx context.Context, in *Inputs) (any, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		})
		slow.Timeout = 200 * time.Millisecond
		p := NewPipeline(PipelineDef{Name: "timeout", Assets: []AssetDef{slow}})
		e := openEngine(t, db.config(t), Bind(p, nil))
		run, _ := e.Materialize(context.Background(), p, Request{})
		res := waitRun(t, e, run.ID)
		if res.Assets["slow"].Status != StatusFailed || !strings.Contains(res.Assets["slow"].Error, "timed out after 200ms") {
			t.Fatalf("slow: %s %q", res.Assets["slow"].Status, res.Assets["slow"].Error)
		}
	})
}

func TestSkipPropagatesAndOutcomeSeesIt(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		p := NewPipeline(PipelineDef{Name: "skips", Assets: []AssetDef{
			def("maybe", func(ctx context.Context, in *Inputs) (any, error) { return nil, flowstone.Skip("closed on Sundays") }),
			def("needs", func(ctx context.Context, in *Inputs) (any, error) { return 1, nil }, on("maybe")),
			def("tolerates", func(ctx context.Context, in *Inputs) (any, error) {
				if o := InputOutcome[int](ctx, in, "maybe"); !o.Skipped {
					return nil, errors.New("want Skipped")
				}
				return 2, nil
			}, Dep{Asset: "maybe", Kind: DepOutcome}),
		}})
		e := openEngine(t, db.config(t), Bind(p, nil))
		run, _ := e.Materialize(context.Background(), p, Request{})
		res := waitRun(t, e, run.ID)
		if res.Status != RunSucceeded {
			t.Errorf("run %s, want succeeded (skips are not failures)", res.Status)
		}
		for k, st := range map[string]AssetStatus{"maybe": StatusSkipped, "needs": StatusSkipped, "tolerates": StatusSucceeded} {
			if res.Assets[k].Status != st {
				t.Errorf("%s = %s (%s), want %s", k, res.Assets[k].Status, res.Assets[k].Error, st)
			}
		}
	})
}
