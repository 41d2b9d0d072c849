package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone/strategy"
)

// failingResume waits for a continuation that always fails, without
// saying so for good: River retries it until it gives up.
type failingResume struct{}

func (failingResume) Run(ctx context.Context, t strategy.Task) (strategy.Result, error) {
	if err := t.Resume(ctx, time.Now(), nil); err != nil {
		return strategy.Result{}, err
	}
	return strategy.Wait("resuming"), nil
}

func (failingResume) Resume(context.Context, strategy.Task, json.RawMessage) (strategy.Result, error) {
	return strategy.Result{}, errors.New("the service is down")
}

// A job the queue discards after its last attempt fails its node, and the
// run ends instead of staying running forever.
func TestDiscardedJobEndsItsRun(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		a := def("stuck", func(context.Context, *Inputs) (any, error) { return nil, nil })
		a.Kind, a.Strategy, a.HasValue = "failing", failingResume{}, false
		p := NewPipeline(PipelineDef{Name: "discard", Assets: []AssetDef{a, def("after", func(context.Context, *Inputs) (any, error) { return 1, nil }, Dep{Asset: "stuck", Kind: DepOrder})}})
		e := openEngine(t, db.config(t), Bind(p, nil))
		run, err := e.Materialize(context.Background(), p, Request{})
		if err != nil {
			t.Fatal(err)
		}
		res := waitRun(t, e, run.ID)
		if res.Status != RunFailed {
			t.Fatalf("run %s; want failed", res.Status)
		}
		if got := res.Assets["stuck"]; got.Status != StatusFailed || !strings.Contains(got.Error, "given up after 21 attempts: the service is down") {
			t.Fatalf("stuck: %s %q", got.Status, got.Error)
		}
		if got := res.Assets["after"]; got.Status != StatusUpstreamFailed {
			t.Fatalf("after: %s", got.Status)
		}
	})
}
