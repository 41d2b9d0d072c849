package runtime

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone"
)

// historySizes are the history lengths BenchmarkHistory compares: the same
// asset over the same 1,000 daily partitions, materialized once each, then
// 100 times each. Every query returns the same rows at both sizes.
var historySizes = []int{1_000, 100_000}

// BenchmarkHistory times the history queries on a history inserted directly
// (see insertHistory) of 1,000 and of 100,000 materializations, and reports
// each query's median time at both sizes (calls alternate between them)
// and their ratio: a query that costs what it returns has a ratio near 1.
func BenchmarkHistory(b *testing.B) {
	for _, db := range benchDatabases(b) {
		b.Run(db.name, func(b *testing.B) {
			ctx := context.Background()
			engines := make([]*Engine, len(historySizes))
			for i, size := range historySizes {
				cfg := benchConfig(db.fresh(b), benchProfile{})
				cfg.NoWorkers = true
				e, err := Open(ctx, cfg)
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { _ = e.Close(context.Background()) })
				start := time.Now()
				insertHistory(b, e, benchHistory(size))
				if e.Dialect() == "postgres" {
					// What autovacuum does to tables that grew (statistics,
					// and the visibility map that lets index-only scans skip
					// the heap); the test server runs without it.
					if _, err := e.be.pool().Exec(ctx, "VACUUM ANALYZE flowstone_runs, flowstone_run_assets, flowstone_materializations, flowstone_lineage"); err != nil {
						b.Fatal(err)
					}
				}
				b.Logf("%s: %d materializations inserted in %s", db.name, size, time.Since(start).Round(time.Millisecond))
				engines[i] = e
			}
			for _, q := range historyQueries() {
				b.Run(q.name, func(b *testing.B) {
					var times []time.Duration
					for b.Loop() {
						times = medianTimes(b, 15, engines, func(e *Engine) error { return q.run(ctx, e) })
					}
					for i, size := range historySizes {
						b.ReportMetric(float64(times[i].Microseconds())/1000, fmt.Sprintf("ms_at_%dk", size/1000))
					}
					b.ReportMetric(float64(times[len(times)-1])/float64(max(times[0], 1)), "ratio")
				})
			}
		})
	}
}

func benchHistory(size int) history {
	return history{pipeline: "hist", asset: "events", partitions: 1000, rounds: size / 1000, waiting: 10,
		failed: func(r, k int) bool { return (r+k)%7 == 0 }}
}

// histPipeline is the history's asset as a pipeline declares it, with a
// freshness bound.
func histPipeline() *Pipeline {
	events := def("events", noop)
	events.Partitions, events.Fresh = flowstone.Daily("2020-01-01"), 24*time.Hour
	return NewPipeline(PipelineDef{Name: "hist", Assets: []AssetDef{events}})
}

type historyQuery struct {
	name string
	// run runs the query once and checks it returned what every size
	// returns.
	run func(ctx context.Context, e *Engine) error
}

func historyQueries() []historyQuery {
	want := func(what string, got, want int) error {
		if got != want {
			return fmt.Errorf("%s: %d rows, want %d", what, got, want)
		}
		return nil
	}
	return []historyQuery{
		{"latest", func(ctx context.Context, e *Engine) error {
			ms, err := e.Latest(ctx, "hist")
			if err != nil {
				return err
			}
			return want("Latest", len(ms), 1)
		}},
		{"materializations_10", func(ctx context.Context, e *Engine) error {
			ms, err := e.Materializations(ctx, "hist", "events", 10)
			if err != nil {
				return err
			}
			return want("Materializations", len(ms), 10)
		}},
		{"partitions_1000", func(ctx context.Context, e *Engine) error {
			ps, err := e.PartitionStatuses(ctx, "hist", "events")
			if err != nil {
				return err
			}
			return want("PartitionStatuses", len(ps), 1000)
		}},
		{"gates", func(ctx context.Context, e *Engine) error {
			gs, err := e.Gates(ctx, "hist")
			if err != nil {
				return err
			}
			return want("Gates", len(gs), 10)
		}},
		{"staleness", func(ctx context.Context, e *Engine) error {
			ss, err := e.Staleness(ctx, histPipeline())
			if err != nil {
				return err
			}
			return want("Staleness", len(ss), 1)
		}},
		{"freshness", func(ctx context.Context, e *Engine) error {
			fs, err := e.Freshness(ctx, histPipeline(), time.Now())
			if err != nil {
				return err
			}
			return want("Freshness", len(fs), 1)
		}},
		{"runs_20", func(ctx context.Context, e *Engine) error {
			rs, err := e.Runs(ctx, "hist", 20)
			if err != nil {
				return err
			}
			return want("Runs", len(rs), 20)
		}},
	}
}

// medianTimes runs fn n times on each engine, taking turns (so that a
// change of the machine's load falls on every size alike), and returns
// each engine's median duration.
func medianTimes(b *testing.B, n int, engines []*Engine, fn func(e *Engine) error) []time.Duration {
	b.Helper()
	return medianTimesWith(b, n, engines, func(*Engine) error { return nil }, fn)
}
