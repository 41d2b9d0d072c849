package runtime

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// autoPipeline: hourly events under an eager daily rollup, a daily raw
// under an eager daily clean, and a daily asset auto=missing fills from
// four days ago. gate, when not nil, holds clean until it is closed.
func autoPipeline(gate chan struct{}) *Pipeline {
	hours := flowstone.Hourly("2024-01-01T00")
	days := flowstone.Daily("2024-01-01")
	events := def("events", func(ctx context.Context, in *Inputs) (any, error) { return 1, nil })
	events.Partitions = hours
	rollup := def("rollup", func(ctx context.Context, in *Inputs) (any, error) {
		hs, err := InputPartitions[int](ctx, in, "events")
		return len(hs), err
	}, Dep{Asset: "events", Kind: DepPartitions})
	rollup.Partitions, rollup.Auto = days, AutoEager
	raw := def("raw", func(ctx context.Context, in *Inputs) (any, error) { return string(in.Partition()), nil })
	raw.Partitions = days
	clean := def("clean", func(ctx context.Context, in *Inputs) (any, error) {
		if gate != nil {
			select {
			case <-gate:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		return Input[string](ctx, in, "raw")
	}, on("raw"))
	clean.Partitions, clean.Auto = days, AutoEager
	start := time.Now().UTC().AddDate(0, 0, -4).Format("2006-01-02")
	filled := def("filled", func(ctx context.Context, in *Inputs) (any, error) { return string(in.Partition()), nil })
	filled.Partitions, filled.Auto = flowstone.Daily(start), AutoMissing
	return NewPipeline(PipelineDef{Name: "auto", Assets: []AssetDef{events, rollup, raw, clean, filled}})
}

// evaluate evaluates automation as a leader would now, with the
// materializations that just finished past the settling delay.
func evaluate(t *testing.T, e *Engine) {
	t.Helper()
	if err := e.evaluateAutomation(context.Background(), time.Now().Add(automationSettle)); err != nil {
		t.Fatal(err)
	}
}

func materializeWait(t *testing.T, e *Engine, p *Pipeline, req Request) RunResult {
	t.Helper()
	run, err := e.Materialize(context.Background(), p, req)
	if err != nil {
		t.Fatal(err)
	}
	res := waitRun(t, e, run.ID)
	if res.Status != RunSucceeded {
		t.Fatalf("run %s: %s", run.ID, res.Status)
	}
	return res
}

// decisions returns the pipeline's decisions of asset by outcome, oldest
// first.
func decisions(t *testing.T, e *Engine, asset string) map[AutomationOutcome][]AutomationDecision {
	t.Helper()
	ds, err := e.AutomationDecisions(context.Background(), DecisionFilter{Pipeline: "auto", Asset: asset, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	out := map[AutomationOutcome][]AutomationDecision{}
	for i := len(ds) - 1; i >= 0; i-- {
		out[ds[i].Decision] = append(out[ds[i].Decision], ds[i])
	}
	return out
}

func automatedRuns(t *testing.T, e *Engine) []FoundRun {
	t.Helper()
	runs, err := e.FindRuns(context.Background(), RunFilter{Pipeline: "auto", StartedBy: StartedByAutomation, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return runs
}

func waitAutomated(t *testing.T, e *Engine) {
	t.Helper()
	for _, r := range automatedRuns(t, e) {
		if res := waitRun(t, e, r.ID); res.Status != RunSucceeded {
			t.Fatalf("automated run %s: %s", r.ID, res.Status)
		}
	}
}

// A new materialization of raw launches clean for its day, once, and
// hourly events launch the rollup of their days; nothing is launched again
// by later evaluations or after a restart.
func TestAutomationEager(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		cfg := db.config(t)
		cfg.AutomationInterval = -1 // evaluated by hand
		p := autoPipeline(nil)
		e := openEngine(t, cfg, Bind(p, nil))
		evaluate(t, e) // the first evaluation starts the cursor
		waitAutomated(t, e)
		before := len(automatedRuns(t, e)) // auto=missing's

		materializeWait(t, e, p, Request{Targets: []string{"raw"}, Partition: "2024-01-02"})
		for _, h := range []flowstone.Partition{"2024-01-03T05", "2024-01-03T06", "2024-01-04T01"} {
			materializeWait(t, e, p, Request{Targets: []string{"events"}, Partition: h})
		}
		evaluate(t, e)
		runs := automatedRuns(t, e)
		if len(runs)-before != 3 {
			t.Fatalf("%d automated runs; want 3 (clean 2024-01-02, rollup 2024-01-03 and 2024-01-04)", len(runs)-before)
		}
		waitAutomated(t, e)
		clean := decisions(t, e, "clean")[AutomationLaunched]
		if len(clean) != 1 || clean[0].Partition != "2024-01-02" || !strings.HasPrefix(clean[0].Reason, "raw 2024-01-02 materialized (mat_") {
			t.Fatalf("clean launched: %+v", clean)
		}
		rollup := decisions(t, e, "rollup")[AutomationLaunched]
		if len(rollup) != 2 || rollup[0].Partition != "2024-01-03" || rollup[1].Partition != "2024-01-04" ||
			!strings.HasPrefix(rollup[0].Reason, "events: 2 new materializations, the newest events 2024-01-03T06 (mat_") {
			t.Fatalf("rollup launched: %+v", rollup)
		}
		for _, d := range append(clean, rollup...) {
			found := false
			for _, r := range runs {
				found = found || r.ID == d.RunID && r.StartedBy == StartedByAutomation
			}
			if !found {
				t.Fatalf("decision %+v names no automated run", d)
			}
		}
		if v, err := Load[int](context.Background(), e, "auto", "rollup", "2024-01-03"); err != nil || v != 24 {
			t.Fatalf("rollup 2024-01-03 = %v, %v; want the day's 24 hours", v, err)
		}

		// The automated runs' own materializations (the hours the rollup
		// filled in) trigger nothing: the rollup is newer.
		evaluate(t, e)
		evaluate(t, e)
		if n := len(automatedRuns(t, e)) - before; n != 3 {
			t.Fatalf("%d automated runs after more evaluations; want still 3", n)
		}
		if ds := decisions(t, e, "rollup"); len(ds[AutomationNothingNew]) == 0 {
			t.Fatalf("rollup decisions %v: want the filled-in hours judged nothing new", ds)
		}

		// Another process, after a restart, starts from the stored cursor.
		if err := e.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		e2 := openEngine(t, cfg, Bind(p, nil))
		evaluate(t, e2)
		if n := len(automatedRuns(t, e2)) - before; n != 3 {
			t.Fatalf("%d automated runs after a restart; want still 3", n)
		}
	})
}

// Backpressure: with MaxAutomatedRuns 1, one clean runs and the other
// days are deferred, recorded once, and launched by later evaluations as
// the one in flight finishes.
func TestAutomationBackpressure(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		cfg := db.config(t)
		cfg.AutomationInterval, cfg.MaxAutomatedRuns = -1, 1
		gate := make(chan struct{})
		p := autoPipeline(gate)
		p.byKey["filled"].Auto = "" // no missing partitions in the way
		e := openEngine(t, cfg, Bind(p, nil))
		evaluate(t, e)
		for _, day := range []flowstone.Partition{"2024-01-02", "2024-01-03", "2024-01-04"} {
			materializeWait(t, e, p, Request{Targets: []string{"raw"}, Partition: day})
		}
		evaluate(t, e)
		evaluate(t, e)
		ds := decisions(t, e, "clean")
		if len(ds[AutomationLaunched]) != 1 || len(ds[AutomationDeferred]) != 2 {
			t.Fatalf("with one allowed in flight: %v", ds)
		}
		runs := automatedRuns(t, e)
		if len(runs) != 1 || runs[0].Status != RunRunning {
			t.Fatalf("automated runs %+v; want one running", runs)
		}
		// A new raw for the day clean is running for waits for that run:
		// the run read the older raw, so the day is launched again after.
		running := ds[AutomationLaunched][0].Partition
		materializeWait(t, e, p, Request{Targets: []string{"raw"}, Partition: running, Force: true})
		evaluate(t, e)
		evaluate(t, e)
		if got := decisions(t, e, "clean")[AutomationRunning]; len(got) != 1 || got[0].Partition != running {
			t.Fatalf("clean %s already running: %+v", running, got)
		}
		close(gate)
		for launched := 1; launched < 4; {
			waitAutomated(t, e)
			evaluate(t, e)
			n := len(decisions(t, e, "clean")[AutomationLaunched])
			if n != launched+1 {
				t.Fatalf("after a run finished: %d launched; want %d", n, launched+1)
			}
			launched = n
		}
		waitAutomated(t, e)
		evaluate(t, e)
		ds = decisions(t, e, "clean")
		if len(ds[AutomationLaunched]) != 4 || len(ds[AutomationDeferred]) != 2 || len(ds[AutomationRunning]) != 1 {
			t.Fatalf("in the end: %v", ds)
		}
	})
}

// auto=missing fills the partitions never materialized up to yesterday,
// once, and not the one materialized by hand.
func TestAutomationMissing(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		cfg := db.config(t)
		cfg.AutomationInterval = -1
		p := autoPipeline(nil)
		e := openEngine(t, cfg, Bind(p, nil))
		ts := p.byKey["filled"].Partitions.(flowstone.TimeWindowSet)
		last, _ := ts.Last(time.Now())
		byHand, _ := ts.Previous(last)
		materializeWait(t, e, p, Request{Targets: []string{"filled"}, Partition: byHand})
		evaluate(t, e)
		waitAutomated(t, e)
		evaluate(t, e)
		got := decisions(t, e, "filled")[AutomationLaunched]
		if len(got) != 3 {
			t.Fatalf("filled launched %+v; want the 3 other days", got)
		}
		for _, d := range got {
			if d.Partition == byHand || d.Reason != "never materialized" {
				t.Fatalf("decision %+v", d)
			}
		}
		if n := len(automatedRuns(t, e)); n != 3 {
			t.Fatalf("%d automated runs; want 3", n)
		}
	})
}

// A freshness bound's state changes publish asset_overdue and asset_fresh
// once each.
func TestAutomationOverdueEvents(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		cfg, rec := withTelemetry(db.config(t))
		cfg.AutomationInterval = -1
		report := def("report", func(ctx context.Context, in *Inputs) (any, error) { return 1, nil })
		report.Fresh = time.Hour
		p := NewPipeline(PipelineDef{Name: "auto", Assets: []AssetDef{report}})
		e := openEngine(t, cfg, Bind(p, nil))
		events, stop := e.Subscribe(64)
		defer stop()
		next := func() []Event {
			t.Helper()
			var out []Event
			for {
				select {
				case ev := <-events:
					if ev.Kind == EventAssetOverdue || ev.Kind == EventAssetFresh {
						out = append(out, ev)
					}
				default:
					return out
				}
			}
		}
		ctx := context.Background()
		at := func(now time.Time) []Event {
			t.Helper()
			if err := e.evaluateAutomation(ctx, now); err != nil {
				t.Fatal(err)
			}
			return next()
		}
		if evs := at(time.Now()); len(evs) != 1 || evs[0].Kind != EventAssetOverdue || evs[0].Error != "never materialized" {
			t.Fatalf("never materialized: %+v", evs)
		}
		if evs := at(time.Now()); len(evs) != 0 {
			t.Fatalf("still overdue: %+v; want no event", evs)
		}
		gauge := func() int64 {
			t.Helper()
			g, ok := rec.metrics(t)["flowstone.assets.overdue"].Data.(metricdata.Gauge[int64])
			if !ok || len(g.DataPoints) != 1 {
				t.Fatalf("overdue gauge %+v", g)
			}
			return g.DataPoints[0].Value
		}
		if n := gauge(); n != 1 {
			t.Fatalf("overdue gauge %d; want 1", n)
		}
		materializeWait(t, e, p, Request{Targets: []string{"report"}})
		next()
		if evs := at(time.Now()); len(evs) != 1 || evs[0].Kind != EventAssetFresh {
			t.Fatalf("after a materialization: %+v", evs)
		}
		if n := gauge(); n != 0 {
			t.Fatalf("overdue gauge %d; want 0", n)
		}
		if evs := at(time.Now().Add(2 * time.Hour)); len(evs) != 1 || evs[0].Kind != EventAssetOverdue {
			t.Fatalf("two hours later: %+v", evs)
		}
	})
}

// Two processes evaluate automation on one database: River's leader runs
// one evaluation at a time, so a new raw launches clean once.
func TestAutomationTwoProcesses(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		cfg := db.config(t)
		cfg.AutomationInterval = 50 * time.Millisecond
		p := autoPipeline(nil)
		p.byKey["filled"].Auto = ""
		a := openEngine(t, cfg, Bind(p, nil))
		b := openEngine(t, cfg, Bind(p, nil))
		ctx := context.Background()
		evaluations := func() int {
			t.Helper()
			st, err := b.AutomationStatus(ctx)
			if err != nil || len(st) != 1 {
				t.Fatalf("automation status %+v, %v", st, err)
			}
			return st[0].Evaluations
		}
		// Past the first evaluation, which starts the cursor.
		deadline := time.Now().Add(2 * time.Minute)
		for evaluations() == 0 {
			if time.Now().After(deadline) {
				t.Fatal("no evaluation")
			}
			time.Sleep(20 * time.Millisecond)
		}
		materializeWait(t, a, p, Request{Targets: []string{"raw"}, Partition: "2024-01-02"})
		var launched []AutomationDecision
		for len(launched) == 0 {
			if time.Now().After(deadline) {
				t.Fatal("clean was never launched")
			}
			time.Sleep(20 * time.Millisecond)
			launched = decisions(t, b, "clean")[AutomationLaunched]
		}
		waitRun(t, b, launched[0].RunID)
		// Well past the point the materialization was read, by either.
		for n := evaluations() + 3; evaluations() < n; {
			if time.Now().After(deadline) {
				t.Fatal("evaluations stopped")
			}
			time.Sleep(20 * time.Millisecond)
		}
		if got := decisions(t, a, "clean")[AutomationLaunched]; len(got) != 1 || got[0].Partition != "2024-01-02" {
			t.Fatalf("clean launched %+v; want once", got)
		}
		if runs := automatedRuns(t, a); len(runs) != 1 {
			t.Fatalf("automated runs %+v; want one", runs)
		}
	})
}

// An upstream updated while a run that already read its older
// materialization is in flight is not lost. Evaluated while that run is
// in flight, the candidate waits ("skipped: already running") and is
// launched once the run has finished; evaluated only after the run
// finished (its materialization newer than the upstream's), the lineage
// shows it read the older one and the candidate is launched. Two
// processes evaluate in turns; each update launches one run.
func TestAutomationUpdateDuringRun(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		cfg := db.config(t)
		cfg.AutomationInterval = -1 // evaluated by hand, in turns
		var mu sync.Mutex
		gates := map[flowstone.Partition]chan struct{}{}
		gate := func(k flowstone.Partition) chan struct{} {
			mu.Lock()
			defer mu.Unlock()
			if gates[k] == nil {
				gates[k] = make(chan struct{})
			}
			return gates[k]
		}
		read := make(chan flowstone.Partition, 16)
		days := flowstone.Daily("2024-01-01")
		raw := def("raw", func(ctx context.Context, in *Inputs) (any, error) { return fmt.Sprint(time.Now().UnixNano()), nil })
		raw.Partitions = days
		clean := def("clean", func(ctx context.Context, in *Inputs) (any, error) {
			v, err := Input[string](ctx, in, "raw")
			if err != nil {
				return nil, err
			}
			read <- in.Partition()
			select {
			case <-gate(in.Partition()):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			return v, nil
		}, on("raw"))
		clean.Partitions, clean.Auto = days, AutoEager
		p := NewPipeline(PipelineDef{Name: "auto", Assets: []AssetDef{raw, clean}})
		a := openEngine(t, cfg, Bind(p, nil))
		b := openEngine(t, cfg, Bind(p, nil))
		both := func() {
			t.Helper()
			evaluate(t, a)
			evaluate(t, b)
		}
		evaluate(t, a) // starts the cursor
		launched := func(k flowstone.Partition) []AutomationDecision {
			t.Helper()
			var out []AutomationDecision
			for _, d := range decisions(t, b, "clean")[AutomationLaunched] {
				if d.Partition == k {
					out = append(out, d)
				}
			}
			return out
		}
		wantClean := func(k flowstone.Partition) {
			t.Helper()
			want, err := Load[string](ctx, a, "auto", "raw", k)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := Load[string](ctx, a, "auto", "clean", k); err != nil || got != want {
				t.Fatalf("clean %s = %q, %v; want the newest raw %q", k, got, err, want)
			}
		}

		// Evaluated while in flight: the automated run for the first raw
		// has read it when raw is materialized again.
		inFlight := flowstone.Partition("2024-01-02")
		materializeWait(t, a, p, Request{Targets: []string{"raw"}, Partition: inFlight})
		both()
		first := launched(inFlight)
		if len(first) != 1 {
			t.Fatalf("clean %s launched %+v; want once", inFlight, first)
		}
		<-read
		materializeWait(t, a, p, Request{Targets: []string{"raw"}, Partition: inFlight, Force: true})
		both()
		if got := decisions(t, b, "clean")[AutomationRunning]; len(got) != 1 || got[0].Partition != inFlight || got[0].RunID != first[0].RunID {
			t.Fatalf("clean %s while its run is in flight: %+v; want one already running, waiting for %s", inFlight, got, first[0].RunID)
		}
		both() // still running: nothing more
		close(gate(inFlight))
		if res := waitRun(t, a, first[0].RunID); res.Status != RunSucceeded {
			t.Fatalf("first run: %s", res.Status)
		}
		both()
		both()
		again := launched(inFlight)
		if len(again) != 2 {
			t.Fatalf("clean %s launched %+v; want again once the run that read the older raw ended", inFlight, again)
		}
		if res := waitRun(t, b, again[1].RunID); res.Status != RunSucceeded {
			t.Fatalf("second run: %s", res.Status)
		}
		wantClean(inFlight)

		// Evaluated only after: a run started by hand read the first raw
		// and finished after the second one.
		after := flowstone.Partition("2024-01-03")
		materializeWait(t, a, p, Request{Targets: []string{"raw"}, Partition: after})
		run, err := a.Materialize(ctx, p, Request{Targets: []string{"clean"}, Partition: after})
		if err != nil {
			t.Fatal(err)
		}
		<-read
		materializeWait(t, a, p, Request{Targets: []string{"raw"}, Partition: after, Force: true})
		close(gate(after))
		if res := waitRun(t, a, run.ID); res.Status != RunSucceeded {
			t.Fatalf("run by hand: %s", res.Status)
		}
		both()
		both()
		got := launched(after)
		if len(got) != 1 {
			t.Fatalf("clean %s launched %+v; want once: the run by hand read the older raw", after, got)
		}
		if res := waitRun(t, a, got[0].RunID); res.Status != RunSucceeded {
			t.Fatalf("automated run: %s", res.Status)
		}
		wantClean(after)

		// Its own materializations trigger nothing more, in either process.
		both()
		both()
		if n := len(automatedRuns(t, a)); n != 3 {
			t.Fatalf("%d automated runs; want 3", n)
		}
	})
}

// A candidate held by a run that does not end says which run it waits
// for, and cancelling that run releases it: the next evaluation launches
// it.
func TestAutomationCandidateNamesTheRunItWaitsFor(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		cfg := db.config(t)
		cfg.AutomationInterval = -1 // evaluated by hand
		var stuck atomic.Bool
		stuck.Store(true)
		raw := def("raw", func(ctx context.Context, in *Inputs) (any, error) { return fmt.Sprint(time.Now().UnixNano()), nil })
		clean := def("clean", func(ctx context.Context, in *Inputs) (any, error) {
			if stuck.Load() { // hangs until its run is cancelled
				<-ctx.Done()
				return nil, ctx.Err()
			}
			return Input[string](ctx, in, "raw")
		}, on("raw"))
		clean.Auto = AutoEager
		p := NewPipeline(PipelineDef{Name: "auto", Assets: []AssetDef{raw, clean}})
		e := openEngine(t, cfg, Bind(p, nil))
		evaluate(t, e) // starts the cursor
		hung, err := e.Materialize(ctx, p, Request{})
		if err != nil {
			t.Fatal(err)
		}
		for r, err := e.Run(ctx, hung.ID); r.Assets["clean"].Status != StatusRunning; r, err = e.Run(ctx, hung.ID) {
			if err != nil || r.Status.Terminal() {
				t.Fatalf("run %s: %v %v", hung.ID, r.Status, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
		materializeWait(t, e, p, Request{Targets: []string{"raw"}, Force: true})
		evaluate(t, e)
		evaluate(t, e)
		got := decisions(t, e, "clean")
		if w := got[AutomationRunning]; len(w) != 1 || w[0].RunID != hung.ID || len(got[AutomationLaunched]) != 0 {
			t.Fatalf("decisions %+v; want one already running, waiting for %s", got, hung.ID)
		}

		stuck.Store(false)
		if err := e.Cancel(ctx, hung.ID); err != nil {
			t.Fatal(err)
		}
		evaluate(t, e)
		l := decisions(t, e, "clean")[AutomationLaunched]
		if len(l) != 1 {
			t.Fatalf("after cancelling %s: launched %+v; want once", hung.ID, l)
		}
		if res := waitRun(t, e, l[0].RunID); res.Status != RunSucceeded {
			t.Fatalf("launched run: %s", res.Status)
		}
	})
}
