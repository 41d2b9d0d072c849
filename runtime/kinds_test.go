package runtime

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/strategy"
)

var testSecret = []byte("0123456789abcdef-test-secret")

// routerPipeline: amount -> triage (router, fallback manual) -> manual | auto
// -> decision (join over both) ; strict requires auto.
func routerPipeline(amount *atomic.Int64, routerCalls *atomic.Int64, fail bool) *Pipeline {
	routed := func(key string) AssetDef {
		a := def(key, func(ctx context.Context, in *Inputs) (any, error) { return key + " reviewed", nil },
			on("amount"), Dep{Asset: "triage", Kind: DepOrder})
		a.Kind, a.Strategy = "routed", strategy.Routed{Router: "triage"}
		return a
	}
	triage := def("triage", func(ctx context.Context, in *Inputs) (any, error) {
		routerCalls.Add(1)
		if fail {
			return flowstone.Route{}, errors.New("scoring service down")
		}
		n, err := Input[int64](ctx, in, "amount")
		if err != nil {
			return nil, err
		}
		if n > 10_000 {
			return flowstone.RouteTo("manual"), nil
		}
		return flowstone.RouteTo("auto"), nil
	}, on("amount"))
	triage.Kind, triage.Strategy, triage.Retries = "router", strategy.Router{Fallback: "manual"}, 1
	decision := def("decision", func(ctx context.Context, in *Inputs) (any, error) {
		m := InputOutcome[string](ctx, in, "manual")
		a := InputOutcome[string](ctx, in, "auto")
		switch {
		case m.OK():
			return "decided by " + m.Value, nil
		case a.OK():
			return "decided by " + a.Value, nil
		}
		return nil, errors.New("no review")
	}, Dep{Asset: "manual", Kind: DepOutcome}, Dep{Asset: "auto", Kind: DepOutcome})
	decision.Kind, decision.Strategy = "join", strategy.Join{}
	return NewPipeline(PipelineDef{Name: "routing", Assets: []AssetDef{
		def("amount", func(ctx context.Context, in *Inputs) (any, error) { return amount.Load(), nil }),
		triage, routed("manual"), routed("auto"), decision,
		def("strict", func(ctx context.Context, in *Inputs) (any, error) { return 1, nil }, on("auto")),
	}})
}

func TestRouterChoosesBranchesAndSkipsTheRest(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		var amount, calls atomic.Int64
		amount.Store(50_000)
		p := routerPipeline(&amount, &calls, false)
		e := openEngine(t, db.config(t), Bind(p, nil))
		run, _ := e.Materialize(ctx, p, Request{})
		res := waitRun(t, e, run.ID)
		want := map[string]AssetStatus{"triage": StatusSucceeded, "manual": StatusSucceeded, "auto": StatusSkipped,
			"decision": StatusSucceeded, "strict": StatusSkipped}
		for k, st := range want {
			if res.Assets[k].Status != st {
				t.Errorf("%s = %s (%s), want %s", k, res.Assets[k].Status, res.Assets[k].Error, st)
			}
		}
		if res.Status != RunSucceeded {
			t.Errorf("run %s; a run with router skips succeeds", res.Status)
		}
		if got, _ := Load[string](ctx, e, "routing", "decision", ""); got != "decided by manual reviewed" {
			t.Errorf("decision = %q", got)
		}
		if !strings.Contains(res.Assets["auto"].Error, "router triage chose manual") {
			t.Errorf("auto's reason = %q", res.Assets["auto"].Error)
		}
		// Re-running reuses the router's decision: its function is not called.
		run2, _ := e.Materialize(ctx, p, Request{})
		res2 := waitRun(t, e, run2.ID)
		if calls.Load() != 1 || res2.Assets["triage"].Status != StatusReused || res2.Assets["auto"].Status != StatusSkipped {
			t.Errorf("re-run: router called %d times, triage %s, auto %s", calls.Load(), res2.Assets["triage"].Status, res2.Assets["auto"].Status)
		}
	})
}

func TestRouterFallbackAndBadRoute(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		var amount, calls atomic.Int64
		p := routerPipeline(&amount, &calls, true)
		e := openEngine(t, db.config(t), Bind(p, nil))
		run, _ := e.Materialize(ctx, p, Request{})
		res := waitRun(t, e, run.ID)
		if res.Assets["triage"].Status != StatusSucceeded || res.Assets["manual"].Status != StatusSucceeded || calls.Load() != 2 {
			t.Fatalf("fallback: triage %s manual %s after %d calls", res.Assets["triage"].Status, res.Assets["manual"].Status, calls.Load())
		}
		var d strategy.Decision
		var raw string
		if err := e.be.pool().QueryRow(ctx, `SELECT value FROM flowstone_state WHERE run_id = ? AND asset = ? AND name = ?`, run.ID, "triage", "route:triage").Scan(&raw); err != nil {
			t.Fatal(err)
		}
		if err := decodeJSON([]byte(raw), &d); err != nil || !d.Fallback || d.Error != "scoring service down" || strings.Join(d.Available, ",") != "auto,manual" {
			t.Fatalf("decision = %+v, %v", d, err)
		}

		bad := NewPipeline(PipelineDef{Name: "badroute", Assets: []AssetDef{
			func() AssetDef {
				a := def("r", func(ctx context.Context, in *Inputs) (any, error) { return flowstone.RouteTo("nowhere"), nil })
				a.Strategy = strategy.Router{}
				return a
			}(),
			func() AssetDef {
				a := def("b", func(ctx context.Context, in *Inputs) (any, error) { return 1, nil }, Dep{Asset: "r", Kind: DepOrder})
				a.Strategy = strategy.Routed{Router: "r"}
				return a
			}(),
		}})
		e2 := openEngine(t, db.config(t), Bind(bad, nil))
		run2, _ := e2.Materialize(ctx, bad, Request{})
		res2 := waitRun(t, e2, run2.ID)
		if res2.Assets["r"].Status != StatusFailed || !strings.Contains(res2.Assets["r"].Error, `routed to "nowhere", which is not one of its branches (b)`) {
			t.Fatalf("bad route: %+v", res2.Assets["r"])
		}
	})
}

func TestRouterAndBranchesOnDifferentProcesses(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		var amount, calls atomic.Int64
		amount.Store(5)
		var mu sync.Mutex
		ranOn := map[string]string{}
		// The same pipeline in two processes; the router alone is on queue
		// "routers", which only process A works.
		build := func(who string) *Pipeline {
			var assets []AssetDef
			for _, a := range routerPipeline(&amount, &calls, false).Assets() {
				d := *a
				if d.Key == "triage" {
					d.Queue = "routers"
				}
				run, key := d.Run, d.Key
				d.Run = func(ctx context.Context, in *Inputs) (any, error) {
					mu.Lock()
					ranOn[key] = who
					mu.Unlock()
					return run(ctx, in)
				}
				assets = append(assets, d)
			}
			return NewPipeline(PipelineDef{Name: "routing", Assets: assets})
		}
		cfg := db.config(t)
		a, b := cfg, cfg
		a.Queues, b.Queues = []string{"routers"}, []string{"default"}
		ea := openEngine(t, a, Bind(build("A"), nil))
		pB := build("B")
		eb := openEngine(t, b, Bind(pB, nil))
		run, err := eb.Materialize(ctx, pB, Request{})
		if err != nil {
			t.Fatal(err)
		}
		res := waitRun(t, ea, run.ID)
		if res.Status != RunSucceeded || res.Assets["auto"].Status != StatusSucceeded || res.Assets["manual"].Status != StatusSkipped {
			t.Fatalf("run %s: %+v", res.Status, res.Assets)
		}
		mu.Lock()
		defer mu.Unlock()
		if ranOn["triage"] != "A" || ranOn["auto"] != "B" || ranOn["decision"] != "B" {
			t.Fatalf("ran on: %v", ranOn)
		}
	})
}

func TestJoinWaitRunsWithWhateverFinished(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		release := make(chan struct{})
		t.Cleanup(func() { close(release) })
		join := def("join", func(ctx context.Context, in *Inputs) (any, error) {
			fast := InputOutcome[string](ctx, in, "fast")
			slow := InputOutcome[string](ctx, in, "slow")
			if !fast.OK() || !errors.Is(slow.Err, ErrUnfinished) {
				return nil, errors.New("want fast done and slow unfinished")
			}
			return "fast only", nil
		}, Dep{Asset: "fast", Kind: DepOutcome}, Dep{Asset: "slow", Kind: DepOutcome})
		join.Strategy = strategy.Join{Wait: 1500 * time.Millisecond}
		p := NewPipeline(PipelineDef{Name: "joins", Assets: []AssetDef{
			def("fast", func(ctx context.Context, in *Inputs) (any, error) { return "f", nil }),
			def("slow", func(ctx context.Context, in *Inputs) (any, error) {
				select {
				case <-release:
				case <-ctx.Done():
				}
				return "s", nil
			}),
			join,
		}})
		e := openEngine(t, db.config(t), Bind(p, nil))
		run, _ := e.Materialize(ctx, p, Request{})
		deadline := time.Now().Add(30 * time.Second)
		for {
			r, _ := e.Run(ctx, run.ID)
			if r.Assets["join"].Status.Terminal() {
				if r.Assets["join"].Status != StatusSucceeded || r.Assets["slow"].Status.Terminal() {
					t.Fatalf("join %s (%s), slow %s", r.Assets["join"].Status, r.Assets["join"].Error, r.Assets["slow"].Status)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("join never ran: %+v", r.Assets)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if v, _ := Load[string](ctx, e, "joins", "join", ""); v != "fast only" {
			t.Fatalf("join = %q", v)
		}
	})
}

func gatePipeline(timeout time.Duration, onTimeout string) *Pipeline {
	refund := def("refund", func(ctx context.Context, in *Inputs) (any, error) {
		n, err := Input[int](ctx, in, "amount")
		return n * 2, err
	}, on("amount"))
	refund.Strategy = strategy.Gate{Timeout: timeout, OnTimeout: onTimeout}
	return NewPipeline(PipelineDef{Name: "gates", Assets: []AssetDef{
		def("amount", func(ctx context.Context, in *Inputs) (any, error) { return 21, nil }),
		refund,
		def("payout", func(ctx context.Context, in *Inputs) (any, error) {
			n, err := Input[int](ctx, in, "refund")
			return n + 1, err
		}, on("refund")),
	}})
}

// waitingGate opens an engine that signs with testSecret on db, starts a
// run of gatePipeline(0, "") and returns once its gate waits.
func waitingGate(t *testing.T, db testDB) (*Engine, Run) {
	t.Helper()
	cfg := db.config(t)
	cfg.Secret = testSecret
	p := gatePipeline(0, "")
	e := openEngine(t, cfg, Bind(p, nil))
	run, err := e.Materialize(context.Background(), p, Request{})
	if err != nil {
		t.Fatal(err)
	}
	waitForGate(t, e, run.ID)
	return e, run
}

func waitForGate(t *testing.T, e *Engine, runID string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		gs, err := e.Gates(context.Background(), "")
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range gs {
			if g.RunID == runID {
				return
			}
		}
		time.Sleep(30 * time.Millisecond)
	}
	t.Fatal("gate never waited")
}

func TestGateApprovedFromAnotherProcess(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		cfg := db.config(t)
		cfg.Secret = testSecret
		p := gatePipeline(0, "")
		approverCfg := cfg
		approverCfg.NoWorkers = true
		approver := openEngine(t, approverCfg, Bind(p, nil))

		// Before any worker runs the gate, an approval is refused.
		run, err := approver.Materialize(ctx, p, Request{})
		if err != nil {
			t.Fatal(err)
		}
		if err := approver.Approve(ctx, Ref{RunID: run.ID, Asset: "refund"}, "ana", "too early"); !errors.Is(err, ErrNotWaiting) {
			t.Fatalf("early approve: %v, want ErrNotWaiting", err)
		}
		worker := openEngine(t, cfg, Bind(p, nil))
		waitForGate(t, worker, run.ID)
		r, _ := worker.Run(ctx, run.ID)
		if r.Assets["payout"].Status != StatusPending {
			t.Fatalf("payout %s before approval", r.Assets["payout"].Status)
		}
		if err := approver.Approve(ctx, Ref{RunID: run.ID, Asset: "refund"}, "", ""); err == nil {
			t.Fatal("approval without a name accepted")
		}
		if err := approver.Approve(ctx, Ref{RunID: run.ID, Asset: "refund"}, "ana", "checked the receipt"); err != nil {
			t.Fatal(err)
		}
		if err := approver.Approve(ctx, Ref{RunID: run.ID, Asset: "refund"}, "bob", "again"); !errors.Is(err, ErrGateResolved) {
			t.Fatalf("second approval: %v, want ErrGateResolved", err)
		}
		if err := approver.Reject(ctx, Ref{RunID: run.ID, Asset: "refund"}, "bob", "no"); !errors.Is(err, ErrGateResolved) {
			t.Fatalf("reject after approval: %v", err)
		}
		res := waitRun(t, worker, run.ID)
		if res.Status != RunSucceeded {
			t.Fatalf("run %s %+v", res.Status, res.Assets)
		}
		if v, _ := Load[int](ctx, worker, "gates", "payout", ""); v != 43 {
			t.Fatalf("payout = %d", v)
		}
	})
}

func TestGateRejectAndTimeout(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		e, run := waitingGate(t, db)
		if err := e.Reject(ctx, Ref{RunID: run.ID, Asset: "refund"}, "carl", "duplicate claim"); err != nil {
			t.Fatal(err)
		}
		res := waitRun(t, e, run.ID)
		if res.Assets["refund"].Status != StatusFailed || res.Assets["payout"].Status != StatusUpstreamFailed ||
			!strings.Contains(res.Assets["refund"].Error, "rejected by carl: duplicate claim") {
			t.Fatalf("after reject: %+v", res.Assets)
		}

		// Unanswered, the timeout approves; a late approval changes nothing.
		p2 := gatePipeline(800*time.Millisecond, "approve")
		cfg2 := db.config(t)
		cfg2.Secret = testSecret
		e2 := openEngine(t, cfg2, Bind(p2, nil))
		run2, _ := e2.Materialize(ctx, p2, Request{})
		res2 := waitRun(t, e2, run2.ID)
		if res2.Status != RunSucceeded {
			t.Fatalf("timeout approve: %+v", res2.Assets)
		}
		if err := e2.Approve(ctx, Ref{RunID: run2.ID, Asset: "refund"}, "ana", "late"); !errors.Is(err, ErrGateResolved) || !strings.Contains(err.Error(), "approved by timeout") {
			t.Fatalf("late approve: %v", err)
		}
	})
}

func TestGateLinks(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		e, run := waitingGate(t, db)
		srv := httptest.NewServer(e.GateHandler())
		defer srv.Close()

		token, err := e.GateToken(Ref{RunID: run.ID, Asset: "refund"}, "approve", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		post := func(tok string) int {
			resp, err := http.PostForm(srv.URL, url.Values{"token": {tok}, "by": {"dora"}})
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		forged := token[:len(token)-2] + "AA"
		if code := post(forged); code != http.StatusForbidden {
			t.Errorf("forged token: %d", code)
		}
		expired, _ := e.GateToken(Ref{RunID: run.ID, Asset: "refund"}, "approve", time.Nanosecond)
		time.Sleep(1100 * time.Millisecond)
		if code := post(expired); code != http.StatusForbidden {
			t.Errorf("expired token: %d", code)
		}
		other := &Engine{cfg: Config{Secret: []byte("another-secret-of-16-bytes")}}
		foreign, _ := other.GateToken(Ref{RunID: run.ID, Asset: "refund"}, "approve", time.Hour)
		if code := post(foreign); code != http.StatusForbidden {
			t.Errorf("token signed with another secret: %d", code)
		}
		if r, _ := e.Run(ctx, run.ID); r.Assets["refund"].Status != StatusWaiting {
			t.Fatalf("a bad token changed the gate: %s", r.Assets["refund"].Status)
		}
		resp, err := http.Get(srv.URL + "?token=" + url.QueryEscape(token))
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET: %v %v", resp, err)
		}
		resp.Body.Close()
		// A bare POST of the link is refused; its page's form decides once.
		if code := post(token); code != http.StatusForbidden {
			t.Fatalf("bare POST of the approve link: %d", code)
		}
		ls := &linkServer{t: t, srv: srv}
		if got := ls.confirm(token, "dora", nil); got.code != http.StatusOK {
			t.Fatalf("approve link: %s", got)
		}
		if got := ls.confirm(token, "dora", nil); got.code != http.StatusConflict {
			t.Errorf("second use: %s", got)
		}
		if res := waitRun(t, e, run.ID); res.Status != RunSucceeded {
			t.Fatalf("run %s", res.Status)
		}
	})
}

func TestGatesNeedASecret(t *testing.T) {
	t.Parallel()
	_, err := Open(context.Background(), Config{Database: "sqlite::memory:"}, Bind(gatePipeline(0, ""), nil))
	if !errors.Is(err, ErrNoSecret) || !strings.Contains(err.Error(), "gates.refund") {
		t.Fatalf("err = %v", err)
	}
}
