package web_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/flowstonetest"
	"github.com/flowstone-go/flowstone/runtime"
	"github.com/flowstone-go/flowstone/runtime/web"
	"github.com/flowstone-go/flowstone/strategy"
)

// qualityPipeline: revenue (fresh=24h) feeds report (fresh=1ms: overdue as
// soon as it is materialized); revenue has a blocking check (positive) and
// a warning (round) on the value.
func qualityPipeline(value *atomic.Int64) *runtime.Pipeline {
	revenue := runtime.AssetDef{Key: "revenue", Kind: "standard", Strategy: strategy.Standard{}, HasValue: true, CodeVersion: "v1",
		Fresh: 24 * time.Hour,
		Run:   func(context.Context, *runtime.Inputs) (any, error) { return value.Load(), nil }}
	report := runtime.AssetDef{Key: "report", Kind: "standard", Strategy: strategy.Standard{}, HasValue: true, CodeVersion: "v1",
		Fresh: time.Millisecond, Deps: []runtime.Dep{{Asset: "revenue", Kind: runtime.DepValue}},
		Run: func(ctx context.Context, in *runtime.Inputs) (any, error) {
			v, err := runtime.Input[int64](ctx, in, "revenue")
			return v * 2, err
		}}
	check := func(pass func(int64) bool, desc string) runtime.CheckFunc {
		return func(ctx context.Context, in *runtime.Inputs) (flowstone.CheckResult, error) {
			v, err := runtime.Input[int64](ctx, in, "revenue")
			return flowstone.CheckResult{Passed: pass(v), Description: desc, Metadata: map[string]any{"value": v}}, err
		}
	}
	return runtime.NewPipeline(runtime.PipelineDef{Name: "quality", Assets: []runtime.AssetDef{revenue, report}, Checks: []runtime.CheckDef{
		{Name: "positive", Asset: "revenue", Blocking: true, Run: check(func(v int64) bool { return v > 0 }, "revenue is positive")},
		{Name: "round", Asset: "revenue", Severity: flowstone.SeverityWarn, Run: check(func(v int64) bool { return v%10 == 0 }, "revenue is round")},
	}})
}

// qualityHistory opens an engine on db and makes three runs: all of it
// (15: the warning fails), revenue alone (20: report is now stale), all
// of it (-5: the blocking check fails, report is upstream_failed). It
// returns the engine and the last revenue materialization.
func qualityHistory(t *testing.T, db flowstonetest.Database) (*runtime.Engine, string) {
	t.Helper()
	var value atomic.Int64
	p := qualityPipeline(&value)
	eng := flowstonetest.Open(t, p, nil, db)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	var last string
	for _, step := range []struct {
		value   int64
		targets []string
	}{{15, nil}, {20, []string{"revenue"}}, {-5, nil}} {
		value.Store(step.value)
		run, err := eng.Materialize(ctx, p, runtime.Request{Targets: step.targets, Force: true})
		if err != nil {
			t.Fatal(err)
		}
		res, err := eng.Wait(ctx, run.ID)
		if err != nil {
			t.Fatal(err)
		}
		last = res.Assets["revenue"].Materialization
		// Checks report after their materialization: wait for both.
		for {
			rs, err := eng.MaterializationChecks(ctx, last)
			if err != nil {
				t.Fatal(err)
			}
			if len(rs) == 2 {
				break
			}
			select {
			case <-ctx.Done():
				t.Fatalf("the checks of %s never reported: %+v", last, rs)
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	return eng, last
}

func TestChecksFreshnessAndStalenessEndpoints(t *testing.T) {
	t.Parallel()
	flowstonetest.EachDatabase(t, func(t *testing.T, db flowstonetest.Database) {
		eng, last := qualityHistory(t, db)
		h, err := web.New(eng, web.Options{})
		if err != nil {
			t.Fatal(err)
		}
		s := &site{Server: httptest.NewServer(h), eng: eng}
		t.Cleanup(s.Close)

		type check struct {
			Check, Severity, Description string
			Passed, Blocking, Blocks     bool
			Metadata                     map[string]any
		}
		var asset struct {
			Node struct {
				Freshness *struct {
					Bound, Age string
					Overdue    bool
				}
			}
			Checks           []struct{ Name string }
			Materializations []struct {
				ID     string
				Checks []check
			}
		}
		s.get(t, "/api/pipelines/quality/assets/revenue", &asset)
		if len(asset.Checks) != 2 || len(asset.Materializations) != 3 || asset.Materializations[0].ID != last {
			t.Fatalf("revenue's page: %+v", asset)
		}
		got := map[string]check{}
		for _, c := range asset.Materializations[0].Checks {
			got[c.Check] = c
		}
		if c := got["positive"]; c.Passed || !c.Blocks || c.Severity != "error" || c.Description != "revenue is positive" || c.Metadata["value"] != float64(-5) {
			t.Errorf("positive on the newest materialization: %+v", c)
		}
		if c := got["round"]; c.Passed || c.Blocks || c.Severity != "warn" {
			t.Errorf("round on the newest materialization: %+v", c)
		}
		if f := asset.Node.Freshness; f == nil || f.Overdue || f.Bound != "24h" || f.Age == "" {
			t.Errorf("revenue's freshness: %+v", f)
		}

		var health struct {
			Freshness []struct {
				Asset     string
				Freshness struct {
					Bound, Age, Reason string
					Overdue            bool
				}
			}
			Stale []struct {
				Asset        string
				StaleReasons []string
			}
			FailedChecks []check
		}
		s.get(t, "/api/health", &health)
		if len(health.Freshness) != 2 || health.Freshness[0].Asset != "report" || !health.Freshness[0].Freshness.Overdue ||
			health.Freshness[0].Freshness.Bound != "1ms" || health.Freshness[0].Freshness.Age == "" ||
			!strings.Contains(health.Freshness[0].Freshness.Reason, "more than 1ms") || health.Freshness[1].Freshness.Overdue {
			t.Errorf("freshness, overdue first: %+v", health.Freshness)
		}
		if len(health.Stale) != 1 || health.Stale[0].Asset != "report" || len(health.Stale[0].StaleReasons) != 1 ||
			health.Stale[0].StaleReasons[0] != "upstream revenue has a newer materialization" {
			t.Errorf("stale: %+v", health.Stale)
		}
		// 15 fails round; -5 fails both.
		if len(health.FailedChecks) != 3 || !health.FailedChecks[0].Blocks && !health.FailedChecks[1].Blocks {
			t.Errorf("failed checks: %+v", health.FailedChecks)
		}

		// The run's page carries the checks of its materializations.
		var runs []struct{ ID string }
		s.get(t, "/api/runs?pipeline=quality", &runs)
		var run struct {
			Nodes []struct {
				Asset, Status string
				Checks        []check
			}
		}
		s.get(t, "/api/runs/"+runs[0].ID, &run)
		for _, n := range run.Nodes {
			switch n.Asset {
			case "revenue":
				if len(n.Checks) != 2 {
					t.Errorf("revenue in the newest run: %+v", n)
				}
				for _, c := range n.Checks {
					if c.Check == "positive" && !c.Blocks {
						t.Errorf("positive in the newest run: %+v", c)
					}
				}
			case "report":
				if n.Status != "upstream_failed" || len(n.Checks) != 0 {
					t.Errorf("report in the newest run: %+v", n)
				}
			}
		}

		var graph []struct {
			Assets []struct {
				Key, Stale string
				Freshness  *struct{ Overdue bool }
			}
		}
		s.get(t, "/api/graph", &graph)
		for _, a := range graph[0].Assets {
			if a.Key == "report" && (a.Freshness == nil || !a.Freshness.Overdue || a.Stale != "upstream revenue has a newer materialization") {
				t.Errorf("report in the graph: %+v", a)
			}
		}
	})
}

// TestBrowserChecksAndOverdue shows check results with each
// materialization (the blocking failure highlighted), overdue and stale
// assets with their bound, age and reason.
func TestBrowserChecksAndOverdue(t *testing.T) {
	t.Parallel()
	tab := browser(t)
	eng, _ := qualityHistory(t, flowstonetest.SQLite())
	h, err := web.New(eng, web.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	err = chromedp.Do(tab,
		chromedp.Navigate(srv.URL+"/"),
		chromedp.WaitVisible(`g.node.overdue[data-asset="report"]`),
		chromedp.Navigate(srv.URL+"/#/asset/quality/revenue"),
		chromedp.WaitVisible(`#checks tr.blocks[data-check="positive"]`),
		chromedp.WaitVisible(`#materializations tr.blocks .check.failed.blocks`),
		shot(t, "checks"),
	)
	if err != nil {
		t.Fatalf("revenue's checks: %v", err)
	}
	if row, err := chromedp.Run(tab, chromedp.Text(`#checks tr[data-check="positive"]`)); err != nil ||
		!strings.Contains(row, "failed, blocking") || !strings.Contains(row, "revenue is positive") || !strings.Contains(row, "value = -5") {
		t.Errorf("the positive check reads %q (%v)", row, err)
	}
	if row, err := chromedp.Run(tab, chromedp.Text(`#checks tr[data-check="round"]`)); err != nil || !strings.Contains(row, "failed") || strings.Contains(row, "blocking") {
		t.Errorf("the round check reads %q (%v)", row, err)
	}
	// The run of the failing materialization shows its checks too.
	err = chromedp.Do(tab,
		chromedp.Click(`#materializations tr.blocks a[href^="#/run/"]`),
		chromedp.WaitVisible(`#nodes tr.blocks[data-asset="revenue"] .check.failed.blocks`),
	)
	if err != nil {
		t.Fatalf("the run's checks: %v", err)
	}
	err = chromedp.Do(tab,
		chromedp.Navigate(srv.URL+"/#/health"),
		chromedp.WaitVisible(`#freshness tr.overdue[data-asset="report"]`),
		chromedp.WaitVisible(`#stale tr[data-asset="report"]`),
		chromedp.WaitVisible(`#failed-checks tr.blocks[data-check="positive"]`),
		shot(t, "health"),
	)
	if err != nil {
		t.Fatalf("health page: %v", err)
	}
	if row, err := chromedp.Run(tab, chromedp.Text(`#freshness tr[data-asset="report"]`)); err != nil ||
		!strings.Contains(row, "overdue") || !strings.Contains(row, "1ms") || !strings.Contains(row, "more than 1ms") {
		t.Errorf("report's freshness reads %q (%v)", row, err)
	}
	if row, err := chromedp.Run(tab, chromedp.Text(`#freshness tr[data-asset="revenue"]`)); err != nil || !strings.Contains(row, "fresh") || !strings.Contains(row, "24h") {
		t.Errorf("revenue's freshness reads %q (%v)", row, err)
	}
	if row, err := chromedp.Run(tab, chromedp.Text(`#stale tr[data-asset="report"]`)); err != nil || !strings.Contains(row, "upstream revenue has a newer materialization") {
		t.Errorf("report's staleness reads %q (%v)", row, err)
	}
}
