package runtime

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/scatter"
	"github.com/flowstone-go/flowstone/strategy"
)

// hourItems is small because a daily run holds 48 scatters and every
// batch is a job of a few SQLite statements, which cost about 18 times the
// CPU under -race (modernc's SQLite is Go, instrumented like ours): with
// 25 items an hour (313 jobs) the SQLite run took 5 CPU-seconds under
// -race, 0.3 without, and over 90 s at a load of 25; with 9 (193 jobs),
// 3.4.
const hourItems = 9

// hourlyScatters: an hourly source of 9 items, scattered twice per hour
// (scores: batches of 4 committed in groups of 2, at most 8 in flight, so
// the third batch, of one item, starts when one of the first two ends;
// tags: batches of 5 with the default groups), both gathered by a daily
// rollup. A daily run holds 48 scatters.
func hourlyScatters() *Pipeline {
	hours := flowstone.Hourly("2024-01-01T00")
	events := def("events", func(ctx context.Context, in *Inputs) (any, error) {
		var hour int
		if _, err := fmt.Sscanf(string(in.Partition())[11:], "%d", &hour); err != nil {
			return nil, err
		}
		out := make([]int, hourItems)
		for i := range out {
			out[i] = hour*100 + i
		}
		return out, nil
	})
	events.Partitions = hours
	scatterOf := func(key string, opts strategy.Scatter, f func(int) int) AssetDef {
		opts.Source = "events"
		a := def(key, func(ctx context.Context, in *Inputs) (any, error) {
			v, err := Item[int](in)
			return f(v), err
		}, Dep{Asset: "events", Kind: DepOrder})
		a.Strategy, a.Kind, a.Item, a.Partitions = opts, "scatter", ItemOf[int](), hours
		return a
	}
	scores := scatterOf("scores", strategy.Scatter{Batch: 4, MaxConcurrent: 8, Group: scatter.Group{Items: 2}}, func(v int) int { return 2 * v })
	tags := scatterOf("tags", strategy.Scatter{Batch: 5}, func(v int) int { return v % 100 })
	rollup := def("rollup", func(ctx context.Context, in *Inputs) (any, error) {
		sum := func(asset string) (int, error) {
			hs, err := InputPartitions[[]int](ctx, in, asset)
			if err != nil {
				return 0, err
			}
			if len(hs) != 24 {
				return 0, fmt.Errorf("%s: %d hours", asset, len(hs))
			}
			n := 0
			for _, vs := range hs {
				if len(vs) != hourItems {
					return 0, fmt.Errorf("%s: %d values in an hour", asset, len(vs))
				}
				for _, v := range vs {
					n += v
				}
			}
			return n, nil
		}
		s, err := sum("scores")
		if err != nil {
			return nil, err
		}
		t, err := sum("tags")
		return []int{s, t}, err
	}, Dep{Asset: "scores", Kind: DepPartitions}, Dep{Asset: "tags", Kind: DepPartitions})
	rollup.Partitions = flowstone.Daily("2024-01-01")
	return NewPipeline(PipelineDef{Name: "hourly_scatters", Assets: []AssetDef{events, scores, tags, rollup}})
}

// Two scatters per hour under a daily target: 48 scatters in one run, one
// of them committing its batches in groups of 2, each gathers its own
// hour's items once, in order.
func TestTwoHourlyScattersUnderADailyTarget(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		p := hourlyScatters()
		cfg := fastConfig(db.config(t))
		cfg.Concurrency = 8
		e := openEngine(t, cfg, Bind(p, nil))
		run, err := e.Materialize(ctx, p, Request{Targets: []string{"rollup"}, Partition: "2024-01-02"})
		if err != nil {
			t.Fatal(err)
		}
		res := waitRun(t, e, run.ID)
		if res.Status != RunSucceeded {
			t.Fatalf("run %s: %v", res.Status, res.Counts())
		}
		var scores, tags int
		for h := range 24 {
			for i := range hourItems {
				scores += 2 * (h*100 + i)
				tags += i
			}
		}
		got, err := Load[[]int](ctx, e, "hourly_scatters", "rollup", "2024-01-02")
		if err != nil || len(got) != 2 || got[0] != scores || got[1] != tags {
			t.Fatalf("rollup = %v, %v; want [%d %d]", got, err, scores, tags)
		}
		hour, err := Load[[]int](ctx, e, "hourly_scatters", "scores", "2024-01-02T05")
		if err != nil || len(hour) != hourItems || hour[0] != 1000 || hour[hourItems-1] != 2*(500+hourItems-1) {
			t.Fatalf("scores of 05h = %v, %v", hour, err)
		}
		q := e.be.pool()
		for _, asset := range []string{"scores", "tags"} {
			var barriers, done, items int
			if err := q.QueryRow(ctx, `SELECT count(*), sum(done) FROM flowstone_scatter_barriers WHERE run_id = ? AND asset = ? AND status = 'completed'`,
				run.ID, asset).Scan(&barriers, &done); err != nil {
				t.Fatal(err)
			}
			_, _, _, items = scatterCounts(t, q, run.ID, asset)
			if barriers != 24 || done != 24*hourItems || items != 24*hourItems {
				t.Errorf("%s: %d barriers completed counting %d items, %d items recorded; want 24, %d, %d", asset, barriers, done, items, 24*hourItems, 24*hourItems)
			}
		}
	})
}

// A group that takes the scatter past its failure threshold stops its
// batch: the items after it in the batch do not run.
func TestScatterGroupPastThresholdStopsItsBatch(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		var ran atomic.Int64
		p := scatterPipeline("scatter", scatterCase{n: 100, opts: strategy.Scatter{Batch: 100, Group: scatter.Group{Items: 5, MaxWait: time.Hour}},
			item: func(ctx context.Context, c customer) (profile, error) {
				ran.Add(1)
				return failEveryTenth(ctx, c)
			}})
		e := openEngine(t, db.config(t), Bind(p, nil))
		run, err := e.Materialize(ctx, p, Request{})
		if err != nil {
			t.Fatal(err)
		}
		res := waitRun(t, e, run.ID)
		if res.Assets["profiles"].Status != StatusFailed || !strings.Contains(res.Assets["profiles"].Error, "1 of 100 items failed, more than the failure threshold 0; first: item 3") {
			t.Fatalf("run %s: %+v", res.Status, res.Assets)
		}
		if n := ran.Load(); n != 5 {
			t.Errorf("%d items ran; want the first group's 5, the batch stopped after it", n)
		}
		var cancelled int
		if err := e.be.pool().QueryRow(ctx, scatterCancelledItems, run.ID).Scan(&cancelled); err != nil || cancelled != 95 {
			t.Fatalf("cancelled items = %d, %v; want 95", cancelled, err)
		}
	})
}
