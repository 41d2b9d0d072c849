package cli_test

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/runtime"
	"github.com/flowstone-go/flowstone/runtime/cli"
	"github.com/flowstone-go/flowstone/strategy"
)

// daysPipeline: raw and total (over raw) are daily from 2024-01-01, each
// taking delay; total fails for good on 2024-01-05. per_customer is in
// the dynamic set "customers". The sensor "arrivals" asks for a run of
// raw for days 2024-01-01 to 2024-01-03, two a evaluation, repeating the
// last (its run key makes that harmless).
func daysPipeline(delay time.Duration) *runtime.Pipeline {
	days := flowstone.Daily("2024-01-01")
	mk := func(key string, fail flowstone.Partition, deps ...runtime.Dep) runtime.AssetDef {
		return runtime.AssetDef{Key: key, Kind: "standard", Strategy: strategy.Standard{}, HasValue: true, CodeVersion: "v1",
			Partitions: days, Deps: deps,
			Run: func(ctx context.Context, in *runtime.Inputs) (any, error) {
				time.Sleep(delay)
				if in.Partition() == fail {
					return nil, flowstone.Permanentf("no data for %s", fail)
				}
				return key + "@" + string(in.Partition()), nil
			}}
	}
	perCustomer := runtime.AssetDef{Key: "per_customer", Kind: "standard", Strategy: strategy.Standard{}, HasValue: true, CodeVersion: "v1",
		Partitions: flowstone.Dynamic("customers"),
		Run: func(ctx context.Context, in *runtime.Inputs) (any, error) {
			return string(in.Partition()), nil
		}}
	arrivals := runtime.SensorDef{Name: "arrivals", Every: 200 * time.Millisecond, Targets: []string{"raw"},
		Run: func(ctx context.Context, cursor string, in *runtime.Inputs) (flowstone.SensorResult, error) {
			n, _ := strconv.Atoi(cursor)
			var res flowstone.SensorResult
			for i := max(n, 1); i <= min(n+2, 3); i++ {
				day := fmt.Sprintf("2024-01-%02d", i)
				res.Requests = append(res.Requests, flowstone.RunRequest{RunKey: day, Partition: flowstone.Partition(day)})
			}
			res.Cursor = strconv.Itoa(min(n+2, 3))
			return res, nil
		}}
	return runtime.NewPipeline(runtime.PipelineDef{Name: "days", Assets: []runtime.AssetDef{
		mk("raw", ""),
		mk("total", "2024-01-05", runtime.Dep{Asset: "raw", Kind: runtime.DepValue}),
		perCustomer,
	}, Sensors: []runtime.SensorDef{arrivals}})
}

func daysApp(p *runtime.Pipeline) cli.App {
	return cli.App{
		Name: "days",
		Bind: func(ctx context.Context) ([]runtime.Binding, error) {
			return []runtime.Binding{runtime.Bind(p, nil)}, nil
		},
		Configure: fast,
	}
}

// noSensors leaves the sensor out, for tests that count runs.
func noSensors(delay time.Duration) *runtime.Pipeline {
	p := daysPipeline(delay)
	var assets []runtime.AssetDef
	for _, a := range p.Assets() {
		assets = append(assets, *a)
	}
	return runtime.NewPipeline(runtime.PipelineDef{Name: "days", Assets: assets})
}

var backfillIDRe = regexp.MustCompile(`backfill (bf_[0-9a-z]+) started`)

func backfillID(t *testing.T, r result) string {
	t.Helper()
	m := backfillIDRe.FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("no backfill ID in\n%s", r)
	}
	return m[1]
}

func TestBackfillFollowsProgressAndPartitionsShowsTheResult(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db []string) {
		ctx := testContext(t)
		app := daysApp(noSensors(60 * time.Millisecond))

		r := invoke(ctx, app, args(db, "backfill", "total", "--from", "2024-01-01", "--to", "2024-01-10", "--max-concurrent", "3")...)
		if r.code != 1 {
			t.Fatalf("backfill with a failing partition: want exit 1\n%s", r)
		}
		id := backfillID(t, r)
		wantLine(t, r, `backfill `+id+` started: pipeline days, 10 partitions 2024-01-01 … 2024-01-10, at most 3 at once`)
		wantLine(t, r, `\d\d:\d\d:\d\d\.\d{3} backfill `+id+` \d+/10 done, \d running, [01] failed`)
		wantLine(t, r, `backfill `+id+` failed in \S+: 9 succeeded, 1 failed`)
		wantLine(t, r, `PARTITIONS COUNT STATUS`)
		wantLine(t, r, `2024-01-05 1 failed`)
		// At most one progress line a second.
		var last time.Time
		for _, m := range regexp.MustCompile(`(?m)^  (\d\d:\d\d:\d\d\.\d{3})  backfill`).FindAllStringSubmatch(r.stdout, -1) {
			at, _ := time.Parse("15:04:05.000", m[1])
			if !last.IsZero() && at.Sub(last) < time.Second {
				t.Errorf("progress lines %s apart:\n%s", at.Sub(last), r)
			}
			last = at
		}

		r = invoke(ctx, app, args(db, "backfill", "status", id)...)
		if r.code != 0 {
			t.Fatalf("backfill status: %s", r)
		}
		wantLine(t, r, `status: failed \(9 succeeded, 1 failed\)`)
		wantLine(t, r, `progress: 10/10 done`)
		wantLine(t, r, `2024-01-01 … 2024-01-04 4 succeeded`)
		wantLine(t, r, `2024-01-05 1 failed`)
		wantLine(t, r, `2024-01-06 … 2024-01-10 5 succeeded`)

		// One asset: a table. The day after the range has no record.
		r = invoke(ctx, app, args(db, "partitions", "total", "--from", "2024-01-04", "--to", "2024-01-11")...)
		if r.code != 0 {
			t.Fatalf("partitions: %s", r)
		}
		wantLine(t, r, `PARTITION STATUS MATERIALIZED RUN ERROR`)
		wantLine(t, r, `2024-01-04 succeeded \d{4}-\d\d-\d\d \d\d:\d\d:\d\d run_\w+ -`)
		wantLine(t, r, `2024-01-05 failed \d{4}-\d\d-\d\d \d\d:\d\d:\d\d run_\w+ no data for 2024-01-05`)
		wantLine(t, r, `2024-01-11 none - - -`)
		wantLine(t, r, `total: 8 partitions: 6 succeeded, 1 failed, 1 none`)

		// Several: a matrix with a legend.
		r = invoke(ctx, app, args(db, "partitions", "raw", "total", "--from", "2024-01-04", "--to", "2024-01-11")...)
		if r.code != 0 {
			t.Fatalf("partitions matrix: %s", r)
		}
		wantLine(t, r, `PARTITION raw total`)
		wantLine(t, r, `2024-01-04 ✓ ✓`)
		wantLine(t, r, `2024-01-05 ✓ ✗`)
		wantLine(t, r, `2024-01-11 · ·`)
		wantLine(t, r, `✓ succeeded ✗ failed ~ running s skipped · none \(blank: not a partition of the asset\)`)

		// A selection: total with its upstream, in topological order.
		r = invoke(ctx, app, args(db, "partitions", "+total", "--from", "2024-01-04", "--to", "2024-01-05")...)
		wantLine(t, r, `PARTITION raw total`)
		wantLine(t, r, `2024-01-05 ✓ ✗`)
		r = invoke(ctx, app, args(db, "partitions", "totl")...)
		if r.code != cli.ExitUsage || !strings.Contains(r.stderr, `unknown asset: "totl" in pipeline days (did you mean total?)`) {
			t.Errorf("partitions of an unknown asset: %s", r)
		}

		// By default: every partition with a record.
		r = invoke(ctx, app, args(db, "partitions", "raw")...)
		wantLine(t, r, `raw: 10 partitions: 10 succeeded`)

		// Up-to-date partitions are reused: a second backfill succeeds
		// with nothing to compute.
		r = invoke(ctx, app, args(db, "backfill", "total", "--partitions", "2024-01-01,2024-01-02")...)
		if r.code != 0 {
			t.Fatalf("second backfill: %s", r)
		}
		wantLine(t, r, `backfill bf_\w+ succeeded in \S+: 2 succeeded`)

		// A range written as docs/partitions.md writes it.
		r = invoke(ctx, app, args(db, "backfill", "total", "--partitions", "2024-01-01,...,2024-01-03")...)
		if r.code != 0 {
			t.Fatalf("backfill of a FROM,...,TO range: %s", r)
		}
		wantLine(t, r, `backfill bf_\w+ started: pipeline days, 3 partitions 2024-01-01 … 2024-01-03, at most 4 at once`)
		r = invoke(ctx, app, args(db, "backfill", "total", "--partitions", "2024-01-01,...")...)
		if r.code != cli.ExitUsage || !strings.Contains(r.stderr, "--partitions 2024-01-01,...: write a range as FROM,...,TO, or list the keys") {
			t.Fatalf("a range without its end: %s", r)
		}
	})
}

func TestBackfillDetachStatusAndCancel(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db []string) {
		ctx := testContext(t)
		app := daysApp(noSensors(0))

		// Detached, and no worker anywhere: it waits.
		r := invoke(ctx, app, args(db, "backfill", "raw", "total", "--from", "2024-01-01", "--to", "2024-01-31", "--detach")...)
		if r.code != 0 {
			t.Fatalf("backfill --detach: %s", r)
		}
		id := backfillID(t, r)
		wantLine(t, r, `backfill `+id+` started: pipeline days, 31 partitions 2024-01-01 … 2024-01-31, at most 4 at once`)
		wantLine(t, r, `detached: workers \(days worker\) do the work; follow it with: days backfill status --follow `+id)

		r = invoke(ctx, app, args(db, "backfill", "status", id)...)
		wantLine(t, r, `status: running \(31 pending\)`)
		wantLine(t, r, `progress: 0/31 done`)
		wantLine(t, r, `2024-01-01 … 2024-01-31 31 pending`)

		r = invoke(ctx, app, args(db, "backfill", "cancel", id)...)
		if r.code != 0 {
			t.Fatalf("backfill cancel: %s", r)
		}
		wantLine(t, r, `backfill `+id+` cancelled: 31 cancelled`)
		r = invoke(ctx, app, args(db, "backfill", "cancel", id)...)
		wantLine(t, r, `backfill `+id+` had already finished: cancelled`)
		r = invoke(ctx, app, args(db, "backfill", "status", "--follow", id)...)
		if r.code != 1 {
			t.Fatalf("status --follow of a cancelled backfill: want exit 1\n%s", r)
		}
		wantLine(t, r, `backfill `+id+` cancelled in \S+: 31 cancelled`)

		r = invoke(ctx, app, args(db, "backfill", "status", "bf_nope")...)
		if r.code != 1 || !strings.Contains(r.stderr, "backfill not found: bf_nope") {
			t.Fatalf("status of an unknown backfill: %s", r)
		}
	})
}

func TestBackfillUsageErrors(t *testing.T) {
	t.Parallel()
	db := []string{"--database", "sqlite://" + t.TempDir() + "/flowstone.db"}
	ctx := testContext(t)
	app := daysApp(noSensors(0))
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"backfill", "total"}, "backfill needs --from and --to (both included), or --partitions"},
		{[]string{"backfill", "total", "--from", "2024-01-01"}, "backfill needs --from and --to"},
		{[]string{"backfill", "total", "--from", "2024-01-01", "--to", "2024-01-02", "--partitions", "2024-01-01"}, "give --partitions or --from and --to, not both"},
		{[]string{"backfill", "total", "--from", "2024-13-01", "--to", "2024-01-02"}, `invalid partition "2024-13-01" for daily set`},
		{[]string{"backfill", "total", "--from", "2024-01-09", "--to", "2024-01-02"}, `"2024-01-02" is before "2024-01-09"`},
		{[]string{"backfill", "totl", "--from", "2024-01-01", "--to", "2024-01-02"}, "totl"},
		{[]string{"backfill", "total", "--from", "2099-01-01", "--to", "2099-01-02"}, `invalid partition "2099-01-01": its window has not ended yet`},
		{[]string{"partitions", "total", "--from", "2024-01-01"}, "give both --from and --to"},
		{[]string{"partitions", "totl"}, "totl"},
		{[]string{"partitions", "total", "--from", "2024-1-1", "--to", "2024-01-02"}, `invalid partition "2024-1-1"`},
	} {
		r := invoke(ctx, app, args(db, tc.args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: want exit 2 and %q\n%s", tc.args, tc.want, r)
		}
	}
}

func TestDynamicCommands(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db []string) {
		ctx := testContext(t)
		app := daysApp(noSensors(0))
		if r := invoke(ctx, app, args(db, "migrate")...); r.code != 0 {
			t.Fatal(r)
		}
		r := invoke(ctx, app, args(db, "dynamic", "list", "customers")...)
		if r.code != 0 || r.stdout != "" || !strings.Contains(r.stderr, "dynamic set customers has no keys; add some with: days dynamic add customers KEY...") {
			t.Fatalf("empty list: %s", r)
		}
		r = invoke(ctx, app, args(db, "dynamic", "add", "customers", "globex", "acme", "initech")...)
		if r.code != 0 {
			t.Fatalf("add: %s", r)
		}
		wantLine(t, r, `added 3 keys: dynamic set customers has 3 keys`)
		r = invoke(ctx, app, args(db, "dynamic", "remove", "customers", "initech")...)
		wantLine(t, r, `removed 1 key: dynamic set customers has 2 keys`)
		r = invoke(ctx, app, args(db, "dynamic", "list", "customers")...)
		if r.stdout != "acme\nglobex\n" {
			t.Fatalf("list: %s", r)
		}

		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"dynamic", "add", "custmers", "x"}, "dynamic set custmers: not a set of pipeline days (its dynamic sets: customers)"},
			{[]string{"dynamic", "add", "customers", "a|b"}, `invalid partition "a|b" for dynamic set customers`},
			{[]string{"dynamic", "add", "customers"}, "requires at least 2 arg(s)"},
		} {
			r := invoke(ctx, app, args(db, tc.args...)...)
			if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("%v: want exit 2 and %q\n%s", tc.args, tc.want, r)
			}
		}

		// A key of the set runs; a removed one is refused.
		if r := invoke(ctx, app, args(db, "materialize", "per_customer", "--partition", "acme")...); r.code != 0 {
			t.Fatalf("materialize acme: %s", r)
		}
		r = invoke(ctx, app, args(db, "materialize", "per_customer", "--partition", "initech")...)
		if r.code != 2 || !strings.Contains(r.stderr, `not in dynamic set customers of pipeline days (e.g. acme, globex)`) {
			t.Fatalf("materialize a removed key: %s", r)
		}
		r = invoke(ctx, app, args(db, "partitions", "per_customer")...)
		wantLine(t, r, `acme succeeded \S+ \S+ run_\w+ -`)
		wantLine(t, r, `globex none - - -`)
	})
}

func TestSensorsCommand(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db []string) {
		ctx := testContext(t)
		app := daysApp(daysPipeline(0))
		if r := invoke(ctx, app, args(db, "migrate")...); r.code != 0 {
			t.Fatal(r)
		}
		r := invoke(ctx, app, args(db, "sensors")...)
		if r.code != 0 {
			t.Fatalf("sensors: %s", r)
		}
		wantLine(t, r, `SENSOR EVERY TARGETS CURSOR EVALUATIONS RUNS LAST ERROR EVALUATED AT`)
		wantLine(t, r, `arrivals 200ms raw - 0 0 - never`)

		// A worker evaluates it until its cursor reaches 3: three runs,
		// however often it repeats the last request.
		wctx, stop := context.WithCancel(ctx)
		done := make(chan result, 1)
		go func() { done <- invoke(wctx, app, args(db, "worker")...) }()
		deadline := time.Now().Add(time.Minute)
		for {
			r = invoke(ctx, app, args(db, "sensors")...)
			if regexp.MustCompile(`(?m)^arrivals\s+200ms\s+raw\s+3\s+([3-9]|\d\d+)\s+3\s+-\s+\d{4}-`).MatchString(r.stdout) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("sensor not evaluated to its cursor 3 in a minute:\n%s", r)
			}
			time.Sleep(200 * time.Millisecond)
		}
		stop()
		if w := <-done; w.code != 0 {
			t.Errorf("worker: %s", w)
		}
		r = invoke(ctx, app, args(db, "partitions", "raw")...)
		wantLine(t, r, `raw: 3 partitions: 3 succeeded`)
	})
}
