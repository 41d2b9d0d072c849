// Package strategy defines how one kind of asset executes. The runtime's
// scheduler knows only the Strategy interface: it hands a strategy a Task
// once the asset's dependencies allow it to run, and records the Result. A
// kind's options are declared next to it (Spec), so the generator's parser
// learns a new kind without a central list.
//
// The built-in kinds are Standard, Router, Routed, Join, Gate and Scatter. A
// user adds a kind with strategy=Ident, naming a package-level value that
// implements Strategy.
package strategy

import (
	"context"
	"encoding/json"
	"io/fs"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/scatter"
)

// Strategy executes one asset kind.
type Strategy interface {
	// Run materializes the asset for t's run and partition. An error is a
	// failed attempt, retried per the asset's retries= unless it wraps
	// flowstone.ErrPermanent or the attempt is the last.
	Run(ctx context.Context, t Task) (Result, error)
}

// Resumer is implemented by strategies that continue later, after Run
// returned Pending: a scheduled deadline, an approval, a batch of items.
// Resume runs in a job the strategy asked for with Task.Resume.
type Resumer interface {
	Resume(ctx context.Context, t Task, payload json.RawMessage) (Result, error)
}

// Status is a Result's outcome.
type Status int

const (
	// Succeeded: Value is the asset's value.
	Succeeded Status = iota
	// Skipped: the asset did not run this time (Reason says why);
	// dependents that require it are skipped too.
	Skipped
	// Pending: the asset's materialization is not finished; the strategy
	// finishes it from a later Resume. Dependents wait.
	Pending
	// Failed: the asset failed for good (Reason says why), without
	// retries; dependents that require it are upstream_failed.
	Failed
)

// Result is what a strategy reports for one Run or Resume.
type Result struct {
	Status Status
	Value  any
	Reason string
	// Views are alternative encodings of Value that dependents may load
	// by name (a scatter's per-item outcomes).
	Views map[string]json.RawMessage
	// Commit, when set, runs inside the transaction that records the
	// result, before it does, and returns the result to record: a strategy
	// whose outcome depends on what other jobs committed (the last item of
	// a scatter) decides there, atomically with recording it.
	Commit func(ctx context.Context, tx Tx) (Result, error)
}

// Querier runs SQL on the engine's database, with ? placeholders (the
// PostgreSQL engine rewrites them). Strategies that keep their own tables
// (scatter) use it; their tables come from their migrations (Migrator).
// It is the scatter store's DB, so either passes for the other.
type Querier = scatter.DB

// Rows are a query's result rows.
type Rows = scatter.Rows

// Row is a single-row query's result; Scan returns sql.ErrNoRows when
// there is none.
type Row = scatter.Row

// Tx is the transaction that records a result.
type Tx interface {
	Querier
	// Resume schedules a Resume of the asset's strategy, inserted in this
	// transaction.
	Resume(at time.Time, payload any) error
}

// Done returns a succeeded Result carrying value.
func Done(value any) Result { return Result{Status: Succeeded, Value: value} }

// Skip returns a skipped Result.
func Skip(reason string) Result { return Result{Status: Skipped, Reason: reason} }

// Wait returns a pending Result. From a Resume, an empty reason leaves the
// reason recorded before as it was.
func Wait(reason string) Result { return Result{Status: Pending, Reason: reason} }

// Asset is what a strategy may know of the asset it executes.
type Asset interface {
	Key() string
	Pipeline() string
	// HasValue is false for assets whose function returns only error.
	HasValue() bool
}

// UpstreamState is the terminal state of one upstream in the current run.
type UpstreamState struct {
	Asset     string
	Partition flowstone.Partition
	// Status is the upstream's run status: succeeded, reused, failed,
	// skipped, upstream_failed, cancelled.
	Status string
	Error  string
}

// Task is one materialization in progress, as the runtime offers it to a
// strategy. Its methods are safe to call from the job that runs the
// strategy; state and scheduled continuations are stored in the database, so
// a later Resume may run in another process.
type Task interface {
	Asset() Asset
	RunID() string
	Partition() flowstone.Partition
	// Attempt is 1 for the first try; FinalAttempt reports whether a failure
	// now is the last one.
	Attempt() int
	FinalAttempt() bool
	// Call runs the asset's function with its inputs loaded and returns its
	// value. A panic in the function is returned as an error with its stack.
	Call(ctx context.Context) (any, error)
	// Upstream reports the state of a dependency in this run.
	Upstream(ctx context.Context, asset string) (UpstreamState, error)
	// LoadValue decodes the value of asset (in this run's partition) into
	// into, a pointer.
	LoadValue(ctx context.Context, asset string, into any) error
	// LoadState reads a value the strategy saved under name for this run,
	// asset and partition; found is false when there is none.
	LoadState(ctx context.Context, name string, into any) (found bool, err error)
	// SaveState stores value under name for this run, asset and partition
	// (two assets of a run keep apart what they store), once:
	// it reports false, storing nothing, when a value is already there
	// (another attempt saved one first; LoadState reads it).
	SaveState(ctx context.Context, name string, value any) (saved bool, err error)
	// Resume schedules a Resume of this asset's strategy at at with payload
	// (JSON-encoded), as a job in the database. It is inserted together with
	// the result of the current Run or Resume, so it exists only if that
	// result is recorded.
	Resume(ctx context.Context, at time.Time, payload any) error
	// Peers lists every asset of the pipeline with its strategy, so a kind
	// can find the assets related to it (a router, its branches).
	Peers() []Peer
	// DB reads the engine's database outside any transaction.
	DB() Querier
	// InTx runs fn in a transaction of its own on the engine's database,
	// committed when fn returns nil and rolled back otherwise; fn may run
	// again from the start when the transaction collided with another. A
	// scatter batch commits a group of item results this way before the
	// batch ends, so that a killed batch redoes one group at most.
	InTx(ctx context.Context, fn func(ctx context.Context, q Querier) error) error
	// Write runs fn on the engine's database outside any transaction:
	// each statement it runs commits on its own, a round trip each (no
	// BEGIN and COMMIT). fn may run again from the start when a statement
	// collided with another transaction or the database could not be
	// reached, so each of its statements must be safe to run again. A
	// scatter batch commits a group of item results that is one statement
	// this way.
	Write(ctx context.Context, fn func(ctx context.Context, q Querier) error) error
	// Redelivered reports whether the job running this Resume ran before
	// (its process died, its attempt failed, or it was taken over): what
	// it wrote then may be committed. False for its first delivery, and
	// for Run.
	Redelivered() bool
	// CallItem runs the asset's function for one scatter item (its JSON);
	// the asset's other inputs are loaded once per task, not per item.
	CallItem(ctx context.Context, item json.RawMessage) (any, error)
	// ItemKeys returns the key of each item (JSON) of a scatter's source:
	// the element type's ScatterKey() when it has one, else nil (items are
	// keyed by position).
	ItemKeys(items []json.RawMessage) ([]string, error)
	// RetryDelay is the engine's wait before retry number attempt.
	RetryDelay(attempt int) time.Duration
	// Retries is the asset's retries= option.
	Retries() int
}

// Peer is one asset of the pipeline as Task.Peers reports it.
type Peer struct {
	Key      string
	Strategy Strategy
}

// Deadliner is implemented by strategies whose asset may start before all
// its dependencies are terminal: the runtime schedules, when the run
// starts, a job that starts the asset Deadline() later if it is still
// waiting. Its Outcome dependencies that have not finished then carry an
// error matching ErrUnfinished.
type Deadliner interface {
	Deadline() time.Duration
}

// Migrator is implemented by kinds that keep tables of their own. Open
// applies the migrations of the kinds its bound pipelines use, once per
// database, recorded under line (the kind's name, unique among kinds).
// files holds NNN_description.sql files, applied in number order; each is
// written for both SQLite and PostgreSQL.
type Migrator interface {
	Migrations() (line string, files fs.FS)
}

// RunCanceller is implemented by kinds whose tables hold work of a run:
// cancelling a run calls it, in the transaction that cancels the run.
type RunCanceller interface {
	CancelRun(ctx context.Context, q Querier, run string) error
}

// RunDeleter is implemented by kinds whose tables hold rows of a run:
// Engine.Prune calls it with finished runs it deletes, in the transaction
// that deletes them.
type RunDeleter interface {
	DeleteRuns(ctx context.Context, q Querier, runs []string) error
}

// SecretUser is implemented by strategies that sign or verify links with
// the engine's secret; an engine refuses to start without one when a bound
// asset's strategy reports true.
type SecretUser interface {
	UsesSecret() bool
}
