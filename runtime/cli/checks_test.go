package cli_test

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/flowstone-go/flowstone/examples/ingest"
	"github.com/flowstone-go/flowstone/runtime"
	"github.com/flowstone-go/flowstone/runtime/cli"
)

func ingestApp() cli.App {
	return cli.App{
		Name: "ingest",
		Bind: func(ctx context.Context) ([]runtime.Binding, error) {
			return []runtime.Binding{runtime.Bind(ingest.Pipeline(), ingest.Resources{Drop: ingest.NewDropDir()})}, nil
		},
		Configure: func(c *runtime.Config) { fast(c); c.Concurrency = 16 },
	}
}

func TestChecksAreShownAndRunAlone(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db []string) {
		ctx, app := testContext(t), ingestApp()
		if r := invoke(ctx, app, args(db, "materialize", "daily_counts", "--partition", "2024-01-01")...); r.code != 0 {
			t.Fatalf("materialize: %s", r)
		}
		r := invoke(ctx, app, args(db, "show", "daily_counts", "--partition", "2024-01-01")...)
		if r.code != 0 || !regexp.MustCompile(`check complete_day:\s+passed: 24 of 24 hours rolled up \[events=\d+ hours=24\]`).MatchString(r.stdout) {
			t.Errorf("show lacks the blocking check's result: %s", r)
		}
		r = invoke(ctx, app, args(db, "check", "daily_counts", "--partition", "2024-01-01")...)
		if r.code != 0 {
			t.Fatalf("check: %s", r)
		}
		wantLine(t, r, `complete_day daily_counts 2024-01-01 passed error yes 24 of 24 hours rolled up events=\d+ hours=24`)
		wantLine(t, r, `has_purchases daily_counts 2024-01-01 passed warn no \d+ purchases purchases=\d+`)
		r = invoke(ctx, app, args(db, "checks", "daily_counts")...)
		wantLine(t, r, `complete_day daily_counts 2024-01-01 passed error yes 24 of 24 hours rolled up events=\d+ hours=24 mat_\w+ run_\w+ .*`)
		if r := invoke(ctx, app, args(db, "check", "running_total")...); r.code != cli.ExitUsage {
			t.Errorf("check of an asset without checks: %s", r)
		}
		if r := invoke(ctx, app, args(db, "check", "daily_count")...); r.code != cli.ExitUsage || !strings.Contains(r.stderr, "did you mean daily_counts?") {
			t.Errorf("check of a misspelt asset: %s", r)
		}

		// An hour materialized again makes its day stale.
		if r := invoke(ctx, app, args(db, "materialize", "events", "--partition", "2024-01-01T03", "--force")...); r.code != 0 {
			t.Fatalf("materialize an hour: %s", r)
		}
		r = invoke(ctx, app, args(db, "assets")...)
		wantLine(t, r, `stale daily_counts: upstream events has a newer materialization \(2024-01-01T03\)`)
		if strings.Contains(r.stdout, "stale events") {
			t.Errorf("events reported stale: %s", r)
		}
		r = invoke(ctx, app, args(db, "show", "daily_counts", "--partition", "2024-01-01")...)
		if !regexp.MustCompile(`stale:\s+upstream events has a newer materialization \(2024-01-01T03\)`).MatchString(r.stdout) {
			t.Errorf("show lacks the staleness: %s", r)
		}
	})
}
