package store

import (
	"context"
	"database/sql"
	"errors"
	"strings"
)

// AutomationCursor returns a pipeline's automation cursor: the finish time
// (microseconds) up to which its materializations have been evaluated;
// found is false before the first evaluation.
func (Store) AutomationCursor(ctx context.Context, q Querier, pipeline string) (cursor int64, found bool, err error) {
	err = q.QueryRow(ctx, `SELECT cursor_at FROM flowstone_automation WHERE pipeline = ?`, pipeline).Scan(&cursor)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	return cursor, err == nil, err
}

// SaveAutomationCursor records an evaluation of pipeline that read up to
// cursor.
func (Store) SaveAutomationCursor(ctx context.Context, q Querier, pipeline string, cursor int64) error {
	_, err := q.Exec(ctx, `INSERT INTO flowstone_automation (pipeline, cursor_at, evaluations, evaluated_at) VALUES (?, ?, 1, ?)
		ON CONFLICT (pipeline) DO UPDATE SET cursor_at = excluded.cursor_at,
		evaluations = flowstone_automation.evaluations + 1, evaluated_at = excluded.evaluated_at`, pipeline, cursor, now())
	return err
}

// NewSuccess is a successful materialization an automation
// evaluation reads.
type NewSuccess struct {
	ID, Asset, Partition string
	// FinishedAt is in microseconds.
	FinishedAt int64
}

// NewSuccesses returns up to limit successful materializations of pipeline
// that finished after after and at or before upto, oldest first.
func (Store) NewSuccesses(ctx context.Context, q Querier, pipeline string, after, upto int64, limit int) ([]NewSuccess, error) {
	// The status literal lets both databases use the partial index
	// flowstone_materializations_news.
	rs, err := q.Query(ctx, `SELECT id, asset, partition_key, finished_at FROM flowstone_materializations
		WHERE pipeline = ? AND status = 'succeeded' AND finished_at > ? AND finished_at <= ?
		ORDER BY finished_at, id LIMIT ?`, pipeline, after, upto, limit)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []NewSuccess
	for rs.Next() {
		var m NewSuccess
		if err := rs.Scan(&m.ID, &m.Asset, &m.Partition, &m.FinishedAt); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rs.Err()
}

// NewestFinished returns, for each of partitions that asset has a
// materialization of (of any status), when the newest one finished
// (microseconds). Each partition is one backward probe of (pipeline,
// asset, partition_key, finished_at, id): the cost follows the partitions
// asked for, not their history (max() grouped by partition read every
// materialization of each).
func (Store) NewestFinished(ctx context.Context, q Querier, pipeline, asset string, partitions []string) (map[string]int64, error) {
	out := map[string]int64{}
	for len(partitions) > 0 {
		batch := partitions[:min(len(partitions), 500)]
		partitions = partitions[len(batch):]
		args := anys(batch)
		args = append(args, pipeline, asset)
		rs, err := q.Query(ctx, `WITH keys(k) AS (VALUES `+strings.TrimSuffix(strings.Repeat("(?), ", len(batch)), ", ")+`)
			SELECT keys.k, (SELECT x.finished_at FROM flowstone_materializations x
				WHERE x.pipeline = ? AND x.asset = ? AND x.partition_key = keys.k ORDER BY x.finished_at DESC LIMIT 1)
			FROM keys`, args...)
		if err != nil {
			return nil, err
		}
		for rs.Next() {
			var k string
			var at sql.NullInt64
			if err := rs.Scan(&k, &at); err != nil {
				rs.Close()
				return nil, err
			}
			if at.Valid {
				out[k] = at.Int64
			}
		}
		err = rs.Err()
		rs.Close()
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// ReadCheck asks what asset's newest materialization of Partition read of
// Upstream at UpstreamPartition.
type ReadCheck struct {
	Partition, Upstream, UpstreamPartition string
}

// NewestRead answers a ReadCheck about a partition that has a
// materialization.
type NewestRead struct {
	ReadCheck
	// Materialization is the partition's newest materialization, of any
	// status; StartedAt and FinishedAt are its times (microseconds).
	Materialization       string
	StartedAt, FinishedAt int64
	// Read is set when its lineage names a materialization of the
	// upstream partition; ReadAt is when that one finished.
	Read   bool
	ReadAt int64
}

// NewestReads answers checks about asset's partitions: each partition's
// newest materialization (one backward probe of (pipeline, asset,
// partition_key, finished_at, id)) and what it read of the upstream
// partition (a probe of the lineage's primary key and one of the
// materialization it names). A partition with no materialization has no
// row. The cost follows the checks, not the history.
func (Store) NewestReads(ctx context.Context, q Querier, pipeline, asset string, checks []ReadCheck) ([]NewestRead, error) {
	var out []NewestRead
	for len(checks) > 0 {
		batch := checks[:min(len(checks), 300)]
		checks = checks[len(batch):]
		args := make([]any, 0, 3*len(batch)+2)
		for _, c := range batch {
			args = append(args, c.Partition, c.Upstream, c.UpstreamPartition)
		}
		args = append(args, pipeline, asset)
		rs, err := q.Query(ctx, `WITH c(k, ua, up) AS (VALUES `+strings.TrimSuffix(strings.Repeat("(?, ?, ?), ", len(batch)), ", ")+`)
			SELECT c.k, c.ua, c.up, m.id, m.started_at, m.finished_at,
				(SELECT u.finished_at FROM flowstone_lineage l JOIN flowstone_materializations u ON u.id = l.upstream_materialization_id
					WHERE l.materialization_id = m.id AND l.upstream_asset = c.ua AND l.upstream_partition = c.up)
			FROM c JOIN flowstone_materializations m ON m.id = (SELECT x.id FROM flowstone_materializations x
				WHERE x.pipeline = ? AND x.asset = ? AND x.partition_key = c.k ORDER BY x.finished_at DESC, x.id DESC LIMIT 1)`, args...)
		if err != nil {
			return nil, err
		}
		for rs.Next() {
			var r NewestRead
			var at sql.NullInt64
			if err := rs.Scan(&r.Partition, &r.Upstream, &r.UpstreamPartition, &r.Materialization, &r.StartedAt, &r.FinishedAt, &at); err != nil {
				rs.Close()
				return nil, err
			}
			r.Read, r.ReadAt = at.Valid, at.Int64
			out = append(out, r)
		}
		err = rs.Err()
		rs.Close()
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// ActiveNode is an asset and partition some running run of a pipeline has
// yet to finish.
type ActiveNode struct{ Asset, Partition, Run string }

// ActiveNodes returns the assets and partitions that running runs of
// pipeline have pending, queued, running, waiting or checking, each with
// the oldest such run (run IDs sort by creation).
func (Store) ActiveNodes(ctx context.Context, q Querier, pipeline string) ([]ActiveNode, error) {
	// CROSS JOIN keeps SQLite from walking every run of the pipeline
	// (probing each one's run assets): the few unfinished rows of the
	// status-first index lead.
	rs, err := q.Query(ctx, `SELECT ra.asset, ra.partition_key, MIN(ra.run_id) FROM flowstone_run_assets ra
		CROSS JOIN flowstone_runs r
		WHERE r.id = ra.run_id AND ra.status IN (?, ?, ?, ?, ?) AND r.pipeline = ?
		GROUP BY ra.asset, ra.partition_key`,
		AssetPending, AssetQueued, AssetRunning, AssetWaiting, AssetChecking, pipeline)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []ActiveNode
	for rs.Next() {
		var n ActiveNode
		if err := rs.Scan(&n.Asset, &n.Partition, &n.Run); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, rs.Err()
}

// RunningWithKeyPrefix counts the running runs of pipeline whose run key
// starts with prefix.
func (Store) RunningWithKeyPrefix(ctx context.Context, q Querier, pipeline, prefix string) (int, error) {
	var n int
	err := q.QueryRow(ctx, `SELECT count(*) FROM flowstone_runs WHERE status = 'running' AND pipeline = ? AND run_key LIKE ?`,
		pipeline, prefix+"%").Scan(&n)
	return n, err
}

// AutomationPending is a candidate an evaluation could not launch yet.
type AutomationPending struct {
	Asset, Partition, Reason string
	// Trigger is the newest materialization that triggered it; empty for
	// a missing partition.
	Trigger string
	// TriggerAt is when the newest materialization that triggered it
	// finished (microseconds); 0 for a missing partition.
	TriggerAt int64
	// News is the upstream materializations that triggered it, as the
	// runtime encodes them; empty for a missing partition.
	News string
}

// AutomationPendings returns the pending candidates of pipeline.
func (Store) AutomationPendings(ctx context.Context, q Querier, pipeline string) ([]AutomationPending, error) {
	rs, err := q.Query(ctx, `SELECT p.asset, p.partition_key, p.reason, p.trigger_id, p.trigger_at, COALESCE(n.news, '')
		FROM flowstone_automation_pending p LEFT JOIN flowstone_automation_news n
			ON n.pipeline = p.pipeline AND n.asset = p.asset AND n.partition_key = p.partition_key
		WHERE p.pipeline = ? ORDER BY p.asset, p.partition_key`, pipeline)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []AutomationPending
	for rs.Next() {
		var p AutomationPending
		if err := rs.Scan(&p.Asset, &p.Partition, &p.Reason, &p.Trigger, &p.TriggerAt, &p.News); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rs.Err()
}

// SetAutomationPending records (or replaces) a pending candidate.
func (Store) SetAutomationPending(ctx context.Context, q Querier, pipeline string, p AutomationPending) error {
	if _, err := q.Exec(ctx, `INSERT INTO flowstone_automation_pending (pipeline, asset, partition_key, reason, trigger_id, trigger_at)
		VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (pipeline, asset, partition_key) DO UPDATE SET reason = excluded.reason, trigger_id = excluded.trigger_id,
		trigger_at = excluded.trigger_at`,
		pipeline, p.Asset, p.Partition, p.Reason, p.Trigger, p.TriggerAt); err != nil {
		return err
	}
	_, err := q.Exec(ctx, `INSERT INTO flowstone_automation_news (pipeline, asset, partition_key, news) VALUES (?, ?, ?, ?)
		ON CONFLICT (pipeline, asset, partition_key) DO UPDATE SET news = excluded.news`,
		pipeline, p.Asset, p.Partition, p.News)
	return err
}

// DeleteAutomationPending forgets a pending candidate.
func (Store) DeleteAutomationPending(ctx context.Context, q Querier, pipeline, asset, partition string) error {
	if _, err := q.Exec(ctx, `DELETE FROM flowstone_automation_pending WHERE pipeline = ? AND asset = ? AND partition_key = ?`,
		pipeline, asset, partition); err != nil {
		return err
	}
	_, err := q.Exec(ctx, `DELETE FROM flowstone_automation_news WHERE pipeline = ? AND asset = ? AND partition_key = ?`,
		pipeline, asset, partition)
	return err
}

// AutomationAsset is an automated asset's stored state.
type AutomationAsset struct {
	// MissingDone is the last partition key auto=missing decided on; ""
	// with HasMissing false before the first.
	MissingDone string
	HasMissing  bool
	Overdue     bool
	// OverdueAt is when Overdue last changed (microseconds).
	OverdueAt int64
}

// AutomationAssets returns the stored state of pipeline's automated
// assets, by asset.
func (Store) AutomationAssets(ctx context.Context, q Querier, pipeline string) (map[string]AutomationAsset, error) {
	rs, err := q.Query(ctx, `SELECT asset, missing_done, overdue, overdue_at FROM flowstone_automation_assets WHERE pipeline = ?`, pipeline)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	out := map[string]AutomationAsset{}
	for rs.Next() {
		var asset string
		var done sql.NullString
		var a AutomationAsset
		var overdue int
		if err := rs.Scan(&asset, &done, &overdue, &a.OverdueAt); err != nil {
			return nil, err
		}
		a.MissingDone, a.HasMissing, a.Overdue = done.String, done.Valid, overdue != 0
		out[asset] = a
	}
	return out, rs.Err()
}

// SetMissingDone records the last partition key auto=missing decided on.
func (Store) SetMissingDone(ctx context.Context, q Querier, pipeline, asset, key string) error {
	_, err := q.Exec(ctx, `INSERT INTO flowstone_automation_assets (pipeline, asset, missing_done) VALUES (?, ?, ?)
		ON CONFLICT (pipeline, asset) DO UPDATE SET missing_done = excluded.missing_done`, pipeline, asset, key)
	return err
}

// SetOverdue records whether an asset is overdue, as of at
// (microseconds).
func (Store) SetOverdue(ctx context.Context, q Querier, pipeline, asset string, overdue bool, at int64) error {
	_, err := q.Exec(ctx, `INSERT INTO flowstone_automation_assets (pipeline, asset, overdue, overdue_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (pipeline, asset) DO UPDATE SET overdue = excluded.overdue, overdue_at = excluded.overdue_at`,
		pipeline, asset, boolInt(overdue), at)
	return err
}

// AutomationDecision is one recorded decision of an evaluation.
type AutomationDecision struct {
	ID, Pipeline, Asset, Partition string
	Decision, Run, Reason          string
	// EvaluatedAt is in microseconds.
	EvaluatedAt int64
}

// InsertAutomationDecisions records decisions.
func (Store) InsertAutomationDecisions(ctx context.Context, q Querier, ds []AutomationDecision) error {
	for _, d := range ds {
		if _, err := q.Exec(ctx, `INSERT INTO flowstone_automation_decisions
			(id, pipeline, asset, partition_key, decision, run_id, reason, evaluated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			d.ID, d.Pipeline, d.Asset, d.Partition, d.Decision, d.Run, d.Reason, d.EvaluatedAt); err != nil {
			return err
		}
	}
	return nil
}

// DecisionFilter narrows a listing of decisions.
type DecisionFilter struct {
	Pipeline, Asset string
	Limit           int
}

// AutomationDecisions returns the newest decisions that match f, newest
// first.
func (Store) AutomationDecisions(ctx context.Context, q Querier, f DecisionFilter) ([]AutomationDecision, error) {
	rs, err := q.Query(ctx, `SELECT id, pipeline, asset, partition_key, decision, run_id, reason, evaluated_at
		FROM flowstone_automation_decisions WHERE (? = '' OR pipeline = ?) AND (? = '' OR asset = ?)
		ORDER BY evaluated_at DESC, id DESC LIMIT ?`, f.Pipeline, f.Pipeline, f.Asset, f.Asset, f.Limit)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []AutomationDecision
	for rs.Next() {
		var d AutomationDecision
		if err := rs.Scan(&d.ID, &d.Pipeline, &d.Asset, &d.Partition, &d.Decision, &d.Run, &d.Reason, &d.EvaluatedAt); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rs.Err()
}

// AutomationState is a pipeline's automation evaluations so far.
type AutomationState struct {
	Evaluations int
	// Cursor and EvaluatedAt are in microseconds.
	Cursor, EvaluatedAt int64
}

// AutomationStates returns the evaluation state of pipeline (every
// pipeline when empty), by pipeline.
func (Store) AutomationStates(ctx context.Context, q Querier, pipeline string) (map[string]AutomationState, error) {
	rs, err := q.Query(ctx, `SELECT pipeline, evaluations, cursor_at, evaluated_at FROM flowstone_automation
		WHERE ? = '' OR pipeline = ?`, pipeline, pipeline)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	out := map[string]AutomationState{}
	for rs.Next() {
		var p string
		var s AutomationState
		if err := rs.Scan(&p, &s.Evaluations, &s.Cursor, &s.EvaluatedAt); err != nil {
			return nil, err
		}
		out[p] = s
	}
	return out, rs.Err()
}

// OverdueCounts counts the assets recorded overdue, by pipeline.
func (Store) OverdueCounts(ctx context.Context, q Querier) (map[string]int64, error) {
	rs, err := q.Query(ctx, `SELECT pipeline, count(*) FROM flowstone_automation_assets WHERE overdue = 1 GROUP BY pipeline`)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	out := map[string]int64{}
	for rs.Next() {
		var p string
		var n int64
		if err := rs.Scan(&p, &n); err != nil {
			return nil, err
		}
		out[p] = n
	}
	return out, rs.Err()
}

// DeleteAutomationDecisions deletes up to limit decisions evaluated before
// the scope's bound.
func (Store) DeleteAutomationDecisions(ctx context.Context, q Querier, s PruneScope, limit int) (int64, error) {
	return q.Exec(ctx, `DELETE FROM flowstone_automation_decisions WHERE id IN (SELECT id FROM flowstone_automation_decisions
		WHERE evaluated_at < ? AND (? = '' OR pipeline = ?) LIMIT ?)`, s.Before, s.Pipeline, s.Pipeline, limit)
}

// CountAutomationDecisions counts the decisions evaluated before the
// scope's bound.
func (Store) CountAutomationDecisions(ctx context.Context, q Querier, s PruneScope) (int64, error) {
	var n int64
	err := q.QueryRow(ctx, `SELECT count(*) FROM flowstone_automation_decisions WHERE evaluated_at < ? AND (? = '' OR pipeline = ?)`,
		s.Before, s.Pipeline, s.Pipeline).Scan(&n)
	return n, err
}
