package cli_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/examples/orders"
	"github.com/flowstone-go/flowstone/internal/testdb"
	"github.com/flowstone-go/flowstone/runtime"
	"github.com/flowstone-go/flowstone/runtime/cli"
	"github.com/flowstone-go/flowstone/strategy"
)

// result is what one invocation printed and returned.
type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\n--- stdout\n%s--- stderr\n%s", r.code, r.stdout, r.stderr)
}

// invoke runs the command line exactly as a user's main does.
func invoke(ctx context.Context, app cli.App, args ...string) result {
	var out, errOut bytes.Buffer
	code := cli.Main(ctx, app, args, &out, &errOut)
	return result{stdout: out.String(), stderr: errOut.String(), code: code}
}

// target is one database the suite runs against: global flags that reach it.
type target struct {
	name  string
	flags func(t *testing.T) []string
}

// databases returns SQLite always, and PostgreSQL when
// FLOWSTONE_TEST_DATABASE_URL is set (required when CI is set).
func databases(t *testing.T) []target {
	t.Helper()
	var out []target
	for _, db := range testdb.All(t) {
		out = append(out, target{name: db.Name, flags: func(t *testing.T) []string {
			url, schema := db.New(t)
			if schema == "" {
				return []string{"--database", url}
			}
			return []string{"--database", url, "--schema", schema}
		}})
	}
	return out
}

func eachDB(t *testing.T, fn func(t *testing.T, db []string)) {
	t.Helper()
	for _, d := range databases(t) {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			fn(t, d.flags(t))
		})
	}
}

// fast makes retries and idle polling quick.
func fast(c *runtime.Config) {
	c.PollInterval = 20 * time.Millisecond
	c.RetryDelay = func(int) time.Duration { return 10 * time.Millisecond }
}

func ordersApp() cli.App {
	return cli.App{
		Name: "orders",
		Bind: func(ctx context.Context) ([]runtime.Binding, error) {
			return []runtime.Binding{runtime.Bind(orders.Pipeline(), orders.Resources{Rates: orders.NewFXClient()})}, nil
		},
		Configure: fast,
	}
}

func args(db []string, rest ...string) []string { return append(append([]string{}, db...), rest...) }

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// wantLine fails unless some line of out matches the pattern, whose
// spaces stand for column gaps.
func wantLine(t *testing.T, r result, pattern string) {
	t.Helper()
	re := regexp.MustCompile(`(?m)^\s*` + strings.ReplaceAll(pattern, " ", `\s+`) + `\s*$`)
	if !re.MatchString(r.stdout) {
		t.Errorf("no line matching %q in\n%s", pattern, r)
	}
}

var runIDRe = regexp.MustCompile(`run (run_[0-9a-f]+) started`)

func runID(t *testing.T, r result) string {
	t.Helper()
	m := runIDRe.FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("no run ID in\n%s", r)
	}
	return m[1]
}

func TestMaterializeFollowsAndSummarizes(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db []string) {
		ctx := testContext(t)
		app := ordersApp()

		r := invoke(ctx, app, args(db, "materialize", "--partition", "2024-01-02", "--config", `{"currency":"EUR"}`)...)
		if r.code != 0 {
			t.Fatalf("materialize: %s", r)
		}
		id := runID(t, r)
		// Live lines, then the summary table, then the verdict.
		wantLine(t, r, `\d\d:\d\d:\d\d\.\d{3} daily_revenue succeeded in .+`)
		wantLine(t, r, `ASSET STATUS ATTEMPTS DURATION ERROR`)
		for _, k := range []string{"raw_orders", "clean_orders", "daily_revenue", "publish_report"} {
			wantLine(t, r, k+` succeeded 1 \S+ -`)
		}
		wantLine(t, r, `run `+id+` succeeded in \S+: 4 succeeded`)

		r = invoke(ctx, app, args(db, "assets")...)
		if r.code != 0 {
			t.Fatalf("assets: %s", r)
		}
		wantLine(t, r, `ASSET KIND GROUP TAGS PARTITIONS DEPS LAST STATUS PARTITION MATERIALIZED`)
		wantLine(t, r, `raw_orders standard ingest shop,raw daily - succeeded 2024-01-02 \d{4}-\d\d-\d\d \d\d:\d\d:\d\d`)
		wantLine(t, r, `publish_report standard - - daily daily_revenue \(order\) succeeded 2024-01-02 .+`)

		r = invoke(ctx, app, args(db, "status", id)...)
		if r.code != 0 {
			t.Fatalf("status: %s", r)
		}
		wantLine(t, r, `status: succeeded \(4 succeeded\)`)
		wantLine(t, r, `daily_revenue 2024-01-02 succeeded 1 \S+ -`)

		// Unchanged code, inputs and config: reused, still a success.
		r = invoke(ctx, app, args(db, "materialize", "daily_revenue", "-p", "2024-01-02", "--config", `{"currency":"EUR"}`)...)
		if r.code != 0 {
			t.Fatalf("second materialize: %s", r)
		}
		wantLine(t, r, `daily_revenue reused 0 - -`)
		wantLine(t, r, `run run_\w+ succeeded in \S+: 3 reused`)

		r = invoke(ctx, app, args(db, "materialize", "daily_revenue", "-p", "2024-01-02", "--config", `{"currency":"EUR"}`, "--force")...)
		if r.code != 0 {
			t.Fatalf("forced materialize: %s", r)
		}
		// --force recomputes the selection only: its upstream is reused.
		wantLine(t, r, `daily_revenue succeeded 1 \S+ -`)
		wantLine(t, r, `run run_\w+ succeeded in \S+: 1 succeeded, 2 reused`)

		r = invoke(ctx, app, args(db, "status")...)
		if r.code != 0 {
			t.Fatalf("status: %s", r)
		}
		wantLine(t, r, `RUN PIPELINE PARTITION STATUS STARTED BY DURATION PENDING FAILED`)
		wantLine(t, r, id+` orders 2024-01-02 succeeded .+ - 0`)
		if n := strings.Count(r.stdout, " succeeded "); n != 3 {
			t.Errorf("status lists %d succeeded runs, want 3:\n%s", n, r)
		}

		r = invoke(ctx, app, args(db, "assets", "group:ingest")...)
		if r.code != 0 || strings.Contains(r.stdout, "daily_revenue") || !strings.Contains(r.stdout, "raw_orders") {
			t.Errorf("assets group:ingest lists other assets: %s", r)
		}
	})
}

// flaky has an asset that fails for good, one that depends on it, and one
// that tolerates it through an Outcome dependency.
func flaky(name string) *runtime.Pipeline {
	asset := func(key string, run runtime.RunFunc, deps ...runtime.Dep) runtime.AssetDef {
		return runtime.AssetDef{Key: key, Kind: "standard", Strategy: strategy.Standard{}, Deps: deps, HasValue: true, CodeVersion: "v1", Run: run}
	}
	ok := func(ctx context.Context, in *runtime.Inputs) (any, error) { return 1, nil }
	return runtime.NewPipeline(runtime.PipelineDef{Name: name, Assets: []runtime.AssetDef{
		asset("source", ok),
		asset("broken", func(ctx context.Context, in *runtime.Inputs) (any, error) {
			return nil, flowstone.Permanent(errors.New("the warehouse is on fire"))
		}, runtime.Dep{Asset: "source", Kind: runtime.DepValue}),
		asset("report", ok, runtime.Dep{Asset: "broken", Kind: runtime.DepValue}),
		asset("audit", ok, runtime.Dep{Asset: "broken", Kind: runtime.DepOutcome}, runtime.Dep{Asset: "source", Kind: runtime.DepOrder}),
	}})
}

func flakyApp(pipelines ...*runtime.Pipeline) cli.App {
	return cli.App{
		Name: "flaky",
		Bind: func(ctx context.Context) ([]runtime.Binding, error) {
			var bs []runtime.Binding
			for _, p := range pipelines {
				bs = append(bs, runtime.Bind(p, nil))
			}
			return bs, nil
		},
		Configure: fast,
	}
}

func TestMaterializeFailedRunExitsOne(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	db := databases(t)[0].flags(t)
	r := invoke(ctx, flakyApp(flaky("flaky")), args(db, "materialize")...)
	if r.code != 1 {
		t.Fatalf("want exit 1: %s", r)
	}
	wantLine(t, r, `\S+ broken failed after 1 attempt: the warehouse is on fire`)
	wantLine(t, r, `broken failed 1 \S+ the warehouse is on fire`)
	wantLine(t, r, `report upstream_failed 0 - upstream broken failed`)
	wantLine(t, r, `audit succeeded 1 \S+ -`)
	wantLine(t, r, `run run_\w+ failed in \S+: 2 succeeded, 1 failed, 1 upstream_failed`)
	if !regexp.MustCompile(`(?m)^flaky: run run_\w+ failed$`).MatchString(r.stderr) {
		t.Errorf("stderr lacks the one-line verdict: %s", r)
	}
}

func TestBadInputIsAUsageError(t *testing.T) {
	t.Parallel()
	db := databases(t)[0].flags(t)
	for _, tc := range []struct {
		name   string
		app    cli.App
		args   []string
		stderr string
	}{
		{"unknown config field", ordersApp(), []string{"materialize", "-p", "2024-01-02", "--config", `{"curency":"EUR"}`},
			`orders: --config: bad run config: decoding orders.Settings: json: unknown field "curency"`},
		{"config not JSON", ordersApp(), []string{"materialize", "-p", "2024-01-02", "--config", `{currency: EUR}`},
			`orders: --config: bad run config: decoding orders.Settings: invalid character`},
		{"config of the wrong shape", ordersApp(), []string{"materialize", "-p", "2024-01-02", "--config", `{"currency":7}`},
			`orders: --config: bad run config: decoding orders.Settings: json: cannot unmarshal number`},
		{"config missing", ordersApp(), []string{"materialize", "-p", "2024-01-02"},
			`orders: --config is required: daily_revenue takes a orders.Settings, e.g. --config '{"currency":""}'`},
		{"config file missing", ordersApp(), []string{"materialize", "-p", "2024-01-02", "--config", "@" + filepath.Join(t.TempDir(), "nope.json")},
			`orders: --config @`},
		{"config for a pipeline without one", flakyApp(flaky("flaky")), []string{"materialize", "--config", `{}`},
			`flaky: --config: pipeline flaky takes no config`},
		{"unknown target", ordersApp(), []string{"materialize", "daily_revenu", "-p", "2024-01-02", "--config", `{}`},
			`orders: unknown asset: "daily_revenu" in pipeline orders (did you mean daily_revenue?)`},
		{"unknown asset in a selection", ordersApp(), []string{"materialize", "+dialy_revenue", "-p", "2024-01-02", "--config", `{}`},
			`orders: unknown asset: "dialy_revenue" in pipeline orders (did you mean daily_revenue?)`},
		{"unknown group", ordersApp(), []string{"materialize", "group:ingst", "-p", "2024-01-02"},
			`orders: bad selection: "group:ingst": no asset of pipeline orders has group "ingst" (did you mean ingest?) (groups: ingest)`},
		{"bad selection", ordersApp(), []string{"materialize", "raw_orders", "and", "-p", "2024-01-02"},
			`orders: bad selection: selection "raw_orders and": "and": needs an asset on its right`},
		{"empty intersection", ordersApp(), []string{"assets", "group:ingest", "and", "tag:nothing"},
			`orders: bad selection: "tag:nothing": no asset of pipeline orders has tag "nothing" (tags: raw, shop)`},
		{"config with trailing data", ordersApp(), []string{"materialize", "-p", "2024-01-02", "--config", `{"currency":"EUR"} {}`},
			`orders: --config: bad run config: decoding orders.Settings: trailing data after the JSON value`},
		{"config null", ordersApp(), []string{"materialize", "-p", "2024-01-02", "--config", `null`},
			`orders: --config: bad run config: decoding orders.Settings: null: want a JSON object`},
		{"partition outside the set", ordersApp(), []string{"materialize", "-p", "2023-12-31", "--config", `{}`},
			`orders: asset raw_orders: invalid partition "2023-12-31"`},
		{"partition not ended yet", ordersApp(), []string{"materialize", "-p", "2099-01-01", "--config", `{}`},
			`orders: asset raw_orders: invalid partition "2099-01-01": its window has not ended yet: the daily set's newest partition is "`},
		{"partition missing", ordersApp(), []string{"materialize", "--config", `{}`},
			`orders: invalid partition: asset raw_orders is partitioned (daily): give a partition key`},
		{"unknown command", ordersApp(), []string{"materialise"}, `orders: unknown command "materialise" for "orders"`},
		{"unknown flag", ordersApp(), []string{"status", "--verbose"}, `orders: unknown flag: --verbose`},
		{"bad log level", ordersApp(), []string{"--log-level", "loud", "assets"}, `orders: --log-level "loud": want debug, info, warn or error`},
		{"follow without a run", ordersApp(), []string{"status", "--follow"}, `orders: status --follow needs a run ID`},
		{"bad graph format", ordersApp(), []string{"graph", "--format", "svg"}, `orders: --format "svg": want mermaid or dot`},
		{"pipeline to choose", flakyApp(flaky("a"), flaky("b")), []string{"assets"},
			`flaky: this program runs several pipelines (a, b): choose one with --pipeline`},
		{"unknown pipeline", flakyApp(flaky("a"), flaky("b")), []string{"--pipeline", "c", "graph"},
			`flaky: --pipeline c: no such pipeline (this program runs: a, b)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// Its own deadline: a parallel subtest may wait long for its turn.
			r := invoke(testContext(t), tc.app, args(db, tc.args...)...)
			if r.code != cli.ExitUsage {
				t.Fatalf("want exit %d: %s", cli.ExitUsage, r)
			}
			first, _, _ := strings.Cut(r.stderr, "\n")
			if !strings.HasPrefix(first, tc.stderr) {
				t.Errorf("stderr's first line = %q, want prefix %q\n%s", first, tc.stderr, r)
			}
			if strings.Contains(r.stdout, "run_") {
				t.Errorf("a run was started: %s", r)
			}
		})
	}
}

func TestStatusOfUnknownRunFails(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	db := databases(t)[0].flags(t)
	if r := invoke(ctx, ordersApp(), args(db, "migrate")...); r.code != 0 {
		t.Fatal(r)
	}
	r := invoke(ctx, ordersApp(), args(db, "status", "run_nope")...)
	if r.code != 1 || r.stderr != "orders: run not found: run_nope\n" {
		t.Fatalf("want exit 1 and a one-line error: %s", r)
	}
	r = invoke(ctx, ordersApp(), args(db, "status")...)
	if r.code != 0 || r.stdout != "no runs yet\n" {
		t.Fatalf("status of an empty database: %s", r)
	}
}

func TestGraph(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	app := flakyApp(flaky("a"), flaky("b"))
	// graph reads no database: no --database, and nothing is created.
	r := invoke(ctx, app, "--pipeline", "b", "graph")
	const mermaid = `flowchart LR
    source["source"]
    broken["broken"]
    report["report"]
    audit["audit"]
    source --> broken
    broken --> report
    broken -- outcome --> audit
    source -.-> audit
`
	if r.code != 0 || r.stdout != mermaid {
		t.Errorf("graph (mermaid) = %s\nwant\n%s", r, mermaid)
	}
	r = invoke(ctx, app, "--pipeline", "b", "graph", "--format", "dot")
	const dot = `digraph "b" {
    rankdir=LR;
    node [shape=box];
    "source";
    "broken";
    "report";
    "audit";
    "source" -> "broken";
    "broken" -> "report";
    "broken" -> "audit" [label="outcome"];
    "source" -> "audit" [style=dashed];
}
`
	if r.code != 0 || r.stdout != dot {
		t.Errorf("graph (dot) = %s\nwant\n%s", r, dot)
	}
	if _, err := os.Stat("flowstone.db"); err == nil {
		t.Errorf("graph created ./flowstone.db")
	}
}

func TestDetachedRunIsWorkedByWorker(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db []string) {
		ctx := testContext(t)
		app := ordersApp()

		r := invoke(ctx, app, args(db, "materialize", "--detach", "-p", "2024-01-03", "--config", `{"currency":"GBP"}`)...)
		if r.code != 0 {
			t.Fatalf("materialize --detach: %s", r)
		}
		id := runID(t, r)
		wantLine(t, r, `detached: workers \(orders worker\) do the work; follow it with: orders status --follow `+id)

		// Nothing works on it yet: the enqueuing process took no job.
		r = invoke(ctx, app, args(db, "status", id)...)
		wantLine(t, r, `status: running \(1 queued, 3 pending\)`)

		workerCtx, stop := context.WithCancel(ctx)
		defer stop()
		done := make(chan result, 1)
		go func() { done <- invoke(workerCtx, app, args(db, "worker", "--drain-timeout", "10s")...) }()

		// Another process does the work; following it shows that work live.
		r = invoke(ctx, app, args(db, "status", "--follow", id)...)
		if r.code != 0 {
			t.Fatalf("status --follow: %s", r)
		}
		wantLine(t, r, `\S+ publish_report succeeded in \S+`)
		wantLine(t, r, `run `+id+` succeeded in \S+: 4 succeeded`)

		r = invoke(ctx, app, args(db, "status", id)...)
		stop()
		w := <-done
		wantLine(t, r, `status: succeeded \(4 succeeded\)`)
		wantLine(t, r, `publish_report 2024-01-03 succeeded 1 \S+ -`)
		if w.code != 0 {
			t.Fatalf("worker: %s", w)
		}
		wantLine(t, w, `worker started: pipelines orders on .+; stop with Ctrl-C or SIGTERM`)
		wantLine(t, w, `worker stopped`)
	})
}

func TestCancel(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	db := databases(t)[0].flags(t)
	app := ordersApp()
	r := invoke(ctx, app, args(db, "materialize", "--detach", "-p", "2024-01-03", "--config", `{}`)...)
	id := runID(t, r)
	r = invoke(ctx, app, args(db, "cancel", id)...)
	if r.code != 0 {
		t.Fatalf("cancel: %s", r)
	}
	wantLine(t, r, `run `+id+` cancelled: 4 cancelled`)
	r = invoke(ctx, app, args(db, "cancel", id)...)
	wantLine(t, r, `run `+id+` already cancelled: nothing to cancel`)
	r = invoke(ctx, app, args(db, "status")...)
	wantLine(t, r, id+` orders 2024-01-03 cancelled .+ - 0`)
}

func TestMigrate(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	path := filepath.Join(t.TempDir(), "fresh.db")
	r := invoke(ctx, ordersApp(), "--database", "sqlite://"+path, "migrate")
	if r.code != 0 || r.stdout != "migrated sqlite database "+path+": FlowStone's and River's tables are up to date\n" {
		t.Fatalf("migrate: %s", r)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
}

// TestDatabaseFromEnvironment cannot run in parallel: it sets the
// process's environment.
func TestDatabaseFromEnvironment(t *testing.T) {
	ctx := testContext(t)
	path := filepath.Join(t.TempDir(), "env.db")
	t.Setenv(cli.EnvDatabase, "sqlite://"+path)
	r := invoke(ctx, ordersApp(), "migrate")
	if r.code != 0 || !strings.Contains(r.stdout, path) {
		t.Fatalf("migrate with %s set: %s", cli.EnvDatabase, r)
	}
	// The flag wins over the environment.
	other := filepath.Join(t.TempDir(), "flag.db")
	r = invoke(ctx, ordersApp(), "--database", "sqlite://"+other, "migrate")
	if r.code != 0 || !strings.Contains(r.stdout, other) {
		t.Fatalf("migrate with --database: %s", r)
	}
}
