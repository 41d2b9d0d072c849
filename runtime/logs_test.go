package runtime

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone"
)

func TestLogsAreKeptPerAttempt(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		var tries atomic.Int64
		flaky := def("flaky", func(ctx context.Context, in *Inputs) (any, error) {
			n := tries.Add(1)
			flowstone.Logger(ctx).Info("fetching", "try", n)
			flowstone.Logger(ctx).Debug("not kept")
			if n < 2 {
				return nil, errors.New("transient")
			}
			flowstone.Logger(ctx).WithGroup("http").Warn("slow", "ms", 1200)
			return "ok", nil
		})
		flaky.Retries = 1
		chatty := def("chatty", func(ctx context.Context, in *Inputs) (any, error) {
			for range 2000 {
				flowstone.Logger(ctx).Info(strings.Repeat("x", 100))
			}
			return 1, nil
		}, on("flaky"))
		quiet := def("quiet", func(ctx context.Context, in *Inputs) (any, error) { return 1, nil })
		p := NewPipeline(PipelineDef{Name: "logs", Assets: []AssetDef{flaky, chatty, quiet}})
		e := openEngine(t, db.config(t), Bind(p, nil))
		run, err := e.Materialize(ctx, p, Request{})
		if err != nil {
			t.Fatal(err)
		}
		if res := waitRun(t, e, run.ID); res.Status != RunSucceeded {
			t.Fatalf("run %s", res.Status)
		}

		got, err := e.Logs(ctx, Ref{RunID: run.ID, Asset: "flaky"})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].Attempt != 1 || got[1].Attempt != 2 {
			t.Fatalf("flaky's logs: %+v, want attempts 1 and 2", got)
		}
		first := got[0].Lines
		if len(first) != 1 || first[0].Message != "fetching" || first[0].Attrs["try"] != 1.0 || first[0].Time.IsZero() {
			t.Errorf("attempt 1 logged %+v, want one fetching line with try=1", first)
		}
		second := got[1].Lines
		if len(second) != 2 || second[1].Message != "slow" || second[1].Level.String() != "WARN" {
			t.Fatalf("attempt 2 logged %+v", second)
		}
		if http, _ := second[1].Attrs["http"].(map[string]any); http["ms"] != 1200.0 {
			t.Errorf("grouped attrs %v, want http.ms=1200", second[1].Attrs)
		}

		all, err := e.Logs(ctx, Ref{RunID: run.ID})
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != 3 || all[0].Ref.Asset != "chatty" {
			t.Fatalf("the run's logs: %d attempts, want chatty's and flaky's two", len(all))
		}
		c := all[0]
		if !c.Truncated || c.Lines[len(c.Lines)-1].Message != truncatedMessage || len(c.Lines) > LogLimit/100 {
			t.Errorf("chatty kept %d lines, truncated %v; want under %d ending with the marker", len(c.Lines), c.Truncated, LogLimit/100)
		}

		if _, err := e.Logs(ctx, Ref{RunID: run.ID, Asset: "nope"}); !errors.Is(err, ErrNotInRun) {
			t.Errorf("an asset not in the run: %v, want ErrNotInRun", err)
		}
		if _, err := e.Logs(ctx, Ref{RunID: "run_missing"}); !errors.Is(err, ErrRunNotFound) {
			t.Errorf("a missing run: %v, want ErrRunNotFound", err)
		}

		// Pruning the run deletes its logs.
		if _, err := e.Prune(ctx, PruneRequest{Before: time.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		if n, err := e.st.Logs(ctx, e.be.pool(), run.ID, "", "", true); err != nil || len(n) != 0 {
			t.Errorf("after Prune %d log rows (%v), want none", len(n), err)
		}
	})
}
