package cli

import (
	"time"

	"github.com/spf13/pflag"
)

// tuning is what a command that works jobs lets River tune: zero values
// are the engine's defaults (runtime.Config).
type tuning struct {
	concurrency int
	poll        time.Duration
	cooldown    time.Duration
}

// tuningFlags adds the worker settings to a command that works jobs.
func (s *session) tuningFlags(f *pflag.FlagSet) {
	f.IntVar(&s.tuning.concurrency, "concurrency", 0, "jobs this process works at once per queue (0: 10, or 4 on SQLite)")
	f.DurationVar(&s.tuning.poll, "poll-interval", 0, "how often idle workers look for jobs (0: 1s on PostgreSQL, 50ms on SQLite)")
	f.DurationVar(&s.tuning.cooldown, "fetch-cooldown", 0, "least time between two fetches of a busy queue; caps it near concurrency/cooldown jobs per second (0: 5ms, or the poll interval if shorter)")
}
