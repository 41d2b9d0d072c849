package runtime

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/flowstone-go/flowstone/internal/redact"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// Config configures an Engine.
type Config struct {
	// Database is "sqlite:///abs/path.db", "sqlite://rel/path.db", a
	// plain file path ("./flowstone.db"), "sqlite::memory:" or a
	// "postgres://" URL. Empty means ./flowstone.db.
	Database string
	// Schema isolates an engine's tables in a PostgreSQL schema (created if
	// missing): letters, digits and underscores, starting with a letter or
	// underscore, up to 46 bytes (River's rules), in any case (it is
	// quoted everywhere). An invalid one is refused with ErrInvalidSchema
	// before anything is created. SQLite has no
	// schemas (the file is the isolation): setting one is an error.
	Schema string
	// Logger receives the engine's logs; nil means slog.Default().
	Logger *slog.Logger
	// Concurrency is how many jobs this process works at once in each
	// queue (River's MaxWorkers). Zero means 10 (4 on SQLite, which has
	// one connection). QueueConcurrency overrides it per queue.
	Concurrency int
	// QueueConcurrency sets the concurrency of the named River queues
	// ("default" included), overriding Concurrency for them; a queue it
	// names that no asset uses is still worked. Values must be positive.
	QueueConcurrency map[string]int
	// NoWorkers makes the engine enqueue, query and approve only: it works
	// no jobs. An enqueuing process that exits at once uses it.
	NoWorkers bool
	// ReadOnly makes the engine query only: Open creates and migrates
	// nothing (no file, schema or table), starts no workers, and does not
	// check the bindings' resources or the secret, so a status page or a
	// command that only reads needs neither. The connection itself is
	// read-only (PostgreSQL's default_transaction_read_only, SQLite's
	// query_only), and methods that write return ErrReadOnly. On a
	// database FlowStone's tables are not in, or not up to date, Open
	// returns ErrNotInitialised.
	ReadOnly bool
	// Queues, when set, limits this process to the named River queues
	// ("default" is the queue of assets without queue=), so heavy assets
	// can have dedicated workers.
	Queues []string
	// Secret signs and verifies gate links (at least 16 bytes; every
	// process of a deployment uses the same). There is no default: an
	// engine bound to a pipeline with gates refuses to open without one.
	Secret []byte
	// DefaultTimeout limits one attempt of an asset that has no timeout=.
	// Zero means one hour. It bounds the work of a live process; the jobs
	// of a process that died are taken over after TakeoverAfter instead.
	DefaultTimeout time.Duration
	// TakeoverAfter is how long a working process may go without its
	// heartbeat (every TakeoverAfter/6) before another process puts its
	// running jobs back in the queue: a worker that was killed loses its
	// jobs to the others within about this long. Zero means 30 seconds.
	// Processes' clocks must agree to well within it.
	TakeoverAfter time.Duration
	// WaitForDatabase is how long Open waits for a database it cannot
	// reach (IsUnreachable: refused, reset, starting up) before it fails
	// with ErrDatabaseUnreachable; it says so once and retries with
	// backoff meanwhile. Zero fails at once. Errors the database answers
	// (a bad password, an unknown database) fail at once either way. Once
	// open, the engine rides out outages whatever this says.
	WaitForDatabase time.Duration
	// PollInterval is how often idle workers look for jobs (River's
	// FetchPollInterval). Zero means 1s on PostgreSQL (which is also woken
	// by LISTEN/NOTIFY) and 50ms on SQLite.
	PollInterval time.Duration
	// FetchCooldown is the least time between two fetches of jobs by a
	// busy queue (River's FetchCooldown): a queue works at most about
	// Concurrency/FetchCooldown jobs per second. Zero means
	// DefaultFetchCooldown (SQLiteFetchCooldown on SQLite), or
	// PollInterval when that is shorter. At least 1ms.
	FetchCooldown time.Duration
	// RetryDelay is the wait before retry number attempt (1 for the first
	// retry). Nil means 1s doubling per attempt, at most 5 minutes.
	RetryDelay func(attempt int) time.Duration
	// TracerProvider, when set, traces every run: a span per run and per
	// asset attempt, in one trace per run whichever processes work it,
	// and River's own spans (docs/observability.md). Nil traces nothing.
	TracerProvider trace.TracerProvider
	// MeterProvider, when set, receives FlowStone's metrics (attempts by
	// outcome, attempt duration, queue lag, runs in flight, scatter items)
	// and River's. Nil measures nothing.
	MeterProvider metric.MeterProvider
	// MaxRunConfigBytes is the largest run config, encoded as JSON, that
	// Materialize, Backfill, schedules and sensors accept; a larger one
	// is refused with ErrBadConfig. Zero means 1 MB
	// (DefaultMaxRunConfigBytes). A config is stored with each run and
	// decoded once per process and run, by the assets that take it.
	MaxRunConfigBytes int
	// Retention, when Every is set, prunes history on that schedule (see
	// Engine.Prune). River's leader schedules it, so one process prunes
	// at a time; give every worker process the same setting.
	Retention Retention
	// AutomationInterval is how often declarative automation (auto= on
	// assets) and freshness (fresh=) are evaluated. River's leader
	// schedules the evaluation, so one process evaluates at a time; give
	// every worker process the same setting. Zero means 30 seconds; a
	// negative interval evaluates nothing in this process.
	AutomationInterval time.Duration
	// MaxAutomatedRuns caps the runs automation keeps in flight per
	// pipeline; past it, decisions are deferred to the next evaluation.
	// Zero means 10.
	MaxAutomatedRuns int

	// roundTrips, when set, counts the round trips of the engine's
	// PostgreSQL pool (benchmarks).
	roundTrips *roundTrips
}

// Retention is a pruning schedule: every Every, Engine.Prune with
// OlderThan and KeepLatest.
type Retention struct {
	// Every is how often to prune; zero never does.
	Every time.Duration
	// OlderThan is the age past which history is pruned (required with
	// Every).
	OlderThan time.Duration
	// KeepLatest is PruneRequest.KeepLatest: successful materializations
	// kept with their values per asset and partition (at least 1).
	KeepLatest int
}

// DefaultFetchCooldown is Config.FetchCooldown's default on PostgreSQL.
// River's own is 100ms, which caps a queue of 10 workers at 100 jobs per
// second.
const DefaultFetchCooldown = 5 * time.Millisecond

// SQLiteFetchCooldown is Config.FetchCooldown's default on SQLite. Each
// fetch is a write transaction on the database's one connection, which
// the jobs' own transactions wait for: fetching every 5ms left fetched
// jobs waiting to start long enough that killed workers were counted as
// their crashes (runtime/multiprocess_test.go).
const SQLiteFetchCooldown = 20 * time.Millisecond

type dbURL struct {
	dialect string // "sqlite" or "postgres"
	target  string // file path, ":memory:", or the postgres URL
}

func parseDatabase(s string) (dbURL, error) {
	switch {
	case s == "":
		return dbURL{"sqlite", "flowstone.db"}, nil
	case s == "sqlite::memory:" || s == "sqlite://:memory:":
		return dbURL{"sqlite", ":memory:"}, nil
	case strings.HasPrefix(s, "sqlite://"):
		path := strings.TrimPrefix(s, "sqlite://")
		if path == "" {
			return dbURL{}, fmt.Errorf("database %q: no file path after sqlite://", redact.URL(s))
		}
		if i := strings.IndexAny(path, "?#"); i >= 0 {
			return dbURL{}, fmt.Errorf("database %q: sqlite URLs take no options", redact.URL(s))
		}
		return dbURL{"sqlite", path}, nil
	case strings.HasPrefix(s, "postgres://"), strings.HasPrefix(s, "postgresql://"):
		return dbURL{"postgres", s}, nil
	case !strings.Contains(s, "://") && !strings.HasPrefix(s, "sqlite:"):
		// A plain path is a SQLite file: ./flowstone.db, /var/lib/app.db.
		return dbURL{"sqlite", s}, nil
	}
	return dbURL{}, fmt.Errorf("database %q: want sqlite://PATH, sqlite::memory: or postgres://...", redact.URL(s))
}

// maxSchemaLen is River's limit: it prefixes LISTEN topics with the
// schema, and PostgreSQL's identifiers end at 63 bytes.
const maxSchemaLen = 46

// checkSchema refuses a schema SQLite cannot have, or PostgreSQL or River
// cannot use (River takes letters, digits and underscores). The name is
// quoted wherever it is used, so its case is kept.
func checkSchema(dialect, schema string) error {
	if schema == "" {
		return nil
	}
	bad := func(why string) error { return fmt.Errorf("%w %q: %s", ErrInvalidSchema, schema, why) }
	switch {
	case dialect != "postgres":
		return bad("schemas are PostgreSQL's; a SQLite database is isolated by its file")
	case len(schema) > maxSchemaLen:
		return bad(fmt.Sprintf("%d bytes; at most %d", len(schema), maxSchemaLen))
	case strings.HasPrefix(strings.ToLower(schema), "pg_"):
		return bad("the pg_ prefix is reserved by PostgreSQL")
	}
	for i, r := range schema {
		letter := r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
		if !letter && (i == 0 || r < '0' || r > '9') {
			return bad("use letters, digits and underscores, starting with a letter or underscore")
		}
	}
	return nil
}

// checkTuning refuses worker settings River would reject or that cannot
// work a job.
func checkTuning(c Config) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidTuning}, args...)...)
	}
	switch {
	case c.Concurrency < 0:
		return bad("Concurrency %d: want a positive number of workers per queue, or 0 for the default", c.Concurrency)
	case c.PollInterval < 0:
		return bad("PollInterval %s: want a positive duration, or 0 for the default", c.PollInterval)
	case c.FetchCooldown < 0 || c.FetchCooldown > 0 && c.FetchCooldown < time.Millisecond:
		return bad("FetchCooldown %s: want at least 1ms, or 0 for the default", c.FetchCooldown)
	}
	for q, n := range c.QueueConcurrency {
		if q == "" || n <= 0 {
			return bad("QueueConcurrency[%q] = %d: want a queue name and a positive number of workers", q, n)
		}
	}
	return nil
}

func defaultRetryDelay(attempt int) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	d := time.Second << min(attempt-1, 16)
	return min(d, 5*time.Minute)
}
