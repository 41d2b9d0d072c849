package runtime

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/runtime/internal/store"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// PruneRequest says what Engine.Prune deletes: history that finished
// before a bound.
type PruneRequest struct {
	// OlderThan sets the bound to this long before now.
	OlderThan time.Duration
	// Before, when not zero, is the bound itself and wins over OlderThan.
	// One of the two is required.
	Before time.Time
	// KeepLatest is how many of the newest successful materializations of
	// each pipeline, asset and partition are kept, whatever their age, with
	// their values. Less than 1 means 1: the newest is what Load and reuse
	// read.
	KeepLatest int
	// Pipeline limits pruning to one pipeline's runs, backfills and
	// materializations; empty means every pipeline. River's job rows are
	// pruned for every pipeline either way.
	Pipeline string
	// DryRun counts what would be deleted and deletes nothing.
	DryRun bool
	// BatchSize is how many runs, materializations or jobs one transaction
	// deletes; zero means 1,000. Each batch is its own short transaction,
	// so workers are never held up for long.
	BatchSize int
}

// PruneResult counts what Prune deleted, or would delete in a dry run.
type PruneResult struct {
	// Before is the bound: history that finished before it was pruned.
	Before time.Time
	// Runs deleted, with their assets' rows, arrivals, edges, strategy
	// state and scatter items.
	Runs int64
	// Backfills deleted (finished ones), with their partitions' rows.
	Backfills int64
	// Materializations deleted, with their values and their lineage rows.
	Materializations int64
	// Lineage rows deleted (those of the deleted materializations).
	Lineage int64
	// Checks is the check results deleted (those recorded against the
	// deleted materializations).
	Checks int64
	// Values dropped from materializations that are kept only because
	// something still points at them (a kept materialization's lineage, a
	// kept run): the row stays, the value goes.
	Values int64
	// Decisions is automation decisions (Engine.AutomationDecisions)
	// evaluated before the bound.
	Decisions int64
	// Jobs is River's finished job rows (completed, cancelled, discarded)
	// of FlowStone's kinds deleted.
	Jobs int64
	// ExternalDeleted counts values held by IO managers that were deleted
	// through their ValueDeleter; ExternalLeft those left in place (the IO
	// manager has no ValueDeleter, or this process does not bind the
	// pipeline). Zero in a dry run.
	ExternalDeleted, ExternalLeft int64
}

// ValueDeleter is an IOManager that can delete a stored value. Prune calls
// it for each value it removes, after the transaction that removed the
// materialization commits; a value whose IO manager does not implement it
// is left where it is.
type ValueDeleter interface {
	Delete(ctx context.Context, ref ValueRef) error
}

// ErrBadPrune is a PruneRequest without a bound.
var ErrBadPrune = errors.New("prune: give OlderThan or Before")

// pruneArgs are the args of the job Config.Retention schedules. Its kind
// holds a ':', which pipeline names cannot, so it never meets a
// pipeline's.
type pruneArgs struct{}

func (pruneArgs) Kind() string { return "flowstone:prune" }

// pruneWorker prunes with Config.Retention's settings.
type pruneWorker struct {
	river.WorkerDefaults[pruneArgs]
	e *Engine
}

func (w *pruneWorker) Work(ctx context.Context, _ *river.Job[pruneArgs]) error {
	r := w.e.cfg.Retention
	res, err := w.e.Prune(ctx, PruneRequest{OlderThan: r.OlderThan, KeepLatest: r.KeepLatest})
	w.e.log.InfoContext(ctx, "pruned history", "before", res.Before, "runs", res.Runs, "materializations", res.Materializations,
		"values", res.Values, "jobs", res.Jobs, "error", err)
	return err
}

// retentionJob is the periodic job of Config.Retention: one at a time (a
// prune still running or waiting makes the next tick a no-op), one attempt
// (the next tick carries on).
func (e *Engine) retentionJob() *river.PeriodicJob {
	return river.NewPeriodicJob(river.PeriodicInterval(e.cfg.Retention.Every), func() (river.JobArgs, *river.InsertOpts) {
		return pruneArgs{}, &river.InsertOpts{MaxAttempts: 1, UniqueOpts: river.UniqueOpts{ByState: []rivertype.JobState{
			rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRunning, rivertype.JobStateScheduled,
		}}}
	}, &river.PeriodicJobOpts{ID: "flowstone:prune"})
}

// checkRetention refuses a schedule without an age.
func (e *Engine) checkRetention() error {
	r := e.cfg.Retention
	if r.Every < 0 || r.Every > 0 && r.OlderThan <= 0 {
		return fmt.Errorf("Config.Retention: %w (Every %s, OlderThan %s)", ErrBadPrune, r.Every, r.OlderThan)
	}
	return nil
}

// Prune deletes history that finished before the bound (see PruneRequest):
// finished runs and backfills, River's finished job rows of FlowStone's
// kinds, and materializations with their values and lineage, in batches of
// short transactions. It keeps, per pipeline, asset and partition, the
// newest materialization of any status and the KeepLatest newest successful
// ones with their values; everything a kept materialization's lineage
// points to (transitively, so lineage stays resolvable), without its value;
// and every run still running with everything it points to. Load and reuse
// work as before. It is safe while workers run. A read-only engine
// (Config.ReadOnly) answers dry runs only.
func (e *Engine) Prune(ctx context.Context, req PruneRequest) (PruneResult, error) {
	p, err := newPrune(e, req, time.Now())
	if err != nil {
		return PruneResult{}, err
	}
	if req.DryRun {
		return p.count(ctx)
	}
	if err := e.writable(); err != nil {
		return p.res, err
	}
	steps := []func(context.Context) error{p.runs, p.backfills, p.materializations, p.values, p.jobs, p.decisions}
	for _, step := range steps {
		if err := step(ctx); err != nil {
			return p.res, fmt.Errorf("prune: %w", err)
		}
	}
	return p.res, nil
}

// pruner is one Prune call.
type pruner struct {
	e     *Engine
	scope store.PruneScope
	batch int
	res   PruneResult
}

func newPrune(e *Engine, req PruneRequest, now time.Time) (*pruner, error) {
	before := req.Before
	if before.IsZero() {
		if req.OlderThan <= 0 {
			return nil, ErrBadPrune
		}
		before = now.Add(-req.OlderThan)
	}
	p := &pruner{e: e, batch: req.BatchSize,
		scope: store.PruneScope{Before: before.UnixMicro(), Pipeline: req.Pipeline, Keep: max(req.KeepLatest, 1)}}
	if p.batch <= 0 {
		p.batch = 1000
	}
	p.res.Before = before
	return p, nil
}

// runs deletes the finished runs and everything keyed by them, oldest
// first.
func (p *pruner) runs(ctx context.Context) error {
	for {
		ids, err := p.e.st.PrunableRuns(ctx, p.e.be.pool(), p.scope, p.batch)
		if err != nil || len(ids) == 0 {
			return err
		}
		err = p.e.be.inTx(ctx, func(tx txn) error {
			for _, d := range p.e.deleters {
				if err := d.DeleteRuns(ctx, tx, ids); err != nil {
					return err
				}
			}
			n, err := p.e.st.DeleteRuns(ctx, tx, ids)
			p.res.Runs += n
			return err
		})
		if err != nil {
			return fmt.Errorf("runs: %w", err)
		}
		if len(ids) < p.batch {
			return nil
		}
	}
}

// backfills deletes the finished backfills.
func (p *pruner) backfills(ctx context.Context) error {
	for {
		ids, err := p.e.st.PrunableBackfills(ctx, p.e.be.pool(), p.scope, p.batch)
		if err != nil || len(ids) == 0 {
			return err
		}
		err = p.e.be.inTx(ctx, func(tx txn) error {
			n, err := p.e.st.DeleteBackfills(ctx, tx, ids)
			p.res.Backfills += n
			return err
		})
		if err != nil {
			return fmt.Errorf("backfills: %w", err)
		}
		if len(ids) < p.batch {
			return nil
		}
	}
}

// materializations deletes the superseded materializations nothing kept
// points at, walking them newest first in batches. A pass that still
// deleted something (equal finishing times) is followed by another.
func (p *pruner) materializations(ctx context.Context) error {
	for {
		var deleted int64
		err := p.walk(ctx, p.e.st.PrunableInPage, func(tx txn, ids []string) error {
			lineage, checks, n, err := p.e.st.DeleteMaterializations(ctx, tx, ids)
			p.res.Lineage += lineage
			p.res.Checks += checks
			p.res.Materializations += n
			deleted += n
			return err
		})
		if err != nil {
			return fmt.Errorf("materializations: %w", err)
		}
		if deleted == 0 {
			return nil
		}
	}
}

// values drops the values of the superseded materializations that stay
// because something points at them.
func (p *pruner) values(ctx context.Context) error {
	err := p.walk(ctx, p.e.st.ValuesInPage, func(tx txn, ids []string) error {
		n, err := p.e.st.DropValues(ctx, tx, ids)
		p.res.Values += n
		return err
	})
	if err != nil {
		return fmt.Errorf("values: %w", err)
	}
	return nil
}

// walk visits the materializations finished before the bound, newest
// first, a page at a time. In each page's transaction it locks the page's
// rows (PostgreSQL; SQLite's write transactions are exclusive), then picks
// (in a statement of its own, so it sees what committed while it waited: a
// reuse that just claimed one) and applies. Values held by IO managers are
// deleted once the transaction has committed.
func (p *pruner) walk(ctx context.Context,
	pick func(context.Context, store.Querier, store.PruneScope, store.PrunePage) ([]store.Pruned, error),
	apply func(tx txn, ids []string) error,
) error {
	at, id := p.scope.Before, ""
	for {
		page, n, err := p.e.st.NextPrunePage(ctx, p.e.be.pool(), p.scope, at, id, p.batch)
		if err != nil || n == 0 {
			return err
		}
		var done []store.Pruned
		err = p.e.be.inTx(ctx, func(tx txn) error {
			done = nil
			if p.e.dialect == "postgres" {
				if err := p.e.st.LockPrunePage(ctx, tx, p.scope, page); err != nil {
					return err
				}
			}
			ms, err := pick(ctx, tx, p.scope, page)
			if err != nil || len(ms) == 0 {
				return err
			}
			ids := make([]string, len(ms))
			for i, m := range ms {
				ids[i] = m.ID
			}
			if err := apply(tx, ids); err != nil {
				return err
			}
			done = ms
			return nil
		})
		if err != nil {
			return err
		}
		p.deleteExternal(ctx, done)
		if n < p.batch {
			return nil
		}
		at, id = page.LowAt, page.LowID
	}
}

// deleteExternal deletes the values of ms held by IO managers.
func (p *pruner) deleteExternal(ctx context.Context, ms []store.Pruned) {
	for _, m := range ms {
		if !m.External {
			continue
		}
		var d ValueDeleter
		if b, ok := p.e.bindings[m.Pipeline]; ok {
			if a := b.pipeline.Asset(m.Asset); a != nil {
				d, _ = a.IO.(ValueDeleter)
			}
		}
		if d == nil {
			p.res.ExternalLeft++
			continue
		}
		ref := ValueRef{Pipeline: m.Pipeline, Asset: m.Asset, Partition: flowstone.Partition(m.Partition), Materialization: m.ID}
		if err := d.Delete(ctx, ref); err != nil {
			p.e.log.WarnContext(ctx, "prune: delete value", "pipeline", m.Pipeline, "asset", m.Asset, "materialization", m.ID, "error", err)
			p.res.ExternalLeft++
			continue
		}
		p.res.ExternalDeleted++
	}
}

// jobs deletes River's finished job rows of FlowStone's kinds finalized
// before the bound, through River's own JobDeleteMany.
func (p *pruner) jobs(ctx context.Context) error {
	where, args := store.FinishedJobs(p.jobsHorizon())
	limit := min(p.batch, 10_000) // JobDeleteMany's most
	for {
		n, err := p.e.be.deleteFinishedJobs(ctx, where, args, limit)
		p.res.Jobs += int64(n)
		if err != nil {
			return fmt.Errorf("jobs: %w", err)
		}
		if n < limit {
			return nil
		}
	}
}

// jobsHorizon is the bound as River stores times: UTC text to the
// millisecond on SQLite.
func (p *pruner) jobsHorizon() any {
	t := time.UnixMicro(p.scope.Before).UTC()
	if p.e.dialect == "sqlite" {
		return t.Format("2006-01-02 15:04:05.000")
	}
	return t
}

// count answers a dry run: the same rules, counted without deleting.
func (p *pruner) count(ctx context.Context) (PruneResult, error) {
	c, err := p.e.st.CountPrune(ctx, p.e.be.pool(), p.scope, p.jobsHorizon())
	if err != nil {
		return p.res, fmt.Errorf("prune: %w", err)
	}
	p.res.Runs, p.res.Backfills, p.res.Materializations, p.res.Lineage, p.res.Checks, p.res.Values, p.res.Jobs =
		c.Runs, c.Backfills, c.Materializations, c.Lineage, c.Checks, c.Values, c.Jobs
	if p.res.Decisions, err = p.e.st.CountAutomationDecisions(ctx, p.e.be.pool(), p.scope); err != nil {
		return p.res, fmt.Errorf("prune: %w", err)
	}
	return p.res, nil
}

// decisions deletes the automation decisions evaluated before the bound.
func (p *pruner) decisions(ctx context.Context) error {
	for {
		n, err := p.e.st.DeleteAutomationDecisions(ctx, p.e.be.pool(), p.scope, p.batch)
		p.res.Decisions += n
		if err != nil {
			return fmt.Errorf("automation decisions: %w", err)
		}
		if n < int64(p.batch) {
			return nil
		}
	}
}
