package strategy_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/strategy"
)

// fakeTask is an in-memory strategy.Task: enough to test a strategy's own
// rules; the engine tests cover the database.
type fakeTask struct {
	key      string
	attempt  int
	final    bool
	call     func() (any, error)
	calls    int
	state    map[string][]byte
	values   map[string]any
	peers    []strategy.Peer
	resumes  []time.Time
	payloads []any
}

type fakeAsset struct{ key string }

func (a fakeAsset) Key() string      { return a.key }
func (a fakeAsset) Pipeline() string { return "p" }
func (a fakeAsset) HasValue() bool   { return true }

func (t *fakeTask) Asset() strategy.Asset          { return fakeAsset{t.key} }
func (t *fakeTask) RunID() string                  { return "run_1" }
func (t *fakeTask) Partition() flowstone.Partition { return "" }
func (t *fakeTask) Attempt() int                   { return t.attempt }
func (t *fakeTask) FinalAttempt() bool             { return t.final }
func (t *fakeTask) Peers() []strategy.Peer         { return t.peers }
func (t *fakeTask) DB() strategy.Querier           { return nil }
func (t *fakeTask) Retries() int                   { return 0 }
func (t *fakeTask) InTx(ctx context.Context, fn func(context.Context, strategy.Querier) error) error {
	return fn(ctx, nil)
}
func (t *fakeTask) Write(ctx context.Context, fn func(context.Context, strategy.Querier) error) error {
	return fn(ctx, nil)
}
func (t *fakeTask) Redelivered() bool            { return false }
func (t *fakeTask) RetryDelay(int) time.Duration { return 0 }
func (t *fakeTask) ItemKeys([]json.RawMessage) ([]string, error) {
	return nil, nil
}
func (t *fakeTask) CallItem(context.Context, json.RawMessage) (any, error) {
	return t.call()
}
func (t *fakeTask) Call(context.Context) (any, error) {
	t.calls++
	return t.call()
}
func (t *fakeTask) Upstream(context.Context, string) (strategy.UpstreamState, error) {
	return strategy.UpstreamState{}, errors.New("unused")
}
func (t *fakeTask) LoadValue(_ context.Context, asset string, into any) error {
	v, ok := t.values[asset]
	if !ok {
		return errors.New("no value")
	}
	data, _ := json.Marshal(v)
	return json.Unmarshal(data, into)
}
func (t *fakeTask) LoadState(_ context.Context, name string, into any) (bool, error) {
	data, ok := t.state[name]
	if !ok {
		return false, nil
	}
	return true, json.Unmarshal(data, into)
}
func (t *fakeTask) SaveState(_ context.Context, name string, v any) (bool, error) {
	if _, ok := t.state[name]; ok {
		return false, nil
	}
	data, err := json.Marshal(v)
	t.state[name] = data
	return true, err
}
func (t *fakeTask) Resume(_ context.Context, at time.Time, payload any) error {
	t.resumes = append(t.resumes, at)
	t.payloads = append(t.payloads, payload)
	return nil
}

func routerTask(call func() (any, error)) *fakeTask {
	return &fakeTask{key: "triage", attempt: 1, call: call, state: map[string][]byte{}, peers: []strategy.Peer{
		{Key: "triage", Strategy: strategy.Router{}},
		{Key: "manual", Strategy: strategy.Routed{Router: "triage"}},
		{Key: "auto", Strategy: strategy.Routed{Router: "triage"}},
		{Key: "other", Strategy: strategy.Routed{Router: "elsewhere"}},
	}}
}

func TestRouterDecidesOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	task := routerTask(func() (any, error) { return flowstone.RouteTo("auto"), nil })
	r := strategy.Router{Fallback: "manual"}
	res, err := r.Run(ctx, task)
	if err != nil || res.Value.(flowstone.Route).Branches[0] != "auto" {
		t.Fatalf("first run: %+v, %v", res, err)
	}
	// A retry of the same run (the job died before recording) reuses the
	// stored decision and does not call the router again.
	task.call = func() (any, error) { return flowstone.RouteTo("manual"), nil }
	res, err = r.Run(ctx, task)
	if err != nil || !res.Value.(flowstone.Route).Selects("auto") || task.calls != 1 {
		t.Fatalf("retry: %+v, %v after %d calls", res, err, task.calls)
	}
	var d strategy.Decision
	_ = json.Unmarshal(task.state["route:triage"], &d)
	if strings.Join(d.Available, ",") != "auto,manual" || d.Fallback {
		t.Fatalf("decision = %+v", d)
	}
}

func TestRouterFallbackOnlyOnTheLastAttempt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	task := routerTask(func() (any, error) { return nil, errors.New("scorer down") })
	r := strategy.Router{Fallback: "manual"}
	if _, err := r.Run(ctx, task); err == nil {
		t.Fatal("an attempt with retries left took the fallback")
	}
	task.final = true
	res, err := r.Run(ctx, task)
	if err != nil || !res.Value.(flowstone.Route).Selects("manual") {
		t.Fatalf("final attempt: %+v, %v", res, err)
	}
	noFallback := routerTask(func() (any, error) { return nil, errors.New("scorer down") })
	noFallback.final = true
	if _, err := (strategy.Router{}).Run(ctx, noFallback); err == nil {
		t.Fatal("a router without fallback succeeded on failure")
	}
}

func TestRouterRejectsRoutesToNonBranches(t *testing.T) {
	t.Parallel()
	task := routerTask(func() (any, error) { return flowstone.RouteTo("other"), nil })
	_, err := strategy.Router{}.Run(context.Background(), task)
	if !errors.Is(err, flowstone.ErrPermanent) || !strings.Contains(err.Error(), `"other", which is not one of its branches (auto, manual)`) {
		t.Fatalf("err = %v", err)
	}
}

func TestRoutedSkipsUnchosenBranches(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	task := &fakeTask{key: "manual", call: func() (any, error) { return "reviewed", nil },
		values: map[string]any{"triage": flowstone.RouteTo("auto")}}
	res, err := strategy.Routed{Router: "triage"}.Run(ctx, task)
	if err != nil || res.Status != strategy.Skipped || res.Reason != "router triage chose auto" || task.calls != 0 {
		t.Fatalf("unchosen: %+v, %v", res, err)
	}
	task.values["triage"] = flowstone.RouteTo("manual", "auto")
	res, err = strategy.Routed{Router: "triage"}.Run(ctx, task)
	if err != nil || res.Status != strategy.Succeeded || res.Value != "reviewed" {
		t.Fatalf("chosen: %+v, %v", res, err)
	}
}

func TestGateHoldsItsFirstValueUntilDecided(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	g := strategy.Gate{Timeout: time.Hour, OnTimeout: "reject"}
	task := &fakeTask{key: "refund", call: func() (any, error) { return 42, nil }, state: map[string][]byte{}}
	res, err := g.Run(ctx, task)
	if err != nil || res.Status != strategy.Pending || len(task.resumes) != 1 || time.Until(task.resumes[0]) < 59*time.Minute {
		t.Fatalf("run: %+v, %v, resumes %v", res, err, task.resumes)
	}
	task.call = func() (any, error) { return 99, nil } // a retry computes something else
	if _, err := g.Run(ctx, task); err != nil {
		t.Fatal(err)
	}
	// An approval stored before the timeout fires wins over the timeout.
	d, _ := json.Marshal(strategy.GateDecision{Action: strategy.GateApprove, By: "ana"})
	task.state[strategy.GateDecisionState] = d
	timeout, _ := json.Marshal(strategy.GateSignal{Timeout: true})
	res, err = g.Resume(ctx, task, timeout)
	if err != nil || res.Status != strategy.Succeeded || string(res.Value.(json.RawMessage)) != "42" {
		t.Fatalf("resume: %+v, %v", res, err)
	}
}

func TestGateTimeoutAppliesOnTimeout(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	timeout, _ := json.Marshal(strategy.GateSignal{Timeout: true})
	for action, wantErr := range map[string]string{"reject": "rejected by timeout", "": "gate timed out", "fail": "gate timed out"} {
		task := &fakeTask{key: "refund", call: func() (any, error) { return 1, nil }, state: map[string][]byte{}}
		g := strategy.Gate{Timeout: time.Minute, OnTimeout: action}
		if _, err := g.Run(ctx, task); err != nil {
			t.Fatal(err)
		}
		_, err := g.Resume(ctx, task, timeout)
		if !errors.Is(err, flowstone.ErrPermanent) || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("on_timeout=%q: %v", action, err)
		}
	}
}
