package runtime

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowstone-go/flowstone/internal/redact"
	"github.com/flowstone-go/flowstone/runtime/internal/store"
	"github.com/flowstone-go/flowstone/strategy"
	"github.com/riverqueue/river"
)

// Binding pairs a pipeline with the resources this process supplies to it.
type Binding struct {
	pipeline  *Pipeline
	resources any
}

// Bind binds pipeline p to this process with its generated Resources value.
// Open checks that resources has the pipeline's Resources type and leaves
// no resource nil.
func Bind(p *Pipeline, resources any) Binding { return Binding{pipeline: p, resources: resources} }

// Engine executes pipelines as River jobs. Every process bound to the same
// pipelines and database shares the work; an Engine holds no state that
// another process would need.
type Engine struct {
	cfg     Config
	log     *slog.Logger
	be      backend
	st      store.Store
	dialect string
	// cancellers are the bound kinds that keep work of a run in tables of
	// their own, one per kind.
	cancellers []strategy.RunCanceller
	// deleters delete the rows their kinds keep of runs Prune deletes.
	deleters []strategy.RunDeleter
	bindings map[string]Binding
	events   *broker
	tel      *telemetry // nil unless Config sets a provider
	closed   atomic.Bool
	// interrupting is set when Close cancels the running jobs: an attempt
	// that ends with its context then is interrupted, not failed.
	interrupting atomic.Bool
	stopOnce     sync.Once
	// live beats for this process while it works jobs.
	live *liveness
	// configs holds the decoded configs of the runs this process works.
	configs runConfigs
	// runs holds the unchanging fields of the runs this process works.
	runs knownRuns
	// out follows the database's outages for every loop of the engine.
	out *outage
	// rec records the results of jobs that finish together in one
	// transaction.
	rec *recorder
	// starts starts the attempts of queued nodes that arrive together in
	// one statement (starts.go).
	starts *startGroup
	// solo lets a suspect's attempt run alone in this process (solo.go).
	solo soloLock
	// working holds the jobs this process is working (orphans.go).
	working working
}

// Open connects to cfg.Database, migrates River's and FlowStone's tables,
// validates the bindings and, unless cfg.NoWorkers, starts working jobs of
// the bound pipelines. With cfg.ReadOnly it only connects: see
// Config.ReadOnly.
//
// Its errors never show the password of cfg.Database (see Config.Database).
func Open(ctx context.Context, cfg Config, bindings ...Binding) (*Engine, error) {
	e, err := openWith(ctx, cfg, bindings)
	if err != nil {
		return nil, redact.Error(err, cfg.Database)
	}
	return e, nil
}

func openWith(ctx context.Context, cfg Config, bindings []Binding) (*Engine, error) {
	db, err := parseDatabase(cfg.Database)
	if err != nil {
		return nil, err
	}
	if err := checkSchema(db.dialect, cfg.Schema); err != nil {
		return nil, err
	}
	if err := checkTuning(cfg); err != nil {
		return nil, err
	}
	e := &Engine{cfg: cfg, log: cfg.Logger, bindings: map[string]Binding{}, events: newBroker(), dialect: db.dialect}
	if e.log == nil {
		e.log = slog.Default()
	}
	e.out = newOutage(e.log)
	e.rec = &recorder{max: maxGroup, commit: e.commitGroup}
	e.starts = &startGroup{max: maxStartGroup, commit: e.startMany}
	if e.cfg.RetryDelay == nil {
		e.cfg.RetryDelay = defaultRetryDelay
	}
	if err := e.addBindings(bindings); err != nil {
		return nil, err
	}
	if cfg.ReadOnly {
		e.cfg.NoWorkers = true
		return e, e.openReadOnly(ctx, db)
	}
	if err := e.checkSecret(); err != nil {
		return nil, err
	}
	if err := e.checkRetention(); err != nil {
		return nil, err
	}
	if e.tel, err = newTelemetry(e); err != nil {
		return nil, fmt.Errorf("telemetry: %w", err)
	}
	if e.tel != nil {
		e.events.observe = e.tel.observe
	}

	rcfg := e.riverConfig(db.dialect)
	if err := e.addPeriodicJobs(rcfg); err != nil {
		return nil, err
	}
	lines := e.storeLines()
	var migrate func(context.Context) error
	switch db.dialect {
	case "postgres":
		e.be, migrate, err = openPostgres(ctx, db.target, cfg.Schema, rcfg, lines, false, e.out, cfg.roundTrips)
	default:
		e.be, migrate, err = openSQLite(ctx, db.target, rcfg, lines, false, e.out)
	}
	if err != nil {
		return nil, err
	}
	// Migrating is the first statement: wait for the database there.
	if err := e.out.waitForDatabase(ctx, cfg.WaitForDatabase, migrate); err != nil {
		e.be.close()
		return nil, err
	}
	if e.tel != nil {
		if err := e.tel.observeRuns(); err != nil {
			e.be.close()
			return nil, fmt.Errorf("telemetry: %w", err)
		}
	}
	if rcfg.Queues != nil {
		// The first beat is recorded before River fetches a job: a
		// process that dies on its first job (before the liveness loop
		// beat) would otherwise be unknown, never found stale, and its
		// jobs never taken over.
		if err := e.out.ride(ctx, e.beat); err != nil {
			e.be.close()
			return nil, fmt.Errorf("heartbeat: %w", err)
		}
		// River stops when Start's context ends; the engine lives until Close.
		if err := e.be.start(context.WithoutCancel(ctx)); err != nil {
			e.be.close()
			return nil, fmt.Errorf("start workers: %w", err)
		}
		e.startLiveness()
	}
	return e, nil
}

// storeLines returns FlowStone's migrations and those of the kinds the
// bound pipelines use, and records the kinds that cancel runs' work and
// delete their rows.
func (e *Engine) storeLines() []store.Line {
	lines := []store.Line{store.Core()}
	seen := map[string]bool{}
	for _, p := range e.Pipelines() {
		for _, a := range p.assets {
			kind := fmt.Sprintf("%T", a.Strategy)
			if seen[kind] {
				continue
			}
			seen[kind] = true
			if m, ok := a.Strategy.(strategy.Migrator); ok {
				if name, files := m.Migrations(); !seen["line "+name] {
					seen["line "+name] = true
					lines = append(lines, store.Line{Name: name, Files: files})
				}
			}
			if c, ok := a.Strategy.(strategy.RunCanceller); ok {
				e.cancellers = append(e.cancellers, c)
			}
			if d, ok := a.Strategy.(strategy.RunDeleter); ok {
				e.deleters = append(e.deleters, d)
			}
		}
	}
	return lines
}

func (e *Engine) addBindings(bindings []Binding) error {
	var errs []error
	for _, b := range bindings {
		p := b.pipeline
		if p == nil {
			errs = append(errs, errors.New("bind: nil pipeline"))
			continue
		}
		if _, dup := e.bindings[p.Name()]; dup {
			errs = append(errs, fmt.Errorf("bind: two pipelines named %q", p.Name()))
			continue
		}
		if p.resources != nil && !e.cfg.ReadOnly {
			if b.resources == nil || !p.resources.check(b.resources) {
				errs = append(errs, fmt.Errorf("bind %s: resources have type %T, want %s", p.Name(), b.resources, p.resources.typeName))
				continue
			}
			if missing := nilFields(b.resources); len(missing) > 0 {
				errs = append(errs, fmt.Errorf("bind %s: %w: %s left nil", p.Name(), ErrMissingResource, strings.Join(missing, ", ")))
			}
		}
		if err := checkDynamicSets(p); err != nil {
			errs = append(errs, err)
		}
		if err := p.checkSources(); err != nil {
			errs = append(errs, err)
		}
		for _, a := range p.assets {
			if a.Partitions != nil {
				if err := a.Partitions.Err(); err != nil {
					errs = append(errs, fmt.Errorf("bind %s: asset %s: partitions: %w", p.Name(), a.Key, err))
				}
			}
		}
		e.bindings[p.Name()] = b
	}
	return errors.Join(errs...)
}

func (e *Engine) riverConfig(dialect string) *river.Config {
	rcfg := &river.Config{
		// A process's own ID, as River records it in the jobs it works
		// and the engine in its heartbeat.
		ID:                  newID("proc_"),
		Logger:              slog.New(outageLogs{e.log.Handler(), e.out}).With("component", "river"),
		JobTimeout:          e.cfg.DefaultTimeout,
		FetchOnlyKnownKinds: true,
		FetchPollInterval:   e.cfg.PollInterval,
		MaxAttempts:         25,
		// River's own retention keeps finished jobs a day; FlowStone's
		// records are what users read.
	}
	rcfg.Middleware = append(rcfg.Middleware, e.workingMiddleware(), e.interruptMiddleware(), e.soloMiddleware())
	if e.tel != nil {
		rcfg.Middleware = append(rcfg.Middleware, e.tel.riverMiddleware())
	}
	if rcfg.JobTimeout <= 0 {
		rcfg.JobTimeout = time.Hour
	}
	// Jobs of a process that died are taken over once it stops beating
	// (takeover.go); River's rescuer is the last resort, past the longest
	// timeout of a live attempt, so it never retries one that is running.
	rcfg.RescueStuckJobsAfter = rcfg.JobTimeout
	for _, b := range e.bindings {
		for _, a := range b.pipeline.assets {
			rcfg.RescueStuckJobsAfter = max(rcfg.RescueStuckJobsAfter, a.Timeout)
		}
	}
	rcfg.RescueStuckJobsAfter += time.Minute
	if rcfg.FetchPollInterval == 0 {
		rcfg.FetchPollInterval = time.Second
		if dialect == "sqlite" {
			rcfg.FetchPollInterval = 50 * time.Millisecond
		}
	}
	rcfg.ErrorHandler = discardHandler{e}
	// River fetches at most once per cooldown; its 100ms default caps a
	// queue at Concurrency/0.1s jobs per second.
	rcfg.FetchCooldown = e.cfg.FetchCooldown
	if rcfg.FetchCooldown == 0 {
		rcfg.FetchCooldown = DefaultFetchCooldown
		if dialect == "sqlite" {
			rcfg.FetchCooldown = SQLiteFetchCooldown
		}
		rcfg.FetchCooldown = min(rcfg.FetchCooldown, rcfg.FetchPollInterval)
	}
	if e.cfg.NoWorkers || len(e.bindings) == 0 {
		return rcfg
	}
	conc := e.cfg.Concurrency
	if conc == 0 {
		conc = 10
		if dialect == "sqlite" {
			conc = 4
		}
	}
	workers := river.NewWorkers()
	queues := map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: conc}}
	only := map[string]bool{}
	for _, q := range e.cfg.Queues {
		only[q] = true
	}
	names := make([]string, 0, len(e.bindings))
	for name := range e.bindings {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		b := e.bindings[name]
		e.addWorkers(workers, b)
		for _, a := range b.pipeline.assets {
			if a.Queue != "" {
				queues[a.Queue] = river.QueueConfig{MaxWorkers: conc}
			}
		}
	}
	for q, n := range e.cfg.QueueConcurrency {
		queues[q] = river.QueueConfig{MaxWorkers: n}
	}
	if len(only) > 0 {
		for q := range queues {
			if !only[q] {
				delete(queues, q)
			}
		}
		for q := range only {
			if _, ok := queues[q]; !ok {
				queues[q] = river.QueueConfig{MaxWorkers: conc}
			}
		}
	}
	if e.cfg.Retention.Every > 0 {
		river.AddWorker(workers, &pruneWorker{e: e})
	}
	if e.automationEnabled() {
		river.AddWorker(workers, &automationWorker{e: e})
	}
	rcfg.Workers = workers
	rcfg.Queues = queues
	return rcfg
}

// addPeriodicJobs registers the schedules of the bound pipelines with
// River (whose leader inserts them).
func (e *Engine) addPeriodicJobs(rcfg *river.Config) error {
	if rcfg.Workers == nil {
		return nil
	}
	jobs, err := e.periodicJobs()
	rcfg.PeriodicJobs = append(jobs, e.sensorJobs()...)
	if e.cfg.Retention.Every > 0 {
		rcfg.PeriodicJobs = append(rcfg.PeriodicJobs, e.retentionJob())
	}
	if e.automationEnabled() {
		rcfg.PeriodicJobs = append(rcfg.PeriodicJobs, e.automationJob())
	}
	return err
}

// Close stops fetching jobs and lets the running ones finish while ctx
// lives. When ctx ends first, it cancels their contexts and waits for them
// to return: an attempt that returns because of it is recorded as
// interrupted by shutdown and its job goes back to the queue, to run again
// at once in another process (or in this one when it starts again). Close
// then closes the database; no goroutine of the engine outlives it. A job
// that ignores its context's end keeps Close waiting.
func (e *Engine) Close(ctx context.Context) error {
	var err error
	e.stopOnce.Do(func() {
		e.closed.Store(true)
		// Loops waiting for the database give up when ctx ends, so
		// that jobs return and the stop below does.
		stopWatch := context.AfterFunc(ctx, e.out.giveUp)
		defer stopWatch()
		defer e.out.giveUp()
		err = e.stopWorkers(ctx)
		e.stopLiveness(context.WithoutCancel(ctx))
		e.events.close()
		if e.tel != nil {
			e.tel.close()
		}
		e.be.close()
	})
	return err
}

// stopWorkers stops River: gracefully while ctx lives, then by cancelling
// the running jobs, and waits for them either way.
func (e *Engine) stopWorkers(ctx context.Context) error {
	err := e.be.stop(ctx)
	if err == nil || ctx.Err() == nil {
		return err
	}
	e.interrupting.Store(true)
	e.log.WarnContext(ctx, "stopping: running jobs did not finish in time; cancelling them and waiting for them to return")
	return e.be.stopAndCancel(context.WithoutCancel(ctx))
}

// Dialect is "sqlite" or "postgres".
func (e *Engine) Dialect() string { return e.dialect }

// Pipelines returns the pipelines bound to this engine, by name.
func (e *Engine) Pipelines() []*Pipeline {
	out := make([]*Pipeline, 0, len(e.bindings))
	for _, b := range e.bindings {
		out = append(out, b.pipeline)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// Pipeline returns the bound pipeline called name.
func (e *Engine) Pipeline(name string) (*Pipeline, error) {
	b, ok := e.bindings[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownPipeline, name)
	}
	return b.pipeline, nil
}

func newID(prefix string) string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s%012x%s", prefix, time.Now().UnixMicro(), hex.EncodeToString(b[:]))
}
