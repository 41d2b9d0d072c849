package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// Node addresses one asset at one partition of a run.
type Node struct {
	Run       string
	Asset     string
	Partition string
}

// NewRun is a run to record.
type NewRun struct {
	ID, Pipeline, Partition string
	// Targets is the requested targets as JSON.
	Targets string
	// Config is the run's config as JSON; nil when it has none.
	Config     []byte
	ConfigHash string
	Force      bool
	// Total counts the run's nodes.
	Total    int
	RunKey   string
	Backfill string
}

// InsertRun records a running run. With a run key already used in the
// pipeline it records nothing and reports false.
func (Store) InsertRun(ctx context.Context, q Querier, r NewRun) (inserted bool, err error) {
	var cfg any
	if r.Config != nil {
		cfg = string(r.Config)
	}
	n, err := q.Exec(ctx, `INSERT INTO flowstone_runs
		(id, pipeline, partition_key, targets, config, config_hash, force, status, total, created_at, run_key, backfill_id)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
		r.ID, r.Pipeline, r.Partition, r.Targets, cfg, r.ConfigHash, boolInt(r.Force),
		RunRunning, r.Total, now(), r.RunKey, r.Backfill)
	if err != nil {
		return false, fmt.Errorf("record run: %w", err)
	}
	return n == 1, nil
}

// KeyedRun is a run as a run key started it: what was requested.
type KeyedRun struct {
	ID, Partition string
	// Targets is the requested targets as JSON.
	Targets string
	// Config is the run's config as JSON; nil when it has none.
	Config []byte
}

// RunByKey returns the run a run key started in pipeline.
func (Store) RunByKey(ctx context.Context, q Querier, pipeline, key string) (KeyedRun, error) {
	var r KeyedRun
	var cfg sql.NullString
	// run_key <> '' names the partial unique index's condition, so SQLite
	// probes it instead of walking every run of the pipeline.
	err := q.QueryRow(ctx, `SELECT id, partition_key, targets, config FROM flowstone_runs WHERE pipeline = ? AND run_key = ? AND run_key <> ''`, pipeline, key).
		Scan(&r.ID, &r.Partition, &r.Targets, &cfg)
	if cfg.Valid {
		r.Config = []byte(cfg.String)
	}
	return r, err
}

// NodeDeps is a node of a new run with its dependency counts: all its
// dependencies in the run, and those it cannot run without.
type NodeDeps struct {
	Asset, Partition string
	Deps, Required   int
	// Queued inserts the node queued instead of pending: a node with no
	// dependencies that its run recomputes, claimed as it is inserted.
	Queued bool
}

// Edge is a dependency between two nodes of a run.
type Edge struct {
	Asset, Partition            string
	Upstream, UpstreamPartition string
	Required                    bool
}

// insertChunk bounds multi-row inserts below both databases' limits on
// bound parameters.
const insertChunk = 200

// insertRows inserts rows in multi-row statements of insertChunk rows;
// each row has the columns' count of values. On SQLite fewer rows than a
// chunk go in statements of a power of two rows each (13 rows: 8, 4 and
// 1), so that the statement has at most nine texts whatever n is: the
// statement cache (stmtcache.go) prepares each once, where a text per row
// count had most group statements prepared afresh, and preparing costs
// more than running them. On PostgreSQL a statement is a round trip, and
// the rows go in one.
func insertRows(ctx context.Context, q Querier, head string, cols int, n int, row func(i int) []any) error {
	tuple := "(" + placeholders(cols) + ")"
	for start := 0; start < n; {
		end := min(start+insertChunk, n)
		if left := n - start; left < insertChunk && !isPgx(q) {
			end = start + floorPow2(left)
		}
		var b strings.Builder
		b.WriteString(head)
		args := make([]any, 0, cols*(end-start))
		for i := start; i < end; i++ {
			if i > start {
				b.WriteString(", ")
			}
			b.WriteString(tuple)
			args = append(args, row(i)...)
		}
		if _, err := q.Exec(ctx, b.String(), args...); err != nil {
			return err
		}
		start = end
	}
	return nil
}

// isPgx says whether q is PostgreSQL's.
func isPgx(q Querier) bool {
	_, ok := q.(pgxQuerier)
	return ok
}

// floorPow2 is the largest power of two at most n (n > 0).
func floorPow2(n int) int {
	p := 1
	for p*2 <= n {
		p *= 2
	}
	return p
}

// ceilPow2 is the smallest power of two at least n, and at least 2.
func ceilPow2(n int) int {
	p := 2
	for p < n {
		p *= 2
	}
	return p
}

// InsertRunAssets records the nodes of run, pending.
func (Store) InsertRunAssets(ctx context.Context, q Querier, run string, nodes []NodeDeps) error {
	err := insertRows(ctx, q, `INSERT INTO flowstone_run_assets (run_id, asset, partition_key, status, deps, required) VALUES `, 6, len(nodes),
		func(i int) []any {
			n := nodes[i]
			status := AssetPending
			if n.Queued {
				status = AssetQueued
			}
			return []any{run, n.Asset, n.Partition, status, n.Deps, n.Required}
		})
	if err != nil {
		return fmt.Errorf("record run assets: %w", err)
	}
	return nil
}

// InsertRunEdges records the dependency edges of run.
func (Store) InsertRunEdges(ctx context.Context, q Querier, run string, edges []Edge) error {
	err := insertRows(ctx, q, `INSERT INTO flowstone_run_edges (run_id, asset, partition_key, upstream, upstream_partition, required) VALUES `, 6, len(edges),
		func(i int) []any {
			e := edges[i]
			return []any{run, e.Asset, e.Partition, e.Upstream, e.UpstreamPartition, boolInt(e.Required)}
		})
	if err != nil {
		return fmt.Errorf("record run edges: %w", err)
	}
	return nil
}

// Upstream is one dependency of a node, with its state in the run.
type Upstream struct {
	Asset, Partition string
	Status           AssetStatus
	// Materialization is the one it produced or reused; empty when none.
	Materialization string
	Error           string
}

// Upstreams returns the upstream nodes of n with their state, ordered by
// asset and partition.
func (Store) Upstreams(ctx context.Context, q Querier, n Node) ([]Upstream, error) {
	rs, err := q.Query(ctx, `SELECT e.upstream, e.upstream_partition, ra.status, COALESCE(ra.materialization_id, ''), ra.error
		FROM flowstone_run_edges e JOIN flowstone_run_assets ra
			ON ra.run_id = e.run_id AND ra.asset = e.upstream AND ra.partition_key = e.upstream_partition
		WHERE e.run_id = ? AND e.asset = ? AND e.partition_key = ?
		ORDER BY e.upstream, e.upstream_partition`, n.Run, n.Asset, n.Partition)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []Upstream
	for rs.Next() {
		var u Upstream
		if err := rs.Scan(&u.Asset, &u.Partition, &u.Status, &u.Materialization, &u.Error); err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rs.Err()
}

// ClaimAsset moves n from pending to status (recording mat, when not
// empty, and msg); it reports false, changing nothing, when n was not
// pending. Of two transactions that find a node ready, only one claims it.
func (Store) ClaimAsset(ctx context.Context, q Querier, n Node, status AssetStatus, mat, msg string) (bool, error) {
	var fin, m any
	if status.Terminal() {
		fin = now()
	}
	if mat != "" {
		m = mat
	}
	c, err := q.Exec(ctx, `UPDATE flowstone_run_assets SET status = ?, materialization_id = ?, error = ?, finished_at = ?
		WHERE run_id = ? AND asset = ? AND partition_key = ? AND status = ?`,
		status, m, msg, fin, n.Run, n.Asset, n.Partition, AssetPending)
	return c == 1, err
}

// InsertArrivals records, for each dependent of upstream in run, that it
// arrived: block says what that does to dependents that require it.
func (Store) InsertArrivals(ctx context.Context, q Querier, upstream Node, block Block) error {
	if _, err := q.Exec(ctx, `INSERT INTO flowstone_arrivals (run_id, asset, partition_key, upstream, upstream_partition, required, block)
		SELECT run_id, asset, partition_key, upstream, upstream_partition, required, CASE WHEN required = 1 THEN CAST(? AS TEXT) ELSE '' END
		FROM flowstone_run_edges WHERE run_id = ? AND upstream = ? AND upstream_partition = ?
		ON CONFLICT DO NOTHING`, block, upstream.Run, upstream.Asset, upstream.Partition); err != nil {
		return fmt.Errorf("record arrivals of %s: %w", upstream.Asset, err)
	}
	return nil
}

// Readiness is a node's status and the arrivals of its dependencies.
type Readiness struct {
	Status          AssetStatus
	Deps, Required  int
	Early           bool
	Arrived         int
	ArrivedRequired int
	// Blocked is set when a required dependency's arrival blocks the node.
	Blocked bool
}

// Readiness reads n's readiness; found is false when n is not in the run.
// A pending node that cannot start yet (arrivals missing, no deadline
// passed) is read with a count of its arrivals alone: every upstream of a
// fan-in reads it as it finishes, so that count is the one cost that grows
// with the fan-in. ArrivedRequired and Blocked are read only when they
// decide something.
func (Store) Readiness(ctx context.Context, q Querier, n Node) (r Readiness, found bool, err error) {
	var early int
	err = q.QueryRow(ctx, `SELECT ra.status, ra.deps, ra.required, ra.early,
		(SELECT count(*) FROM flowstone_arrivals ar WHERE ar.run_id = ra.run_id AND ar.asset = ra.asset AND ar.partition_key = ra.partition_key)
		FROM flowstone_run_assets ra
		WHERE ra.run_id = ? AND ra.asset = ? AND ra.partition_key = ?`, n.Run, n.Asset, n.Partition).
		Scan(&r.Status, &r.Deps, &r.Required, &early, &r.Arrived)
	if errors.Is(err, sql.ErrNoRows) {
		return r, false, nil
	}
	if err != nil {
		return r, false, err
	}
	r.Early = early == 1
	if r.Status != AssetPending || r.Arrived < r.Deps && !r.Early {
		return r, true, nil
	}
	var worst int
	err = q.QueryRow(ctx, `SELECT COALESCE(sum(required), 0), COALESCE(max(CASE WHEN block <> '' THEN 1 ELSE 0 END), 0)
		FROM flowstone_arrivals WHERE run_id = ? AND asset = ? AND partition_key = ?`, n.Run, n.Asset, n.Partition).
		Scan(&r.ArrivedRequired, &worst)
	r.Blocked = worst > 0
	return r, err == nil, err
}

// Blocker returns the arrival that blocks n, the worst first (a failure
// before a skip), and its upstream's status.
func (Store) Blocker(ctx context.Context, q Querier, n Node) (up Node, block Block, status AssetStatus, err error) {
	up.Run = n.Run
	if err := q.QueryRow(ctx, `SELECT ar.upstream, ar.upstream_partition, ar.block, ra.status
		FROM flowstone_arrivals ar JOIN flowstone_run_assets ra
			ON ra.run_id = ar.run_id AND ra.asset = ar.upstream AND ra.partition_key = ar.upstream_partition
		WHERE ar.run_id = ? AND ar.asset = ? AND ar.partition_key = ? AND ar.block <> ''
		ORDER BY CASE ar.block WHEN ? THEN 0 ELSE 1 END, ar.upstream, ar.upstream_partition LIMIT 1`,
		n.Run, n.Asset, n.Partition, BlockUpstreamFailed).Scan(&up.Asset, &up.Partition, &block, &status); err != nil {
		return up, block, status, err
	}
	return up, block, status, nil
}

// RunOpen reports whether run has an asset left to finish.
func (Store) RunOpen(ctx context.Context, q Querier, run string) (bool, error) {
	var open int
	err := q.QueryRow(ctx, `SELECT count(*) FROM (SELECT 1 FROM flowstone_run_assets
		WHERE run_id = ? AND status IN (?, ?, ?, ?, ?) LIMIT 1) x`,
		run, AssetPending, AssetQueued, AssetRunning, AssetWaiting, AssetChecking).Scan(&open)
	return open > 0, err
}

// RunFailures counts the failed and upstream_failed assets of run.
func (Store) RunFailures(ctx context.Context, q Querier, run string) (int, error) {
	var failed int
	err := q.QueryRow(ctx, `SELECT count(*) FROM flowstone_run_assets WHERE run_id = ? AND status IN (?, ?)`,
		run, AssetFailed, AssetUpstreamFailed).Scan(&failed)
	return failed, err
}

// FinishRun sets a running run's final status; it reports false when the
// run was not running.
func (Store) FinishRun(ctx context.Context, q Querier, run string, status RunStatus) (bool, error) {
	n, err := q.Exec(ctx, `UPDATE flowstone_runs SET status = ?, finished_at = ? WHERE id = ? AND status = ?`,
		status, now(), run, RunRunning)
	return n == 1, err
}

// Run is a run's stored row.
type Run struct {
	ID, Pipeline, Partition string
	Status                  RunStatus
	// CreatedAt and FinishedAt are microseconds; FinishedAt is 0 while
	// running.
	CreatedAt, FinishedAt int64
	// RunKey is the run key ("" when the request gave none); Run and Runs
	// fill it in.
	RunKey string
}

// Run reads run id.
func (Store) Run(ctx context.Context, q Querier, id string) (r Run, found bool, err error) {
	var fin sql.NullInt64
	err = q.QueryRow(ctx, `SELECT pipeline, partition_key, status, created_at, finished_at, run_key FROM flowstone_runs WHERE id = ?`, id).
		Scan(&r.Pipeline, &r.Partition, &r.Status, &r.CreatedAt, &fin, &r.RunKey)
	if errors.Is(err, sql.ErrNoRows) {
		return r, false, nil
	}
	r.ID, r.FinishedAt = id, fin.Int64
	return r, err == nil, err
}

// RunStatus reads run id's status.
func (Store) RunStatus(ctx context.Context, q Querier, id string) (s RunStatus, found bool, err error) {
	err = q.QueryRow(ctx, `SELECT status FROM flowstone_runs WHERE id = ?`, id).Scan(&s)
	if errors.Is(err, sql.ErrNoRows) {
		return s, false, nil
	}
	return s, err == nil, err
}

// RunAsset is one node's row in a run.
type RunAsset struct {
	Asset, Partition      string
	Status                AssetStatus
	Error                 string
	Attempts              int
	Materialization       string
	StartedAt, FinishedAt int64
}

// RunAssets reads every node of run id, in the order they were recorded.
func (Store) RunAssets(ctx context.Context, q Querier, id string) ([]RunAsset, error) {
	rs, err := q.Query(ctx, `SELECT asset, partition_key, status, error, attempts, COALESCE(materialization_id, ''),
		COALESCE(started_at, 0), COALESCE(finished_at, 0)
		FROM flowstone_run_assets WHERE run_id = ?`, id)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []RunAsset
	for rs.Next() {
		var a RunAsset
		if err := rs.Scan(&a.Asset, &a.Partition, &a.Status, &a.Error, &a.Attempts, &a.Materialization, &a.StartedAt, &a.FinishedAt); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rs.Err()
}

// FailRun marks a running run failed, and its unfinished nodes failed with
// msg; it returns the run's backfill, and false when the run was not
// running.
func (Store) FailRun(ctx context.Context, q Querier, id, msg string) (backfill string, failed bool, err error) {
	err = q.QueryRow(ctx, `UPDATE flowstone_runs SET status = ?, finished_at = ? WHERE id = ? AND status = ? RETURNING backfill_id`,
		RunFailed, now(), id, RunRunning).Scan(&backfill)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	_, err = q.Exec(ctx, `UPDATE flowstone_run_assets SET status = ?, finished_at = ?, error = ?
		WHERE run_id = ? AND status IN (?, ?, ?, ?, ?)`,
		AssetFailed, now(), msg, id, AssetPending, AssetQueued, AssetRunning, AssetWaiting, AssetChecking)
	return backfill, err == nil, err
}

// CancelRun marks a run cancelled and returns its pipeline and backfill.
func (Store) CancelRun(ctx context.Context, q Querier, id string) (pipeline, backfill string, err error) {
	err = q.QueryRow(ctx, `UPDATE flowstone_runs SET status = ?, finished_at = ? WHERE id = ? RETURNING pipeline, backfill_id`,
		RunCancelled, now(), id).Scan(&pipeline, &backfill)
	return pipeline, backfill, err
}

// CancelRunAssets marks the unfinished nodes of run id cancelled and
// returns the River jobs of those that had one.
func (Store) CancelRunAssets(ctx context.Context, q Querier, id string) ([]int64, error) {
	rs, err := q.Query(ctx, `UPDATE flowstone_run_assets SET status = ?, finished_at = ?, error = 'cancelled'
		WHERE run_id = ? AND status IN (?, ?, ?, ?, ?) RETURNING COALESCE(job_id, 0)`,
		AssetCancelled, now(), id, AssetPending, AssetQueued, AssetRunning, AssetWaiting, AssetChecking)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var jobs []int64
	for rs.Next() {
		var jid int64
		if err := rs.Scan(&jid); err != nil {
			return nil, err
		}
		if jid != 0 {
			jobs = append(jobs, jid)
		}
	}
	return jobs, rs.Err()
}

// RunSummary is one line of a run listing.
type RunSummary struct {
	Run
	// Open counts the nodes left to finish, Failed the failed and
	// upstream_failed ones.
	Open, Failed int
}

// Runs lists the newest runs of pipeline (every pipeline when empty).
func (Store) Runs(ctx context.Context, q Querier, pipeline string, limit int) ([]RunSummary, error) {
	// Two statements rather than "? = '' OR pipeline = ?", which no index
	// serves: each reads its index newest first and stops at limit.
	where, args := ``, []any{AssetPending, AssetQueued, AssetRunning, AssetWaiting, AssetFailed, AssetUpstreamFailed}
	if pipeline != "" {
		where, args = `WHERE r.pipeline = ?`, append(args, pipeline)
	}
	rs, err := q.Query(ctx, `SELECT r.id, r.pipeline, r.partition_key, r.status,
		(SELECT count(*) FROM flowstone_run_assets a WHERE a.run_id = r.id AND a.status IN (?, ?, ?, ?)),
		(SELECT count(*) FROM flowstone_run_assets a WHERE a.run_id = r.id AND a.status IN (?, ?)),
		r.created_at, COALESCE(r.finished_at, 0), r.run_key
		FROM flowstone_runs r `+where+` ORDER BY r.created_at DESC, r.id DESC LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []RunSummary
	for rs.Next() {
		var s RunSummary
		if err := rs.Scan(&s.ID, &s.Pipeline, &s.Partition, &s.Status, &s.Open, &s.Failed, &s.CreatedAt, &s.FinishedAt, &s.RunKey); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rs.Err()
}

// RunPipeline returns the pipeline of run id.
func (Store) RunPipeline(ctx context.Context, q Querier, id string) (pipeline string, found bool, err error) {
	err = q.QueryRow(ctx, `SELECT pipeline FROM flowstone_runs WHERE id = ?`, id).Scan(&pipeline)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	return pipeline, err == nil, err
}

// AssetPartitions lists the partitions run holds of asset, sorted.
func (Store) AssetPartitions(ctx context.Context, q Querier, run, asset string) ([]string, error) {
	return queryStrings(ctx, q, `SELECT partition_key FROM flowstone_run_assets WHERE run_id = ? AND asset = ? ORDER BY partition_key`, run, asset)
}

// RunAssetKeys lists the assets run holds, sorted.
func (Store) RunAssetKeys(ctx context.Context, q Querier, run string) ([]string, error) {
	return queryStrings(ctx, q, `SELECT DISTINCT asset FROM flowstone_run_assets WHERE run_id = ? ORDER BY asset`, run)
}

// NodeStatus reads node n's status.
func (Store) NodeStatus(ctx context.Context, q Querier, n Node) (s AssetStatus, found bool, err error) {
	err = q.QueryRow(ctx, `SELECT status FROM flowstone_run_assets WHERE run_id = ? AND asset = ? AND partition_key = ?`,
		n.Run, n.Asset, n.Partition).Scan(&s)
	if errors.Is(err, sql.ErrNoRows) {
		return s, false, nil
	}
	return s, err == nil, err
}

func queryStrings(ctx context.Context, q Querier, query string, args ...any) ([]string, error) {
	rs, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []string
	for rs.Next() {
		var s string
		if err := rs.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rs.Err()
}

// Waiting is a node waiting for its strategy to continue (a gate's
// decision).
type Waiting struct {
	Node
	Pipeline string
	// Since is when it started, in microseconds.
	Since int64
	// State is the value stored under the state name Waiting was asked
	// for (a gate's decision, stored before the job applying it runs), ""
	// when none is.
	State string
}

// Waiting lists the waiting nodes of pipeline (every pipeline when empty),
// oldest first, each with its state stored under name.
func (Store) Waiting(ctx context.Context, q Querier, pipeline, name string) ([]Waiting, error) {
	rs, err := q.Query(ctx, `SELECT ra.run_id, r.pipeline, ra.asset, ra.partition_key, COALESCE(ra.started_at, 0), COALESCE(s.value, '')
		FROM flowstone_run_assets ra JOIN flowstone_runs r ON r.id = ra.run_id
		LEFT JOIN flowstone_state s ON s.run_id = ra.run_id AND s.asset = ra.asset AND s.partition_key = ra.partition_key AND s.name = ?
		WHERE ra.status = ? AND (? = '' OR r.pipeline = ?) ORDER BY ra.started_at, ra.run_id, ra.asset, ra.partition_key`,
		name, AssetWaiting, pipeline, pipeline)
	if err != nil {
		return nil, err
	}
	return scanWaiting(rs)
}

// scanWaiting reads the rows of Waiting and StatesNamed.
func scanWaiting(rs Rows) ([]Waiting, error) {
	defer rs.Close()
	var out []Waiting
	for rs.Next() {
		var w Waiting
		if err := rs.Scan(&w.Run, &w.Pipeline, &w.Asset, &w.Partition, &w.Since, &w.State); err != nil {
			return nil, err
		}
		out = append(out, w)
	}
	return out, rs.Err()
}

// StatesNamed lists the state stored under name of pipeline's runs (every
// pipeline when empty), newest run first, at most limit: the gates' stored
// decisions. Since is the node's start.
func (Store) StatesNamed(ctx context.Context, q Querier, pipeline, name string, limit int) ([]Waiting, error) {
	rs, err := q.Query(ctx, `SELECT s.run_id, r.pipeline, s.asset, s.partition_key, COALESCE(ra.started_at, 0), s.value
		FROM flowstone_state s JOIN flowstone_runs r ON r.id = s.run_id
		LEFT JOIN flowstone_run_assets ra ON ra.run_id = s.run_id AND ra.asset = s.asset AND ra.partition_key = s.partition_key
		WHERE s.name = ? AND (? = '' OR r.pipeline = ?) ORDER BY r.created_at DESC, s.run_id, s.asset, s.partition_key LIMIT ?`,
		name, pipeline, pipeline, limit)
	if err != nil {
		return nil, err
	}
	return scanWaiting(rs)
}
