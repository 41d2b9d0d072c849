package runtime

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
)

// chain: numbers -> doubled -> total
func chainPipeline(name string, calls *atomic.Int64) *Pipeline {
	return NewPipeline(PipelineDef{Name: name, Assets: []AssetDef{
		def("numbers", func(ctx context.Context, in *Inputs) (any, error) {
			calls.Add(1)
			return []int{1, 2, 3}, nil
		}),
		def("doubled", func(ctx context.Context, in *Inputs) (any, error) {
			calls.Add(1)
			ns, err := Input[[]int](ctx, in, "numbers")
			if err != nil {
				return nil, err
			}
			out := make([]int, len(ns))
			for i, n := range ns {
				out[i] = 2 * n
			}
			return out, nil
		}, on("numbers")),
		def("total", func(ctx context.Context, in *Inputs) (any, error) {
			calls.Add(1)
			ns, err := Input[[]int](ctx, in, "doubled")
			if err != nil {
				return nil, err
			}
			s := 0
			for _, n := range ns {
				s += n
			}
			return s, nil
		}, on("doubled")),
	}})
}

func TestChainRunsReusesAndForces(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		var calls atomic.Int64
		p := chainPipeline("chain", &calls)
		e := openEngine(t, db.config(t), Bind(p, nil))

		run, err := e.Materialize(ctx, p, Request{Targets: []string{"total"}})
		if err != nil {
			t.Fatal(err)
		}
		res := waitRun(t, e, run.ID)
		if res.Status != RunSucceeded {
			t.Fatalf("run %s: %+v", res.Status, res.Assets)
		}
		for _, k := range []string{"numbers", "doubled", "total"} {
			if got := res.Assets[k].Status; got != StatusSucceeded {
				t.Errorf("%s: %s (%s)", k, got, res.Assets[k].Error)
			}
		}
		total, err := Load[int](ctx, e, "chain", "total", "")
		if err != nil || total != 12 {
			t.Fatalf("Load total = %d, %v; want 12", total, err)
		}

		// Lineage: total read exactly the doubled materialization of this run.
		m, err := e.MaterializationByID(ctx, res.Assets["total"].Materialization)
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Upstream) != 1 || m.Upstream[0].Asset != "doubled" || m.Upstream[0].Materialization != res.Assets["doubled"].Materialization {
			t.Errorf("lineage of total = %+v", m.Upstream)
		}

		// Same code, same inputs: everything is reused, nothing runs.
		before := calls.Load()
		run2, err := e.Materialize(ctx, p, Request{Targets: []string{"total"}})
		if err != nil {
			t.Fatal(err)
		}
		res2 := waitRun(t, e, run2.ID)
		if res2.Status != RunSucceeded || calls.Load() != before {
			t.Fatalf("second run: %s, calls %d -> %d", res2.Status, before, calls.Load())
		}
		for k, a := range res2.Assets {
			if a.Status != StatusReused {
				t.Errorf("second run %s: %s, want reused", k, a.Status)
			}
		}

		// Force recomputes the targets only; their upstream is reused.
		run3, err := e.Materialize(ctx, p, Request{Targets: []string{"total"}, Force: true})
		if err != nil {
			t.Fatal(err)
		}
		res3 := waitRun(t, e, run3.ID)
		if res3.Status != RunSucceeded || calls.Load() != before+1 {
			t.Fatalf("forced run: %s, calls %d, want 1", res3.Status, calls.Load()-before)
		}
		for k, want := range map[string]AssetStatus{"numbers": StatusReused, "doubled": StatusReused, "total": StatusSucceeded} {
			if got := res3.Assets[k].Status; got != want {
				t.Errorf("forced run: %s %s, want %s", k, got, want)
			}
		}

		// Forcing +total recomputes the whole closure.
		run4, err := e.Materialize(ctx, p, Request{Select: "+total", Force: true})
		if err != nil {
			t.Fatal(err)
		}
		if res4 := waitRun(t, e, run4.ID); res4.Status != RunSucceeded || calls.Load() != before+4 {
			t.Fatalf("forced +total: %s, calls %d, want 4", res4.Status, calls.Load()-before)
		}

		// A forced upstream makes its dependents recompute (their input
		// changed), whatever the selection: numbers+ is the whole chain
		// here, numbers alone is forced and the rest follows.
		run5, err := e.Materialize(ctx, p, Request{Select: "numbers+1", Force: true})
		if err != nil {
			t.Fatal(err)
		}
		res5 := waitRun(t, e, run5.ID)
		if got := res5.Order; len(got) != 2 || got[0] != "numbers" || got[1] != "doubled" {
			t.Errorf("numbers+1 ran %v, want [numbers doubled]", got)
		}
		if calls.Load() != before+6 {
			t.Errorf("forced numbers+1: calls %d, want 6", calls.Load()-before)
		}
	})
}

func TestUnknownTargetLeavesNoRun(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		var calls atomic.Int64
		p := chainPipeline("chain", &calls)
		e := openEngine(t, db.config(t), Bind(p, nil))
		_, err := e.Materialize(context.Background(), p, Request{Targets: []string{"totl"}})
		if !errors.Is(err, ErrUnknownAsset) {
			t.Fatalf("err = %v, want ErrUnknownAsset", err)
		}
		runs, err := e.Runs(context.Background(), "", 10)
		if err != nil || len(runs) != 0 {
			t.Fatalf("runs = %v, %v; want none", runs, err)
		}
	})
}
