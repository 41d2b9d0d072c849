package runtime

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone"
)

// checkPipeline: revenue feeds report; revenue has a blocking check
// (positive) and a warning (round); the value decides whether they pass.
func checkPipeline(value *atomic.Int64) *Pipeline {
	revenue := def("revenue", func(ctx context.Context, in *Inputs) (any, error) { return value.Load(), nil })
	revenue.CodeVersion = "v1"
	report := def("report", func(ctx context.Context, in *Inputs) (any, error) {
		v, err := Input[int64](ctx, in, "revenue")
		return v * 2, err
	}, on("revenue"))
	check := func(pass func(int64) bool, desc string) CheckFunc {
		return func(ctx context.Context, in *Inputs) (flowstone.CheckResult, error) {
			v, err := Input[int64](ctx, in, "revenue")
			if err != nil {
				return flowstone.CheckResult{}, err
			}
			return flowstone.CheckResult{Passed: pass(v), Description: desc, Metadata: map[string]any{"value": v}}, nil
		}
	}
	return NewPipeline(PipelineDef{Name: "checks", Assets: []AssetDef{revenue, report}, Checks: []CheckDef{
		{Name: "positive", Asset: "revenue", Blocking: true, Run: check(func(v int64) bool { return v > 0 }, "revenue is positive")},
		{Name: "round", Asset: "revenue", Severity: flowstone.SeverityWarn, Run: check(func(v int64) bool { return v%10 == 0 }, "revenue is round")},
	}})
}

// checksByName waits for mat's two checks: a warning may report after
// its run finished.
func checksByName(t *testing.T, e *Engine, mat string) map[string]CheckRecord {
	t.Helper()
	var rs []CheckRecord
	for deadline := time.Now().Add(60 * time.Second); len(rs) < 2; time.Sleep(20 * time.Millisecond) {
		var err error
		if rs, err = e.MaterializationChecks(context.Background(), mat); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("checks of %s: %+v", mat, rs)
		}
	}
	out := map[string]CheckRecord{}
	for _, r := range rs {
		out[r.Check] = r
	}
	return out
}

func TestChecksBlockDownstreamAndWarningsDoNot(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		var value atomic.Int64
		value.Store(15) // positive, not round: a warning only
		p := checkPipeline(&value)
		e := openEngine(t, db.config(t), Bind(p, nil))

		run, err := e.Materialize(ctx, p, Request{})
		if err != nil {
			t.Fatal(err)
		}
		res := waitRun(t, e, run.ID)
		if res.Status != RunSucceeded || res.Assets["report"].Status != StatusSucceeded {
			t.Fatalf("a warning stopped the run: %s %+v", res.Status, res.Assets)
		}
		got := checksByName(t, e, res.Assets["revenue"].Materialization)
		if !got["positive"].Passed || got["round"].Passed || got["round"].Severity != flowstone.SeverityWarn {
			t.Fatalf("check results: %+v", got)
		}
		if got["round"].Metadata["value"] != float64(15) || got["round"].Run != run.ID {
			t.Fatalf("warning's metadata or run: %+v", got["round"])
		}

		value.Store(-5) // the blocking check fails
		run, err = e.Materialize(ctx, p, Request{Force: true})
		if err != nil {
			t.Fatal(err)
		}
		res = waitRun(t, e, run.ID)
		rev := res.Assets["revenue"]
		if res.Status != RunFailed || rev.Status != StatusFailed || res.Assets["report"].Status != StatusUpstreamFailed {
			t.Fatalf("a failed blocking check did not stop downstream: %s %+v", res.Status, res.Assets)
		}
		if rev.Error != "blocking check positive failed: revenue is positive" {
			t.Fatalf("revenue's error: %q", rev.Error)
		}
		if v, err := Load[int64](ctx, e, "checks", "revenue", ""); err != nil || v != -5 {
			t.Fatalf("the checked value is not kept for inspection: %v %v", v, err)
		}
		if got := checksByName(t, e, rev.Materialization); got["positive"].Passed || got["positive"].Metadata["value"] != float64(-5) {
			t.Fatalf("blocking failure not recorded with its metadata: %+v", got)
		}

		// Run alone, the checks judge the newest materialization again.
		value.Store(20)
		recs, err := e.Check(ctx, p, "revenue", "", "")
		if err != nil || len(recs) != 2 || recs[0].Passed || recs[0].Check != "positive" {
			t.Fatalf("check-only run: %+v %v", recs, err)
		}
		if _, err := e.Check(ctx, p, "report", "", ""); err == nil {
			t.Fatal("checking an asset without checks succeeded")
		}
		// A materialization a blocking check failed is not reused: the
		// next run reuses the one before it.
		run, err = e.Materialize(ctx, p, Request{})
		if err != nil {
			t.Fatal(err)
		}
		if res := waitRun(t, e, run.ID); res.Status != RunSucceeded || res.Assets["revenue"].Materialization == rev.Materialization {
			t.Fatalf("the failed materialization was reused: %s %+v", res.Status, res.Assets)
		}
		all, err := e.CheckResults(ctx, "checks", "revenue", 100)
		if err != nil || len(all) != 4 {
			t.Fatalf("check history: %d %v", len(all), err)
		}
	})
}
