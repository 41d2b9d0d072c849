package runtime

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/runtime/internal/store"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// Each kind of work is a River job type with its own worker. Kinds are per
// pipeline, "flowstone.<pipeline>.<work>", so a process fetches only the
// pipelines it binds. Everything a job needs travels in its args or in the
// database: the run's config is read from its run row by whichever process
// picks the job up.

func jobKind(pipeline, work string) string { return "flowstone." + pipeline + "." + work }

// nodeJob names the node of a run a job works on.
type nodeJob struct {
	Pipeline  string `json:"pipeline"`
	Run       string `json:"run"`
	Asset     string `json:"asset"`
	Partition string `json:"partition"`
}

func (n nodeJob) node() store.Node {
	return store.Node{Run: n.Run, Asset: n.Asset, Partition: n.Partition}
}

// attemptArgs is an attempt at materializing a node: its strategy's Run.
type attemptArgs struct{ nodeJob }

// Kind implements river.JobArgs.
func (a attemptArgs) Kind() string { return jobKind(a.Pipeline, "attempt") }

// resumeArgs continues a node's strategy (Task.Resume) with a payload.
type resumeArgs struct {
	nodeJob
	Payload json.RawMessage `json:"payload"`
}

// Kind implements river.JobArgs.
func (a resumeArgs) Kind() string { return jobKind(a.Pipeline, "resume") }

// deadlineArgs is a Deadliner's deadline passing for a node.
type deadlineArgs struct{ nodeJob }

// Kind implements river.JobArgs.
func (a deadlineArgs) Kind() string { return jobKind(a.Pipeline, "deadline") }

// tickArgs is a schedule= tick of an asset. It belongs to no run yet: it
// starts one.
type tickArgs struct {
	Pipeline string `json:"pipeline"`
	Asset    string `json:"asset"`
	// Tick is the tick's time, RFC 3339.
	Tick string `json:"tick"`
}

// Kind implements river.JobArgs.
func (a tickArgs) Kind() string { return jobKind(a.Pipeline, "tick") }

// sensorArgs evaluates a sensor.
type sensorArgs struct {
	Pipeline string `json:"pipeline"`
	Sensor   string `json:"sensor"`
}

// Kind implements river.JobArgs.
func (a sensorArgs) Kind() string { return jobKind(a.Pipeline, "sensor") }

// backfillArgs moves a backfill on: enqueued when it starts and by each of
// its runs that finishes or is cancelled.
type backfillArgs struct {
	Pipeline string `json:"pipeline"`
	Backfill string `json:"backfill"`
}

// Kind implements river.JobArgs.
func (a backfillArgs) Kind() string { return jobKind(a.Pipeline, "backfill") }

// addWorkers registers a worker per kind of work of pipeline b.
func (e *Engine) addWorkers(workers *river.Workers, b Binding) {
	n := nodeJob{Pipeline: b.pipeline.name}
	river.AddWorkerArgs(workers, attemptArgs{n}, &attemptWorker{e: e, b: b})
	river.AddWorkerArgs(workers, resumeArgs{nodeJob: n}, &resumeWorker{e: e, b: b})
	river.AddWorkerArgs(workers, deadlineArgs{n}, &deadlineWorker{e: e, b: b})
	river.AddWorkerArgs(workers, tickArgs{Pipeline: n.Pipeline}, &tickWorker{e: e, b: b})
	river.AddWorkerArgs(workers, sensorArgs{Pipeline: n.Pipeline}, &sensorWorker{e: e, b: b})
	river.AddWorkerArgs(workers, backfillArgs{Pipeline: n.Pipeline}, &backfillWorker{e: e, b: b})
	river.AddWorkerArgs(workers, checkArgs{nodeJob: n}, &checkWorker{e: e, b: b})
}

// attemptWorker runs a node's strategy and records the result; it never
// looks at the kind.
type attemptWorker struct {
	river.WorkerDefaults[attemptArgs]
	e *Engine
	b Binding
}

// Timeout is the asset's timeout=, else the client's default
// (Config.DefaultTimeout).
func (w *attemptWorker) Timeout(job *river.Job[attemptArgs]) time.Duration {
	return assetTimeout(w.b, job.Args.Asset)
}

// assetTimeout is asset's timeout=, or 0 for the client's default.
func assetTimeout(b Binding, asset string) time.Duration {
	if a := b.pipeline.Asset(asset); a != nil && a.Timeout > 0 {
		return a.Timeout
	}
	return 0
}

func (w *attemptWorker) NextRetry(job *river.Job[attemptArgs]) time.Time {
	return time.Now().Add(w.e.cfg.RetryDelay(job.Attempt))
}

func (w *attemptWorker) Work(ctx context.Context, job *river.Job[attemptArgs]) error {
	return w.e.workNode(ctx, w.b, nodeWork{row: job.JobRow, args: job.Args.nodeJob})
}

// resumeWorker runs a continuation of a node's strategy.
type resumeWorker struct {
	river.WorkerDefaults[resumeArgs]
	e *Engine
	b Binding
}

// Timeout is the asset's timeout=, as for an attempt: a continuation
// (a scatter batch, a gate's decision) is part of it.
func (w *resumeWorker) Timeout(job *river.Job[resumeArgs]) time.Duration {
	return assetTimeout(w.b, job.Args.Asset)
}

func (w *resumeWorker) NextRetry(job *river.Job[resumeArgs]) time.Time {
	return time.Now().Add(w.e.cfg.RetryDelay(job.Attempt))
}

func (w *resumeWorker) Work(ctx context.Context, job *river.Job[resumeArgs]) error {
	payload := job.Args.Payload
	if payload == nil {
		payload = json.RawMessage("null")
	}
	return w.e.workNode(ctx, w.b, nodeWork{row: job.JobRow, args: job.Args.nodeJob, resume: payload})
}

// deadlineWorker starts a node whose strategy's deadline passed.
type deadlineWorker struct {
	river.WorkerDefaults[deadlineArgs]
	e *Engine
	b Binding
}

func (w *deadlineWorker) Work(ctx context.Context, job *river.Job[deadlineArgs]) error {
	args := job.Args.nodeJob
	a := w.b.pipeline.Asset(args.Asset)
	if a == nil {
		return w.e.unknownAsset(ctx, args)
	}
	run, _, err := w.e.loadRun(ctx, w.b.pipeline, args)
	if err != nil {
		return err
	}
	return w.e.deadline(ctx, args, run, a)
}

// tickWorker starts a scheduled asset's run.
type tickWorker struct {
	river.WorkerDefaults[tickArgs]
	e *Engine
	b Binding
}

func (w *tickWorker) Work(ctx context.Context, job *river.Job[tickArgs]) error {
	a := w.b.pipeline.Asset(job.Args.Asset)
	if a == nil {
		return river.JobCancel(fmt.Errorf("%w: schedule of %q, not in pipeline %s as bound in this process", ErrUnknownAsset, job.Args.Asset, job.Args.Pipeline))
	}
	return w.e.tick(ctx, job.Args, w.b.pipeline, a)
}

// sensorWorker evaluates a sensor.
type sensorWorker struct {
	river.WorkerDefaults[sensorArgs]
	e *Engine
	b Binding
}

func (w *sensorWorker) Work(ctx context.Context, job *river.Job[sensorArgs]) error {
	return w.e.evaluateSensor(ctx, w.b.pipeline, w.b, job.Args.Sensor)
}

// backfillWorker moves a backfill on.
type backfillWorker struct {
	river.WorkerDefaults[backfillArgs]
	e *Engine
	b Binding
}

func (w *backfillWorker) Work(ctx context.Context, job *river.Job[backfillArgs]) error {
	return w.e.advanceBackfill(ctx, w.b.pipeline, job.Args.Backfill)
}

// nodeWork is the job working on a node: an attempt (resume is nil) or a
// continuation of its strategy.
type nodeWork struct {
	row    *rivertype.JobRow
	args   nodeJob
	resume json.RawMessage
}

// attemptJob is the job of an attempt at asset a of run at part.
func (e *Engine) attemptJob(run *runCtx, a *AssetDef, part flowstone.Partition) river.InsertManyParams {
	return river.InsertManyParams{
		Args: attemptArgs{nodeJob{Pipeline: run.p.name, Run: run.id, Asset: a.Key, Partition: string(part)}},
		InsertOpts: &river.InsertOpts{
			MaxAttempts: a.Retries + 1 + rescueHeadroom,
			Queue:       a.Queue,
			Priority:    a.Priority,
		},
	}
}

// resumeJob is the job of a continuation of a's strategy at at (now when
// at is not in the future: a past time would wait for River's scheduler).
func (e *Engine) resumeJob(run *runCtx, a *AssetDef, part flowstone.Partition, payload json.RawMessage, at time.Time) river.InsertManyParams {
	opts := &river.InsertOpts{MaxAttempts: 1 + rescueHeadroom, Queue: a.Queue, Priority: a.Priority}
	if at.After(time.Now()) {
		opts.ScheduledAt = at
	}
	return river.InsertManyParams{
		Args:       resumeArgs{nodeJob: nodeJob{Pipeline: run.p.name, Run: run.id, Asset: a.Key, Partition: string(part)}, Payload: payload},
		InsertOpts: opts,
	}
}

// deadlineJob is the job that, at at, lets asset a start without its
// tolerant dependencies if it is still waiting for them.
func (e *Engine) deadlineJob(run *runCtx, a *AssetDef, part flowstone.Partition, at time.Time) river.InsertManyParams {
	return river.InsertManyParams{
		Args:       deadlineArgs{nodeJob{Pipeline: run.p.name, Run: run.id, Asset: a.Key, Partition: string(part)}},
		InsertOpts: &river.InsertOpts{MaxAttempts: 1 + rescueHeadroom, Queue: a.Queue, Priority: a.Priority, ScheduledAt: at},
	}
}

// backfillJob is the job that moves backfill id on.
func backfillJob(pipeline, id string) river.InsertManyParams {
	return river.InsertManyParams{Args: backfillArgs{Pipeline: pipeline, Backfill: id},
		InsertOpts: &river.InsertOpts{MaxAttempts: 1 + rescueHeadroom}}
}
