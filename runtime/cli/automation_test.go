package cli_test

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone/runtime/cli"
)

// Two worker processes evaluate automation, one at a time: the automation
// command lists what they decided, and status who started each run.
func TestAutomationCommand(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db []string) {
		ctx, app := testContext(t), ingestApp()
		if r := invoke(ctx, app, args(db, "migrate")...); r.code != 0 {
			t.Fatalf("migrate: %s", r)
		}
		r := invoke(ctx, app, args(db, "automation")...)
		if r.code != 0 {
			t.Fatalf("automation: %s", r)
		}
		wantLine(t, r, `pipeline ingest: 3 automated assets, not evaluated yet .*`)
		wantLine(t, r, `no decisions yet`)
		if r := invoke(ctx, app, args(db, "automation", "--asset", "daily_count")...); r.code != cli.ExitUsage || !strings.Contains(r.stderr, "did you mean daily_counts?") {
			t.Errorf("automation --asset of a misspelt asset: %s", r)
		}

		workerCtx, stop := context.WithCancel(ctx)
		defer stop()
		done := make(chan result, 2)
		for range 2 {
			go func() {
				done <- invoke(workerCtx, app, args(db, "worker", "--drain", "10s", "--automation-interval", "100ms")...)
			}()
		}
		// until polls the automation command until pattern matches n lines.
		until := func(asset, pattern string, n int) result {
			t.Helper()
			re := regexp.MustCompile(`(?m)^` + strings.ReplaceAll(pattern, " ", `\s+`) + `\s*$`)
			for {
				r := invoke(ctx, app, args(db, "automation", "--asset", asset)...)
				if r.code != 0 {
					t.Fatalf("automation --asset %s: %s", asset, r)
				}
				if len(re.FindAllString(r.stdout, -1)) >= n {
					return r
				}
				if ctx.Err() != nil {
					t.Fatalf("no %d lines matching %q in\n%s", n, pattern, r)
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
		until("kind_info", `\S+ \S+ kind_info \w+ launched run_\w+ never materialized`, 3)
		if r := invoke(ctx, app, args(db, "materialize", "events", "--partition", "2024-01-02T05")...); r.code != 0 {
			t.Fatalf("materialize an hour: %s", r)
		}
		until("daily_counts", `\S+ \S+ daily_counts 2024-01-02 launched run_\w+ events 2024-01-02T05 materialized \(mat_\w+\)`, 1)
		r = until("running_total", `\S+ \S+ running_total 2024-01-02 launched run_\w+ daily_counts 2024-01-02 materialized \(mat_\w+\)`, 1)
		wantLine(t, r, `pipeline ingest: 3 automated assets, \d+ evaluations, the last at .+`)
		stop()
		for range 2 {
			if w := <-done; w.code != 0 {
				t.Fatalf("worker: %s", w)
			}
		}
		r = invoke(ctx, app, args(db, "automation", "--asset", "daily_counts")...)
		if n := strings.Count(r.stdout, " launched "); n != 1 {
			t.Errorf("daily_counts launched %d times; want once:\n%s", n, r)
		}
		r = invoke(ctx, app, args(db, "status")...)
		wantLine(t, r, `run_\w+ ingest 2024-01-02T05 succeeded .+ user .+`)
		wantLine(t, r, `run_\w+ ingest 2024-01-02 succeeded .+ automation .+`)
		if n := strings.Count(r.stdout, " automation "); n != 5 {
			t.Errorf("status lists %d automated runs; want 5:\n%s", n, r)
		}
	})
}
