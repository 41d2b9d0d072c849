package runtime

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/strategy"
)

// gate returns a gate asset computing fn.
func gate(key string, fn RunFunc, deps ...Dep) AssetDef {
	a := def(key, fn, deps...)
	a.Kind, a.Strategy = "gate", strategy.Gate{}
	return a
}

// waitForGates waits until run has n gates waiting and returns them.
func waitForGates(t *testing.T, e *Engine, runID string, n int) []Gate {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		gs, err := e.Gates(context.Background(), "")
		if err != nil {
			t.Fatal(err)
		}
		var mine []Gate
		for _, g := range gs {
			if g.RunID == runID {
				mine = append(mine, g)
			}
		}
		if len(mine) == n {
			return mine
		}
		time.Sleep(30 * time.Millisecond)
	}
	t.Fatalf("%d gates never waited", n)
	return nil
}

func TestTwoGatesInOneRunHoldTheirOwnValues(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		times := func(k int) RunFunc {
			return func(ctx context.Context, in *Inputs) (any, error) {
				n, err := Input[int](ctx, in, "amount")
				return n * k, err
			}
		}
		p := NewPipeline(PipelineDef{Name: "twogates", Assets: []AssetDef{
			def("amount", func(ctx context.Context, in *Inputs) (any, error) { return 21, nil }),
			gate("double", times(2), on("amount")),
			gate("triple", times(3), on("amount")),
			def("total", func(ctx context.Context, in *Inputs) (any, error) {
				a, err := Input[int](ctx, in, "double")
				if err != nil {
					return nil, err
				}
				b, err := Input[int](ctx, in, "triple")
				return a + b, err
			}, on("double"), on("triple")),
		}})
		cfg := db.config(t)
		cfg.Secret = testSecret
		e := openEngine(t, cfg, Bind(p, nil))
		run, err := e.Materialize(ctx, p, Request{})
		if err != nil {
			t.Fatal(err)
		}
		gates := waitForGates(t, e, run.ID, 2)
		if gates[0].Ref.Asset == gates[1].Ref.Asset {
			t.Fatalf("gates %+v", gates)
		}
		if err := e.Approve(ctx, Ref{RunID: run.ID, Asset: "double"}, "ana", "first"); err != nil {
			t.Fatal(err)
		}
		if gs := waitForGates(t, e, run.ID, 1); gs[0].Asset != "triple" {
			t.Fatalf("still waiting: %+v", gs)
		}
		if err := e.Approve(ctx, Ref{RunID: run.ID, Asset: "triple"}, "bob", "second"); err != nil {
			t.Fatalf("second gate: %v", err)
		}
		if res := waitRun(t, e, run.ID); res.Status != RunSucceeded {
			t.Fatalf("run %s: %+v", res.Status, res.Assets)
		}
		for key, want := range map[string]int{"double": 42, "triple": 63, "total": 105} {
			if got, err := Load[int](ctx, e, "twogates", key, ""); err != nil || got != want {
				t.Errorf("%s = %d, %v; want %d", key, got, err, want)
			}
		}
	})
}

// hourlyGates is an hourly gate under a daily rollup: a daily run holds
// 24 gates, one per hour.
func hourlyGates() *Pipeline {
	hours := flowstone.Hourly("2024-01-01T00")
	days := flowstone.Daily("2024-01-01")
	check := gate("check", func(ctx context.Context, in *Inputs) (any, error) {
		var hour int
		_, err := fmt.Sscanf(string(in.Partition())[11:], "%d", &hour)
		return hour, err
	})
	check.Partitions = hours
	rollup := def("rollup", func(ctx context.Context, in *Inputs) (any, error) {
		hs, err := InputPartitions[int](ctx, in, "check")
		if err != nil {
			return nil, err
		}
		n := 0
		for _, v := range hs {
			n += v
		}
		return n, nil
	}, Dep{Asset: "check", Kind: DepPartitions})
	rollup.Partitions = days
	return NewPipeline(PipelineDef{Name: "hourly_gates", Assets: []AssetDef{check, rollup}})
}

func TestHourlyGatesApprovedByRef(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		p := hourlyGates()
		cfg := db.config(t)
		cfg.Secret = testSecret
		e := openEngine(t, cfg, Bind(p, nil))
		run, err := e.Materialize(ctx, p, Request{Targets: []string{"rollup"}, Partition: "2024-01-02"})
		if err != nil {
			t.Fatal(err)
		}
		gates := waitForGates(t, e, run.ID, 24)
		seen := map[flowstone.Partition]bool{}
		for _, g := range gates {
			seen[g.Partition] = true
		}
		if len(seen) != 24 || !seen["2024-01-02T00"] || !seen["2024-01-02T23"] {
			t.Fatalf("gates at %v", seen)
		}

		// Refs outside the run are refused, naming what is valid.
		for _, c := range []struct {
			ref  Ref
			want string
		}{
			{Ref{RunID: run.ID, Asset: "check"}, `asset check of run ` + run.ID + ` has no unpartitioned node: name a partition (its partitions: 2024-01-02T00, 2024-01-02T01,`},
			{Ref{RunID: run.ID, Asset: "check", Partition: "2024-01-03T00"}, `has no partition "2024-01-03T00" (its partitions: 2024-01-02T00,`},
			{Ref{RunID: run.ID, Asset: "chek", Partition: "2024-01-02T00"}, `run ` + run.ID + ` has no asset "chek" (it has check, rollup)`},
			{Ref{RunID: "run_nope", Asset: "check", Partition: "2024-01-02T00"}, `run not found: "run_nope"`},
		} {
			err := e.Approve(ctx, c.ref, "ana", "")
			if !errors.Is(err, ErrNotInRun) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Approve(%+v) = %v; want ErrNotInRun with %q", c.ref, err, c.want)
			}
			if _, err := e.ScatterProgress(ctx, c.ref); !errors.Is(err, ErrNotInRun) {
				t.Errorf("ScatterProgress(%+v) = %v; want ErrNotInRun", c.ref, err)
			}
		}
		if _, err := e.GateToken(Ref{RunID: run.ID, Asset: "check", Partition: "2024-01-02T05"}, "approve", time.Hour); err != nil {
			t.Fatal(err)
		}
		if err := e.Approve(ctx, Ref{RunID: "run_nope", Asset: "check"}, "ana", ""); !errors.Is(err, ErrRunNotFound) {
			t.Errorf("unknown run: %v, want ErrRunNotFound too", err)
		}

		// Each hour is decided on its own; one rejected hour fails the day.
		for h := range 24 {
			ref := Ref{RunID: run.ID, Asset: "check", Partition: flowstone.Partition(fmt.Sprintf("2024-01-02T%02d", h))}
			if err := e.Approve(ctx, ref, "ana", ""); err != nil {
				t.Fatalf("approve %s: %v", ref, err)
			}
		}
		if err := e.Reject(ctx, Ref{RunID: run.ID, Asset: "check", Partition: "2024-01-02T07"}, "bob", ""); !errors.Is(err, ErrGateResolved) {
			t.Errorf("reject an approved hour: %v", err)
		}
		res := waitRun(t, e, run.ID)
		if res.Status != RunSucceeded {
			t.Fatalf("run %s: %+v", res.Status, res.Assets)
		}
		if got, _ := Load[int](ctx, e, "hourly_gates", "rollup", "2024-01-02"); got != 23*24/2 {
			t.Errorf("rollup = %d, want %d", got, 23*24/2)
		}
		node, err := res.Node(Ref{RunID: run.ID, Asset: "check", Partition: "2024-01-02T13"})
		if err != nil || node.Status != StatusSucceeded {
			t.Errorf("Node = %+v, %v", node, err)
		}
		if _, err := res.Node(Ref{RunID: run.ID, Asset: "check", Partition: "2024-01-02"}); !errors.Is(err, ErrNotInRun) {
			t.Errorf("Node outside the run: %v", err)
		}
	})
}
