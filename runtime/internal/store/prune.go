package store

import (
	"context"
	"slices"
)

// PruneScope is what a prune reaches: the history that finished before
// Before (microseconds) of Pipeline (every pipeline when empty), keeping
// per pipeline, asset and partition the newest materialization and the
// Keep newest successful ones.
type PruneScope struct {
	Before   int64
	Pipeline string
	Keep     int
}

// filter is the condition on alias's pipeline, with its arguments.
func (s PruneScope) filter(alias string) (string, []any) {
	if s.Pipeline == "" {
		return "", nil
	}
	return " AND " + alias + ".pipeline = ?", []any{s.Pipeline}
}

// prunableRun is the condition, on flowstone_runs aliased r, of a run a
// prune deletes: finished before the bound (its argument) and not part of
// a backfill still going, which reads its runs' statuses.
const prunableRun = `r.finished_at < ? AND r.status <> 'running'
	AND NOT EXISTS (SELECT 1 FROM flowstone_backfills b WHERE b.id = r.backfill_id AND b.status = 'running')`

// superseded is the condition, on flowstone_materializations aliased m, of
// a materialization that is neither the newest of its partition nor one of
// the Keep newest successful ones. Its arguments are Keep, twice.
const superseded = `EXISTS (SELECT 1 FROM flowstone_materializations n
		WHERE n.pipeline = m.pipeline AND n.asset = m.asset AND n.partition_key = m.partition_key
		AND (n.finished_at > m.finished_at OR n.finished_at = m.finished_at AND n.id > m.id))
	AND (m.status <> 'succeeded' OR (SELECT count(*) FROM (SELECT 1 FROM flowstone_materializations n
		WHERE n.pipeline = m.pipeline AND n.asset = m.asset AND n.partition_key = m.partition_key AND n.status = 'succeeded'
		AND (n.finished_at > m.finished_at OR n.finished_at = m.finished_at AND n.id > m.id) LIMIT ?) newer) >= ?)`

// hasValue is the condition of a materialization m whose value a prune can
// drop: it has one, and no run still running points at it.
const hasValue = `(m.value IS NOT NULL OR m.views IS NOT NULL OR m.external = 1)
	AND NOT EXISTS (SELECT 1 FROM flowstone_run_assets ra JOIN flowstone_runs r ON r.id = ra.run_id
		WHERE ra.materialization_id = m.id AND r.status = 'running')`

// PrunableRuns returns at most limit runs a prune deletes, oldest first.
func (Store) PrunableRuns(ctx context.Context, q Querier, s PruneScope, limit int) ([]string, error) {
	filter, args := s.filter("r")
	return queryStrings(ctx, q, `SELECT r.id FROM flowstone_runs r WHERE `+prunableRun+filter+` ORDER BY r.finished_at LIMIT ?`,
		slices.Concat([]any{s.Before}, args, []any{limit})...)
}

// DeleteRuns deletes runs with everything FlowStone's own tables keep of
// them: their nodes, arrivals, edges, strategy state, logs and trace. (Kinds with tables
// of their own delete theirs: strategy.RunDeleter.)
func (Store) DeleteRuns(ctx context.Context, q Querier, runs []string) (int64, error) {
	in, args := placeholders(len(runs)), anys(runs)
	for _, table := range []string{"flowstone_run_assets", "flowstone_arrivals", "flowstone_run_edges", "flowstone_state", "flowstone_logs", "flowstone_run_traces"} {
		if _, err := q.Exec(ctx, `DELETE FROM `+table+` WHERE run_id IN (`+in+`)`, args...); err != nil {
			return 0, err
		}
	}
	return q.Exec(ctx, `DELETE FROM flowstone_runs WHERE id IN (`+in+`)`, args...)
}

// PrunableBackfills returns at most limit finished backfills a prune
// deletes, oldest first.
func (Store) PrunableBackfills(ctx context.Context, q Querier, s PruneScope, limit int) ([]string, error) {
	filter, args := s.filter("b")
	return queryStrings(ctx, q, `SELECT b.id FROM flowstone_backfills b
		WHERE b.finished_at < ? AND b.status <> 'running'`+filter+` ORDER BY b.finished_at LIMIT ?`,
		slices.Concat([]any{s.Before}, args, []any{limit})...)
}

// DeleteBackfills deletes backfills with their partitions' rows.
func (Store) DeleteBackfills(ctx context.Context, q Querier, ids []string) (int64, error) {
	in, args := placeholders(len(ids)), anys(ids)
	if _, err := q.Exec(ctx, `DELETE FROM flowstone_backfill_partitions WHERE backfill_id IN (`+in+`)`, args...); err != nil {
		return 0, err
	}
	return q.Exec(ctx, `DELETE FROM flowstone_backfills WHERE id IN (`+in+`)`, args...)
}

// PrunePage is a batch of materializations in the scope, newest first:
// those at or after (LowAt, LowID) and before (HighAt, HighID), in
// (finished_at, id) order.
type PrunePage struct {
	HighAt, LowAt int64
	HighID, LowID string
}

// inPage is the condition of a materialization m in a page; its arguments
// are the page's bounds then the scope's filter. Row comparisons, which
// both databases read as a range of the (finished_at, id) index: an OR of
// the two columns would make every page scan the history from its newest
// end.
const inPage = `(m.finished_at, m.id) < (?, ?) AND (m.finished_at, m.id) >= (?, ?)`

func (s PruneScope) page(p PrunePage) (cte string, args []any) {
	filter, fargs := s.filter("m")
	return `page(id) AS (SELECT m.id FROM flowstone_materializations m WHERE ` + inPage + filter + `)`,
		slices.Concat([]any{p.HighAt, p.HighID, p.LowAt, p.LowID}, fargs)
}

// NextPrunePage returns the page of at most limit materializations of the
// scope finished before (at, id); n is how many it holds, 0 at the end.
// The first page starts at (s.Before, "").
func (Store) NextPrunePage(ctx context.Context, q Querier, s PruneScope, at int64, id string, limit int) (p PrunePage, n int, err error) {
	filter, fargs := s.filter("m")
	rs, err := q.Query(ctx, `SELECT m.finished_at, m.id FROM flowstone_materializations m
		WHERE (m.finished_at, m.id) < (?, ?)`+filter+` ORDER BY m.finished_at DESC, m.id DESC LIMIT ?`,
		slices.Concat([]any{at, id}, fargs, []any{limit})...)
	if err != nil {
		return p, 0, err
	}
	defer rs.Close()
	p.HighAt, p.HighID = at, id
	for rs.Next() {
		if err := rs.Scan(&p.LowAt, &p.LowID); err != nil {
			return p, 0, err
		}
		n++
	}
	return p, n, rs.Err()
}

// LockPrunePage locks the rows of a page until the transaction ends
// (PostgreSQL only).
func (s Store) LockPrunePage(ctx context.Context, q Querier, scope PruneScope, p PrunePage) error {
	filter, fargs := scope.filter("m")
	_, err := q.Exec(ctx, `SELECT m.id FROM flowstone_materializations m WHERE `+inPage+filter+` FOR UPDATE`,
		slices.Concat([]any{p.HighAt, p.HighID, p.LowAt, p.LowID}, fargs)...)
	return err
}

// Pruned is a materialization a prune deletes or drops the value of.
type Pruned struct {
	ID, Pipeline, Asset, Partition string
	// External is set when an IO manager holds its value.
	External bool
}

// PrunableInPage returns the materializations of a page a prune deletes:
// superseded, pointed at by no run's node and by no lineage row of a
// materialization that stays. A materialization is read by newer ones
// only, so when the walk reaches a page, what read its rows from newer
// pages is gone or kept; within the page, blocked spreads what is kept
// down the lineage.
func (Store) PrunableInPage(ctx context.Context, q Querier, s PruneScope, p PrunePage) ([]Pruned, error) {
	page, args := s.page(p)
	return queryPruned(ctx, q, `WITH RECURSIVE `+page+`, blocked(id) AS (
			SELECT m.id FROM flowstone_materializations m JOIN page ON page.id = m.id
			WHERE NOT (`+superseded+`)
				OR EXISTS (SELECT 1 FROM flowstone_run_assets ra WHERE ra.materialization_id = m.id)
				OR EXISTS (SELECT 1 FROM flowstone_lineage l WHERE l.upstream_materialization_id = m.id
					AND l.materialization_id NOT IN (SELECT id FROM page))
			UNION
			SELECT l.upstream_materialization_id FROM blocked JOIN flowstone_lineage l ON l.materialization_id = blocked.id
			WHERE l.upstream_materialization_id IN (SELECT id FROM page)
		)
		SELECT m.id, m.pipeline, m.asset, m.partition_key, m.external
		FROM flowstone_materializations m JOIN page ON page.id = m.id WHERE m.id NOT IN (SELECT id FROM blocked)`,
		append(args, s.Keep, s.Keep)...)
}

// ValuesInPage returns the superseded materializations of a page whose
// value a prune drops (they stay because something points at them).
func (Store) ValuesInPage(ctx context.Context, q Querier, s PruneScope, p PrunePage) ([]Pruned, error) {
	page, args := s.page(p)
	return queryPruned(ctx, q, `WITH `+page+` SELECT m.id, m.pipeline, m.asset, m.partition_key, m.external
		FROM flowstone_materializations m JOIN page ON page.id = m.id WHERE `+superseded+` AND `+hasValue,
		append(args, s.Keep, s.Keep)...)
}

// DeleteMaterializations deletes materializations with their lineage rows
// and the results of the checks run against them.
func (Store) DeleteMaterializations(ctx context.Context, q Querier, ids []string) (lineage, checks, mats int64, err error) {
	in, args := placeholders(len(ids)), anys(ids)
	if lineage, err = q.Exec(ctx, `DELETE FROM flowstone_lineage WHERE materialization_id IN (`+in+`)`, args...); err != nil {
		return 0, 0, 0, err
	}
	if checks, err = q.Exec(ctx, `DELETE FROM flowstone_check_results WHERE materialization_id IN (`+in+`)`, args...); err != nil {
		return lineage, 0, 0, err
	}
	mats, err = q.Exec(ctx, `DELETE FROM flowstone_materializations WHERE id IN (`+in+`)`, args...)
	return lineage, checks, mats, err
}

// DropValues removes the values of materializations, which stay.
func (Store) DropValues(ctx context.Context, q Querier, ids []string) (int64, error) {
	return q.Exec(ctx, `UPDATE flowstone_materializations SET value = NULL, views = NULL, external = 0
		WHERE id IN (`+placeholders(len(ids))+`)`, anys(ids)...)
}

// PruneCounts is what a prune deletes.
type PruneCounts struct {
	Runs, Backfills, Materializations, Lineage, Checks, Values, Jobs int64
}

// CountPrune counts what a prune of scope deletes, deleting nothing; jobs
// before jobsHorizon (FinishedJobs's horizon). The materializations kept
// are the roots (recent, newest, pointed at by a run that stays) and,
// transitively, what their lineage points to.
func (Store) CountPrune(ctx context.Context, q Querier, s PruneScope, jobsHorizon any) (PruneCounts, error) {
	var c PruneCounts
	rfilter, rargs := s.filter("r")
	err := q.QueryRow(ctx, `SELECT count(*) FROM flowstone_runs r WHERE `+prunableRun+rfilter,
		append([]any{s.Before}, rargs...)...).Scan(&c.Runs)
	if err != nil {
		return c, err
	}
	bfilter, bargs := s.filter("b")
	err = q.QueryRow(ctx, `SELECT count(*) FROM flowstone_backfills b WHERE b.finished_at < ? AND b.status <> 'running'`+bfilter,
		append([]any{s.Before}, bargs...)...).Scan(&c.Backfills)
	if err != nil {
		return c, err
	}
	mfilter, margs := s.filter("m")
	kept := `WITH RECURSIVE kept(id) AS (
			SELECT m.id FROM flowstone_materializations m WHERE (m.finished_at >= ? OR NOT (` + superseded + `)
				OR EXISTS (SELECT 1 FROM flowstone_run_assets ra JOIN flowstone_runs r ON r.id = ra.run_id
					WHERE ra.materialization_id = m.id AND NOT (` + prunableRun + rfilter + `)))` + mfilter + `
			UNION
			SELECT l.upstream_materialization_id FROM kept JOIN flowstone_lineage l ON l.materialization_id = kept.id
		)`
	old := []any{s.Before}
	err = q.QueryRow(ctx, kept+`
		SELECT
			(SELECT count(*) FROM flowstone_materializations m WHERE m.finished_at < ?`+mfilter+` AND m.id NOT IN (SELECT id FROM kept)),
			(SELECT count(*) FROM flowstone_lineage l JOIN flowstone_materializations m ON m.id = l.materialization_id
				WHERE m.finished_at < ?`+mfilter+` AND m.id NOT IN (SELECT id FROM kept)),
			(SELECT count(*) FROM flowstone_check_results c JOIN flowstone_materializations m ON m.id = c.materialization_id
				WHERE m.finished_at < ?`+mfilter+` AND m.id NOT IN (SELECT id FROM kept)),
			(SELECT count(*) FROM flowstone_materializations m WHERE m.finished_at < ?`+mfilter+` AND m.id IN (SELECT id FROM kept)
				AND `+superseded+` AND `+hasValue+`)`,
		slices.Concat([]any{s.Before, s.Keep, s.Keep, s.Before}, rargs, margs,
			old, margs, old, margs, old, margs, old, margs, []any{s.Keep, s.Keep})...).
		Scan(&c.Materializations, &c.Lineage, &c.Checks, &c.Values)
	if err != nil {
		return c, err
	}
	err = q.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE state IN ('completed', 'cancelled', 'discarded')
		AND kind LIKE 'flowstone%' AND finalized_at < ?`, jobsHorizon).Scan(&c.Jobs)
	return c, err
}

// FinishedJobs is the River JobDeleteMany predicate, with its named
// argument, of FlowStone's jobs finalized before horizon: a time.Time on
// PostgreSQL, UTC text to the millisecond ("2006-01-02 15:04:05.000") on
// SQLite, as River's SQLite driver stores times.
func FinishedJobs(horizon any) (where string, args map[string]any) {
	return "kind LIKE 'flowstone%' AND finalized_at < @horizon", map[string]any{"horizon": horizon}
}

func queryPruned(ctx context.Context, q Querier, query string, args ...any) ([]Pruned, error) {
	rs, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []Pruned
	for rs.Next() {
		var m Pruned
		var external int
		if err := rs.Scan(&m.ID, &m.Pipeline, &m.Asset, &m.Partition, &external); err != nil {
			return nil, err
		}
		m.External = external == 1
		out = append(out, m)
	}
	return out, rs.Err()
}
