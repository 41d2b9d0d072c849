package runtime

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/flowstone-go/flowstone"
	"github.com/riverqueue/river"
)

// TestDeduplicatedRunKeyReturnsTheStoredRun: a second request with the
// key gets the first run as it was requested, not its own partition and
// assets.
func TestDeduplicatedRunKeyReturnsTheStoredRun(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		p := wideConfigPipeline()
		e := openEngine(t, db.config(t), Bind(p, nil))
		first, err := e.Materialize(ctx, p, Request{Targets: []string{"priced_a"}, Partition: "2024-01-02",
			Config: bigSettings{Currency: "EUR"}, RunKey: "nightly"})
		if err != nil || first.Existing {
			t.Fatalf("first: %+v, %v", first, err)
		}
		again, err := e.Materialize(ctx, p, Request{Targets: []string{"plain_b", "plain_c"}, Partition: "2024-01-05",
			Config: bigSettings{Currency: "USD"}, RunKey: "nightly"})
		if err != nil {
			t.Fatal(err)
		}
		var cfg bigSettings
		_ = json.Unmarshal(again.Config, &cfg)
		if !again.Existing || again.ID != first.ID || again.Partition != "2024-01-02" ||
			!slices.Equal(again.Targets, []string{"priced_a"}) || !slices.Equal(again.Assets, []string{"plain_a", "priced_a"}) ||
			cfg.Currency != "EUR" {
			t.Errorf("deduplicated request = %+v (config %s); want the stored run %+v", again, again.Config, first)
		}
		if !slices.Equal(first.Assets, again.Assets) || string(first.Config) != string(again.Config) {
			t.Errorf("first %+v, again %+v", first, again)
		}
		waitRun(t, e, first.ID)
	})
}

// TestAJobWhoseNodeIsNotInItsRunFailsTheRun: such a job was cancelled as
// "run not found", and its run waited for ever.
func TestAJobWhoseNodeIsNotInItsRunFailsTheRun(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		release := make(chan struct{})
		slow := def("slow", func(ctx context.Context, in *Inputs) (any, error) {
			<-release
			return "done", nil
		})
		slow.Partitions = flowstone.Static("a", "b")
		after := def("after", func(ctx context.Context, in *Inputs) (any, error) { return "after", nil }, on("slow"))
		after.Partitions = slow.Partitions
		p := NewPipeline(PipelineDef{Name: "orphan", Assets: []AssetDef{slow, after}})
		e := openEngine(t, db.config(t), Bind(p, nil))
		defer close(release)
		run, err := e.Materialize(ctx, p, Request{Partition: "a"})
		if err != nil {
			t.Fatal(err)
		}
		// A job naming a partition the run does not hold: what an altered
		// key looked like when it reached a worker.
		rc := &runCtx{id: run.ID, p: p}
		if err := e.be.inTx(ctx, func(tx txn) error {
			return tx.insertJobs(ctx, []river.InsertManyParams{e.attemptJob(rc, p.Asset("after"), "b\ufffd")})
		}); err != nil {
			t.Fatal(err)
		}
		res := waitRun(t, e, run.ID)
		if res.Status != RunFailed {
			t.Fatalf("run %s", res.Status)
		}
		for _, key := range []string{"slow", "after"} {
			if a := res.Assets[key]; a.Status != StatusFailed || !strings.Contains(a.Error, "a job for asset after partition \"b\ufffd\" found no such node in run") {
				t.Errorf("%s: %+v", key, a)
			}
		}
	})
}
