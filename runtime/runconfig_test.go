package runtime

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/flowstone-go/flowstone"
)

// bigSettings is a config with a payload of any size.
type bigSettings struct {
	Currency string `json:"currency"`
	Blob     string `json:"blob"`
}

// wideConfigPipeline: per day, two assets that take the config and three
// that do not.
func wideConfigPipeline() *Pipeline {
	days := flowstone.Daily("2024-01-01")
	var assets []AssetDef
	for _, key := range []string{"plain_a", "plain_b", "plain_c"} {
		a := def(key, func(ctx context.Context, in *Inputs) (any, error) { return key, nil })
		a.Partitions = days
		assets = append(assets, a)
	}
	for _, key := range []string{"priced_a", "priced_b"} {
		a := def(key, func(ctx context.Context, in *Inputs) (any, error) {
			c, err := ConfigValue[bigSettings](in)
			if err != nil {
				return nil, err
			}
			return c.Currency + " " + string(in.Partition()), nil
		}, on("plain_a"))
		a.Partitions, a.UsesConfig = days, true
		assets = append(assets, a)
	}
	return NewPipeline(PipelineDef{Name: "wide", Config: ConfigOf[bigSettings](), Assets: assets})
}

// TestConfigIsDecodedOncePerRunAndOnlyWhereTaken counts decodes over a
// backfill: before, each of the 5 assets of each run decoded the config.
func TestConfigIsDecodedOncePerRunAndOnlyWhereTaken(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		p := wideConfigPipeline()
		cfg := db.config(t)
		cfg.Concurrency = 1 // one run at a time fits the cache whatever the order
		e := openEngine(t, cfg, Bind(p, nil))
		const days = 6
		id, err := e.Backfill(ctx, p, BackfillRequest{From: "2024-01-01", To: "2024-01-06", MaxConcurrent: 1,
			Config: bigSettings{Currency: "EUR", Blob: strings.Repeat("x", 100<<10)}})
		if err != nil {
			t.Fatal(err)
		}
		bf := waitBackfill(t, e, id)
		if bf.Status != "succeeded" {
			t.Fatalf("backfill %s: %+v", bf.Status, bf.Partitions)
		}
		if v, err := Load[string](ctx, e, "wide", "priced_b", "2024-01-06"); err != nil || v != "EUR 2024-01-06" {
			t.Errorf("priced_b = %q, %v", v, err)
		}
		if n := e.configs.decodes.Load(); n != days {
			t.Errorf("the config was decoded %d times for %d runs; want once per run", n, days)
		}
	})
}

func TestRunConfigSizeLimit(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		p := wideConfigPipeline()
		cfg := db.config(t)
		e := openEngine(t, cfg, Bind(p, nil))
		big := bigSettings{Currency: "EUR", Blob: strings.Repeat("x", DefaultMaxRunConfigBytes)}
		_, err := e.Materialize(ctx, p, Request{Partition: "2024-01-01", Config: big})
		if !errors.Is(err, ErrBadConfig) || !strings.Contains(err.Error(), "at most 1048576 bytes (Config.MaxRunConfigBytes)") {
			t.Errorf("Materialize with a config over 1 MB: %v", err)
		}
		_, err = e.Backfill(ctx, p, BackfillRequest{From: "2024-01-01", To: "2024-01-02", Config: big})
		if !errors.Is(err, ErrBadConfig) {
			t.Errorf("Backfill with a config over 1 MB: %v", err)
		}
		if runs, _ := e.Runs(ctx, "", 10); len(runs) != 0 {
			t.Errorf("a refused config left %d runs", len(runs))
		}

		// The limit is the engine's to raise.
		cfg.MaxRunConfigBytes = 2 << 20
		cfg.NoWorkers = true
		roomy := openEngine(t, cfg, Bind(p, nil))
		run, err := roomy.Materialize(ctx, p, Request{Partition: "2024-01-01", Config: big})
		if err != nil {
			t.Fatal(err)
		}
		if res := waitRun(t, e, run.ID); res.Status != RunSucceeded {
			t.Fatalf("run %s: %+v", res.Status, res.Assets)
		}
	})
}
