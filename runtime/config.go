package runtime

import (
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// Config configures an Engine.
type Config struct {
	// Database is "sqlite:///abs/path.db", "sqlite://rel/path.db", a
	// plain file path ("./flowstone.db"), "sqlite::memory:" or a
	// "postgres://" URL. Empty means ./flowstone.db.
	Database string
	// Schema isolates an engine's tables in a PostgreSQL schema (created if
	// missing). Ignored for SQLite, where the file is the isolation.
	Schema string
	// Logger receives the engine's logs; nil means slog.Default().
	Logger *slog.Logger
	// Concurrency is how many jobs this process works at once in each
	// queue. Zero means 10 (4 on SQLite, which has one connection).
	Concurrency int
	// NoWorkers makes the engine enqueue, query and approve only: it works
	// no jobs. An enqueuing process that exits at once uses it.
	NoWorkers bool
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
	// PollInterval is how often idle workers look for jobs. Zero means 1s
	// on PostgreSQL (which is also woken by LISTEN/NOTIFY) and 50ms on
	// SQLite.
	PollInterval time.Duration
	// RetryDelay is the wait before retry number attempt (1 for the first
	// retry). Nil means 1s doubling per attempt, at most 5 minutes.
	RetryDelay func(attempt int) time.Duration
}

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
			return dbURL{}, fmt.Errorf("database %q: no file path after sqlite://", s)
		}
		if i := strings.IndexAny(path, "?#"); i >= 0 {
			return dbURL{}, fmt.Errorf("database %q: sqlite URLs take no options", s)
		}
		return dbURL{"sqlite", path}, nil
	case strings.HasPrefix(s, "postgres://"), strings.HasPrefix(s, "postgresql://"):
		return dbURL{"postgres", s}, nil
	case !strings.Contains(s, "://") && !strings.HasPrefix(s, "sqlite:"):
		// A plain path is a SQLite file: ./flowstone.db, /var/lib/app.db.
		return dbURL{"sqlite", s}, nil
	}
	return dbURL{}, fmt.Errorf("database %q: want sqlite://PATH, sqlite::memory: or postgres://...", s)
}

func defaultRetryDelay(attempt int) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	d := time.Second << min(attempt-1, 16)
	return min(d, 5*time.Minute)
}
