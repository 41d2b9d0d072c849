package runtime

// Benchmarks of the engine against raw River on the same database, in the
// same run (see docs/benchmarks.md). Each iteration opens fresh databases —
// a SQLite file in b.TempDir(), a new PostgreSQL schema — for raw River and
// for FlowStone, built by the same openSQLite/openPostgres with the River
// settings (*Engine).riverConfig chooses, so the ratio compares the engine
// with the floor River sets under identical fetch and concurrency settings.
// Durations are measured with the benchmark's own clocks and reported with
// b.ReportMetric; ns/op includes the setup and means little.

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone/internal/testdb"
	"github.com/flowstone-go/flowstone/runtime/internal/store"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
)

const (
	benchWide  = 1000 // independent leaves; the pipeline has one fan-in more
	benchChain = 200  // assets in the chain; River's chain has as many jobs
)

// benchProfile is the engine configuration a benchmark runs with; raw River
// gets the River settings the engine derives from it.
type benchProfile struct {
	name        string
	concurrency int           // Config.Concurrency; 0 is the engine default
	poll        time.Duration // Config.PollInterval; 0 is the engine default
	cooldown    time.Duration // Config.FetchCooldown; 0 is the engine default
}

func benchProfiles() []benchProfile {
	return []benchProfile{
		{name: "defaults"},
		// More workers and a shorter poll (the fetch cooldown is the
		// engine's default, at most the poll): what a user tuning for
		// throughput would set.
		{name: "c16_poll10ms", concurrency: 16, poll: 10 * time.Millisecond},
		{name: "c100_poll10ms", concurrency: 100, poll: 10 * time.Millisecond},
	}
}

// riverBest is River at its own best settings for a burst of no-op jobs:
// 100 workers and a 2 ms fetch cooldown. BenchmarkWide runs it in every
// profile as a second floor.
var riverBest = benchProfile{name: "river_best", concurrency: 100, poll: 10 * time.Millisecond, cooldown: 2 * time.Millisecond}

// benchDB is one database kind; fresh returns a Config on a new, empty
// database of that kind.
type benchDB struct {
	name  string
	fresh func(tb testing.TB) Config
}

func benchDatabases(tb testing.TB) []benchDB {
	dbs := []benchDB{{name: "sqlite", fresh: func(tb testing.TB) Config {
		return Config{Database: "sqlite://" + filepath.Join(tb.TempDir(), "bench.db")}
	}}}
	url := os.Getenv("FLOWSTONE_TEST_DATABASE_URL")
	if url == "" {
		tb.Log("FLOWSTONE_TEST_DATABASE_URL not set: PostgreSQL benchmarks skipped")
		return dbs
	}
	return append(dbs, benchDB{name: "postgres", fresh: func(tb testing.TB) Config {
		return Config{Database: url, Schema: benchSchema(tb, url)}
	}})
}

// benchSchema is testdb.Schema: a new schema, dropped when tb ends.
func benchSchema(tb testing.TB, url string) string { return testdb.Schema(tb, url) }

func benchConfig(c Config, prof benchProfile) Config {
	c.Concurrency = prof.concurrency
	c.PollInterval = prof.poll
	c.FetchCooldown = prof.cooldown
	if os.Getenv("FLOWSTONE_TEST_LOG") == "" {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// ---- pipelines ----

func noop(context.Context, *Inputs) (any, error) { return 0, nil }

// benchWidePipeline: n independent no-op leaves and one fan-in on all of
// them, through deps of kind (DepOrder: nothing loaded; DepValue: the fan-in
// loads every leaf's value).
func benchWidePipeline(n int, kind DepKind) *Pipeline {
	assets := make([]AssetDef, 0, n+1)
	deps := make([]Dep, 0, n)
	for i := range n {
		key := fmt.Sprintf("leaf_%04d", i)
		assets = append(assets, def(key, func(context.Context, *Inputs) (any, error) { return i, nil }))
		deps = append(deps, Dep{Asset: key, Kind: kind})
	}
	fanIn := func(ctx context.Context, in *Inputs) (any, error) {
		total := 0
		if kind == DepValue {
			for _, d := range deps {
				v, err := Input[int](ctx, in, d.Asset)
				if err != nil {
					return nil, err
				}
				total += v
			}
		}
		return total, nil
	}
	assets = append(assets, def("fan_in", fanIn, deps...))
	return NewPipeline(PipelineDef{Name: "bench_wide", Assets: assets})
}

// benchChainPipeline: n assets, each depending on the one before.
func benchChainPipeline(n int, kind DepKind) *Pipeline {
	assets := make([]AssetDef, 0, n)
	for i := range n {
		run := noop
		var deps []Dep
		if i > 0 {
			prev := benchChainKey(i - 1)
			deps = []Dep{{Asset: prev, Kind: kind}}
			if kind == DepValue {
				run = func(ctx context.Context, in *Inputs) (any, error) {
					v, err := Input[int](ctx, in, prev)
					return v + 1, err
				}
			}
		}
		assets = append(assets, def(benchChainKey(i), run, deps...))
	}
	return NewPipeline(PipelineDef{Name: "bench_chain", Assets: assets})
}

func benchChainKey(i int) string { return fmt.Sprintf("c%04d", i) }

// ---- raw River ----

type benchNoopArgs struct{}

func (benchNoopArgs) Kind() string { return "bench_noop" }

type benchHopArgs struct {
	N    int `json:"n"`
	Hops int `json:"hops"`
}

func (benchHopArgs) Kind() string { return "bench_hop" }

// benchNoopWorker counts the jobs it has worked and notes when the last
// of a burst returned (rawRiver.wide).
type benchNoopWorker struct {
	river.WorkerDefaults[benchNoopArgs]
	r *rawRiver
}

func (w *benchNoopWorker) Work(context.Context, *river.Job[benchNoopArgs]) error {
	w.r.mu.Lock()
	defer w.r.mu.Unlock()
	if w.r.worked++; w.r.worked == w.r.burst {
		w.r.workedAt = time.Now()
	}
	return nil
}

// benchHopWorker records when hop N started, then inserts hop N+1 and
// completes its own job in one transaction, as the engine does.
type benchHopWorker struct {
	river.WorkerDefaults[benchHopArgs]
	r *rawRiver
}

func (w *benchHopWorker) Work(ctx context.Context, job *river.Job[benchHopArgs]) error {
	w.r.mu.Lock()
	w.r.starts[job.Args.N] = time.Now()
	w.r.mu.Unlock()
	if err := w.r.hopTx(ctx, job); err != nil {
		return err
	}
	if job.Args.N == job.Args.Hops-1 {
		close(w.r.chainDone)
	}
	return nil
}

// rawRiver is a River client on its own fresh database, opened exactly as
// the engine opens its own, working no-op and chain jobs.
type rawRiver struct {
	be        backend
	hopTx     func(ctx context.Context, job *river.Job[benchHopArgs]) error
	subscribe func() (<-chan *river.Event, func())

	mu        sync.Mutex
	starts    []time.Time
	chainDone chan struct{}
	// worked counts the no-op jobs worked; workedAt is when the burst'th
	// returned.
	worked, burst int
	workedAt      time.Time
}

func openRawRiver(ctx context.Context, cfg Config) (*rawRiver, error) {
	db, err := parseDatabase(cfg.Database)
	if err != nil {
		return nil, err
	}
	// The River config the engine would use with these settings, with the
	// engine's workers swapped for the benchmark's.
	fake := &Engine{cfg: cfg, log: cfg.Logger, bindings: map[string]Binding{}}
	if err := fake.addBindings([]Binding{Bind(benchChainPipeline(1, DepOrder), nil)}); err != nil {
		return nil, err
	}
	rcfg := fake.riverConfig(db.dialect)
	r := &rawRiver{}
	workers := river.NewWorkers()
	river.AddWorker(workers, &benchNoopWorker{r: r})
	river.AddWorker(workers, &benchHopWorker{r: r})
	rcfg.Workers = workers

	var migrate func(context.Context) error
	switch db.dialect {
	case "postgres":
		be, m, err := openPostgres(ctx, db.target, cfg.Schema, rcfg, []store.Line{store.Core()}, false, nil, nil)
		if err != nil {
			return nil, err
		}
		r.be, migrate, r.hopTx, r.subscribe = be, m, rawHopTx(be), rawSubscribe(be)
	default:
		be, m, err := openSQLite(ctx, db.target, rcfg, []store.Line{store.Core()}, false, nil)
		if err != nil {
			return nil, err
		}
		r.be, migrate, r.hopTx, r.subscribe = be, m, rawHopTx(be), rawSubscribe(be)
	}
	if err := migrate(ctx); err != nil {
		r.be.close()
		return nil, err
	}
	if err := r.be.start(context.WithoutCancel(ctx)); err != nil {
		r.be.close()
		return nil, err
	}
	return r, nil
}

func rawHopTx[D riverdriver.Driver[T], T any](be *riverBackend[D, T]) func(context.Context, *river.Job[benchHopArgs]) error {
	return func(ctx context.Context, job *river.Job[benchHopArgs]) error {
		tx, _, err := be.begin(ctx)
		if err != nil {
			return err
		}
		if next := job.Args.N + 1; next < job.Args.Hops {
			if _, err := be.client.InsertTx(ctx, tx, benchHopArgs{N: next, Hops: job.Args.Hops}, nil); err != nil {
				_ = be.rollback(ctx, tx)
				return err
			}
		}
		if _, err := river.JobCompleteTx[D](ctx, tx, job); err != nil {
			_ = be.rollback(ctx, tx)
			return err
		}
		return be.commit(ctx, tx)
	}
}

func rawSubscribe[D riverdriver.Driver[T], T any](be *riverBackend[D, T]) func() (<-chan *river.Event, func()) {
	return func() (<-chan *river.Event, func()) {
		return be.client.SubscribeConfig(&river.SubscribeConfig{ChanSize: 4 * benchWide, Kinds: []river.EventKind{river.EventKindJobCompleted}})
	}
}

func (r *rawRiver) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = r.be.stop(ctx)
	r.be.close()
}

// wide inserts n no-op jobs with one InsertManyFast (the call the engine
// uses) and returns the time until the last of them was worked; it
// returns once River has recorded all n completed.
//
// Not until River recorded them: River's batch completer records a
// backlog under 100 completions only on every fifth tick of its 50 ms
// ticker, so the last jobs of a burst wait up to 250 ms for it, at a phase
// set by when the client started. Timed to River's record, the same
// binary measured 3,300 or 5,900 jobs/s from one run to the next (a run
// that worked its last job at 175 ms was recorded at 300 ms). FlowStone's
// time ends when its own record of the fan-in commits, in the fan-in's
// job; River's completion of FlowStone's jobs trails it the same way and
// is not timed either.
func (r *rawRiver) wide(ctx context.Context, n int) (time.Duration, error) {
	events, cancel := r.subscribe()
	defer cancel()
	params := make([]river.InsertManyParams, n)
	for i := range params {
		params[i] = river.InsertManyParams{Args: benchNoopArgs{}}
	}
	r.mu.Lock()
	r.worked, r.burst, r.workedAt = 0, n, time.Time{}
	r.mu.Unlock()
	start := time.Now()
	if err := r.be.insertJobs(ctx, params); err != nil {
		return 0, err
	}
	for done := 0; done < n; {
		select {
		case ev := <-events:
			if ev.Job != nil && ev.Job.Kind == (benchNoopArgs{}).Kind() {
				done++
			}
		case <-ctx.Done():
			return 0, fmt.Errorf("raw wide: %d of %d completed: %w", done, n, ctx.Err())
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.workedAt.Sub(start), nil
}

// chain runs hops jobs, each inserted by the one before, and returns the
// intervals between consecutive job starts and the total time.
func (r *rawRiver) chain(ctx context.Context, hops int) ([]time.Duration, time.Duration, error) {
	r.mu.Lock()
	r.starts = make([]time.Time, hops)
	r.chainDone = make(chan struct{})
	r.mu.Unlock()
	start := time.Now()
	if err := r.be.insertJobs(ctx, []river.InsertManyParams{{Args: benchHopArgs{N: 0, Hops: hops}}}); err != nil {
		return nil, 0, err
	}
	select {
	case <-r.chainDone:
	case <-ctx.Done():
		return nil, 0, fmt.Errorf("raw chain: %w", ctx.Err())
	}
	total := time.Since(start)
	r.mu.Lock()
	defer r.mu.Unlock()
	return startIntervals(r.starts), total, nil
}

func startIntervals(starts []time.Time) []time.Duration {
	out := make([]time.Duration, 0, len(starts))
	for i := 1; i < len(starts); i++ {
		out = append(out, starts[i].Sub(starts[i-1]))
	}
	return out
}

// ---- FlowStone ----

func openBenchEngine(ctx context.Context, cfg Config, p *Pipeline) (*Engine, error) {
	return Open(ctx, cfg, Bind(p, nil))
}

// runAndTime materializes every asset of p and returns the time until the
// run finished, from Materialize's call to the run_finished event, and the
// time of each asset_finished event by asset.
func runAndTime(ctx context.Context, e *Engine, p *Pipeline) (string, time.Duration, map[string]time.Time, error) {
	events, stop := e.Subscribe(8 * len(p.assets))
	defer stop()
	start := time.Now()
	run, err := e.Materialize(ctx, p, Request{Force: true})
	if err != nil {
		return "", 0, nil, err
	}
	finished := map[string]time.Time{}
	for {
		select {
		case ev := <-events:
			if ev.RunID != run.ID {
				continue
			}
			switch ev.Kind {
			case EventAssetFinished:
				finished[ev.Asset] = ev.Time
			case EventRunFinished:
				elapsed := time.Since(start)
				if ev.Status != string(RunSucceeded) {
					return run.ID, elapsed, finished, fmt.Errorf("run %s %s", run.ID, ev.Status)
				}
				return run.ID, elapsed, finished, nil
			}
		case <-ctx.Done():
			return run.ID, 0, finished, fmt.Errorf("run %s: %w", run.ID, ctx.Err())
		}
	}
}

type wideResult struct {
	elapsed time.Duration
	fanIn   time.Duration // last leaf finished -> fan-in finished
	trips   int64         // PostgreSQL round trips from Materialize to the run's end
	cpu     time.Duration // this process's CPU time meanwhile
}

func flowstoneWide(ctx context.Context, cfg Config, kind DepKind) (wideResult, error) {
	p := benchWidePipeline(benchWide, kind)
	cfg.roundTrips = &roundTrips{}
	e, err := openBenchEngine(ctx, cfg, p)
	if err != nil {
		return wideResult{}, err
	}
	defer e.Close(context.WithoutCancel(ctx))
	before, cpu0 := cfg.roundTrips.total(), cpuTime()
	_, elapsed, finished, err := runAndTime(ctx, e, p)
	if err != nil {
		return wideResult{}, err
	}
	trips, cpu := cfg.roundTrips.total()-before, cpuTime()-cpu0
	var lastLeaf time.Time
	for k, t := range finished {
		if k != "fan_in" && t.After(lastLeaf) {
			lastLeaf = t
		}
	}
	return wideResult{elapsed: elapsed, fanIn: finished["fan_in"].Sub(lastLeaf), trips: trips, cpu: cpu}, nil
}

type chainResult struct {
	hops  []time.Duration // start of asset i to start of asset i+1
	inJob []time.Duration // started_at to finished_at of each asset
	total time.Duration
	// notified is how many of River's insert notifications arrived
	// during the run (PostgreSQL; -1 on SQLite).
	notified int
	wake     []time.Duration // insert to fetch of each job (PostgreSQL)
}

func flowstoneChain(ctx context.Context, cfg Config, kind DepKind) (chainResult, error) {
	p := benchChainPipeline(benchChain, kind)
	e, err := openBenchEngine(ctx, cfg, p)
	if err != nil {
		return chainResult{}, err
	}
	defer e.Close(context.WithoutCancel(ctx))
	stop, err := listenInserts(ctx, cfg)
	if err != nil {
		return chainResult{}, err
	}
	id, total, _, err := runAndTime(ctx, e, p)
	notified := stop()
	if err != nil {
		return chainResult{}, err
	}
	rs, err := e.be.pool().Query(ctx, `SELECT started_at, finished_at FROM flowstone_run_assets WHERE run_id = ? ORDER BY asset`, id)
	if err != nil {
		return chainResult{}, err
	}
	defer rs.Close()
	var starts []time.Time
	res := chainResult{total: total, notified: notified}
	for rs.Next() {
		var s, f int64
		if err := rs.Scan(&s, &f); err != nil {
			return chainResult{}, err
		}
		starts = append(starts, time.UnixMicro(s))
		res.inJob = append(res.inJob, time.Duration(f-s)*time.Microsecond)
	}
	if err := rs.Err(); err != nil {
		return chainResult{}, err
	}
	res.hops = startIntervals(starts)
	res.wake, err = wakeDelays(ctx, e.be, attemptArgs{nodeJob{Pipeline: p.name}}.Kind())
	return res, err
}

// listenInserts counts, on a connection of its own, River's insert
// notifications for cfg's PostgreSQL schema until the returned stop is
// called (and 100 ms more), which returns how many arrived. On SQLite (no notifications) it
// counts nothing and stop returns -1.
func listenInserts(ctx context.Context, cfg Config) (stop func() int, err error) {
	db, err := parseDatabase(cfg.Database)
	if err != nil || db.dialect != "postgres" {
		return func() int { return -1 }, err
	}
	conn, err := pgx.Connect(ctx, db.target)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{cfg.Schema + ".river_insert"}.Sanitize()); err != nil {
		conn.Close(ctx)
		return nil, err
	}
	lctx, cancel := context.WithCancel(ctx)
	done := make(chan int)
	go func() {
		n := 0
		for {
			if _, err := conn.WaitForNotification(lctx); err != nil {
				done <- n
				return
			}
			n++
		}
	}()
	return func() int {
		// The run is over, so no notification is still to come; the
		// last ones may still be on their way to this connection.
		time.AfterFunc(100*time.Millisecond, cancel)
		n := <-done
		conn.Close(context.WithoutCancel(ctx))
		return n
	}, nil
}

// wakeDelays returns, on PostgreSQL, each finished job of kind's time from
// its insert (created_at) to its fetch (attempted_at): the part of a hop
// that waits for River's producer to learn of the job. nil on SQLite.
func wakeDelays(ctx context.Context, be backend, kind string) ([]time.Duration, error) {
	if be.dialect() != "postgres" {
		return nil, nil
	}
	rs, err := be.pool().Query(ctx, `SELECT (EXTRACT(EPOCH FROM attempted_at - created_at) * 1000000)::bigint FROM river_job
		WHERE kind = ? AND attempted_at IS NOT NULL`, kind)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []time.Duration
	for rs.Next() {
		var us int64
		if err := rs.Scan(&us); err != nil {
			return nil, err
		}
		out = append(out, time.Duration(us)*time.Microsecond)
	}
	return out, rs.Err()
}

// ---- statistics ----

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

func mean(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return sum / time.Duration(len(ds))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// ---- benchmarks ----

// BenchmarkWide: raw River works benchWide no-op jobs inserted at once;
// FlowStone materializes benchWide independent no-op assets and a fan-in
// on all of them, with order deps (nothing loaded) and with value deps.
func BenchmarkWide(b *testing.B) {
	for _, db := range benchDatabases(b) {
		for _, prof := range benchProfiles() {
			b.Run(db.name+"/"+prof.name, func(b *testing.B) {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
				defer cancel()
				var raw, best, order, value time.Duration
				var orderFanIn, valueFanIn time.Duration
				var trips int64
				var cpu time.Duration
				iters := 0
				for b.Loop() {
					iters++
					r, err := openRawRiver(ctx, benchConfig(db.fresh(b), prof))
					if err != nil {
						b.Fatal(err)
					}
					d, err := r.wide(ctx, benchWide)
					r.close()
					if err != nil {
						b.Fatal(err)
					}
					raw += d
					if r, err = openRawRiver(ctx, benchConfig(db.fresh(b), riverBest)); err != nil {
						b.Fatal(err)
					}
					d, err = r.wide(ctx, benchWide)
					r.close()
					if err != nil {
						b.Fatal(err)
					}
					best += d
					o, err := flowstoneWide(ctx, benchConfig(db.fresh(b), prof), DepOrder)
					if err != nil {
						b.Fatal(err)
					}
					order, orderFanIn, trips, cpu = order+o.elapsed, orderFanIn+o.fanIn, trips+o.trips, cpu+o.cpu
					v, err := flowstoneWide(ctx, benchConfig(db.fresh(b), prof), DepValue)
					if err != nil {
						b.Fatal(err)
					}
					value, valueFanIn = value+v.elapsed, valueFanIn+v.fanIn
				}
				n := float64(iters)
				riverRate := benchWide * n / raw.Seconds()
				orderRate := (benchWide + 1) * n / order.Seconds()
				valueRate := (benchWide + 1) * n / value.Seconds()
				b.ReportMetric(riverRate, "river_jobs/s")
				b.ReportMetric(orderRate, "mat/s")
				b.ReportMetric(orderRate/riverRate, "ratio_vs_river")
				bestRate := benchWide * n / best.Seconds()
				b.ReportMetric(bestRate, "river_best_jobs/s")
				b.ReportMetric(orderRate/bestRate, "ratio_vs_river_best")
				b.ReportMetric(ms(orderFanIn)/n, "fanin_ms")
				b.ReportMetric(valueRate, "value_mat/s")
				b.ReportMetric(valueRate/riverRate, "value_ratio_vs_river")
				b.ReportMetric(ms(valueFanIn)/n, "value_fanin_ms")
				// The engine's process only (not the database server's).
				b.ReportMetric(float64(cpu.Microseconds())/(benchWide+1)/n, "cpu_us/mat")
				if db.name == "postgres" {
					// River's statements included (fetch, completer).
					b.ReportMetric(float64(trips)/(benchWide+1)/n, "round_trips/mat")
				}
			})
		}
	}
}

// BenchmarkChain: raw River runs benchChain jobs, each inserting the next
// in the transaction that completes it; FlowStone materializes a chain of
// benchChain no-op assets (order deps, and value deps where each reads the
// one before). A hop is the time between the starts of consecutive jobs.
func BenchmarkChain(b *testing.B) {
	for _, db := range benchDatabases(b) {
		for _, prof := range benchProfiles() {
			b.Run(db.name+"/"+prof.name, func(b *testing.B) {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
				defer cancel()
				var riverHops, orderHops, valueHops, orderJob, valueJob []time.Duration
				var riverNotified, orderNotified, iters int
				var riverWake, orderWake []time.Duration
				for b.Loop() {
					cfg := benchConfig(db.fresh(b), prof)
					r, err := openRawRiver(ctx, cfg)
					if err != nil {
						b.Fatal(err)
					}
					stop, err := listenInserts(ctx, cfg)
					if err != nil {
						b.Fatal(err)
					}
					hops, _, err := r.chain(ctx, benchChain)
					riverNotified += stop()
					if err == nil {
						var w []time.Duration
						w, err = wakeDelays(ctx, r.be, benchHopArgs{}.Kind())
						riverWake = append(riverWake, w...)
					}
					r.close()
					if err != nil {
						b.Fatal(err)
					}
					riverHops = append(riverHops, hops...)
					o, err := flowstoneChain(ctx, benchConfig(db.fresh(b), prof), DepOrder)
					if err != nil {
						b.Fatal(err)
					}
					orderHops, orderJob = append(orderHops, o.hops...), append(orderJob, o.inJob...)
					orderNotified += o.notified
					orderWake = append(orderWake, o.wake...)
					iters++
					v, err := flowstoneChain(ctx, benchConfig(db.fresh(b), prof), DepValue)
					if err != nil {
						b.Fatal(err)
					}
					valueHops, valueJob = append(valueHops, v.hops...), append(valueJob, v.inJob...)
				}
				riverP50 := ms(percentile(riverHops, 50))
				b.ReportMetric(riverP50, "river_p50_hop_ms")
				b.ReportMetric(ms(percentile(riverHops, 99)), "river_p99_hop_ms")
				b.ReportMetric(ms(percentile(orderHops, 50)), "p50_hop_ms")
				b.ReportMetric(ms(percentile(orderHops, 99)), "p99_hop_ms")
				b.ReportMetric(ms(percentile(orderHops, 50))/riverP50, "ratio_vs_river")
				b.ReportMetric(ms(percentile(orderJob, 50)), "p50_in_job_ms")
				b.ReportMetric(ms(mean(riverHops)), "river_mean_hop_ms")
				b.ReportMetric(ms(mean(orderHops)), "mean_hop_ms")
				b.ReportMetric(ms(percentile(valueHops, 50)), "value_p50_hop_ms")
				b.ReportMetric(ms(percentile(valueHops, 99)), "value_p99_hop_ms")
				b.ReportMetric(ms(percentile(valueHops, 50))/riverP50, "value_ratio_vs_river")
				b.ReportMetric(ms(percentile(valueJob, 50)), "value_p50_in_job_ms")
				if riverNotified >= 0 && orderNotified >= 0 {
					// Jobs whose insert woke River's producers with a
					// notification, per job of the chain; a job without
					// one waits for the next poll.
					b.ReportMetric(float64(riverNotified)/float64(iters*benchChain), "river_notified")
					b.ReportMetric(float64(orderNotified)/float64(iters*benchChain), "notified")
				}
				if len(riverWake) > 0 && len(orderWake) > 0 {
					// Insert to fetch: what a missing notification costs
					// (the wait for the poll) shows in the mean.
					b.ReportMetric(ms(mean(riverWake)), "river_mean_wake_ms")
					b.ReportMetric(ms(mean(orderWake)), "mean_wake_ms")
				}
			})
		}
	}
}

// ---- peak RSS ----

const rssEnv = "FLOWSTONE_BENCH_RSS" // "river", "flowstone" or "plan", with rssDBEnv

const rssDBEnv = "FLOWSTONE_BENCH_RSS_DB" // "sqlite" or "postgres"

// TestBenchRSSHelper is not a test: BenchmarkWideRSS re-executes the test
// binary to run only this, so that the process's peak RSS is the wide
// case's alone. It prints the peak as "maxrss_kb=N".
func TestBenchRSSHelper(t *testing.T) {
	mode := os.Getenv(rssEnv)
	if mode == "" {
		t.Skip("helper process for BenchmarkWideRSS")
	}
	var db *benchDB
	for _, d := range benchDatabases(t) {
		if d.name == os.Getenv(rssDBEnv) {
			db = &d
		}
	}
	if db == nil {
		t.Fatalf("%s=%q: no such database", rssDBEnv, os.Getenv(rssDBEnv))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cfg := benchConfig(db.fresh(t), benchProfiles()[0])
	switch mode {
	case "river":
		r, err := openRawRiver(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		_, err = r.wide(ctx, benchWide)
		r.close()
		if err != nil {
			t.Fatal(err)
		}
	case "flowstone":
		if _, err := flowstoneWide(ctx, cfg, DepOrder); err != nil {
			t.Fatal(err)
		}
	case "plan":
		planRSS(ctx, t, cfg)
	default:
		t.Fatalf("%s=%q: want river, flowstone or plan", rssEnv, mode)
	}
	fmt.Printf("maxrss_kb=%d\n", peakRSSKB(t))
}

// peakRSSKB is the process's peak resident set in KiB. On Linux it is
// VmHWM: getrusage's ru_maxrss would do, except that Linux carries the
// pre-exec peak over exec, and Go starts children with a vfork-style clone
// that shares the parent's memory, so ru_maxrss reports the larger of the
// benchmark process's peak and the helper's.
func peakRSSKB(t *testing.T) int64 {
	if data, err := os.ReadFile("/proc/self/status"); err == nil {
		for line := range strings.Lines(string(data)) {
			if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
				kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
				if err != nil {
					t.Fatalf("VmHWM %q: %v", v, err)
				}
				return kb
			}
		}
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	if goruntime.GOOS == "darwin" {
		return ru.Maxrss / 1024 // bytes there
	}
	return ru.Maxrss
}

// BenchmarkWideRSS reports the peak RSS of a process that runs only the
// wide case (engine defaults, order deps), for raw River and FlowStone.
func BenchmarkWideRSS(b *testing.B) {
	for _, db := range benchDatabases(b) {
		b.Run(db.name, func(b *testing.B) {
			var riverKB, flowKB float64
			iters := 0
			for b.Loop() {
				iters++
				riverKB += rssOf(b, "river", db.name)
				flowKB += rssOf(b, "flowstone", db.name)
			}
			b.ReportMetric(riverKB/1024/float64(iters), "river_peak_rss_MB")
			b.ReportMetric(flowKB/1024/float64(iters), "peak_rss_MB")
		})
	}
}

// rssOf runs TestBenchRSSHelper in mode on db, with env added, and returns
// its peak RSS in KiB.
func rssOf(b *testing.B, mode, db string, env ...string) float64 {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestBenchRSSHelper$", "-test.count=1", "-test.v")
	cmd.Env = append(append(os.Environ(), rssEnv+"="+mode, rssDBEnv+"="+db), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		b.Fatalf("RSS helper (%s on %s): %v\n%s", mode, db, err, out)
	}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "maxrss_kb="); ok {
			kb, err := strconv.ParseFloat(v, 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb
		}
	}
	b.Fatalf("RSS helper (%s on %s) printed no maxrss_kb:\n%s", mode, db, out)
	return 0
}
