package cli_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone/examples/orders"
	"github.com/flowstone-go/flowstone/runtime"
	"github.com/flowstone-go/flowstone/runtime/cli"
)

// TestTuningFlagsReachTheEngine: materialize's --workers,
// --poll-interval and --fetch-cooldown become the engine's Config, and the
// run works with them; a value River cannot use is a usage error naming
// the setting.
func TestTuningFlagsReachTheEngine(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db []string) {
		ctx := testContext(t)
		var mu sync.Mutex
		var got []runtime.Config
		app := cli.App{
			Name: "orders",
			Bind: func(ctx context.Context) ([]runtime.Binding, error) {
				return []runtime.Binding{runtime.Bind(orders.Pipeline(), orders.Resources{Rates: orders.NewFXClient()})}, nil
			},
			Configure: func(c *runtime.Config) {
				mu.Lock()
				defer mu.Unlock()
				got = append(got, *c)
				c.RetryDelay = func(int) time.Duration { return 10 * time.Millisecond }
			},
		}
		r := invoke(ctx, app, args(db, "materialize", "--partition", "2024-01-02", "--config", `{"currency":"EUR"}`,
			"--workers", "7", "--poll-interval", "15ms", "--fetch-cooldown", "2ms")...)
		if r.code != 0 {
			t.Fatalf("materialize: %s", r)
		}
		wantLine(t, r, `run \S+ succeeded in \S+: 4 succeeded`)
		mu.Lock()
		cfgs := got
		mu.Unlock()
		if len(cfgs) == 0 {
			t.Fatal("Configure never called")
		}
		for _, c := range cfgs {
			if c.Concurrency != 7 || c.PollInterval != 15*time.Millisecond || c.FetchCooldown != 2*time.Millisecond {
				t.Errorf("engine config: concurrency %d, poll %s, cooldown %s; want 7, 15ms, 2ms", c.Concurrency, c.PollInterval, c.FetchCooldown)
			}
		}

		for _, bad := range []struct{ flag, value, want string }{
			{"--fetch-cooldown", "100us", "FetchCooldown 100µs: want at least 1ms"},
			{"--workers", "-1", "Concurrency -1: want a positive number"},
		} {
			r = invoke(ctx, app, args(db, "worker", bad.flag, bad.value)...)
			if r.code != cli.ExitUsage || !strings.Contains(r.stderr, bad.want) {
				t.Errorf("worker %s %s: want a usage error saying %q, got %s", bad.flag, bad.value, bad.want, r)
			}
		}
	})
}
