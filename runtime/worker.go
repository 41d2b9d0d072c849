package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/runtime/internal/store"
	"github.com/flowstone-go/flowstone/strategy"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// workNode runs an attempt or a continuation of a node's strategy and
// records its result.
func (e *Engine) workNode(ctx context.Context, b Binding, w nodeWork) error {
	args := w.args
	p := b.pipeline
	a := p.Asset(args.Asset)
	if a == nil {
		return e.unknownAsset(ctx, args)
	}
	part := flowstone.Partition(args.Partition)
	resuming := w.resume != nil
	// Most attempts start with one statement: a queued node of a run this
	// process knows. The others read their node and run first.
	var run *runCtx
	var hasConfig bool
	var attempts int
	var release func()
	if !resuming {
		var err error
		if run, hasConfig, attempts, release, err = e.startQueued(ctx, p, args, w.row.ID); err != nil {
			return fmt.Errorf("asset %s: start: %w", a.Key, err)
		}
	}
	if release == nil {
		var st store.JobState
		var err error
		if run, st, err = e.loadRun(ctx, p, args); err != nil {
			return err
		}
		// A job for work already done completes without running
		// anything. Its asset may have been recorded by a process that
		// died before moving the run on: advancing again is idempotent.
		if st.RunStatus == store.RunCancelled {
			return e.completeOnly(ctx, w.row)
		}
		if st.Status.Terminal() {
			return e.advance(ctx, run, []node{{a, part}})
		}
		if resuming && st.Status != store.AssetWaiting {
			return e.completeOnly(ctx, w.row)
		}
		hasConfig, attempts = st.HasConfig, st.Attempts
		if !resuming {
			// A suspect (its node still running and its job's last
			// attempt taken over: that attempt's process died) runs alone
			// in its process (solo.go), so that a crash during it is its
			// own; one that would fail at once does not wait for that.
			died := st.Status == store.AssetRunning && lastAttemptDied(w.row)
			alone := died && !(st.CountsCrash() && st.Crashes+1 >= maxCrashes)
			if release, err = e.solo.acquire(ctx, alone); err != nil {
				return fmt.Errorf("asset %s waiting to run: %w", a.Key, err)
			}
			var s store.Started
			var started bool
			err = e.out.ride(ctx, func(ctx context.Context) (err error) {
				s, started, err = e.st.StartAttempt(ctx, e.be.pool(), args.node(), w.row.ID, died, alone)
				return err
			})
			if err != nil || !started {
				release()
				if err != nil {
					return err
				}
				return e.completeOnly(ctx, w.row)
			}
			attempts = s.Attempts
			if s.Crashes >= maxCrashes {
				release()
				return e.fail(ctx, w, run, a, attempts, fmt.Errorf("asset %s: %w", a.Key, flowstone.Permanent(crashedError(s.Crashes))))
			}
			if alone {
				e.log.WarnContext(ctx, "asset attempt runs alone in its process: its last attempt's process died",
					"run", args.Run, "asset", a.Key, "partition", args.Partition, "attempt", attempts, "crashes", s.Crashes)
			}
		}
	}
	// An attempt holds the process's lock until it ends (a continuation
	// holds it from soloMiddleware).
	if release != nil {
		defer release()
	}

	// Only an asset that takes the config decodes it, once per process
	// and run.
	var cfg any
	if a.UsesConfig && hasConfig && p.config != nil {
		var err error
		if cfg, hasConfig, err = e.runConfig(ctx, p, run.id); err != nil {
			if errors.Is(err, ErrBadConfig) {
				return e.fail(ctx, w, run, a, attempts, fmt.Errorf("asset %s: %w", a.Key, flowstone.Permanent(err)))
			}
			return err
		}
	}
	if !resuming {
		e.events.publish(Event{Kind: EventAssetStarted, Pipeline: p.name, RunID: run.id, Asset: a.Key, Partition: part, Status: string(StatusRunning)})
	}

	t := &task{e: e, b: b, run: run, asset: a, part: part, attempts: attempts, config: cfg, hasConfig: hasConfig,
		redelivered: redelivered(w.row), meta: map[string]any{}}
	t.log, t.logs = e.assetLogger(t)
	var obs *attemptObs
	if e.tel != nil {
		ctx, obs = e.tel.startAttempt(ctx, t, w.row)
	}

	res, err := t.execute(ctx, w.resume)
	// The attempt's context may have ended (timeout, cancellation); its
	// outcome is still recorded.
	rctx := context.WithoutCancel(ctx)
	if err != nil && e.interrupted(ctx) {
		t.log.WarnContext(rctx, "attempt interrupted by shutdown; it will run again", "error", err)
	}
	e.saveLogs(rctx, t, w.row.ID)
	var out error
	if err != nil && e.interrupted(ctx) {
		// Not the asset's failure: the attempt runs again, at once, in a
		// process that is not stopping.
		out = e.interrupt(rctx, w, run, t, err)
	} else if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) && a.Timeout > 0 {
			err = fmt.Errorf("timed out after %s: %w", a.Timeout, err)
		}
		out = e.fail(rctx, w, run, a, attempts, err)
	} else {
		out = e.record(rctx, w, run, t, res)
	}
	if obs != nil {
		obs.end(rctx, err, res, out)
	}
	return out
}

// interruptedMsg is what a node's record says of an attempt its process
// cancelled when it stopped.
const interruptedMsg = "interrupted by shutdown"

// interrupted reports whether a job's context ended because Close
// cancelled the running jobs.
func (e *Engine) interrupted(ctx context.Context) bool {
	return ctx.Err() != nil && e.interrupting.Load()
}

// interrupt records an attempt cancelled by Close: an attempt's node goes
// back to queued with why (a continuation's node stays waiting), and the
// job returns to the queue with its attempt given back (River's soft stop,
// see interruptMiddleware).
func (e *Engine) interrupt(ctx context.Context, w nodeWork, run *runCtx, t *task, cause error) error {
	args := w.args
	if w.resume == nil {
		if err := e.st.RetryAttempt(ctx, e.be.pool(), args.node(), interruptedMsg); err != nil {
			return errors.Join(cause, err)
		}
	}
	e.log.WarnContext(ctx, "asset attempt interrupted by shutdown; it will run again", "run", args.Run, "asset", t.asset.Key, "partition", args.Partition, "attempt", t.attempts)
	e.events.publish(Event{Kind: EventAssetRetrying, Pipeline: run.p.name, RunID: run.id, Asset: t.asset.Key, Partition: t.part, Status: string(StatusQueued), Error: interruptedMsg})
	return fmt.Errorf("%s: %w", interruptedMsg, errors.Join(cause, context.Canceled))
}

// interruptMiddleware makes River treat every job that ends in error after
// Close cancelled it as interrupted (available again at once, its attempt
// given back), whatever error the job wrapped: River does so only for
// errors that wrap context.Canceled.
func (e *Engine) interruptMiddleware() rivertype.WorkerMiddleware {
	return river.WorkerMiddlewareFunc(func(ctx context.Context, job *rivertype.JobRow, doInner func(context.Context) error) error {
		err := doInner(ctx)
		var cancel *rivertype.JobCancelError
		if err == nil || !e.interrupted(ctx) || errors.Is(err, context.Canceled) || errors.As(err, &cancel) {
			return err
		}
		return fmt.Errorf("%s: %w", interruptedMsg, errors.Join(err, context.Canceled))
	})
}

// loadRun reads what a node's job needs of its run; a run that is gone
// cancels the job.
func (e *Engine) loadRun(ctx context.Context, p *Pipeline, args nodeJob) (*runCtx, store.JobState, error) {
	var st store.JobState
	var found bool
	err := e.out.ride(ctx, func(ctx context.Context) (err error) {
		st, found, err = e.st.JobState(ctx, e.be.pool(), args.node())
		return err
	})
	if err != nil {
		return nil, st, err
	}
	if !found {
		return nil, st, e.orphanJob(ctx, p, args)
	}
	return e.runs.remember(p, args.Run, st.RunInfo).run, st, nil
}

// startQueued starts the attempt of a queued node of a run that is not
// cancelled, the common case, with one statement, shared with the starts
// that arrive together (starts.go), and one more for the first job of a
// run in this process, holding the process's lock shared
// (solo.go). release is nil when it did not start it: the node is in
// another status, or its run is cancelled or gone; workNode then reads
// both and decides.
func (e *Engine) startQueued(ctx context.Context, p *Pipeline, args nodeJob, job int64) (run *runCtx, hasConfig bool, attempts int, release func(), err error) {
	known, err := e.knownRun(ctx, p, args.Run)
	if err != nil || known == nil {
		return nil, false, 0, nil, err
	}
	if release, err = e.solo.acquire(ctx, false); err != nil {
		return nil, false, 0, nil, err
	}
	var ok bool
	attempts, ok, err = e.startQueuedNode(ctx, args.node(), job)
	if err != nil || !ok {
		release()
		return nil, false, 0, nil, err
	}
	return known.run, known.hasConfig, attempts, release, nil
}

// orphanJob ends a job whose node is not in its run. A run that is gone
// (deleted by Prune) has nothing left to end. A run that exists would
// wait for the node forever: it is recorded failed, with its unfinished
// assets and why, so Wait, status and the web page see it end.
func (e *Engine) orphanJob(ctx context.Context, p *Pipeline, args nodeJob) error {
	status, found, err := e.st.RunStatus(ctx, e.be.pool(), args.Run)
	if err != nil {
		return err
	}
	if !found {
		return river.JobCancel(fmt.Errorf("%w: %s (asset %s)", ErrRunNotFound, args.Run, args.Asset))
	}
	msg := fmt.Sprintf("a job for asset %s partition %s found no such node in run %s", args.Asset, flowstone.QuoteKey(args.Partition), args.Run)
	cause := fmt.Errorf("%w: %s", ErrNotInRun, msg)
	if RunStatus(status).Terminal() {
		return river.JobCancel(cause)
	}
	var failed bool
	err = e.be.inTx(ctx, func(tx txn) error {
		backfill, ok, err := e.st.FailRun(ctx, tx, args.Run, msg)
		if err != nil || !ok {
			return err
		}
		failed = true
		if backfill != "" {
			return tx.insertJobs(ctx, []river.InsertManyParams{backfillJob(p.name, backfill)})
		}
		return nil
	})
	if err != nil {
		return err
	}
	if failed {
		e.log.ErrorContext(ctx, "run failed: a job's node is not in it", "run", args.Run, "asset", args.Asset, "error", msg)
		e.events.publish(Event{Kind: EventRunFinished, Pipeline: p.name, RunID: args.Run, Status: string(RunFailed)})
	}
	return river.JobCancel(cause)
}

// completeOnly ends a job that has nothing left to do: River's completer
// completes it once Work returns.
func (e *Engine) completeOnly(context.Context, *rivertype.JobRow) error { return nil }

// execute runs the strategy, turning a panic into an error with its stack.
func (t *task) execute(ctx context.Context, resume json.RawMessage) (res strategy.Result, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &PanicError{Value: r, Stack: string(debug.Stack())}
		}
	}()
	s := t.asset.Strategy
	if resume != nil {
		r, ok := s.(strategy.Resumer)
		if !ok {
			return res, flowstone.Permanentf("strategy %T of asset %s cannot resume", s, t.asset.Key)
		}
		return r.Resume(ctx, t, resume)
	}
	return s.Run(ctx, t)
}

// PanicError is a panic in asset or strategy code, recorded as a failure.
type PanicError struct {
	Value any
	Stack string
}

func (p *PanicError) Error() string { return fmt.Sprintf("panic: %v\n%s", p.Value, p.Stack) }

// fail records a failed attempt: a retry when attempts remain, otherwise
// the asset's final failure, its dependents upstream_failed, and the job
// cancelled so River does not retry it.
func (e *Engine) fail(ctx context.Context, w nodeWork, run *runCtx, a *AssetDef, attempts int, cause error) error {
	args := w.args
	msg := cause.Error()
	// A continuation (Resume) that failed without saying it is permanent
	// hit trouble outside the asset (the database): River retries its job.
	final := errors.Is(cause, flowstone.ErrPermanent) || w.resume == nil && attempts >= a.Retries+1
	part := flowstone.Partition(args.Partition)
	if !final {
		if err := e.out.ride(ctx, func(ctx context.Context) error {
			return e.st.RetryAttempt(ctx, e.be.pool(), args.node(), msg)
		}); err != nil {
			return errors.Join(cause, err)
		}
		e.log.WarnContext(ctx, "asset attempt failed; will retry", "run", args.Run, "asset", a.Key, "partition", args.Partition, "attempt", attempts, "error", msg)
		e.events.publish(Event{Kind: EventAssetRetrying, Pipeline: run.p.name, RunID: run.id, Asset: a.Key, Partition: part, Status: string(StatusQueued), Error: msg})
		return cause
	}
	var fx effects
	err := e.be.inTx(ctx, func(tx txn) error {
		fx = effects{}
		return e.recordFailure(ctx, tx, run, a, args, attempts, msg, &fx)
	})
	if err != nil {
		return errors.Join(cause, err) // retried by River; the next attempt records it
	}
	e.log.ErrorContext(ctx, "asset failed", "run", args.Run, "asset", a.Key, "partition", args.Partition, "attempts", attempts, "error", msg)
	e.events.publish(fx.events...)
	if err := e.advance(ctx, run, fx.terminal); err != nil {
		return errors.Join(cause, err) // redelivered: the asset is terminal, so the run advances then
	}
	return river.JobCancel(cause)
}

// record stores a strategy's result. For a value: store it (in the
// database, or through the asset's IO manager first), record the
// materialization and its lineage and the arrivals at its dependents, in
// one transaction; then advance the run in a second. A plain success or
// skip goes through the recorder, which does both for many jobs at once;
// a result with a Commit hook (decided inside the first transaction),
// checks or resume jobs is recorded alone. The job itself is completed by
// River once Work returns, except a waiting one's, which is completed in
// the transaction that records it waiting and inserts its continuations.
func (e *Engine) record(ctx context.Context, w nodeWork, run *runCtx, t *task, res strategy.Result) error {
	a, args := t.asset, w.args
	if w.resume != nil && res.Commit == nil && res.Status == strategy.Pending && res.Reason == "" && len(t.resumes) == 0 {
		// A continuation that goes on waiting with nothing to record (a
		// scatter batch whose results it committed itself): River
		// completes its job once Work returns; delivered again, it
		// finds nothing left to do.
		e.events.publish(Event{Kind: EventAssetWaiting, Pipeline: run.p.name, RunID: run.id, Asset: a.Key, Partition: t.part, Status: string(StatusWaiting)})
		return nil
	}
	mat := newID("mat_")
	// The IO manager stores before the transaction, when the value is
	// already known.
	external := false
	if res.Commit == nil && res.Status == strategy.Succeeded && a.HasValue && a.IO != nil {
		ref := ValueRef{Pipeline: run.p.name, Asset: a.Key, Partition: t.part, Materialization: mat}
		if err := a.IO.Store(ctx, ref, res.Value); err != nil {
			return e.fail(ctx, w, run, a, t.attempts, fmt.Errorf("store value of %s: %w", a.Key, err))
		}
		external = true
	}
	meta, err := json.Marshal(t.metadata())
	if err != nil {
		meta = []byte(fmt.Sprintf(`{"metadata_error":%q}`, err.Error()))
	}
	var ups []upstream
	err = e.out.ride(ctx, func(ctx context.Context) (err error) {
		ups, err = t.upstreams(ctx)
		return err
	})
	if err != nil {
		return err
	}
	cfgHash := ""
	if a.UsesConfig {
		cfgHash = run.configHash
	}
	// newMat is the materialization of a final result, without its times
	// and value; encodeErr fails the asset.
	var encodeErr error
	newMat := func(final strategy.Result) (store.NewMaterialization, AssetStatus, error) {
		status, matStatus := StatusSucceeded, store.MatSucceeded
		if final.Status == strategy.Skipped {
			status, matStatus = StatusSkipped, store.MatSkipped
		}
		m := store.NewMaterialization{ID: mat, Pipeline: run.p.name, Asset: a.Key, Partition: args.Partition, Run: run.id,
			Status: matStatus, CodeVersion: a.CodeVersion, ConfigHash: cfgHash, InputHash: inputHash(ups),
			External: external, Metadata: string(meta), Attempts: t.attempts, Error: final.Reason}
		if final.Status == strategy.Succeeded && a.HasValue && !external {
			data, err := encodeValue(final.Value)
			if err != nil {
				encodeErr = flowstone.Permanentf("asset %s: value of type %T does not encode as JSON: %v", a.Key, final.Value, err)
				return m, status, encodeErr
			}
			m.Value = data
		}
		if len(final.Views) > 0 {
			data, err := json.Marshal(final.Views)
			if err != nil {
				return m, status, err
			}
			m.Views = data
		}
		return m, status, nil
	}
	var read []store.Lineage
	for _, u := range ups {
		if u.mat != "" {
			read = append(read, store.Lineage{Asset: u.asset, Partition: u.partition, Materialization: u.mat})
		}
	}

	if res.Commit == nil && len(t.resumes) == 0 && len(run.p.checks[a.Key]) == 0 &&
		(res.Status == strategy.Succeeded || res.Status == strategy.Skipped) {
		m, status, err := newMat(res)
		if encodeErr != nil {
			return e.fail(ctx, w, run, a, t.attempts, encodeErr)
		}
		if err != nil {
			return fmt.Errorf("record %s: %w", a.Key, err)
		}
		return e.recordFinished(ctx, &finished{run: run, a: a, part: t.part, status: status, m: m, reads: read,
			fin: store.Finish{Node: args.node(), Status: store.AssetStatus(status), Materialization: mat, Reason: res.Reason}})
	}

	var fx effects
	var final strategy.Result
	err = e.be.inTx(ctx, func(tx txn) error {
		fx, final, encodeErr = effects{}, res, nil
		var resumes []river.InsertManyParams
		if res.Commit != nil {
			ct := &commitTx{txn: tx, e: e, t: t}
			r, err := res.Commit(ctx, ct)
			if err != nil {
				return err
			}
			final, resumes = r, ct.resumes
		}
		resumes = append(resumes, t.resumes...)
		switch final.Status {
		case strategy.Pending:
			// A continuation's node is waiting already: with no new
			// reason its row is left alone (a scatter's batches would
			// otherwise all queue on it).
			if final.Reason != "" || w.resume == nil {
				if err := e.st.SetWaiting(ctx, tx, args.node(), final.Reason); err != nil {
					return err
				}
			}
			if err := tx.insertJobs(ctx, resumes); err != nil {
				return err
			}
			// Completed here, not by River after Work returns: a
			// continuation must not run again once its successors are
			// inserted.
			return tx.completeJob(ctx, w.row)
		case strategy.Failed:
			return e.recordFailure(ctx, tx, run, a, args, t.attempts, final.Reason, &fx)
		case strategy.Succeeded, strategy.Skipped:
		default:
			return flowstone.Permanentf("strategy %T returned unknown status %d", a.Strategy, final.Status)
		}
		m, status, err := newMat(final)
		if err != nil {
			return err
		}
		startedAt, ok, err := e.st.FinishAttempt(ctx, tx, args.node(), store.AssetStatus(status), mat, final.Reason)
		if err != nil || !ok { // not ok: cancelled, or finished by another process meanwhile
			return err
		}
		m.StartedAt, m.FinishedAt = startedAt, time.Now().UnixMicro()
		if err := e.st.InsertMaterialization(ctx, tx, m); err != nil {
			return err
		}
		if err := e.st.InsertLineage(ctx, tx, mat, read); err != nil {
			return err
		}
		if err := e.materialized(ctx, tx, run, a, t.part, mat, status, final.Reason, &fx); err != nil {
			return err
		}
		return tx.insertJobs(ctx, resumes)
	})
	if encodeErr != nil {
		return e.fail(ctx, w, run, a, t.attempts, encodeErr)
	}
	if err != nil {
		return fmt.Errorf("record %s: %w", a.Key, err)
	}
	e.events.publish(fx.events...)
	if final.Status == strategy.Pending {
		e.events.publish(Event{Kind: EventAssetWaiting, Pipeline: run.p.name, RunID: run.id, Asset: a.Key, Partition: t.part, Status: string(StatusWaiting), Error: final.Reason})
		return nil
	}
	// The dependents and the run move on in a second transaction; should
	// this process die in between, River delivers the job again and Work
	// advances again.
	return e.advance(ctx, run, fx.terminal)
}

// commitTx is the strategy.Tx a Commit hook gets.
type commitTx struct {
	txn
	e       *Engine
	t       *task
	resumes []river.InsertManyParams
}

// Resume implements strategy.Tx.
func (c *commitTx) Resume(at time.Time, payload any) error {
	data, err := json.Marshal(payload)
	if err != nil {
		return fmt.Errorf("resume payload: %w", err)
	}
	c.resumes = append(c.resumes, c.e.resumeJob(c.t.run, c.t.asset, c.t.part, data, at))
	return nil
}

// unknownAsset handles a job for an asset this process's version of the
// pipeline does not define (processes on different versions): nothing runs;
// the asset and its run are recorded failed, and River does not retry.
func (e *Engine) unknownAsset(ctx context.Context, args nodeJob) error {
	cause := fmt.Errorf("%w: %q is not in pipeline %s as bound in the process that received its job", ErrUnknownAsset, args.Asset, args.Pipeline)
	err := e.be.inTx(ctx, func(tx txn) error {
		failed, err := e.st.FailAsset(ctx, tx, args.node(), cause.Error(), store.AssetQueued, store.AssetRunning, store.AssetWaiting)
		if err != nil || !failed {
			return err
		}
		_, err = e.st.FinishRun(ctx, tx, args.Run, store.RunFailed)
		return err
	})
	if err != nil {
		return errors.Join(cause, err)
	}
	e.log.ErrorContext(ctx, "job for an unknown asset", "run", args.Run, "asset", args.Asset, "pipeline", args.Pipeline)
	e.events.publish(Event{Kind: EventRunFinished, Pipeline: args.Pipeline, RunID: args.Run, Status: string(RunFailed), Error: cause.Error()})
	return river.JobCancel(cause)
}

// deadline handles a Deadliner's job: the asset, if still waiting for
// dependencies, starts as soon as its required ones are done (now, if they
// are); its tolerant ones arrive as they are. Marking it early commits
// before the readiness check, so an upstream finishing meanwhile sees the
// mark or is seen by the check.
func (e *Engine) deadline(ctx context.Context, args nodeJob, run *runCtx, a *AssetDef) error {
	if err := e.st.MarkEarly(ctx, e.be.pool(), args.node()); err != nil {
		return err
	}
	var fx effects
	err := e.be.inTx(ctx, func(tx txn) error {
		fx = effects{}
		// Serial with the checks of the transactions that record arrivals
		// (see commitGroup).
		if e.dialect == "postgres" {
			if err := e.st.LockNode(ctx, tx, args.node()); err != nil {
				return err
			}
		}
		if err := e.checkReady(ctx, tx, run, a, flowstone.Partition(args.Partition), &fx); err != nil {
			return err
		}
		return tx.insertJobs(ctx, fx.jobs)
	})
	if err != nil {
		return err
	}
	e.events.publish(fx.events...)
	return e.advance(ctx, run, fx.terminal)
}

// recordFailure records a's final failure in tx: its status, a failed
// materialization, and the arrivals at its dependents.
func (e *Engine) recordFailure(ctx context.Context, tx txn, run *runCtx, a *AssetDef, args nodeJob, attempts int, msg string, fx *effects) error {
	failed, err := e.st.FailAsset(ctx, tx, args.node(), msg, store.AssetRunning, store.AssetWaiting)
	if err != nil || !failed {
		return err
	}
	mat := newID("mat_")
	at := time.Now().UnixMicro()
	if err := e.st.InsertMaterialization(ctx, tx, store.NewMaterialization{ID: mat, Pipeline: run.p.name, Asset: a.Key,
		Partition: args.Partition, Run: run.id, Status: store.MatFailed, CodeVersion: a.CodeVersion,
		Attempts: attempts, Error: msg, StartedAt: at, FinishedAt: at}); err != nil {
		return err
	}
	if err := e.st.SetMaterialization(ctx, tx, args.node(), mat); err != nil {
		return err
	}
	return e.markTerminal(ctx, tx, run, a, flowstone.Partition(args.Partition), StatusFailed, msg, fx)
}
