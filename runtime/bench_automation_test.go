package runtime

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/runtime/internal/store"
)

// benchAutoPipeline: daily events under an eager daily rollup with a
// freshness bound, as the automation benchmark's history has them.
func benchAutoPipeline() *Pipeline {
	days := flowstone.Daily("2020-01-01")
	events := def("events", noop)
	events.Partitions = days
	rollup := def("rollup", noop, on("events"))
	rollup.Partitions, rollup.Auto, rollup.Fresh = days, AutoEager, 24*time.Hour
	return NewPipeline(PipelineDef{Name: "hist", Assets: []AssetDef{events, rollup}})
}

// autoBench is one engine of BenchmarkAutomationHistory with its history.
type autoBench struct {
	e *Engine
	p *Pipeline
	// rounds is the history's rounds: the new materializations are
	// round rounds.
	rounds int
}

// news is where the new materializations start: round rounds of the
// history's timeline.
func (ab autoBench) news() history {
	return history{pipeline: "hist", asset: "events", partitions: 1000, rounds: ab.rounds + 1}
}

// BenchmarkAutomationHistory times one automation evaluation after a long
// history: events and its eager rollup over the same 1,000 daily
// partitions, each materialized once (2,000 materializations) and then
// 100 times (200,000), every rollup reading the events of its day. Then
// 1,000 new events materializations (one per day) are recorded through
// the store, 999 of them already read by a newer rollup (nothing new),
// the last one not (a launch). "little_new" evaluates from a cursor just
// before the last one (one new materialization, one launch); "many_new"
// from a cursor before all of them (1,000 new, 999 skipped, one launch).
// Before each evaluation the cursor is put back and the pending
// candidates cleared, so every call decides the same; the run launched
// is the same run key each time (the first evaluation started it and it
// was cancelled). An evaluation that costs what is new has a ratio near 1.
func BenchmarkAutomationHistory(b *testing.B) {
	for _, db := range benchDatabases(b) {
		b.Run(db.name, func(b *testing.B) {
			ctx := context.Background()
			benches := make([]autoBench, len(historySizes))
			for i, size := range historySizes {
				ab := openAutoBench(b, db, size)
				benches[i] = ab
			}
			for _, sc := range []struct {
				name  string
				first int // the first new day read
			}{{"little_new", 999}, {"many_new", 0}} {
				b.Run(sc.name, func(b *testing.B) {
					var times []time.Duration
					for b.Loop() {
						times = medianTimesWith(b, 9, benches, func(ab autoBench) error {
							// Put the cursor back before the new materializations.
							if err := ab.e.st.SaveAutomationCursor(ctx, ab.e.be.pool(), "hist", ab.news().finished(ab.rounds, sc.first).UnixMicro()-1); err != nil {
								return err
							}
							if _, err := ab.e.be.pool().Exec(ctx, "DELETE FROM flowstone_automation_news"); err != nil {
								return err
							}
							_, err := ab.e.be.pool().Exec(ctx, "DELETE FROM flowstone_automation_pending")
							return err
						}, func(ab autoBench) error {
							return ab.e.evaluatePipeline(ctx, ab.p, time.Now())
						})
					}
					for i, size := range historySizes {
						b.ReportMetric(float64(times[i].Microseconds())/1000, fmt.Sprintf("ms_at_%dk", 2*size/1000))
					}
					b.ReportMetric(float64(times[len(times)-1])/float64(max(times[0], 1)), "ratio")
				})
			}
		})
	}
}

// openAutoBench opens an engine (no workers) on a new database holding
// size materializations of events and of rollup, and the 1,000 new ones,
// and evaluates once.
func openAutoBench(b *testing.B, db benchDB, size int) autoBench {
	ctx := context.Background()
	cfg := benchConfig(db.fresh(b), benchProfile{})
	cfg.NoWorkers, cfg.AutomationInterval = true, -1
	p := benchAutoPipeline()
	e, err := Open(ctx, cfg, Bind(p, nil))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = e.Close(context.Background()) })
	ab := autoBench{e: e, p: p, rounds: size / 1000}
	start := time.Now()
	events := history{pipeline: "hist", asset: "events", partitions: 1000, rounds: ab.rounds,
		failed: func(r, k int) bool { return (r+k)%7 == 0 }}
	insertHistory(b, e, events)
	insertHistory(b, e, history{pipeline: "hist", asset: "rollup", partitions: 1000, rounds: ab.rounds, reads: "events", after: 500 * time.Millisecond})
	// The new materializations, through the store: each day's events,
	// and a rollup that read them, but for the last day.
	q, r := e.be.pool(), ab.rounds
	for k := range 1000 {
		at := events.finished(r, k).UnixMicro()
		key := string(events.key(k))
		if err := e.st.InsertMaterialization(ctx, q, store.NewMaterialization{ID: historyMat("hist", "events", r, k), Pipeline: "hist",
			Asset: "events", Partition: key, Run: "run_news", Status: store.MatSucceeded, CodeVersion: "v1", Attempts: 1,
			StartedAt: at - 500_000, FinishedAt: at}); err != nil {
			b.Fatal(err)
		}
		if k == 999 {
			continue
		}
		id := historyMat("hist", "rollup", r, k)
		if err := e.st.InsertMaterialization(ctx, q, store.NewMaterialization{ID: id, Pipeline: "hist",
			Asset: "rollup", Partition: key, Run: "run_news", Status: store.MatSucceeded, CodeVersion: "v1", Attempts: 1,
			StartedAt: at, FinishedAt: at + 500_000}); err != nil {
			b.Fatal(err)
		}
		if err := e.st.InsertLineage(ctx, q, id, []store.Lineage{{Asset: "events", Partition: key, Materialization: historyMat("hist", "events", r, k)}}); err != nil {
			b.Fatal(err)
		}
	}
	if e.Dialect() == "postgres" {
		if _, err := q.Exec(ctx, "VACUUM ANALYZE flowstone_runs, flowstone_run_assets, flowstone_materializations, flowstone_lineage"); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("%s: %d materializations inserted in %s", db.name, 2*size+1999, time.Since(start).Round(time.Millisecond))
	// The first evaluation launches the last day's rollup; cancelled, its
	// run key names it from then on.
	if err := e.st.SaveAutomationCursor(ctx, q, "hist", events.finished(r, 0).UnixMicro()-1); err != nil {
		b.Fatal(err)
	}
	if err := e.evaluatePipeline(ctx, p, time.Now()); err != nil {
		b.Fatal(err)
	}
	runs, err := e.FindRuns(ctx, RunFilter{Pipeline: "hist", StartedBy: StartedByAutomation, Limit: 10})
	if err != nil || len(runs) != 1 {
		b.Fatalf("automated runs after the first evaluation: %+v, %v; want one", runs, err)
	}
	if err := e.Cancel(ctx, runs[0].ID); err != nil {
		b.Fatal(err)
	}
	return ab
}

// medianTimesWith is medianTimes with an untimed reset before each call.
func medianTimesWith[T any](b *testing.B, n int, xs []T, reset, fn func(x T) error) []time.Duration {
	b.Helper()
	ds := make([][]time.Duration, len(xs))
	for range n {
		for i, x := range xs {
			if err := reset(x); err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			if err := fn(x); err != nil {
				b.Fatal(err)
			}
			ds[i] = append(ds[i], time.Since(start))
		}
	}
	out := make([]time.Duration, len(xs))
	for i := range ds {
		slices.Sort(ds[i])
		out[i] = ds[i][n/2]
	}
	return out
}
