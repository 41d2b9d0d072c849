package runtime

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone"
)

func TestScheduleMaterializesNewestCompletePartitionOnce(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		daily := def("daily", func(ctx context.Context, in *Inputs) (any, error) { return string(in.Partition()), nil })
		daily.Partitions, daily.Schedule = flowstone.Daily("2024-01-01"), "@every 1s"
		ticker := def("ticker", func(ctx context.Context, in *Inputs) (any, error) { return time.Now().Unix(), nil })
		ticker.Schedule = "@every 1s"
		p := NewPipeline(PipelineDef{Name: "sched", Assets: []AssetDef{daily, ticker}})
		cfg := db.config(t)
		// Two processes: River's leader alone inserts each tick.
		e1 := openEngine(t, cfg, Bind(p, nil))
		openEngine(t, cfg, Bind(p, nil))

		yesterday := flowstone.Partition(time.Now().UTC().AddDate(0, 0, -1).Format("2006-01-02"))
		deadline := time.Now().Add(40 * time.Second)
		for {
			runs, err := e1.Runs(ctx, "sched", 100)
			if err != nil {
				t.Fatal(err)
			}
			var dailyRuns, tickerRuns int
			for _, r := range runs {
				res, err := e1.Run(ctx, r.ID)
				if err != nil {
					t.Fatal(err)
				}
				if _, ok := res.Assets["daily"]; ok {
					dailyRuns++
					if r.Partition != yesterday {
						t.Fatalf("scheduled daily run for %q, want the newest complete day %q", r.Partition, yesterday)
					}
				} else {
					tickerRuns++
				}
			}
			if dailyRuns > 1 {
				t.Fatalf("%d runs of the same daily partition; want one however many ticks", dailyRuns)
			}
			if dailyRuns == 1 && tickerRuns >= 2 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("after 40s: %d daily runs, %d ticker runs", dailyRuns, tickerRuns)
			}
			time.Sleep(200 * time.Millisecond)
		}
		v, err := Load[string](ctx, e1, "sched", "daily", yesterday)
		if err != nil || v != string(yesterday) {
			t.Fatalf("daily = %q, %v", v, err)
		}
	})
}

func TestRunKeyStartsARunOnce(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		p := NewPipeline(PipelineDef{Name: "keys", Assets: []AssetDef{
			def("a", func(ctx context.Context, in *Inputs) (any, error) { return 1, nil }),
		}})
		e := openEngine(t, db.config(t), Bind(p, nil))
		r1, err := e.Materialize(ctx, p, Request{RunKey: "sensor:orders:42", Force: true})
		if err != nil || r1.Existing {
			t.Fatalf("first: %+v %v", r1, err)
		}
		r2, err := e.Materialize(ctx, p, Request{RunKey: "sensor:orders:42", Force: true})
		if err != nil || !r2.Existing || r2.ID != r1.ID {
			t.Fatalf("second: %+v %v", r2, err)
		}
		waitRun(t, e, r1.ID)
		if runs, _ := e.Runs(ctx, "keys", 10); len(runs) != 1 {
			t.Fatalf("%d runs", len(runs))
		}
	})
}

func TestBadScheduleRefusesToOpen(t *testing.T) {
	t.Parallel()
	a := def("a", func(ctx context.Context, in *Inputs) (any, error) { return 1, nil })
	a.Schedule = "every day at noon"
	_, err := Open(context.Background(), Config{Database: "sqlite::memory:"}, Bind(NewPipeline(PipelineDef{Name: "bad", Assets: []AssetDef{a}}), nil))
	if err == nil || !strings.Contains(err.Error(), `asset a: schedule "every day at noon"`) {
		t.Fatalf("err = %v", err)
	}
}

// schedCfg is the run config of TestScheduledAssetRecomputesEachTick.
type schedCfg struct{ Base int }

func TestScheduledAssetRecomputesEachTick(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		var calls atomic.Int64
		base := def("base", func(ctx context.Context, in *Inputs) (any, error) { return 1, nil })
		now := def("now", func(ctx context.Context, in *Inputs) (any, error) {
			cfg, err := ConfigValue[schedCfg](in)
			if err != nil {
				return nil, err
			}
			return cfg.Base + int(calls.Add(1)), nil
		}, on("base"))
		now.Schedule, now.UsesConfig, now.ScheduleConfig = "@every 1s", true, schedCfg{Base: 100}
		p := NewPipeline(PipelineDef{Name: "ticks", Config: ConfigOf[schedCfg](), Assets: []AssetDef{base, now}})
		e := openEngine(t, db.config(t), Bind(p, nil))

		deadline := time.Now().Add(60 * time.Second)
		for {
			runs, err := e.Runs(ctx, "ticks", 100)
			if err != nil {
				t.Fatal(err)
			}
			done, baseReused := 0, 0
			for _, r := range runs {
				res, err := e.Run(ctx, r.ID)
				if err != nil {
					t.Fatal(err)
				}
				if res.Assets["base"].Status == StatusReused {
					baseReused++
				}
				switch st := res.Assets["now"].Status; st {
				case StatusSucceeded:
					done++
				case StatusReused:
					t.Fatalf("run %s reused the scheduled asset; a tick must compute it", r.ID)
				}
			}
			// The upstream is computed by the first tick and reused after.
			if done >= 3 && baseReused >= 2 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("after 60s: %d scheduled runs computed the asset, %d reused its upstream", done, baseReused)
			}
			time.Sleep(200 * time.Millisecond)
		}
		v, err := Load[int](ctx, e, "ticks", "now", "")
		if err != nil || v <= 102 {
			t.Fatalf("now = %d, %v; want the default config's 100 plus three or more calls", v, err)
		}
	})
}
