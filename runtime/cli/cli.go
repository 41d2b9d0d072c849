// Package cli is a command line for FlowStone pipelines that users embed in
// their own main, where their pipelines and resources are built:
//
//	func main() {
//		os.Exit(cli.Main(context.Background(), cli.App{
//			Name: "orders",
//			Bind: func(ctx context.Context) ([]runtime.Binding, error) {
//				return []runtime.Binding{
//					runtime.Bind(orders.Pipeline(), orders.Resources{Rates: orders.NewFXClient()}),
//				}, nil
//			},
//		}, os.Args[1:], os.Stdout, os.Stderr))
//	}
//
// The commands are materialize, status, assets, show, logs, graph, worker,
// migrate, cancel, prune, serve (the web page: docs/ui.md); backfill,
// partitions, dynamic and sensors for partitioned pipelines; and for
// pipelines with gates: gates, approve, reject, gate-link and serve-gates.
// docs/cli.md, docs/kinds.md and docs/partitions.md show them with their
// output. Main returns the exit
// status: 0 on success, 1 when the work failed (a failed run, a database
// error), 2 on a usage error (unknown flag or command, config JSON that
// does not decode, an unknown target or partition).
package cli

//go:generate go run ./internal/clidoc ../../docs/cli.md

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/internal/redact"
	"github.com/flowstone-go/flowstone/internal/suggest"
	"github.com/flowstone-go/flowstone/runtime"
	"github.com/flowstone-go/flowstone/strategy"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// App describes the program that embeds the CLI.
type App struct {
	// Name is the program's name in usage lines and error messages.
	Name string
	// Short is a one-line description for the help text; optional.
	Short string
	// Bind returns the pipelines the program runs, each with the resources
	// this process supplies. Every command calls it once, before it opens
	// the engine, and --help calls it to speak of the pipelines' assets,
	// partitions and config (with placeholders when it fails).
	Bind func(ctx context.Context) ([]runtime.Binding, error)
	// Pipelines, when set, returns the program's pipelines without their
	// resources. Commands that only read (status, assets, graph,
	// partitions, gates, sensors, logs, backfill status, dynamic list) use it
	// instead of Bind, so they work where the resources cannot be built
	// (no credentials, a service down). Without it they call Bind, and
	// still neither check nor use the resources.
	Pipelines func() []*runtime.Pipeline
	// Configure, when set, adjusts the engine's configuration after the
	// flags have filled it in (Concurrency, PollInterval, RetryDelay, ...).
	Configure func(*runtime.Config)
}

// Exit statuses returned by Main.
const (
	ExitOK          = 0
	ExitFailure     = 1
	ExitUsage       = 2
	ExitInterrupted = 130
)

// Environment variables read when the matching flag is not given.
const (
	EnvDatabase = "FLOWSTONE_DATABASE"
	EnvSchema   = "FLOWSTONE_SCHEMA"
	// EnvSecret holds the secret that signs gate links (runtime's
	// Config.Secret); every process of a deployment uses the same one.
	EnvSecret = "FLOWSTONE_SECRET"
)

// closeTimeout bounds how long a command other than worker waits for
// in-flight jobs when it closes the engine.
const closeTimeout = 30 * time.Second

// Main runs the command line args (without the program name) and returns
// the exit status. Output goes to stdout, errors and logs to stderr. An
// interrupt (SIGINT or SIGTERM), like ctx ending, stops the command
// gracefully.
func Main(ctx context.Context, app App, args []string, stdout, stderr io.Writer) int {
	if app.Name == "" {
		app.Name = "flowstone"
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The first interrupt ends ctx: the command stops gracefully. The
	// signals then get their default action back, so that a second one
	// quits at once, whatever the command is waiting for. Commands that
	// say so call stopSignals first, so that it holds when they say it.
	defer context.AfterFunc(ctx, stop)()
	s := &session{app: app, stdout: stdout, stderr: stderr, stopSignals: stop, ctx: ctx}
	root := s.rootCommand()
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if terr := s.stopTelemetry(); terr != nil {
		fmt.Fprintf(stderr, "%s: telemetry: %v\n", app.Name, terr)
	}
	if err == nil {
		return ExitOK
	}
	var ex *exitError
	if !errors.As(err, &ex) {
		// Cobra's own errors (unknown command or flag, wrong arguments).
		ex = &exitError{code: ExitUsage, err: oneLineSuggestion(err)}
	}
	if ex.err != nil {
		// Whatever the error quotes, the database's password stays hidden.
		fmt.Fprintf(stderr, "%s: %s\n", app.Name, redact.Text(ex.err.Error(), s.database))
	}
	if ex.code == ExitUsage {
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", app.Name)
	}
	return ex.code
}

// oneLineSuggestion folds cobra's "Did you mean this?" block after an
// unknown command into the one-line error the CLI prints.
func oneLineSuggestion(err error) error {
	msg, block, ok := strings.Cut(err.Error(), "\n\nDid you mean this?\n")
	if !ok {
		return err
	}
	return fmt.Errorf("%s (did you mean %s?)", msg, strings.Join(strings.Fields(block), " or "))
}

// exitError carries a command's exit status; a nil err prints nothing.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

func usageErr(format string, args ...any) error {
	return &exitError{code: ExitUsage, err: fmt.Errorf(format, args...)}
}

// session is one invocation: the app, its writers and the global flags.
type session struct {
	app            App
	stdout, stderr io.Writer

	database, schema, pipeline, logLevel string
	// secret signs and verifies gate links; pipelines with gates need it.
	secret string
	// maxConfigBytes is --max-config-bytes: the largest run config.
	maxConfigBytes int
	// takeoverAfter is worker's --takeover-after.
	takeoverAfter time.Duration
	// automationInterval and maxAutomated are worker's
	// --automation-interval and --max-automated-runs; other commands
	// evaluate no automation (automationInterval is then zero).
	automationInterval time.Duration
	maxAutomated       int
	// waitForDatabase is --wait-for-database, or the command's default.
	waitForDatabase time.Duration
	level           slog.Level
	// stopSignals hands SIGINT and SIGTERM back to their default action
	// (quit at once), for a second interrupt while the command stops.
	stopSignals func()
	// ctx is Main's, for calling Bind to describe the pipelines in help.
	ctx context.Context
	// otlpEndpoint exports traces over OTLP/HTTP (--otlp-endpoint).
	otlpEndpoint string
	// metrics, when a command serves /metrics, receives the engine's.
	metrics *prometheus.Registry
	// shutdown stops what telemetry started.
	shutdown []func(context.Context) error
}

func (s *session) rootCommand() *cobra.Command {
	short := s.app.Short
	if short == "" {
		short = "Run and inspect FlowStone pipelines"
	}
	root := &cobra.Command{
		Use:           s.app.Name,
		Short:         short,
		SilenceUsage:  true,
		SilenceErrors: true,
		// Shell completion would need the program's own install story.
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true},
	}
	root.SetOut(s.stdout)
	root.SetErr(s.stderr)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		if name, ok := strings.CutPrefix(err.Error(), "unknown flag: --"); ok {
			var names []string
			c.Flags().VisitAll(func(f *pflag.Flag) { names = append(names, f.Name) })
			if near := suggest.Nearest(name, names); near != "" {
				err = fmt.Errorf("%w (did you mean --%s?)", err, near)
			}
		}
		return &exitError{code: ExitUsage, err: err}
	})
	// Help speaks of the program's own pipelines: their assets, partition
	// keys and config fill in the examples.
	defaultHelp := root.HelpFunc()
	root.SetHelpFunc(func(c *cobra.Command, args []string) {
		s.explain(c)
		defaultHelp(c, args)
	})
	f := root.PersistentFlags()
	f.StringVar(&s.database, "database", "", "database: a SQLite file (PATH or sqlite://PATH) or postgres://... (env "+EnvDatabase+"; default ./flowstone.db)")
	f.StringVar(&s.schema, "schema", "", "PostgreSQL schema holding FlowStone's and River's tables (env "+EnvSchema+")")
	f.StringVar(&s.pipeline, "pipeline", "", "pipeline to use when the program binds more than one")
	f.StringVar(&s.logLevel, "log-level", "warn", "engine log level on stderr: debug, info, warn or error")
	f.StringVar(&s.otlpEndpoint, "otlp-endpoint", "", "export traces over OTLP/HTTP to this URL, e.g. http://localhost:4318 (env "+EnvOTLPEndpoint+" and the other OTEL_ variables)")
	f.IntVar(&s.maxConfigBytes, "max-config-bytes", runtime.DefaultMaxRunConfigBytes, "largest run config this process accepts, in bytes of JSON")
	f.StringVar(&s.secret, "secret", "", "secret signing gate links, 16 bytes or more, the same in every process; required by pipelines with gates (env "+EnvSecret+", better than the flag, which ps shows)")
	f.DurationVar(&s.waitForDatabase, "wait-for-database", 0, "how long to wait at start-up for a database that cannot be reached (refused, restarting) before failing; default 60s for worker, serve and serve-gates, 0 (fail at once) for other commands")
	root.PersistentPreRunE = func(c *cobra.Command, _ []string) error {
		if !c.Flags().Changed("wait-for-database") {
			s.waitForDatabase = startupWait(c.Name())
		} else if s.waitForDatabase < 0 {
			return usageErr("--wait-for-database %s: want a duration of 0 or more", s.waitForDatabase)
		}
		if !c.Flags().Changed("database") {
			s.database = os.Getenv(EnvDatabase)
		}
		if !c.Flags().Changed("schema") {
			s.schema = os.Getenv(EnvSchema)
		} else if s.schema == "" {
			return usageErr("--schema: empty; leave it out for the database's default schema")
		}
		if !c.Flags().Changed("secret") {
			s.secret = os.Getenv(EnvSecret)
		}
		var err error
		s.level, err = parseLevel(s.logLevel)
		return err
	}
	root.AddCommand(
		s.materializeCommand(),
		s.statusCommand(),
		s.assetsCommand(),
		s.graphCommand(),
		s.workerCommand(),
		s.migrateCommand(),
		s.cancelCommand(),
		s.gatesCommand(),
		s.decideCommand(strategy.GateApprove),
		s.decideCommand(strategy.GateReject),
		s.gateLinkCommand(),
		s.serveGatesCommand(),
		s.backfillCommand(),
		s.partitionsCommand(),
		s.dynamicCommand(),
		s.sensorsCommand(),
		s.checkCommand(),
		s.checksCommand(),
		s.freshnessCommand(),
		s.automationCommand(),
		s.logsCommand(),
		s.showCommand(),
		s.pruneCommand(),
		s.serveCommand(),
	)
	return root
}

// longLivedWait is how long the long-lived commands wait for the database
// at start-up by default: a worker started with (or before) its database
// waits for it rather than exiting in milliseconds.
const longLivedWait = 60 * time.Second

// startupWait is command's default --wait-for-database.
func startupWait(command string) time.Duration {
	switch command {
	case "worker", "serve", "serve-gates":
		return longLivedWait
	}
	return 0
}

// run adapts a command body: errors it returns are failures (exit 1)
// unless they already carry a status.
func run(fn func(c *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(c *cobra.Command, args []string) error {
		err := fn(c, args)
		var ex *exitError
		if err == nil || errors.As(err, &ex) {
			return err
		}
		if errors.Is(err, flowstone.ErrInvalidKey) {
			// A key the engine refuses, wherever it was given.
			return &exitError{code: ExitUsage, err: err}
		}
		return &exitError{code: ExitFailure, err: err}
	}
}

// bindings calls App.Bind and picks the pipeline the command works on.
func (s *session) bindings(ctx context.Context) ([]runtime.Binding, *runtime.Pipeline, error) {
	if s.app.Bind == nil {
		return nil, nil, errors.New("the program binds no pipelines (App.Bind is nil)")
	}
	bs, err := s.app.Bind(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("bind pipelines: %w", err)
	}
	return s.pick(bs)
}

// readBindings is bindings for a command that only reads: App.Pipelines
// when set, bound without resources.
func (s *session) readBindings(ctx context.Context) ([]runtime.Binding, *runtime.Pipeline, error) {
	if s.app.Pipelines == nil {
		return s.bindings(ctx)
	}
	var bs []runtime.Binding
	for _, p := range s.app.Pipelines() {
		bs = append(bs, runtime.Bind(p, nil))
	}
	return s.pick(bs)
}

// pick picks the pipeline the command works on among bs: --pipeline's, or
// the only one.
func (s *session) pick(bs []runtime.Binding) ([]runtime.Binding, *runtime.Pipeline, error) {
	var names []string
	for _, b := range bs {
		if p := b.Pipeline(); p != nil {
			names = append(names, p.Name())
			if p.Name() == s.pipeline {
				return bs, p, nil
			}
		}
	}
	switch {
	case s.pipeline != "":
		return nil, nil, usageErr("--pipeline %s: no such pipeline (this program runs: %s)", s.pipeline, strings.Join(names, ", "))
	case len(names) == 0:
		return nil, nil, errors.New("the program binds no pipelines")
	case len(names) > 1:
		return nil, nil, usageErr("this program runs several pipelines (%s): choose one with --pipeline", strings.Join(names, ", "))
	}
	return bs, bs[0].Pipeline(), nil
}

// open opens the engine with the bindings; workers says whether this
// process works jobs.
func (s *session) open(ctx context.Context, bs []runtime.Binding, workers bool) (*runtime.Engine, error) {
	automation := s.automationInterval
	if automation == 0 {
		automation = -1 // not the worker command
	}
	cfg := runtime.Config{
		Database:  s.database,
		Schema:    s.schema,
		NoWorkers: !workers,
		Logger:    slog.New(slog.NewTextHandler(s.stderr, &slog.HandlerOptions{Level: s.level})),
		// Once open, every command rides out outages; this bounds the
		// wait for a database that is not there at start-up.
		WaitForDatabase: s.waitForDatabase,
		// Other commands that work jobs (materialize) keep the default.
		TakeoverAfter:      s.takeoverAfter,
		AutomationInterval: automation,
		MaxAutomatedRuns:   s.maxAutomated,
		MaxRunConfigBytes:  s.maxConfigBytes,
	}
	if s.secret != "" {
		cfg.Secret = []byte(s.secret)
	}
	if err := s.telemetry(ctx, &cfg); err != nil {
		return nil, err
	}
	if s.app.Configure != nil {
		s.app.Configure(&cfg)
	}
	eng, err := runtime.Open(ctx, cfg, bs...)
	if errors.Is(err, runtime.ErrNoSecret) {
		return nil, s.secretErr(bs, cfg.Secret)
	}
	if errors.Is(err, runtime.ErrInvalidSchema) {
		return nil, usageErr("--schema: %w", err)
	}
	if err != nil {
		return nil, s.openErr(err)
	}
	return eng, nil
}

// openErr names the database an error of Open came from, and says how to
// wait for a database that could not be reached.
func (s *session) openErr(err error) error {
	err = fmt.Errorf("open %s: %w", s.describeDatabase(), err)
	switch {
	case errors.Is(err, runtime.ErrDatabaseUnreachable):
		return fmt.Errorf("%w; wait longer with --wait-for-database", err)
	case runtime.IsUnreachable(err):
		return fmt.Errorf("%w; to wait for it, give --wait-for-database (e.g. 60s)", err)
	}
	return err
}

// openRead opens a read-only engine (runtime.Config.ReadOnly): it creates
// and migrates nothing, and says so on a database FlowStone has not
// initialised.
func (s *session) openRead(ctx context.Context, bs []runtime.Binding) (*runtime.Engine, error) {
	cfg := runtime.Config{
		Database:        s.database,
		Schema:          s.schema,
		ReadOnly:        true,
		Logger:          slog.New(slog.NewTextHandler(s.stderr, &slog.HandlerOptions{Level: s.level})),
		WaitForDatabase: s.waitForDatabase,
	}
	if s.secret != "" {
		cfg.Secret = []byte(s.secret)
	}
	if s.app.Configure != nil {
		s.app.Configure(&cfg)
	}
	eng, err := runtime.Open(ctx, cfg, bs...)
	switch {
	case errors.Is(err, runtime.ErrInvalidSchema):
		return nil, usageErr("--schema: %w", err)
	case errors.Is(err, runtime.ErrNotInitialised):
		return nil, err // it names the database
	case err != nil:
		return nil, s.openErr(err)
	}
	return eng, nil
}

// openAllRead opens a read-only engine with every pipeline, for commands
// that read and do not need one pipeline.
func (s *session) openAllRead(ctx context.Context) (*runtime.Engine, []runtime.Binding, error) {
	var bs []runtime.Binding
	if s.app.Pipelines != nil {
		for _, p := range s.app.Pipelines() {
			bs = append(bs, runtime.Bind(p, nil))
		}
	} else {
		if s.app.Bind == nil {
			return nil, nil, errors.New("the program binds no pipelines (App.Bind is nil)")
		}
		var err error
		if bs, err = s.app.Bind(ctx); err != nil {
			return nil, nil, fmt.Errorf("bind pipelines: %w", err)
		}
	}
	eng, err := s.openRead(ctx, bs)
	return eng, bs, err
}

// openAll opens the engine with every binding, for commands that do not
// need one pipeline (a run's status, cancel, migrate).
func (s *session) openAll(ctx context.Context, workers bool) (*runtime.Engine, []runtime.Binding, error) {
	if s.app.Bind == nil {
		return nil, nil, errors.New("the program binds no pipelines (App.Bind is nil)")
	}
	bs, err := s.app.Bind(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("bind pipelines: %w", err)
	}
	eng, err := s.open(ctx, bs, workers)
	return eng, bs, err
}

// openPipeline binds, picks the pipeline and opens the engine.
func (s *session) openPipeline(ctx context.Context, workers bool) (*runtime.Engine, *runtime.Pipeline, error) {
	bs, p, err := s.bindings(ctx)
	if err != nil {
		return nil, nil, err
	}
	eng, err := s.open(ctx, bs, workers)
	return eng, p, err
}

// closeEngine closes eng, letting running jobs finish for a while even
// when ctx has ended (an interrupt).
func closeEngine(ctx context.Context, eng *runtime.Engine, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	return eng.Close(ctx)
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, usageErr("--log-level %q: want debug, info, warn or error", s)
	}
	return l, nil
}

// describeDatabase names the database for messages, without a password.
func (s *session) describeDatabase() string {
	switch {
	case s.database == "":
		return "sqlite database ./flowstone.db"
	case strings.HasPrefix(s.database, "sqlite:"):
		return "sqlite database " + strings.TrimPrefix(strings.TrimPrefix(s.database, "sqlite:"), "//")
	case !strings.Contains(s.database, "://"):
		return "sqlite database " + s.database
	}
	d := redact.URL(s.database)
	if s.schema != "" {
		return fmt.Sprintf("database %s (schema %s)", d, s.schema)
	}
	return "database " + d
}

// secretErr explains, in the command line's terms, that the pipelines'
// gates need a secret; it matches runtime.ErrNoSecret.
func (s *session) secretErr(bs []runtime.Binding, secret []byte) error {
	var gated []string
	for _, b := range bs {
		if p := b.Pipeline(); p != nil {
			for _, a := range p.Assets() {
				if u, ok := a.Strategy.(strategy.SecretUser); ok && u.UsesSecret() {
					gated = append(gated, p.Name()+"."+a.Key)
				}
			}
		}
	}
	what := "no secret is set"
	if len(secret) > 0 {
		what = fmt.Sprintf("the secret is %d bytes", len(secret))
	}
	return &exitError{code: ExitFailure, err: fmt.Errorf("%w: %s %s sign%s approval links and %s; set %s (or --secret) to a random string of 16 bytes or more, the same in every process, e.g. export %s=$(openssl rand -hex 32)",
		runtime.ErrNoSecret, plural(len(gated) == 1, "the gate", "the gates"), strings.Join(gated, ", "), plural(len(gated) == 1, "s its", " their"), what, EnvSecret, EnvSecret)}
}
