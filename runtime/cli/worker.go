package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// defaultDrain is how long a stopping worker lets its running jobs finish:
// less than Kubernetes's default grace period (30 s), so that jobs still
// running are cancelled and recorded before the SIGKILL.
const defaultDrain = 25 * time.Second

func (s *session) workerCommand() *cobra.Command {
	var drain time.Duration
	var metricsAddr string
	c := &cobra.Command{
		Use:   "worker",
		Short: "Work jobs of the bound pipelines until interrupted",
		Long: `Worker runs this process as a worker only: it works the jobs of every
pipeline the program binds, whichever process started their runs, until
SIGINT or SIGTERM. It then stops fetching jobs and lets the running ones
finish for up to --drain-timeout; past it, it cancels those still running,
waits for them to return, records their attempts as interrupted by shutdown
and puts their jobs back in the queue, where another worker (or this one,
restarted) takes them at once, and exits 0. A second interrupt quits at
once. With --metrics-addr it serves the engine's metrics for Prometheus at
/metrics on that address.

Workers evaluate declarative automation (auto= on assets) and freshness
(fresh=) every --automation-interval, one process at a time (River's
leader), launching at most --max-automated-runs automated runs in flight
per pipeline; the automation command lists their decisions.

While it runs, the worker beats in the database every --takeover-after/6;
a worker that is killed loses its running jobs to the others about
--takeover-after later.`,
		Args: cobra.NoArgs,
		RunE: run(func(c *cobra.Command, _ []string) error {
			ctx := c.Context()
			if s.automationInterval <= 0 {
				s.automationInterval = -1
			}
			var metrics http.Handler
			if metricsAddr != "" {
				metrics = s.serveMetrics()
			}
			eng, bs, err := s.openAll(ctx, true)
			if err != nil && ctx.Err() != nil && errors.Is(err, context.Canceled) {
				// Stopped (SIGINT, SIGTERM) while opening the database:
				// nothing ran yet, so it is a clean stop, not a failure.
				fmt.Fprintln(s.stdout, "worker stopped before it started")
				return nil
			}
			if err != nil {
				return err
			}
			if metrics != nil {
				stop, err := s.listenMetrics(metricsAddr, metrics)
				if err != nil {
					_ = closeEngine(ctx, eng, closeTimeout)
					return err
				}
				defer stop()
			}
			var names []string
			for _, b := range bs {
				if p := b.Pipeline(); p != nil {
					names = append(names, p.Name())
				}
			}
			fmt.Fprintf(s.stdout, "worker started: pipelines %s on %s; stop with Ctrl-C or SIGTERM\n", strings.Join(names, ", "), s.describeDatabase())
			<-ctx.Done()
			s.stopSignals()
			fmt.Fprintf(s.stdout, "stopping: running jobs have %s to finish, then are cancelled and queued again (interrupt again to quit at once)\n", drain)
			if err := closeEngine(ctx, eng, drain); err != nil {
				return fmt.Errorf("stop worker: %w", err)
			}
			fmt.Fprintln(s.stdout, "worker stopped")
			return nil
		}),
	}
	c.Flags().DurationVar(&drain, "drain-timeout", defaultDrain, "how long running jobs may finish when the worker stops, before they are cancelled and queued again")
	// The flag's first name, kept for the scripts that use it.
	c.Flags().DurationVar(&drain, "drain", defaultDrain, "")
	_ = c.Flags().MarkDeprecated("drain", "use --drain-timeout")
	c.Flags().StringVar(&metricsAddr, "metrics-addr", "", "serve Prometheus metrics at /metrics on this address, e.g. 127.0.0.1:9464")
	c.Flags().DurationVar(&s.takeoverAfter, "takeover-after", 30*time.Second, "how long a worker may go without its heartbeat before others take its jobs over")
	c.Flags().DurationVar(&s.automationInterval, "automation-interval", 30*time.Second, "how often automation (auto=) and freshness (fresh=) are evaluated; 0: not by this worker")
	c.Flags().IntVar(&s.maxAutomated, "max-automated-runs", 10, "automated runs in flight per pipeline at most; more are deferred")
	s.tuningFlags(c.Flags())
	return c
}

func (s *session) migrateCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Create or upgrade FlowStone's and River's tables",
		Long: `Migrate brings the database's tables up to date and exits. Every command
migrates when it opens the database, so this is for deployments that
prefer to migrate as a separate step.`,
		Args: cobra.NoArgs,
		RunE: run(func(c *cobra.Command, _ []string) error {
			ctx := c.Context()
			eng, _, err := s.openAll(ctx, false)
			if err != nil {
				return err
			}
			if err := closeEngine(ctx, eng, closeTimeout); err != nil {
				return err
			}
			fmt.Fprintf(s.stdout, "migrated %s: FlowStone's and River's tables are up to date\n", s.describeDatabase())
			return nil
		}),
	}
}
