package runtime

import "errors"

// Sentinel errors callers branch on with errors.Is.
var (
	// ErrUnknownAsset: a target or loaded asset is not in the pipeline.
	ErrUnknownAsset = errors.New("unknown asset")
	// ErrBadCursor: a sensor returned a cursor the engine does not store:
	// longer than MaxSensorCursor bytes, not valid UTF-8, or holding a NUL
	// byte. The evaluation is recorded as failed and starts no run.
	ErrBadCursor = errors.New("bad sensor cursor")
	// ErrUnknownPipeline: the pipeline is not bound to this engine.
	ErrUnknownPipeline = errors.New("unknown pipeline")
	// ErrBadConfig: a run config of the wrong type, or that fails to decode.
	ErrBadConfig = errors.New("bad run config")
	// ErrMissingConfig: an asset takes config but the run has none.
	ErrMissingConfig = errors.New("missing run config")
	// ErrMissingResource: a Bind left a resource nil.
	ErrMissingResource = errors.New("missing resource")
	// ErrNotMaterialized: no successful materialization to load.
	ErrNotMaterialized = errors.New("not materialized")
	// ErrDecode: a stored value no longer decodes into its Go type.
	ErrDecode = errors.New("stored value does not decode")
	// ErrRunNotFound: no run with that ID.
	ErrRunNotFound = errors.New("run not found")
	// ErrUnfinished: an Outcome dependency had not finished when a join's
	// wait= deadline started it.
	ErrUnfinished = errors.New("upstream not finished")
	// ErrStale: asset code was edited after flowstone_gen.go was
	// generated; Open refuses the pipeline rather than reuse results of
	// the old code.
	ErrStale = errors.New("flowstone_gen.go is stale: run go generate")
	// ErrInvalidSchema: Config.Schema is not a usable PostgreSQL schema
	// name, or is set for SQLite.
	ErrInvalidSchema = errors.New("invalid schema")
	// ErrInvalidTuning: Config.Concurrency, QueueConcurrency,
	// PollInterval or FetchCooldown is out of range.
	ErrInvalidTuning = errors.New("invalid worker tuning")
	// ErrNotInitialised: a read-only engine (Config.ReadOnly) found no
	// FlowStone tables, or older ones: something that may write must
	// create or migrate them first.
	ErrNotInitialised = errors.New("not initialised: run migrate or a worker")
	// ErrReadOnly: a read-only engine was asked to write.
	ErrReadOnly = errors.New("read-only engine")
	// ErrDatabaseUnreachable: Open waited Config.WaitForDatabase and the
	// database still could not be reached (see IsUnreachable).
	ErrDatabaseUnreachable = errors.New("database unreachable")
	// ErrClosed: the engine was closed.
	ErrClosed = errors.New("engine closed")
)
