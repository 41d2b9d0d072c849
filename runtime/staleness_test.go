package runtime

import (
	"context"
	"slices"
	"testing"
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
