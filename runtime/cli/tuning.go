package cli

import (
	"time"

	"github.com/spf13/pflag"
)

// tuning is what a command that works jobs lets River tune: zero values
// are the engine's defaults (runtime.Config).
type tuning struct {
	workers  int
	poll     time.Duration
	cooldown time.Duration
}

// tuningFlags adds the worker settings to a command that works jobs.
func (s *session) tuningFlags(f *pflag.FlagSet) {
	f.IntVar(&s.tuning.workers, "workers", 0, "jobs this process works at once per queue (0: 10, or 4 on SQLite)")
	f.DurationVar(&s.tuning.poll, "poll-interval", 0, "how often idle workers look for jobs (0: 1s on PostgreSQL, 50ms on SQLite)")
	f.DurationVar(&s.tuning.cooldown, "fetch-cooldown", 0, "least time between two fetches of a busy queue; caps a queue near workers/cooldown jobs per second (0: 5ms, 20ms on SQLite, or the poll interval if shorter)")
}
