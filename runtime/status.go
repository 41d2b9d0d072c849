package runtime

import "github.com/flowstone-go/flowstone/runtime/internal/store"

// RunStatus is a run's state.
type RunStatus string

// Run statuses. A run whose assets all succeeded, were reused or were
// skipped has succeeded; one with a failed or upstream_failed asset has
// failed.
const (
	RunRunning   RunStatus = "running"
	RunSucceeded RunStatus = "succeeded"
	RunFailed    RunStatus = "failed"
	RunCancelled RunStatus = "cancelled"
)

// Terminal reports whether the run has finished.
func (s RunStatus) Terminal() bool { return s != RunRunning }

// AssetStatus is the state of one asset (and partition) within a run.
type AssetStatus string

// Asset statuses within a run.
const (
	// StatusPending: waiting for dependencies.
	StatusPending AssetStatus = "pending"
	// StatusQueued: a job is enqueued (or waiting to retry).
	StatusQueued AssetStatus = "queued"
	// StatusRunning: a worker is executing it.
	StatusRunning AssetStatus = "running"
	// StatusWaiting: its strategy continues later (a gate, a join's wait).
	StatusWaiting AssetStatus = "waiting"
	// StatusChecking: materialized; its blocking checks are running, and
	// its dependents wait for them.
	StatusChecking AssetStatus = "checking"
	// StatusSucceeded: materialized in this run.
	StatusSucceeded AssetStatus = "succeeded"
	// StatusReused: an up-to-date materialization from before was reused.
	StatusReused AssetStatus = "reused"
	// StatusFailed: failed for good.
	StatusFailed AssetStatus = "failed"
	// StatusSkipped: not run (router did not select it, flowstone.Skip, or
	// a required dependency was skipped).
	StatusSkipped AssetStatus = "skipped"
	// StatusUpstreamFailed: a required dependency failed.
	StatusUpstreamFailed AssetStatus = "upstream_failed"
	// StatusCancelled: the run was cancelled first.
	StatusCancelled AssetStatus = "cancelled"
)

// Terminal reports whether the status is final for the run. The values
// are the store's statuses, which decides.
func (s AssetStatus) Terminal() bool { return store.AssetStatus(s).Terminal() }

// ok reports whether dependents that require the asset may run.
func (s AssetStatus) ok() bool { return s == StatusSucceeded || s == StatusReused }

// failedish reports whether the status fails the run.
func (s AssetStatus) failedish() bool { return s == StatusFailed || s == StatusUpstreamFailed }
