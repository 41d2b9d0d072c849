package runtime

import (
	"context"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone"
)

func TestFreshnessFlipsToOverdueAndBack(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		report := def("report", func(ctx context.Context, in *Inputs) (any, error) { return 1, nil })
		report.Fresh = time.Hour
		days := flowstone.Daily("2024-01-01")
		daily := def("daily", func(ctx context.Context, in *Inputs) (any, error) { return string(in.Partition()), nil })
		daily.Partitions, daily.Fresh = days, 2*time.Hour
		plain := def("plain", func(ctx context.Context, in *Inputs) (any, error) { return 2, nil })
		p := NewPipeline(PipelineDef{Name: "fresh", Assets: []AssetDef{report, daily, plain}})
		e := openEngine(t, db.config(t), Bind(p, nil))

		last, _ := days.(flowstone.TimeWindowSet).Last(time.Now())
		_, end, _ := days.(flowstone.TimeWindowSet).Window(last)
		judge := func(now time.Time) map[string]Freshness {
			t.Helper()
			fs, err := e.Freshness(ctx, p, now)
			if err != nil {
				t.Fatal(err)
			}
			out := map[string]Freshness{}
			for _, f := range fs {
				out[f.Asset] = f
			}
			if len(out) != 2 {
				t.Fatalf("judged %v; want report and daily only", fs)
			}
			return out
		}
		got := judge(end.Add(3 * time.Hour))
		if !got["report"].Overdue || got["report"].Reason != "never materialized" {
			t.Fatalf("report before any run: %+v", got["report"])
		}
		if d := got["daily"]; !d.Overdue || d.Partition != last {
			t.Fatalf("daily before any run: %+v", d)
		}
		if d := judge(end.Add(time.Hour))["daily"]; d.Overdue {
			t.Fatalf("daily within its bound: %+v", d)
		}
		for _, req := range []Request{{Targets: []string{"report"}}, {Targets: []string{"daily"}, Partition: last}} {
			run, err := e.Materialize(ctx, p, req)
			if err != nil {
				t.Fatal(err)
			}
			waitRun(t, e, run.ID)
		}
		now := time.Now()
		got = judge(now)
		if got["report"].Overdue || got["daily"].Overdue || got["report"].Materialized.IsZero() {
			t.Fatalf("after materializing: %+v", got)
		}
		if r := judge(now.Add(2 * time.Hour))["report"]; !r.Overdue {
			t.Fatalf("report two hours later: %+v", r)
		}
		// Judged past the clock's newest window (two days on), the newest
		// partition is still the clock's: a window not ended by the clock
		// is no partition yet. This once failed between 22:00 and
		// midnight, when two hours on was the next day.
		if d := judge(now.Add(48 * time.Hour))["daily"]; d.Partition != last || d.Overdue {
			t.Fatalf("daily two days later: %+v; want %s, materialized", d, last)
		}
	})
}
