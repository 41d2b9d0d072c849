package runtime

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/scatter"
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
	// Values dropped from materializations that are kept only because
	// something still points at them (a kept materialization's lineage, a
	// kept run): the row stays, the value goes.
	Values int64
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
// work as before. It is safe while workers run.
func (e *Engine) Prune(ctx context.Context, req PruneRequest) (PruneResult, error) {
	p, err := newPrune(e, req, time.Now())
	if err != nil {
		return PruneResult{}, err
	}
	if req.DryRun {
		return p.count(ctx)
	}
	steps := []func(context.Context) error{p.runs, p.backfills, p.materializations, p.values, p.jobs}
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
	bound int64 // microseconds
	keep  int
	batch int
	// pipe is the pipeline filter: " AND x.pipeline = ?" and its argument,
	// or nothing.
	pipeline string
	res      PruneResult
}

func newPrune(e *Engine, req PruneRequest, now time.Time) (*pruner, error) {
	before := req.Before
	if before.IsZero() {
		if req.OlderThan <= 0 {
			return nil, ErrBadPrune
		}
		before = now.Add(-req.OlderThan)
	}
	p := &pruner{e: e, bound: before.UnixMicro(), keep: max(req.KeepLatest, 1), batch: req.BatchSize, pipeline: req.Pipeline}
	if p.batch <= 0 {
		p.batch = 1000
	}
	p.res.Before = before
	return p, nil
}

// pipelineFilter is the condition on alias's pipeline, with its arguments.
func (p *pruner) pipelineFilter(alias string) (string, []any) {
	if p.pipeline == "" {
		return "", nil
	}
	return " AND " + alias + ".pipeline = ?", []any{p.pipeline}
}

// prunableRun is the condition, on flowstone_runs aliased r, of a run
// Prune deletes: finished before the bound and not part of a backfill
// still going (which reads its runs' statuses).
const prunableRun = `r.finished_at < ? AND r.status <> 'running'
	AND NOT EXISTS (SELECT 1 FROM flowstone_backfills b WHERE b.id = r.backfill_id AND b.status = 'running')`

// runs deletes the prunable runs and everything keyed by them, oldest
// first.
func (p *pruner) runs(ctx context.Context) error {
	filter, fargs := p.pipelineFilter("r")
	for {
		ids, err := queryStrings(ctx, p.e.be.pool(), `SELECT r.id FROM flowstone_runs r WHERE `+prunableRun+filter+`
			ORDER BY r.finished_at LIMIT ?`, append(append([]any{p.bound}, fargs...), p.batch)...)
		if err != nil || len(ids) == 0 {
			return err
		}
		err = p.e.be.inTx(ctx, func(tx txn) error {
			in, args := placeholders(len(ids)), anys(ids)
			for _, table := range []string{"flowstone_run_assets", "flowstone_arrivals", "flowstone_run_edges", "flowstone_state"} {
				if _, err := tx.Exec(ctx, `DELETE FROM `+table+` WHERE run_id IN (`+in+`)`, args...); err != nil {
					return err
				}
			}
			if err := scatter.DeleteRuns(ctx, tx, ids); err != nil {
				return err
			}
			n, err := tx.Exec(ctx, `DELETE FROM flowstone_runs WHERE id IN (`+in+`)`, args...)
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
	filter, fargs := p.pipelineFilter("b")
	for {
		ids, err := queryStrings(ctx, p.e.be.pool(), `SELECT b.id FROM flowstone_backfills b
			WHERE b.finished_at < ? AND b.status <> 'running'`+filter+` ORDER BY b.finished_at LIMIT ?`,
			append(append([]any{p.bound}, fargs...), p.batch)...)
		if err != nil || len(ids) == 0 {
			return err
		}
		err = p.e.be.inTx(ctx, func(tx txn) error {
			in, args := placeholders(len(ids)), anys(ids)
			if _, err := tx.Exec(ctx, `DELETE FROM flowstone_backfill_partitions WHERE backfill_id IN (`+in+`)`, args...); err != nil {
				return err
			}
			n, err := tx.Exec(ctx, `DELETE FROM flowstone_backfills WHERE id IN (`+in+`)`, args...)
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

// superseded is the condition, on flowstone_materializations aliased m,
// of a materialization that is neither the newest of its partition nor one
// of the KeepLatest newest successful ones. Its argument is KeepLatest,
// twice.
const superseded = `EXISTS (SELECT 1 FROM flowstone_materializations n
		WHERE n.pipeline = m.pipeline AND n.asset = m.asset AND n.partition_key = m.partition_key
		AND (n.finished_at > m.finished_at OR n.finished_at = m.finished_at AND n.id > m.id))
	AND (m.status <> 'succeeded' OR (SELECT count(*) FROM (SELECT 1 FROM flowstone_materializations n
		WHERE n.pipeline = m.pipeline AND n.asset = m.asset AND n.partition_key = m.partition_key AND n.status = 'succeeded'
		AND (n.finished_at > m.finished_at OR n.finished_at = m.finished_at AND n.id > m.id) LIMIT ?) newer) >= ?)`

// hasValue is the condition of a materialization m whose value Prune can
// drop: it has one, and no run still running points at it.
const hasValue = `(m.value IS NOT NULL OR m.views IS NOT NULL OR m.external = 1)
	AND NOT EXISTS (SELECT 1 FROM flowstone_run_assets ra JOIN flowstone_runs r ON r.id = ra.run_id
		WHERE ra.materialization_id = m.id AND r.status = 'running')`

// matRef is a materialization Prune deletes or drops the value of.
type matRef struct {
	id, pipeline, asset, partition string
	external                       bool
	finished                       int64
}

// materializations deletes the superseded materializations nothing kept
// points at, walking them newest first in batches. A materialization is
// read by newer ones only, so by the time the walk reaches one, whatever
// read it in an older batch is gone or kept; within a batch, blocked
// spreads what is kept down the lineage. A pass that still deletes
// something (equal times) is followed by another.
func (p *pruner) materializations(ctx context.Context) error {
	for {
		var deleted int64
		pick := func(page string) string {
			return `WITH RECURSIVE ` + page + `, blocked(id) AS (
				SELECT m.id FROM flowstone_materializations m JOIN page ON page.id = m.id
				WHERE NOT (` + superseded + `)
					OR EXISTS (SELECT 1 FROM flowstone_run_assets ra WHERE ra.materialization_id = m.id)
					OR EXISTS (SELECT 1 FROM flowstone_lineage l WHERE l.upstream_materialization_id = m.id
						AND l.materialization_id NOT IN (SELECT id FROM page))
				UNION
				SELECT l.upstream_materialization_id FROM blocked JOIN flowstone_lineage l ON l.materialization_id = blocked.id
				WHERE l.upstream_materialization_id IN (SELECT id FROM page)
			)
			SELECT m.id, m.pipeline, m.asset, m.partition_key, m.external, m.finished_at
			FROM flowstone_materializations m JOIN page ON page.id = m.id WHERE m.id NOT IN (SELECT id FROM blocked)`
		}
		err := p.walk(ctx, pick, []any{p.keep, p.keep}, func(tx txn, ms []matRef) error {
			in, args := placeholders(len(ms)), matIDs(ms)
			n, err := tx.Exec(ctx, `DELETE FROM flowstone_lineage WHERE materialization_id IN (`+in+`)`, args...)
			if err != nil {
				return err
			}
			p.res.Lineage += n
			n, err = tx.Exec(ctx, `DELETE FROM flowstone_materializations WHERE id IN (`+in+`)`, args...)
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
	pick := func(page string) string {
		return `WITH ` + page + ` SELECT m.id, m.pipeline, m.asset, m.partition_key, m.external, m.finished_at
			FROM flowstone_materializations m JOIN page ON page.id = m.id WHERE ` + superseded + ` AND ` + hasValue
	}
	err := p.walk(ctx, pick, []any{p.keep, p.keep}, func(tx txn, ms []matRef) error {
		n, err := tx.Exec(ctx, `UPDATE flowstone_materializations SET value = NULL, views = NULL, external = 0
			WHERE id IN (`+placeholders(len(ms))+`)`, matIDs(ms)...)
		p.res.Values += n
		return err
	})
	if err != nil {
		return fmt.Errorf("values: %w", err)
	}
	return nil
}

// walk visits the materializations finished before the bound, newest
// first, a batch at a time. In each batch's transaction it locks the
// batch's rows (PostgreSQL; SQLite's write transactions are exclusive),
// then runs pick (in a statement of its own, so it sees what committed
// while it waited: a reuse that just claimed one), whose query starts from
// the CTE "page(id)" of the batch's ids and takes pickArgs, and passes what
// it selects to apply. Values held by IO managers are deleted once the
// transaction has committed.
func (p *pruner) walk(ctx context.Context, pick func(page string) string, pickArgs []any, apply func(tx txn, ms []matRef) error) error {
	filter, fargs := p.pipelineFilter("m")
	lock := ""
	if p.e.dialect == "postgres" {
		lock = " FOR UPDATE"
	}
	// Row comparisons, which both databases read as a range of the
	// (finished_at, id) index: an OR of the two columns would make every
	// batch scan the history from its newest end.
	const inPage = `(m.finished_at, m.id) < (?, ?) AND (m.finished_at, m.id) >= (?, ?)`
	page := `page(id) AS (SELECT m.id FROM flowstone_materializations m WHERE ` + inPage + filter + `)`
	atTime, atID := p.bound, ""
	for {
		var low struct {
			at int64
			id string
		}
		var n int
		rs, err := p.e.be.pool().Query(ctx, `SELECT m.finished_at, m.id FROM flowstone_materializations m
			WHERE (m.finished_at, m.id) < (?, ?)`+filter+` ORDER BY m.finished_at DESC, m.id DESC LIMIT ?`,
			slices.Concat([]any{atTime, atID}, fargs, []any{p.batch})...)
		if err != nil {
			return err
		}
		for rs.Next() {
			if err := rs.Scan(&low.at, &low.id); err != nil {
				rs.Close()
				return err
			}
			n++
		}
		rs.Close()
		if err := rs.Err(); err != nil || n == 0 {
			return err
		}
		pageArgs := slices.Concat([]any{atTime, atID, low.at, low.id}, fargs)
		var done []matRef
		err = p.e.be.inTx(ctx, func(tx txn) error {
			done = nil
			if _, err := tx.Exec(ctx, `SELECT m.id FROM flowstone_materializations m WHERE `+inPage+filter+lock, pageArgs...); err != nil {
				return err
			}
			ms, err := queryMatRefs(ctx, tx, pick(page), slices.Concat(pageArgs, pickArgs)...)
			if err != nil || len(ms) == 0 {
				return err
			}
			if err := apply(tx, ms); err != nil {
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
		atTime, atID = low.at, low.id
	}
}

// deleteExternal deletes the values of ms held by IO managers.
func (p *pruner) deleteExternal(ctx context.Context, ms []matRef) {
	for _, m := range ms {
		if !m.external {
			continue
		}
		var d ValueDeleter
		if b, ok := p.e.bindings[m.pipeline]; ok {
			if a := b.pipeline.Asset(m.asset); a != nil {
				d, _ = a.IO.(ValueDeleter)
			}
		}
		if d == nil {
			p.res.ExternalLeft++
			continue
		}
		ref := ValueRef{Pipeline: m.pipeline, Asset: m.asset, Partition: flowstone.Partition(m.partition), Materialization: m.id}
		if err := d.Delete(ctx, ref); err != nil {
			p.e.log.WarnContext(ctx, "prune: delete value", "pipeline", m.pipeline, "asset", m.asset, "materialization", m.id, "error", err)
			p.res.ExternalLeft++
			continue
		}
		p.res.ExternalDeleted++
	}
}

// jobs deletes River's finished job rows of FlowStone's kinds finalized
// before the bound, through River's own JobDeleteMany.
func (p *pruner) jobs(ctx context.Context) error {
	for {
		where, named, _ := p.jobFilter()
		n, err := p.e.be.deleteFinishedJobs(ctx, where, named, min(p.batch, 10_000))
		p.res.Jobs += int64(n)
		if err != nil {
			return fmt.Errorf("jobs: %w", err)
		}
		if n < min(p.batch, 10_000) {
			return nil
		}
	}
}

// jobFilter selects FlowStone's jobs finalized before the bound, as a
// River Where predicate with its named argument and as plain SQL with its
// argument: River's SQLite driver stores times as UTC text to the
// millisecond.
func (p *pruner) jobFilter() (where string, named river.NamedArgs, horizon any) {
	horizon = time.UnixMicro(p.bound).UTC()
	if p.e.dialect == "sqlite" {
		horizon = time.UnixMicro(p.bound).UTC().Format("2006-01-02 15:04:05.000")
	}
	return "kind LIKE 'flowstone%' AND finalized_at < @horizon", river.NamedArgs{"horizon": horizon}, horizon
}

// count answers a dry run: the same conditions, counted without deleting.
// The materializations kept are the roots (recent, newest, pointed at by a
// run that stays) and, transitively, what their lineage points to.
func (p *pruner) count(ctx context.Context) (PruneResult, error) {
	q := p.e.be.pool()
	rfilter, rargs := p.pipelineFilter("r")
	err := q.QueryRow(ctx, `SELECT count(*) FROM flowstone_runs r WHERE `+prunableRun+rfilter,
		append([]any{p.bound}, rargs...)...).Scan(&p.res.Runs)
	if err != nil {
		return p.res, fmt.Errorf("prune: %w", err)
	}
	bfilter, bargs := p.pipelineFilter("b")
	err = q.QueryRow(ctx, `SELECT count(*) FROM flowstone_backfills b WHERE b.finished_at < ? AND b.status <> 'running'`+bfilter,
		append([]any{p.bound}, bargs...)...).Scan(&p.res.Backfills)
	if err != nil {
		return p.res, fmt.Errorf("prune: %w", err)
	}
	mfilter, margs := p.pipelineFilter("m")
	kept := `WITH RECURSIVE kept(id) AS (
			SELECT m.id FROM flowstone_materializations m WHERE (m.finished_at >= ? OR NOT (` + superseded + `)
				OR EXISTS (SELECT 1 FROM flowstone_run_assets ra JOIN flowstone_runs r ON r.id = ra.run_id
					WHERE ra.materialization_id = m.id AND NOT (` + prunableRun + rfilter + `)))` + mfilter + `
			UNION
			SELECT l.upstream_materialization_id FROM kept JOIN flowstone_lineage l ON l.materialization_id = kept.id
		)`
	keptArgs := slices.Concat([]any{p.bound, p.keep, p.keep, p.bound}, rargs, margs)
	err = q.QueryRow(ctx, kept+`
		SELECT
			(SELECT count(*) FROM flowstone_materializations m WHERE m.finished_at < ?`+mfilter+` AND m.id NOT IN (SELECT id FROM kept)),
			(SELECT count(*) FROM flowstone_lineage l JOIN flowstone_materializations m ON m.id = l.materialization_id
				WHERE m.finished_at < ?`+mfilter+` AND m.id NOT IN (SELECT id FROM kept)),
			(SELECT count(*) FROM flowstone_materializations m WHERE m.finished_at < ?`+mfilter+` AND m.id IN (SELECT id FROM kept)
				AND `+superseded+` AND `+hasValue+`)`,
		slices.Concat(keptArgs, []any{p.bound}, margs, []any{p.bound}, margs, []any{p.bound}, margs, []any{p.keep, p.keep})...).
		Scan(&p.res.Materializations, &p.res.Lineage, &p.res.Values)
	if err != nil {
		return p.res, fmt.Errorf("prune: %w", err)
	}
	_, _, horizon := p.jobFilter()
	err = q.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE state IN ('completed', 'cancelled', 'discarded')
		AND kind LIKE 'flowstone%' AND finalized_at < ?`, horizon).Scan(&p.res.Jobs)
	if err != nil {
		return p.res, fmt.Errorf("prune: jobs: %w", err)
	}
	return p.res, nil
}

func queryMatRefs(ctx context.Context, q querier, query string, args ...any) ([]matRef, error) {
	rs, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []matRef
	for rs.Next() {
		var m matRef
		var external int
		if err := rs.Scan(&m.id, &m.pipeline, &m.asset, &m.partition, &external, &m.finished); err != nil {
			return nil, err
		}
		m.external = external == 1
		out = append(out, m)
	}
	return out, rs.Err()
}

func matIDs(ms []matRef) []any {
	out := make([]any, len(ms))
	for i, m := range ms {
		out[i] = m.id
	}
	return out
}

func anys(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
