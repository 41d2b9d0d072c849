package cli_test

import (
	"strings"
	"testing"
)

func TestLogsAndShow(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db []string) {
		ctx := testContext(t)
		app := ordersApp()
		r := invoke(ctx, app, args(db, "materialize", "--partition", "2024-01-02", "--config", `{"currency":"EUR"}`)...)
		if r.code != 0 {
			t.Fatalf("materialize: %s", r)
		}
		id := runID(t, r)

		for _, cmd := range [][]string{{"logs", id}, {"logs", id, "publish_report", "--partition", "2024-01-02"}} {
			r = invoke(ctx, app, args(db, cmd...)...)
			if r.code != 0 {
				t.Fatalf("%v: %s", cmd, r)
			}
			wantLine(t, r, `== publish_report \(partition 2024-01-02\) of run `+id+`, attempt 1`)
			wantLine(t, r, `\d\d:\d\d:\d\d\.\d{3} INFO report published day=2024-01-02`)
		}
		r = invoke(ctx, app, args(db, "logs", id, "raw_orders")...)
		if r.code != 0 || strings.TrimSpace(r.stdout) != "nothing logged" {
			t.Errorf("an asset that logged nothing: %s", r)
		}
		for _, cmd := range [][]string{{"logs", id, "nope"}, {"logs", id, "--partition", "x"}} {
			if r = invoke(ctx, app, args(db, cmd...)...); r.code != 2 {
				t.Errorf("%v: %s, want a usage error", cmd, r)
			}
		}
		if r = invoke(ctx, app, args(db, "logs", "run_missing")...); r.code != 1 || !strings.Contains(r.stderr, "run_missing") {
			t.Errorf("logs of a missing run: %s", r)
		}

		r = invoke(ctx, app, args(db, "show", "clean_orders", "--partition", "2024-01-02")...)
		if r.code != 0 {
			t.Fatalf("show: %s", r)
		}
		wantLine(t, r, `asset: clean_orders \(pipeline orders\)`)
		wantLine(t, r, `description: CleanOrders keeps the paid orders and normalises their fields.`)
		wantLine(t, r, `upstream: raw_orders`)
		wantLine(t, r, `downstream: daily_revenue`)
		wantLine(t, r, `run: `+id)
		wantLine(t, r, `status: succeeded \(attempts 1\)`)
		wantLine(t, r, `metadata kept: \d+`)
		wantLine(t, r, `read: raw_orders \(partition 2024-01-02\) mat_\w+`)
		wantLine(t, r, `"customer": "c\d\d",`)
		wantLine(t, r, `… \(\d+ bytes in all\)`)

		r = invoke(ctx, app, args(db, "show", "daily_revenue", "--partition", "2024-01-09")...)
		if r.code != 0 {
			t.Fatalf("show: %s", r)
		}
		wantLine(t, r, `materialized: never`)
	})
}
