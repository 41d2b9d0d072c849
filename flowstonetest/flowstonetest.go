// Package flowstonetest tests pipelines in one call. Materialize runs a
// selection in-process on a fresh database owned by the test and fails the
// test with the run's errors:
//
//	func TestDailyRevenue(t *testing.T) {
//		t.Parallel()
//		res := flowstonetest.Materialize(t, orders.Pipeline(), orders.Resources{Rates: orders.NewFXClient()},
//			flowstonetest.Partition("2024-01-02"), flowstonetest.Config(orders.Settings{Currency: "EUR"}))
//		rev, err := orders.LoadDailyRevenue(t.Context(), res.Engine(), "2024-01-02")
//		...
//	}
//
// The database is a SQLite file in t.TempDir(), or, when the environment
// variable FLOWSTONE_TEST_DATABASE_URL names a PostgreSQL database, a
// schema of its own in it, dropped when the test ends. EachDatabase runs a
// test on both. Every test has its own engine and database, so tests run
// in parallel.
//
// Call runs one asset function with stubbed upstream values and no
// database at all.
package flowstonetest

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/runtime"
)

// An Option adjusts a Materialize or Open: the request (Partition, Config,
// Select, Force), the engine (Configure) or the database (SQLite,
// Postgres).
type Option interface {
	apply(*settings)
}

type optionFunc func(*settings)

func (f optionFunc) apply(s *settings) { f(s) }

// settings is what the options build.
type settings struct {
	req          runtime.Request
	db           *Database
	configure    []func(*runtime.Config)
	allowFailure bool
}

func collect(opts []Option) settings {
	var s settings
	for _, o := range opts {
		o.apply(&s)
	}
	return s
}

// Partition sets the run's partition key.
func Partition(p flowstone.Partition) Option {
	return optionFunc(func(s *settings) { s.req.Partition = p })
}

// Config sets the run's config, a value of the pipeline's config type.
func Config(v any) Option {
	return optionFunc(func(s *settings) { s.req.Config = v })
}

// Select chooses what the run materializes, with the selection grammar of
// runtime.Request.Select: "daily_revenue", "+daily_revenue",
// "group:finance and tag:pii". Without it the run materializes every
// asset.
func Select(selection string) Option {
	return optionFunc(func(s *settings) { s.req.Select = selection })
}

// Force recomputes the selected assets even when they could be reused.
func Force() Option {
	return optionFunc(func(s *settings) { s.req.Force = true })
}

// AllowFailure returns the result of a run that did not succeed instead
// of failing the test, for tests about failures.
func AllowFailure() Option {
	return optionFunc(func(s *settings) { s.allowFailure = true })
}

// Configure adjusts the engine's configuration (a logger, a secret,
// concurrency) after the defaults for tests are set: retries wait 10ms,
// idle workers poll every 20ms, logs are discarded, gates have a random
// secret.
func Configure(fn func(*runtime.Config)) Option {
	return optionFunc(func(s *settings) { s.configure = append(s.configure, fn) })
}

// Result is a finished run and the engine it ran on. The generated
// loaders read values from it: orders.LoadDailyRevenue(ctx, res.Engine(),
// "2024-01-02").
type Result struct {
	// RunResult is the run: its status, and each asset's (res.Assets[key]).
	runtime.RunResult
	engine   *runtime.Engine
	pipeline *runtime.Pipeline
}

// Engine is the engine the run ran on, open until the test ends.
func (r *Result) Engine() *runtime.Engine { return r.engine }

// AssetStatus is the status of asset in the run ("" when the run did not
// include it).
func (r *Result) AssetStatus(asset string) runtime.AssetStatus { return r.Assets[asset].Status }

// Materialize runs another request on the same engine and database, to
// test reuse, forcing or a second partition. Engine and database options
// are ignored.
func (r *Result) Materialize(t testing.TB, opts ...Option) *Result {
	t.Helper()
	return run(t, r.engine, r.pipeline, collect(opts))
}

// Value loads asset's value from the run, at the partition the run
// materialized it, and fails the test when it cannot.
func Value[T any](t testing.TB, r *Result, asset string) T {
	t.Helper()
	a, ok := r.Assets[asset]
	if !ok {
		t.Fatalf("flowstonetest: asset %s is not in run %s (assets: %s)", asset, r.ID, strings.Join(r.Order, ", "))
	}
	v, err := runtime.Load[T](t.Context(), r.engine, r.Pipeline, asset, a.Partition)
	if err != nil {
		t.Fatalf("flowstonetest: load %s: %v", asset, err)
	}
	return v
}

// Materialize opens an engine for p with resources on a fresh database
// (see Open), runs the request the options describe, waits for it and
// returns the result. A run that does not succeed fails the test with
// each failed asset and its error, unless AllowFailure.
func Materialize(t testing.TB, p *runtime.Pipeline, resources any, opts ...Option) *Result {
	t.Helper()
	s := collect(opts)
	e := open(t, p, resources, s)
	return run(t, e, p, s)
}

// Open opens an engine bound to p with resources on a fresh database
// owned by t, with settings for tests (see Configure), and closes it when
// the test ends. Request options are ignored.
func Open(t testing.TB, p *runtime.Pipeline, resources any, opts ...Option) *runtime.Engine {
	t.Helper()
	return open(t, p, resources, collect(opts))
}

func open(t testing.TB, p *runtime.Pipeline, resources any, s settings) *runtime.Engine {
	t.Helper()
	db := s.db
	if db == nil {
		d := defaultDatabase()
		db = &d
	}
	url, schema := db.open(t)
	secret := make([]byte, 32)
	rand.Read(secret)
	cfg := runtime.Config{
		Database:     url,
		Schema:       schema,
		Logger:       slog.New(slog.DiscardHandler),
		Secret:       secret,
		PollInterval: 20 * time.Millisecond,
		RetryDelay:   func(int) time.Duration { return 10 * time.Millisecond },
		// A test materializes what it asks for: automation (auto=) stays
		// off unless Configure sets an interval.
		AutomationInterval: -1,
	}
	for _, fn := range s.configure {
		fn(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e, err := runtime.Open(ctx, cfg, runtime.Bind(p, resources))
	if err != nil {
		t.Fatalf("flowstonetest: open %s database: %v", db.name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := e.Close(ctx); err != nil {
			t.Errorf("flowstonetest: close engine: %v", err)
		}
	})
	return e
}

// run materializes the request on e and waits for it.
func run(t testing.TB, e *runtime.Engine, p *runtime.Pipeline, s settings) *Result {
	t.Helper()
	ctx := t.Context()
	r, err := e.Materialize(ctx, p, s.req)
	if err != nil {
		t.Fatalf("flowstonetest: materialize %s: %v", p.Name(), err)
	}
	res, err := e.Wait(ctx, r.ID)
	if err != nil {
		t.Fatalf("flowstonetest: wait for run %s: %v", r.ID, err)
	}
	if res.Status != runtime.RunSucceeded && !s.allowFailure {
		t.Fatalf("flowstonetest: %s", describe(res))
	}
	return &Result{RunResult: res, engine: e, pipeline: p}
}

// describe tells what went wrong in a run, one line per asset that did not
// succeed.
func describe(res runtime.RunResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "run %s of %s", res.ID, res.Pipeline)
	if res.Partition != "" {
		fmt.Fprintf(&b, " (partition %s)", res.Partition)
	}
	fmt.Fprintf(&b, " %s:", res.Status)
	for _, k := range res.Order {
		for _, part := range slices.Sorted(maps.Keys(res.ByPartition[k])) {
			a := res.ByPartition[k][part]
			switch a.Status {
			case runtime.StatusSucceeded, runtime.StatusReused, runtime.StatusSkipped:
				continue
			}
			fmt.Fprintf(&b, "\n    %s", k)
			if a.Partition != "" && a.Partition != res.Partition {
				fmt.Fprintf(&b, " (%s)", a.Partition)
			}
			fmt.Fprintf(&b, ": %s", a.Status)
			if a.Attempts > 0 {
				fmt.Fprintf(&b, " after %d attempt(s)", a.Attempts)
			}
			if a.Error != "" {
				fmt.Fprintf(&b, ": %s", a.Error)
			}
		}
	}
	return b.String()
}
