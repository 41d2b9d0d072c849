package refunds_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/examples/refunds"
	"github.com/flowstone-go/flowstone/flowstonetest"
	"github.com/flowstone-go/flowstone/internal/testdb"
	"github.com/flowstone-go/flowstone/runtime"
	"github.com/flowstone-go/flowstone/strategy"
)

var secret = []byte("refunds-example-test-secret")

// Days whose requests triage routes each way (see NeedsManualReview).
const (
	smallDay = flowstone.Partition("2024-03-01") // 3 requests, 395.16 in all
	largeDay = flowstone.Partition("2024-03-08") // 8 requests, one of 580.64
)

// Clocks for the BusinessHours kind (2024-03-06 is a Wednesday).
var (
	officeHours = time.Date(2024, 3, 6, 10, 30, 0, 0, time.UTC)
	evening     = time.Date(2024, 3, 6, 19, 0, 0, 0, time.UTC)
	saturday    = time.Date(2024, 3, 9, 11, 0, 0, 0, time.UTC)
)

// eachDB runs fn as a parallel subtest per database, with a config for a
// fresh database that has the secret and quick polling: for the tests that
// open two engines on one database, or several pipelines, which
// flowstonetest does not.
func eachDB(t *testing.T, fn func(t *testing.T, cfg runtime.Config)) {
	t.Helper()
	for _, db := range testdb.All(t) {
		t.Run(db.Name, func(t *testing.T) {
			t.Parallel()
			var cfg runtime.Config
			cfg.Database, cfg.Schema = db.New(t)
			cfg.Secret = secret
			cfg.Logger = slog.New(slog.DiscardHandler)
			cfg.PollInterval = 20 * time.Millisecond
			cfg.RetryDelay = func(int) time.Duration { return 10 * time.Millisecond }
			fn(t, cfg)
		})
	}
}

// pipelineAt is the generated pipeline with the BusinessHours kind's clock
// stopped at now; everything else is exactly what Pipeline() returns.
func pipelineAt(now time.Time) *runtime.Pipeline {
	gen := refunds.Pipeline()
	var assets []runtime.AssetDef
	for _, a := range gen.Assets() {
		d := *a
		if bh, ok := d.Strategy.(refunds.BusinessHoursOnly); ok {
			bh.Now = func() time.Time { return now }
			d.Strategy = bh
		}
		assets = append(assets, d)
	}
	return runtime.NewPipeline(runtime.PipelineDef{Name: gen.Name(), Resources: runtime.ResourcesOf[refunds.Resources](), Assets: assets})
}

func open(t *testing.T, cfg runtime.Config, p *runtime.Pipeline) *runtime.Engine {
	t.Helper()
	e, err := runtime.Open(context.Background(), cfg, runtime.Bind(p, refunds.Resources{Bank: refunds.NewBank()}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := e.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return e
}

// waitForGate returns once the refund gate of run is waiting.
func waitForGate(t *testing.T, e *runtime.Engine, run string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		gates, err := e.Gates(context.Background(), "refunds")
		if err != nil {
			t.Fatal(err)
		}
		if slices.ContainsFunc(gates, func(g runtime.Gate) bool { return g.RunID == run && g.Asset == refunds.AssetRefund }) {
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	r, _ := e.Run(context.Background(), run)
	t.Fatalf("the refund gate never waited: %+v", r.Assets)
}

func wait(t *testing.T, e *runtime.Engine, run string) runtime.RunResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := e.Wait(ctx, run)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func wantStatus(t *testing.T, res runtime.RunResult, want map[string]runtime.AssetStatus) {
	t.Helper()
	for k, st := range want {
		if a := res.Assets[k]; a.Status != st {
			t.Errorf("%s = %s (%s), want %s", k, a.Status, a.Error, st)
		}
	}
}

func TestTriageRoutesByAmount(t *testing.T) {
	t.Parallel()
	flowstonetest.EachDatabase(t, func(t *testing.T, db flowstonetest.Database) {
		ctx := context.Background()
		p := pipelineAt(officeHours)
		e := flowstonetest.Open(t, p, refunds.Resources{Bank: refunds.NewBank()}, db)
		for _, tc := range []struct {
			day            flowstone.Partition
			taken, skipped string
			approved       int
			denied         string
		}{
			{smallDay, refunds.AssetAutoApprove, refunds.AssetManualReview, 3, ""},
			// The rulebook denies one request of the large day: made 64 days
			// after the purchase.
			{largeDay, refunds.AssetManualReview, refunds.AssetAutoApprove, 7, "requested 64 days after purchase (limit 60)"},
		} {
			run, err := e.Materialize(ctx, p, runtime.Request{Partition: tc.day})
			if err != nil {
				t.Fatal(err)
			}
			waitForGate(t, e, run.ID)
			res, err := e.Run(ctx, run.ID)
			if err != nil {
				t.Fatal(err)
			}
			wantStatus(t, res, map[string]runtime.AssetStatus{
				refunds.AssetTriage: runtime.StatusSucceeded,
				tc.taken:            runtime.StatusSucceeded,
				tc.skipped:          runtime.StatusSkipped,
				// The join ran although one of its branches was skipped.
				refunds.AssetDecision: runtime.StatusSucceeded,
				refunds.AssetRefund:   runtime.StatusWaiting,
				refunds.AssetPayout:   runtime.StatusPending,
			})
			if reason := res.Assets[tc.skipped].Error; reason != "router triage chose "+tc.taken {
				t.Errorf("%s skipped because %q", tc.skipped, reason)
			}
			route, err := refunds.LoadTriage(ctx, e, tc.day)
			if err != nil || !slices.Equal(route.Branches, []string{tc.taken}) {
				t.Errorf("%s: route %v, %v", tc.day, route, err)
			}
			v, err := refunds.LoadDecision(ctx, e, tc.day)
			if err != nil {
				t.Fatal(err)
			}
			if v.ReviewedBy != tc.taken || len(v.Approved) != tc.approved {
				t.Errorf("%s: decision reviewed by %q approved %d, want %s and %d (%+v)", tc.day, v.ReviewedBy, len(v.Approved), tc.taken, tc.approved, v)
			}
			var denied []string
			for _, d := range v.Denied {
				denied = append(denied, d.Reason)
			}
			if got := strings.Join(denied, "; "); got != tc.denied {
				t.Errorf("%s: denied %q, want %q", tc.day, got, tc.denied)
			}
		}
	})
}

func TestRefundApprovedFromAnotherProcess(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, cfg runtime.Config) {
		ctx := context.Background()
		p := pipelineAt(officeHours)
		worker := open(t, cfg, p)
		// Finance's process: it works no jobs, it only approves.
		acfg := cfg
		acfg.NoWorkers = true
		finance := open(t, acfg, refunds.Pipeline())

		run, err := worker.Materialize(ctx, p, runtime.Request{Partition: largeDay})
		if err != nil {
			t.Fatal(err)
		}
		waitForGate(t, worker, run.ID)
		held, err := refunds.LoadRefund(ctx, worker, largeDay)
		if err == nil {
			t.Errorf("the held batch is loadable before approval: %+v", held)
		}
		if err := finance.Approve(ctx, runtime.Ref{RunID: run.ID, Asset: refunds.AssetRefund, Partition: largeDay}, "ana", "receipts checked"); err != nil {
			t.Fatal(err)
		}
		if err := finance.Reject(ctx, runtime.Ref{RunID: run.ID, Asset: refunds.AssetRefund, Partition: largeDay}, "bob", "too late"); !errors.Is(err, runtime.ErrGateResolved) {
			t.Errorf("reject after approval: %v, want ErrGateResolved", err)
		}
		res := wait(t, worker, run.ID)
		if res.Status != runtime.RunSucceeded {
			t.Fatalf("run %s: %+v", res.Status, res.Assets)
		}
		wantStatus(t, res, map[string]runtime.AssetStatus{
			refunds.AssetRefund:        runtime.StatusSucceeded,
			refunds.AssetPayout:        runtime.StatusSucceeded,
			refunds.AssetFollowUpCalls: runtime.StatusSucceeded,
		})
		batch, err := refunds.LoadRefund(ctx, finance, largeDay)
		if err != nil {
			t.Fatal(err)
		}
		receipt, err := refunds.LoadPayout(ctx, finance, largeDay)
		if err != nil {
			t.Fatal(err)
		}
		if len(receipt.Transfers) != len(batch.Items) || receipt.Total != batch.Total || batch.Total <= refunds.ManualReviewFrom {
			t.Errorf("paid %d transfers, %.2f, for a batch of %d, %.2f", len(receipt.Transfers), receipt.Total, len(batch.Items), batch.Total)
		}
	})
}

func TestRejectedRefundPaysNothing(t *testing.T) {
	t.Parallel()
	flowstonetest.EachDatabase(t, func(t *testing.T, db flowstonetest.Database) {
		ctx := context.Background()
		p := pipelineAt(officeHours)
		e := flowstonetest.Open(t, p, refunds.Resources{Bank: refunds.NewBank()}, db)
		run, err := e.Materialize(ctx, p, runtime.Request{Partition: smallDay})
		if err != nil {
			t.Fatal(err)
		}
		waitForGate(t, e, run.ID)
		if err := e.Reject(ctx, runtime.Ref{RunID: run.ID, Asset: refunds.AssetRefund, Partition: smallDay}, "carl", "duplicate of yesterday's batch"); err != nil {
			t.Fatal(err)
		}
		res := wait(t, e, run.ID)
		if res.Status != runtime.RunFailed {
			t.Errorf("run %s, want failed", res.Status)
		}
		wantStatus(t, res, map[string]runtime.AssetStatus{
			refunds.AssetRefund:        runtime.StatusFailed,
			refunds.AssetPayout:        runtime.StatusUpstreamFailed,
			refunds.AssetFollowUpCalls: runtime.StatusUpstreamFailed,
		})
		if msg := res.Assets[refunds.AssetRefund].Error; !strings.Contains(msg, "rejected by carl: duplicate of yesterday's batch") {
			t.Errorf("refund's error = %q", msg)
		}
		if _, err := refunds.LoadPayout(ctx, e, smallDay); err == nil {
			t.Error("a rejected batch was paid")
		}
	})
}

// TestBusinessHoursKind runs the user-defined kind through the engine, in
// pipelines built by hand around the example's FollowUpCalls: its kind is
// BusinessHours with the clock stopped, and call_log requires it.
func TestBusinessHoursKind(t *testing.T) {
	t.Parallel()
	receipt := refunds.Receipt{Day: largeDay, Total: 1025.15, Transfers: []refunds.Transfer{{ID: "tr_1", Customer: "c001", Amount: 1025.15}}}
	type hoursCase struct {
		name   string
		kind   refunds.BusinessHoursOnly
		status runtime.AssetStatus // of follow_up_calls
		reason string
		after  runtime.AssetStatus // of call_log
		calls  int64
	}
	at := func(now time.Time) refunds.BusinessHoursOnly {
		k := refunds.BusinessHours
		k.Now = func() time.Time { return now }
		return k
	}
	weekends := at(saturday)
	weekends.Weekends = true
	badZone := at(officeHours)
	badZone.Zone = "Mars/Olympus_Mons"
	cases := []hoursCase{
		{"office", at(officeHours), runtime.StatusSucceeded, "", runtime.StatusSucceeded, 1},
		{"evening", at(evening), runtime.StatusSkipped, "outside business hours: 19:00 UTC (open 09:00-17:00 UTC)", runtime.StatusSkipped, 0},
		{"saturday", at(saturday), runtime.StatusSkipped, "outside business hours: 2024-03-09 is a Saturday (open 09:00-17:00 UTC, weekdays)", runtime.StatusSkipped, 0},
		{"weekends", weekends, runtime.StatusSucceeded, "", runtime.StatusSucceeded, 1},
		{"zone", badZone, runtime.StatusFailed, "business hours: unknown time zone Mars/Olympus_Mons", runtime.StatusUpstreamFailed, 0},
	}
	build := func(c hoursCase, calls *atomic.Int64) *runtime.Pipeline {
		return runtime.NewPipeline(runtime.PipelineDef{Name: "hours_" + c.name, Assets: []runtime.AssetDef{
			{Key: "payout", Kind: "standard", Strategy: strategy.Standard{}, HasValue: true, CodeVersion: "1",
				Run: func(ctx context.Context, in *runtime.Inputs) (any, error) { return receipt, nil }},
			{Key: "follow_up_calls", Kind: "custom", Strategy: c.kind, CodeVersion: "1",
				Deps: []runtime.Dep{{Asset: "payout", Kind: runtime.DepValue}},
				Run: func(ctx context.Context, in *runtime.Inputs) (any, error) {
					calls.Add(1)
					rc, err := runtime.Input[refunds.Receipt](ctx, in, "payout")
					if err != nil {
						return nil, err
					}
					return nil, refunds.FollowUpCalls(ctx, rc)
				}},
			{Key: "call_log", Kind: "standard", Strategy: strategy.Standard{}, CodeVersion: "1",
				Deps: []runtime.Dep{{Asset: "follow_up_calls", Kind: runtime.DepOrder}},
				Run:  func(ctx context.Context, in *runtime.Inputs) (any, error) { return nil, nil }},
		}})
	}
	eachDB(t, func(t *testing.T, cfg runtime.Config) {
		ctx := context.Background()
		calls := make([]atomic.Int64, len(cases))
		pipelines := make([]*runtime.Pipeline, len(cases))
		var bs []runtime.Binding
		for i, c := range cases {
			pipelines[i] = build(c, &calls[i])
			bs = append(bs, runtime.Bind(pipelines[i], nil))
		}
		e, err := runtime.Open(ctx, cfg, bs...)
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close(context.WithoutCancel(ctx))
		for i, c := range cases {
			run, err := e.Materialize(ctx, pipelines[i], runtime.Request{})
			if err != nil {
				t.Fatal(err)
			}
			res := wait(t, e, run.ID)
			a := res.Assets["follow_up_calls"]
			if a.Status != c.status || a.Error != c.reason || res.Assets["call_log"].Status != c.after || calls[i].Load() != c.calls {
				t.Errorf("%s: follow_up_calls %s (%q), call_log %s, function called %d times; want %s (%q), %s, %d",
					c.name, a.Status, a.Error, res.Assets["call_log"].Status, calls[i].Load(), c.status, c.reason, c.after, c.calls)
			}
			// A skipped asset does not fail its run; a failed one does.
			if want := runtime.RunSucceeded; c.status == runtime.StatusFailed {
				if res.Status != runtime.RunFailed {
					t.Errorf("%s: run %s, want failed", c.name, res.Status)
				}
			} else if res.Status != want {
				t.Errorf("%s: run %s, want %s", c.name, res.Status, want)
			}
		}
	})
}

// The router and the join alone, with stubbed inputs and no database.
func TestTriageAndDecisionWithStubbedInputs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := refunds.Pipeline()
	small := []refunds.Request{{ID: "r1", Order: "o1", Amount: 20, Age: 3}, {ID: "r2", Order: "o2", Amount: 1000, Age: 90}}
	route, err := flowstonetest.Call[flowstone.Route](ctx, p, refunds.AssetTriage, flowstonetest.Inputs{
		Values: map[string]any{refunds.AssetRefundRequests: small[:1]}})
	if err != nil || !slices.Equal(route.Branches, []string{refunds.AssetAutoApprove}) {
		t.Fatalf("triage of a small day = %v, %v", route, err)
	}

	// Manual review failed and auto_approve was skipped: the small
	// requests are paid, the large ones deferred.
	v, err := flowstonetest.Call[refunds.Verdict](ctx, p, refunds.AssetDecision, flowstonetest.Inputs{Values: map[string]any{
		refunds.AssetRefundRequests: small,
		refunds.AssetManualReview:   errors.New("reviewer away"),
		refunds.AssetAutoApprove:    runtime.ErrSkipped,
	}})
	if err != nil || len(v.Approved) != 1 || v.Approved[0].ID != "r1" || !slices.Equal(v.Deferred, []string{"r2"}) ||
		v.ReviewedBy != "decision (manual review: upstream manual_review failed: reviewer away)" {
		t.Fatalf("decision = %+v, %v", v, err)
	}

	// auto_approve's review stands.
	v, err = flowstonetest.Call[refunds.Verdict](ctx, p, refunds.AssetDecision, flowstonetest.Inputs{Values: map[string]any{
		refunds.AssetRefundRequests: small,
		refunds.AssetManualReview:   runtime.ErrSkipped,
		refunds.AssetAutoApprove:    refunds.Review{By: "auto_approve", Approved: []string{"r1", "r2"}},
	}})
	if err != nil || v.ReviewedBy != "auto_approve" || len(v.Approved) != 2 {
		t.Fatalf("decision after auto_approve = %+v, %v", v, err)
	}
}
