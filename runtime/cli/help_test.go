package cli_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowstone-go/flowstone/runtime/cli"
)

// The help of a program speaks of its own pipelines, whatever the
// examples of this repository are.
func TestHelpSpeaksOfTheBoundPipeline(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		app       cli.App
		args      []string
		want, not []string
	}{
		{"orders root", ordersApp(), []string{"--help"},
			[]string{"Pipeline orders: raw_orders, clean_orders, daily_revenue, publish_report (daily partitions; config orders.Settings).", "backfill", "materialize"},
			[]string{"approve", "gate-link", "dynamic", "sensors", "--secret", "--pipeline"}},
		{"orders materialize", ordersApp(), []string{"materialize", "--help"},
			[]string{
				`orders materialize +daily_revenue --partition 2024-01-01 --config '{"currency":""}' --force`,
				"orders materialize group:ingest --partition 2024-01-01",
				"partition key of the run's partitioned assets, e.g. 2024-01-01",
			},
			[]string{"EUR", "customers", "daily_counts"}},
		{"orders backfill", ordersApp(), []string{"backfill", "--help"},
			[]string{"orders backfill daily_revenue --from 2024-01-01 --to 2024-01-07", "--partitions 2024-01-01,...,2024-01-07"},
			[]string{"daily_counts"}},
		{"flaky materialize", flakyApp(flaky("flaky")), []string{"materialize", "--help"},
			[]string{"flaky materialize +audit --force", "flaky materialize source+1 --detach"},
			[]string{"currency", "--partition 2", "--config '"}},
		{"two pipelines", flakyApp(flaky("a"), flaky("b")), []string{"materialize", "--help"},
			[]string{"flaky --pipeline a materialize +audit"}, nil},
		{"the chosen one", flakyApp(flaky("a"), flaky("b")), []string{"--pipeline", "b", "assets", "--help"},
			[]string{"flaky assets +audit"}, []string{"--pipeline a"}},
		{"nothing partitioned", flakyApp(flaky("flaky")), []string{"--help"},
			[]string{"Pipeline flaky: source, broken, report, audit."}, []string{"backfill", "partitions"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := invoke(testContext(t), tc.app, tc.args...)
			if r.code != 0 {
				t.Fatalf("help: %s", r)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("help lacks %q:\n%s", w, r.stdout)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(r.stdout, n) {
					t.Errorf("help mentions %q:\n%s", n, r.stdout)
				}
			}
		})
	}
	// A hidden command still runs.
	if r := invoke(testContext(t), flakyApp(flaky("flaky")), "partitions", "--help"); r.code != 0 {
		t.Errorf("partitions --help: %s", r)
	}
}

func TestUnknownCommandOrFlagSuggestsTheNearest(t *testing.T) {
	t.Parallel()
	r := invoke(testContext(t), ordersApp(), "staus")
	if r.code != cli.ExitUsage || !strings.HasPrefix(r.stderr, `orders: unknown command "staus" for "orders" (did you mean status?)`+"\n") {
		t.Errorf("unknown command: %s", r)
	}
	r = invoke(testContext(t), ordersApp(), "materialize", "--partiton", "2024-01-02")
	if r.code != cli.ExitUsage || !strings.HasPrefix(r.stderr, `orders: unknown flag: --partiton (did you mean --partition?)`+"\n") {
		t.Errorf("unknown flag: %s", r)
	}
	r = invoke(testContext(t), ordersApp(), "--databse", "x.db", "status")
	if r.code != cli.ExitUsage || !strings.HasPrefix(r.stderr, `orders: unknown flag: --databse (did you mean --database?)`+"\n") {
		t.Errorf("unknown global flag: %s", r)
	}
}

// --database takes a plain path, as its help's default does.
func TestDatabaseIsAPlainPath(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	path := filepath.Join(t.TempDir(), "flowstone.db")
	r := invoke(ctx, ordersApp(), "--database", path, "migrate")
	if r.code != 0 || r.stdout != "migrated sqlite database "+path+": FlowStone's and River's tables are up to date\n" {
		t.Fatalf("migrate: %s", r)
	}
	r = invoke(ctx, ordersApp(), "--database", path, "materialize", "raw_orders", "-p", "2024-01-02")
	if r.code != 0 {
		t.Fatalf("materialize: %s", r)
	}
	wantLine(t, r, `run run_\w+ succeeded in \S+: 1 succeeded`)
}

// Selections and strict config through Main, on both databases.
func TestSelectionAndStrictConfig(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db []string) {
		ctx := testContext(t)
		app := ordersApp()
		eur := []string{"-p", "2024-01-02", "--config", `{"currency":"EUR"}`}

		r := invoke(ctx, app, args(db, append([]string{"materialize", "raw_orders+1"}, eur...)...)...)
		if r.code != 0 {
			t.Fatalf("raw_orders+1: %s", r)
		}
		wantLine(t, r, `run run_\w+ started: pipeline orders, partition 2024-01-02, 2 assets`)
		wantLine(t, r, `run run_\w+ succeeded in \S+: 2 succeeded`)

		// The selection is forced, its upstream reused.
		r = invoke(ctx, app, args(db, append([]string{"materialize", "group:ingest", "daily_revenue", "--force"}, eur...)...)...)
		if r.code != 0 {
			t.Fatalf("group:ingest daily_revenue --force: %s", r)
		}
		wantLine(t, r, `raw_orders succeeded 1 \S+ -`)
		wantLine(t, r, `clean_orders succeeded 1 \S+ -`) // its input changed
		wantLine(t, r, `daily_revenue succeeded 1 \S+ -`)

		r = invoke(ctx, app, args(db, append([]string{"materialize", "+publish_report", "and", "tag:shop"}, eur...)...)...)
		if r.code != 0 {
			t.Fatalf("+publish_report and tag:shop: %s", r)
		}
		wantLine(t, r, `run run_\w+ succeeded in \S+: 1 reused`)

		for _, tc := range []struct{ sel, config, stderr string }{
			{"daily_revnue", `{}`, `orders: unknown asset: "daily_revnue" in pipeline orders (did you mean daily_revenue?)`},
			{"kind:gate", `{}`, `orders: bad selection: "kind:gate": no asset of pipeline orders has kind "gate" (kinds: standard)`},
			{"daily_revenue", `{"currency":"EUR","rate":2}`, `orders: --config: bad run config: decoding orders.Settings: json: unknown field "rate"`},
			{"daily_revenue", `{"currency":"EUR"}{"currency":"USD"}`, `orders: --config: bad run config: decoding orders.Settings: trailing data after the JSON value`},
			{"daily_revenue", `null`, `orders: --config: bad run config: decoding orders.Settings: null: want a JSON object`},
		} {
			r := invoke(ctx, app, args(db, "materialize", tc.sel, "-p", "2024-01-03", "--config", tc.config)...)
			first, _, _ := strings.Cut(r.stderr, "\n")
			if r.code != cli.ExitUsage || first != tc.stderr {
				t.Errorf("materialize %s --config %s: want exit 2 and %q\n%s", tc.sel, tc.config, tc.stderr, r)
			}
		}
		r = invoke(ctx, app, args(db, "status")...)
		if n := strings.Count(r.stdout, "2024-01-03"); n != 0 {
			t.Errorf("a refused request started a run:\n%s", r)
		}
	})
}
