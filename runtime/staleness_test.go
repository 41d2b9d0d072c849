package runtime

import (
	"context"
	"slices"
	"testing"

	"github.com/flowstone-go/flowstone"
)

func stalePipeline(version string) *Pipeline {
	raw := def("raw", func(ctx context.Context, in *Inputs) (any, error) { return 1, nil })
	clean := def("clean", func(ctx context.Context, in *Inputs) (any, error) { return 2, nil }, on("raw"))
	clean.CodeVersion = version
	report := def("report", func(ctx context.Context, in *Inputs) (any, error) { return 3, nil }, on("clean"))
	never := def("never", func(ctx context.Context, in *Inputs) (any, error) { return 4, nil })
	return NewPipeline(PipelineDef{Name: "stale", Assets: []AssetDef{raw, clean, report, never}})
}

func TestStalenessReasons(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		cfg := db.config(t)
		p := stalePipeline("v1")
		e := openEngine(t, cfg, Bind(p, nil))
		reasons := func(e *Engine, p *Pipeline) map[string][]string {
			t.Helper()
			ss, err := e.Staleness(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			out := map[string][]string{}
			for _, s := range ss {
				if s.Stale != (len(s.Reasons) > 0) {
					t.Fatalf("%s: stale %v with reasons %q", s.Asset, s.Stale, s.Reasons)
				}
				if s.Materialized {
					out[s.Asset] = s.Reasons
				}
			}
			return out
		}
		run, err := e.Materialize(ctx, p, Request{Targets: []string{"report"}})
		if err != nil {
			t.Fatal(err)
		}
		waitRun(t, e, run.ID)
		if got := reasons(e, p); len(got) != 3 || len(got["raw"])+len(got["clean"])+len(got["report"]) != 0 {
			t.Fatalf("fresh pipeline: %q", got)
		}
		run, err = e.Materialize(ctx, p, Request{Targets: []string{"raw"}, Force: true})
		if err != nil {
			t.Fatal(err)
		}
		waitRun(t, e, run.ID)
		got := reasons(e, p)
		if !slices.Equal(got["clean"], []string{"upstream raw has a newer materialization"}) ||
			!slices.Equal(got["report"], []string{"upstream clean is stale"}) || len(got["raw"]) != 0 {
			t.Fatalf("after raw changed: %q", got)
		}
		// A new version of clean's code, deployed: the old process stops
		// (or it could work the new run's jobs with the old code).
		if err := e.Close(ctx); err != nil {
			t.Fatal(err)
		}
		v2 := stalePipeline("v2")
		e2 := openEngine(t, cfg, Bind(v2, nil))
		got = reasons(e2, v2)
		if !slices.Equal(got["clean"], []string{"code version changed (v1 → v2)", "upstream raw has a newer materialization"}) {
			t.Fatalf("after clean's code changed: %q", got)
		}
		run, err = e2.Materialize(ctx, v2, Request{Targets: []string{"report"}})
		if err != nil {
			t.Fatal(err)
		}
		waitRun(t, e2, run.ID)
		if got := reasons(e2, v2); len(got["clean"])+len(got["report"]) != 0 {
			t.Fatalf("after rematerializing: %q", got)
		}
	})
}

// mappedPipeline: hourly ingest under a daily rollup (each day reads its
// 24 hours), a daily cumulative reading the rollup and its own previous
// day, and static prices under a static report.
func mappedPipeline() *Pipeline {
	one := func(ctx context.Context, in *Inputs) (any, error) { return 1, nil }
	ingest := def("ingest", one)
	ingest.Partitions = flowstone.Hourly("2024-01-01T00")
	rollup := def("rollup", one, Dep{Asset: "ingest", Kind: DepPartitions})
	rollup.Partitions = flowstone.Daily("2024-01-01")
	cumulative := def("cumulative", func(ctx context.Context, in *Inputs) (any, error) {
		if _, err := InputPrevious[int](ctx, in); err != nil {
			return nil, err
		}
		return 1, nil
	}, on("rollup"), Dep{Asset: "cumulative", Kind: DepPrevious})
	cumulative.Partitions = flowstone.Daily("2024-01-01")
	prices := def("prices", one)
	prices.Partitions = flowstone.Static("eu", "us")
	report := def("report", one, on("prices"))
	report.Partitions = flowstone.Static("eu", "us")
	return NewPipeline(PipelineDef{Name: "mapped", Assets: []AssetDef{ingest, rollup, cumulative, prices, report}})
}

// Staleness under partition mappings, with two partitions' histories: an
// hour materialized again makes its day's rollup stale (and what reads the
// rollup, by the asset), a static partition makes the same partition of
// its downstream stale; a day of cumulative materialized again does not
// make the next day stale (its previous day is not among the inputs
// staleness judges, as before one statement answered every asset).
func TestStalenessUnderPartitionMappings(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		p := mappedPipeline()
		cfg := db.config(t)
		cfg.Concurrency = 8
		e := openEngine(t, cfg, Bind(p, nil))
		materialize := func(targets []string, part flowstone.Partition, force bool) {
			t.Helper()
			run, err := e.Materialize(ctx, p, Request{Targets: targets, Partition: part, Force: force})
			if err != nil {
				t.Fatal(err)
			}
			if res := waitRun(t, e, run.ID); res.Status != RunSucceeded {
				t.Fatalf("%v at %s: %s", targets, part, res.Status)
			}
		}
		type stale struct {
			reasons    []string
			partitions []flowstone.Partition
		}
		check := func(when string, want map[string]stale) {
			t.Helper()
			ss, err := e.Staleness(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range ss {
				w := want[s.Asset]
				if !s.Materialized || s.Stale != (len(w.reasons) > 0) || !slices.Equal(s.Reasons, w.reasons) || !slices.Equal(s.Partitions, w.partitions) {
					t.Errorf("%s: %s materialized %v, stale %v, reasons %q, partitions %v; want reasons %q, partitions %v",
						when, s.Asset, s.Materialized, s.Stale, s.Reasons, s.Partitions, w.reasons, w.partitions)
				}
			}
		}
		for _, day := range []flowstone.Partition{"2024-01-01", "2024-01-02"} {
			materialize([]string{"cumulative"}, day, false)
		}
		for _, region := range []flowstone.Partition{"eu", "us"} {
			materialize([]string{"report"}, region, false)
		}
		check("first materialized", nil)

		materialize([]string{"ingest"}, "2024-01-02T05", true)
		materialize([]string{"prices"}, "us", true)
		check("an hour and a region again", map[string]stale{
			"rollup":     {[]string{"upstream ingest has a newer materialization (2024-01-02T05)"}, []flowstone.Partition{"2024-01-02"}},
			"cumulative": {[]string{"upstream rollup is stale"}, nil},
			"report":     {[]string{"upstream prices has a newer materialization (us)"}, []flowstone.Partition{"us"}},
		})

		materialize([]string{"rollup"}, "2024-01-02", true)
		materialize([]string{"report"}, "us", true)
		materialize([]string{"cumulative"}, "2024-01-01", true)
		check("the rollup, the report and the first day again", map[string]stale{
			"cumulative": {[]string{"upstream rollup has a newer materialization (2024-01-02)"}, []flowstone.Partition{"2024-01-02"}},
		})

		materialize([]string{"cumulative"}, "2024-01-02", true)
		check("the second day again", nil)
	})
}
