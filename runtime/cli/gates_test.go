package cli_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/runtime"
	"github.com/flowstone-go/flowstone/runtime/cli"
	"github.com/flowstone-go/flowstone/strategy"
)

const gateSecret = "cli-test-secret-0123456789"

// gated is amount -> refund (a gate) -> payout.
func gated() *runtime.Pipeline {
	asset := func(key string, s strategy.Strategy, run runtime.RunFunc, deps ...string) runtime.AssetDef {
		a := runtime.AssetDef{Key: key, Kind: "standard", Strategy: s, HasValue: true, CodeVersion: "v1", Run: run}
		for _, d := range deps {
			a.Deps = append(a.Deps, runtime.Dep{Asset: d, Kind: runtime.DepValue})
		}
		return a
	}
	double := func(from string) runtime.RunFunc {
		return func(ctx context.Context, in *runtime.Inputs) (any, error) {
			n, err := runtime.Input[int](ctx, in, from)
			return 2 * n, err
		}
	}
	refund := asset("refund", strategy.Gate{}, double("amount"), "amount")
	refund.Kind = "gate"
	return runtime.NewPipeline(runtime.PipelineDef{Name: "gated", Assets: []runtime.AssetDef{
		asset("amount", strategy.Standard{}, func(ctx context.Context, in *runtime.Inputs) (any, error) { return 21, nil }),
		refund,
		asset("payout", strategy.Standard{}, double("refund"), "refund"),
	}})
}

func gatedApp() cli.App {
	return cli.App{
		Name: "gated",
		Bind: func(ctx context.Context) ([]runtime.Binding, error) {
			return []runtime.Binding{runtime.Bind(gated(), nil)}, nil
		},
		Configure: fast,
	}
}

// withSecret adds the secret flag to a database's flags.
func withSecret(db []string) []string { return args(db, "--secret", gateSecret) }

// startWorker runs the worker command until the test ends.
func startWorker(t *testing.T, ctx context.Context, app cli.App, db []string) {
	t.Helper()
	ctx, stop := context.WithCancel(ctx)
	done := make(chan result, 1)
	go func() { done <- invoke(ctx, app, args(db, "worker", "--drain-timeout", "10s")...) }()
	t.Cleanup(func() {
		stop()
		if w := <-done; w.code != 0 {
			t.Errorf("worker: %s", w)
		}
	})
}

// waitGate runs the gates command until it lists run's gate, and returns
// that listing.
func waitGate(t *testing.T, ctx context.Context, app cli.App, db []string, run string) result {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		r := invoke(ctx, app, args(db, "gates")...)
		if r.code != 0 {
			t.Fatalf("gates: %s", r)
		}
		if strings.Contains(r.stdout, run) {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("the gate of %s never waited: %s", run, r)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startGated records a run of the gated pipeline, to be worked elsewhere.
func startGated(t *testing.T, ctx context.Context, app cli.App, db []string) string {
	t.Helper()
	r := invoke(ctx, app, args(db, "materialize", "--detach")...)
	if r.code != 0 {
		t.Fatalf("materialize --detach: %s", r)
	}
	return runID(t, r)
}

func TestApproveFromAnotherProcess(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db []string) {
		ctx := testContext(t)
		app, db := gatedApp(), withSecret(db)
		id := startGated(t, ctx, app, db)
		startWorker(t, ctx, app, db)

		r := waitGate(t, ctx, app, db, id)
		wantLine(t, r, `RUN ASSET PARTITION WAITING SINCE`)
		wantLine(t, r, id+` refund - \d{4}-\d\d-\d\d \d\d:\d\d:\d\d`)
		r = invoke(ctx, app, args(db, "status", id)...)
		wantLine(t, r, `refund - waiting 1 - awaiting approval`)
		wantLine(t, r, `payout - pending 0 - -`)

		// Each invocation is its own engine: another process approves.
		r = invoke(ctx, app, args(db, "approve", id, "refund", "--by", "ana", "--reason", "receipt checked")...)
		if r.code != 0 {
			t.Fatalf("approve: %s", r)
		}
		wantLine(t, r, `approved refund of run `+id+` as ana: receipt checked`)
		wantLine(t, r, `the run goes on where workers run; follow it with: gated status --follow `+id)

		r = invoke(ctx, app, args(db, "status", "--follow", id)...)
		if r.code != 0 {
			t.Fatalf("status --follow: %s", r)
		}
		wantLine(t, r, `payout succeeded 1 \S+ -`)
		wantLine(t, r, `run `+id+` succeeded in \S+: 3 succeeded`)

		r = invoke(ctx, app, args(db, "approve", id, "refund", "--by", "bob")...)
		if r.code != cli.ExitFailure {
			t.Fatalf("second approve: want exit 1: %s", r)
		}
		if want := regexp.MustCompile(`^gated: gate already resolved: gate refund of run ` + id + ` was approved by ana \(unverified\) at \S+; nothing changed\n$`); !want.MatchString(r.stderr) {
			t.Errorf("second approve's error:\n%s\nwant %s", r, want)
		}
		r = invoke(ctx, app, args(db, "reject", id, "refund", "--by", "bob")...)
		if r.code != cli.ExitFailure || !strings.Contains(r.stderr, "gate already resolved") {
			t.Errorf("reject after approve: %s", r)
		}
		r = invoke(ctx, app, args(db, "gates")...)
		if r.code != 0 || r.stdout != "no gates waiting\n" {
			t.Errorf("gates after approval: %s", r)
		}
	})
}

func TestRejectFailsDownstream(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db []string) {
		ctx := testContext(t)
		app, db := gatedApp(), withSecret(db)
		id := startGated(t, ctx, app, db)
		startWorker(t, ctx, app, db)
		waitGate(t, ctx, app, db, id)

		r := invoke(ctx, app, args(db, "reject", id, "refund", "--by", "carl", "--reason", "duplicate claim")...)
		if r.code != 0 {
			t.Fatalf("reject: %s", r)
		}
		wantLine(t, r, `rejected refund of run `+id+` as carl: duplicate claim`)
		r = invoke(ctx, app, args(db, "status", "--follow", id)...)
		if r.code != cli.ExitFailure {
			t.Fatalf("status --follow of a rejected run: want exit 1: %s", r)
		}
		wantLine(t, r, `refund failed 1 \S+ rejected by carl: duplicate claim`)
		wantLine(t, r, `payout upstream_failed 0 - upstream refund failed`)
		wantLine(t, r, `run `+id+` failed in \S+: 1 succeeded, 1 failed, 1 upstream_failed`)
	})
}

func TestDecideErrors(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	app, db := gatedApp(), withSecret(databases(t)[0].flags(t))
	id := startGated(t, ctx, app, db) // no worker: the gate is still pending
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"not yet waiting", []string{"approve", id, "refund", "--by", "ana"}, cli.ExitFailure,
			"gated: not a waiting gate: gate refund of run " + id + " is pending; it has not computed the value to approve yet: try again once gated gates lists it\n"},
		{"not a gate", []string{"approve", id, "payout", "--by", "ana"}, cli.ExitFailure,
			"gated: not a waiting gate: payout is not a gate\n"},
		{"no such asset", []string{"reject", id, "refnud", "--by", "ana"}, cli.ExitUsage,
			"gated: not in the run: run " + id + ` has no asset "refnud" (it has amount, refund, payout)` + "\n"},
		{"no such partition", []string{"approve", id, "refund", "--partition", "2024-01-02", "--by", "ana"}, cli.ExitUsage,
			"gated: not in the run: asset refund of run " + id + ` is unpartitioned: it has no partition "2024-01-02"` + "\n"},
		{"link outside the run", []string{"gate-link", id, "refund", "--partition", "2024-01-02"}, cli.ExitUsage,
			"gated: not in the run: asset refund of run " + id + ` is unpartitioned: it has no partition "2024-01-02"` + "\n"},
		{"no such run", []string{"approve", "run_nope", "refund", "--by", "ana"}, cli.ExitFailure,
			"gated: run not found: run_nope"},
		{"nobody", []string{"approve", id, "refund", "--by", " "}, cli.ExitUsage,
			"gated: approve: say who decides with --by NAME (USER is not set)\n"},
		{"missing asset", []string{"approve", id}, cli.ExitUsage, "gated: accepts 2 arg(s), received 1\n"},
		{"link with a bad action", []string{"gate-link", id, "refund", "--action", "maybe"}, cli.ExitUsage,
			`gated: --action "maybe": want approve or reject` + "\n"},
		{"link with a bad ttl", []string{"gate-link", id, "refund", "--ttl", "-1h"}, cli.ExitUsage,
			"gated: --ttl -1h0m0s: must be positive\n"},
		{"link with a bad base", []string{"gate-link", id, "refund", "--base-url", "localhost:8080"}, cli.ExitUsage,
			`gated: --base-url "localhost:8080": want an http:// or https:// URL, e.g. http://127.0.0.1:8080/gate` + "\n"},
		{"link to a non-gate", []string{"gate-link", id, "amount"}, cli.ExitFailure,
			"gated: not a waiting gate: amount is not a gate\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// Its own deadline: a parallel subtest may wait long for its turn.
			r := invoke(testContext(t), app, args(db, tc.args...)...)
			if r.code != tc.code || !strings.HasPrefix(r.stderr, tc.stderr) {
				t.Errorf("got %s\nwant exit %d and stderr %q", r, tc.code, tc.stderr)
			}
		})
	}
	// None of that touched the gate.
	r := invoke(ctx, app, args(db, "status", id)...)
	wantLine(t, r, `refund - pending 0 - -`)
}

// syncBuffer is a bytes.Buffer a running command writes while the test
// reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var servingRe = regexp.MustCompile(`serving gate links at (http://\S+/gate); stop with Ctrl-C or SIGTERM`)

func TestGateLinkServed(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db []string) {
		ctx := testContext(t)
		app, db := gatedApp(), withSecret(db)
		id := startGated(t, ctx, app, db)
		startWorker(t, ctx, app, db)
		waitGate(t, ctx, app, db, id)

		srvCtx, stop := context.WithCancel(ctx)
		defer stop()
		var out, errOut syncBuffer
		done := make(chan int, 1)
		go func() {
			done <- cli.Main(srvCtx, app, args(db, "serve-gates", "--addr", "127.0.0.1:0", "--trusted-user-header", "X-Forwarded-User"), &out, &errOut)
		}()
		var base string
		for deadline := time.Now().Add(30 * time.Second); base == ""; {
			if m := servingRe.FindStringSubmatch(out.String()); m != nil {
				base = m[1]
			} else if time.Now().After(deadline) {
				t.Fatalf("serve-gates never served: %s %s", out.String(), errOut.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
		if !strings.Contains(out.String(), "deciding as the user the proxy names in X-Forwarded-User; requests without it are refused") {
			t.Errorf("serve-gates says nothing of the proxy's header: %s", out.String())
		}

		r := invoke(ctx, app, args(db, "gate-link", id, "refund", "--ttl", "1h", "--base-url", base)...)
		if r.code != 0 {
			t.Fatalf("gate-link: %s", r)
		}
		link, err := url.Parse(strings.TrimSpace(r.stdout))
		if err != nil || !strings.HasPrefix(link.String(), base+"?token=") {
			t.Fatalf("gate-link printed %q (%v)", r.stdout, err)
		}
		if !strings.Contains(r.stderr, "this link can approve refund of run "+id+" until ") {
			t.Errorf("gate-link's note: %s", r)
		}
		alice := map[string]string{"X-Forwarded-User": "alice"}
		// Opening the link only asks; posting its form decides.
		if code, body := linkRequest(t, http.MethodGet, link.String(), nil, alice); code != http.StatusOK || !strings.Contains(body, "<h1>Approve refund</h1>") {
			t.Fatalf("GET the link: %d\n%s", code, body)
		}
		if code, body := linkRequest(t, http.MethodGet, link.String(), nil, nil); code != http.StatusForbidden || !strings.Contains(body, "X-Forwarded-User") {
			t.Errorf("GET the link around the proxy: %d\n%s", code, body)
		}
		token := link.Query().Get("token")
		forged := token[:len(token)-2] + "AA"
		if code, _ := linkRequest(t, http.MethodPost, base, url.Values{"token": {forged}, "by": {"mallory"}}, alice); code != http.StatusForbidden {
			t.Errorf("forged token: %d, want 403", code)
		}
		// curl -X POST LINK
		if code, body := linkRequest(t, http.MethodPost, link.String(), nil, alice); code != http.StatusForbidden || !strings.Contains(body, "Nothing changed") {
			t.Errorf("a bare POST of the link: %d, want 403\n%s", code, body)
		}
		if code, body := confirmLink(t, link.String(), "mallory", alice); code != http.StatusOK || !strings.Contains(body, "approved by alice.") {
			t.Fatalf("confirm the link: %d\n%s", code, body)
		}
		if code, body := confirmLink(t, link.String(), "", alice); code != http.StatusConflict || !strings.Contains(body, "already decided by alice at ") {
			t.Errorf("the link used twice: %d, want 409\n%s", code, body)
		}
		r = invoke(ctx, app, args(db, "gates", "--decided")...)
		wantLine(t, r, `RUN ASSET PARTITION DECISION BY AT REASON`)
		wantLine(t, r, id+` refund - approved alice \S+ \S+ looks right`)
		r = invoke(ctx, app, args(db, "status", "--follow", id)...)
		if r.code != 0 {
			t.Fatalf("status --follow: %s", r)
		}
		r = invoke(ctx, app, args(db, "gate-link", id, "refund")...)
		if r.code != cli.ExitFailure || !strings.Contains(r.stderr, "gate already resolved: gate refund of run "+id+" is succeeded; a link would change nothing") {
			t.Errorf("gate-link for a resolved gate: %s", r)
		}

		stop()
		if code := <-done; code != 0 || !strings.HasSuffix(out.String(), "stopped serving gate links\n") {
			t.Errorf("serve-gates: exit %d\n%s%s", code, out.String(), errOut.String())
		}
	})
}

// TestSecretFromEnvironment cannot run in parallel: it sets the process's
// environment.
func TestSecretFromEnvironment(t *testing.T) {
	ctx := testContext(t)
	app, db := gatedApp(), databases(t)[0].flags(t)

	t.Setenv(cli.EnvSecret, "")
	r := invoke(ctx, app, args(db, "migrate")...)
	const hint = "set FLOWSTONE_SECRET (or --secret) to a random string of 16 bytes or more, the same in every process, e.g. export FLOWSTONE_SECRET=$(openssl rand -hex 32)\n"
	if r.code != cli.ExitFailure || r.stderr != "gated: no secret for gate links: the gate gated.refund signs its approval links and no secret is set; "+hint {
		t.Errorf("no secret: %s", r)
	}
	r = invoke(ctx, app, args(db, "--secret", "hunter2", "migrate")...)
	if r.code != cli.ExitFailure || !strings.Contains(r.stderr, "the secret is 7 bytes; "+hint) {
		t.Errorf("short secret: %s", r)
	}

	t.Setenv(cli.EnvSecret, gateSecret)
	id := startGated(t, ctx, app, db)
	startWorker(t, ctx, app, db)
	waitGate(t, ctx, app, db, id)
	// --by defaults to the user.
	t.Setenv("USER", "")
	r = invoke(ctx, app, args(db, "approve", id, "refund")...)
	if r.code != cli.ExitUsage || !strings.HasPrefix(r.stderr, "gated: approve: say who decides with --by NAME (USER is not set)\n") {
		t.Errorf("approve with no USER: %s", r)
	}
	t.Setenv("USER", "erin")
	r = invoke(ctx, app, args(db, "approve", id, "refund")...)
	if r.code != 0 {
		t.Fatalf("approve: %s", r)
	}
	wantLine(t, r, `approved refund of run `+id+` as erin`)
}

// TestRejectionsReadRejected checks how a rejection is reported after the
// fact: to a later approve, and on the page of a reject link.
//
// It fails while runtime/gates.go forms the past tense as action+"d"
// ("rejectd by carl", and "faild by timeout" for on_timeout=fail) in
// Engine.decide's ErrGateResolved message and in GateHandler's "Done" page.
func TestRejectionsReadRejected(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	app, db := gatedApp(), withSecret(databases(t)[0].flags(t))
	startWorker(t, ctx, app, db)

	id := startGated(t, ctx, app, db)
	waitGate(t, ctx, app, db, id)
	if r := invoke(ctx, app, args(db, "reject", id, "refund", "--by", "carl")...); r.code != 0 {
		t.Fatalf("reject: %s", r)
	}
	r := invoke(ctx, app, args(db, "approve", id, "refund", "--by", "ana")...)
	if r.code != cli.ExitFailure || !strings.Contains(r.stderr, "was rejected by carl") {
		t.Errorf("approve after reject: %s\nwant \"was rejected by carl\"", r)
	}

	id = startGated(t, ctx, app, db)
	waitGate(t, ctx, app, db, id)
	r = invoke(ctx, app, args(db, "gate-link", id, "refund", "--action", "reject")...)
	link, err := url.Parse(strings.TrimSpace(r.stdout))
	if r.code != 0 || err != nil {
		t.Fatalf("gate-link: %s", r)
	}
	srv := httptest.NewServer(gateHandler(t, ctx, db))
	defer srv.Close()
	code, body := confirmLink(t, srv.URL+"/gate?"+link.RawQuery, "dora", nil)
	if code != http.StatusOK || !strings.Contains(body, "rejected by dora (unverified)") {
		t.Errorf("reject link: %d %s\nwant \"rejected by dora (unverified)\"", code, body)
	}
	// Names no sign-in vouched for read unverified.
	r = invoke(ctx, app, args(db, "gates", "--decided")...)
	wantLine(t, r, id+` refund - rejected dora \(unverified\) \S+ \S+ looks right`)
	wantLine(t, r, `\S+ refund - rejected carl \(unverified\) \S+ \S+ -`)
}

// linkRequest sends a request to a gate link with headers hdr and returns
// the answer.
func linkRequest(t *testing.T, method, link string, form url.Values, hdr map[string]string) (int, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, link, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var formToken = regexp.MustCompile(`name="form" value="([^"]+)"`)

// confirmLink opens a gate link and posts its form as a browser does,
// naming by on it.
func confirmLink(t *testing.T, link, by string, hdr map[string]string) (int, string) {
	t.Helper()
	code, page := linkRequest(t, http.MethodGet, link, nil, hdr)
	m := formToken.FindStringSubmatch(page)
	if code != http.StatusOK || m == nil {
		return code, page
	}
	u, _ := url.Parse(link)
	h := map[string]string{"Origin": u.Scheme + "://" + u.Host}
	for k, v := range hdr {
		h[k] = v
	}
	return linkRequest(t, http.MethodPost, link, url.Values{"form": {m[1]}, "by": {by}, "reason": {"looks right"}}, h)
}

// gateHandler opens an engine without workers on db's database, as
// serve-gates does, and returns its GateHandler.
func gateHandler(t *testing.T, ctx context.Context, db []string) http.Handler {
	t.Helper()
	cfg := runtime.Config{NoWorkers: true, Secret: []byte(gateSecret), Logger: slog.New(slog.DiscardHandler)}
	for i := 0; i+1 < len(db); i += 2 {
		switch db[i] {
		case "--database":
			cfg.Database = db[i+1]
		case "--schema":
			cfg.Schema = db[i+1]
		}
	}
	e, err := runtime.Open(ctx, cfg, runtime.Bind(gated(), nil))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close(context.WithoutCancel(ctx)) })
	return e.GateHandler()
}

// hourlyGated is an hourly gate under a daily rollup: a run for one day
// waits at 24 gates.
func hourlyGatedApp() cli.App {
	check := runtime.AssetDef{Key: "check", Kind: "gate", Strategy: strategy.Gate{}, HasValue: true, CodeVersion: "v1",
		Partitions: flowstone.Hourly("2024-01-01T00"),
		Run: func(ctx context.Context, in *runtime.Inputs) (any, error) {
			return strconv.Atoi(string(in.Partition())[11:])
		}}
	rollup := runtime.AssetDef{Key: "rollup", Kind: "standard", Strategy: strategy.Standard{}, HasValue: true, CodeVersion: "v1",
		Partitions: flowstone.Daily("2024-01-01"),
		Deps:       []runtime.Dep{{Asset: "check", Kind: runtime.DepPartitions}},
		Run: func(ctx context.Context, in *runtime.Inputs) (any, error) {
			hs, err := runtime.InputPartitions[int](ctx, in, "check")
			n := 0
			for _, v := range hs {
				n += v
			}
			return n, err
		}}
	p := runtime.NewPipeline(runtime.PipelineDef{Name: "hourly", Assets: []runtime.AssetDef{check, rollup}})
	return cli.App{
		Name: "hourly",
		Bind: func(ctx context.Context) ([]runtime.Binding, error) {
			return []runtime.Binding{runtime.Bind(p, nil)}, nil
		},
		Configure: fast,
	}
}

func TestHourlyGatesByPartition(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db []string) {
		// 24 gates and some 40 commands: more than testContext's deadline
		// when the machine is busy.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		app, db := hourlyGatedApp(), withSecret(db)
		r := invoke(ctx, app, args(db, "materialize", "--detach", "--partition", "2024-01-02", "rollup")...)
		if r.code != 0 {
			t.Fatalf("materialize: %s", r)
		}
		id := runID(t, r)
		startWorker(t, ctx, app, db)
		for deadline := time.Now().Add(time.Minute); ; {
			r = invoke(ctx, app, args(db, "gates")...)
			if strings.Count(r.stdout, id) == 24 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("24 gates never waited: %s", r)
			}
			time.Sleep(50 * time.Millisecond)
		}
		wantLine(t, r, `RUN ASSET PARTITION WAITING SINCE`)
		wantLine(t, r, id+` check 2024-01-02T07 \S+ \S+`)

		// Which hour must be said; one outside the run is refused.
		r = invoke(ctx, app, args(db, "approve", id, "check", "--by", "ana")...)
		if r.code != cli.ExitUsage || !strings.Contains(r.stderr, "hourly: not in the run: asset check of run "+id+" has no unpartitioned node: name a partition (its partitions: 2024-01-02T00, 2024-01-02T01,") ||
			!strings.Contains(r.stderr, "and 16 more); choose one with --partition") {
			t.Errorf("approve without --partition: %s", r)
		}
		r = invoke(ctx, app, args(db, "reject", id, "check", "--partition", "2024-01-03T00", "--by", "ana")...)
		if r.code != cli.ExitUsage || !strings.Contains(r.stderr, `has no partition "2024-01-03T00" (its partitions: 2024-01-02T00,`) {
			t.Errorf("reject outside the run: %s", r)
		}
		r = invoke(ctx, app, args(db, "status", id, "--partition", "2024-01-03")...)
		if r.code != cli.ExitUsage || !strings.Contains(r.stderr, `run `+id+` holds no asset at partition "2024-01-03" (it holds "2024-01-02", "2024-01-02T00",`) {
			t.Errorf("status outside the run: %s", r)
		}

		// Hours 0-2 from the command line, hour 3 by a signed link, the
		// rest by Ref from Go.
		for h := range 3 {
			part := fmt.Sprintf("2024-01-02T%02d", h)
			r = invoke(ctx, app, args(db, "approve", id, "check", "--partition", part, "--by", "ana")...)
			wantLine(t, r, `approved check \(partition `+part+`\) of run `+id+` as ana`)
		}
		r = invoke(ctx, app, args(db, "gate-link", id, "check", "--partition", "2024-01-02T03", "--base-url", "http://gates.example.com/gate")...)
		if r.code != 0 || !strings.Contains(r.stderr, "this link can approve check (partition 2024-01-02T03) of run "+id) {
			t.Fatalf("gate-link: %s", r)
		}
		link, _ := url.Parse(strings.TrimSpace(r.stdout))
		cfg := runtime.Config{NoWorkers: true, Secret: []byte(gateSecret), Logger: slog.New(slog.DiscardHandler)}
		for i := 0; i < len(db); i += 2 {
			switch db[i] {
			case "--database":
				cfg.Database = db[i+1]
			case "--schema":
				cfg.Schema = db[i+1]
			}
		}
		bs, _ := app.Bind(ctx)
		eng, err := runtime.Open(ctx, cfg, bs...)
		if err != nil {
			t.Fatal(err)
		}
		defer eng.Close(context.Background())
		srv := httptest.NewServer(eng.GateHandler())
		defer srv.Close()
		code, body := confirmLink(t, srv.URL+"/gate?"+link.RawQuery, "dora", nil)
		if code != http.StatusOK || !strings.Contains(body, "check (partition 2024-01-02T03) of run "+id+": approved by dora (unverified)") {
			t.Fatalf("the link: %d %s", code, body)
		}
		for h := 4; h < 24; h++ {
			ref := runtime.Ref{RunID: id, Asset: "check", Partition: flowstone.Partition(fmt.Sprintf("2024-01-02T%02d", h))}
			if err := eng.Approve(ctx, ref, "erin", ""); err != nil {
				t.Fatalf("approve %s: %v", ref, err)
			}
		}
		r = invoke(ctx, app, args(db, "status", "--follow", id)...)
		if r.code != 0 {
			t.Fatalf("status --follow: %s", r)
		}
		r = invoke(ctx, app, args(db, "status", id, "--partition", "2024-01-02")...)
		wantLine(t, r, `rollup 2024-01-02 succeeded 1 \S+ -`)
		r = invoke(ctx, app, args(db, "status", id, "--partition", "2024-01-02T01")...)
		wantLine(t, r, `check 2024-01-02T01 succeeded 1 \S+ -`)
		if strings.Contains(r.stdout, "rollup") {
			t.Errorf("status --partition of an hour shows the day:\n%s", r)
		}
	})
}
