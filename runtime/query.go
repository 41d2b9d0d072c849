package runtime

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/scatter"
	"github.com/riverqueue/river"
)

// RunResult is a run's state as recorded in the database.
type RunResult struct {
	ID         string
	Pipeline   string
	Partition  flowstone.Partition
	Status     RunStatus
	CreatedAt  time.Time
	FinishedAt time.Time // zero while running
	// Assets by key. An asset the run materializes at several partitions
	// (hourly inputs of a daily rollup) is represented by its row at the
	// run's partition, else by its least successful row; ByPartition has
	// them all.
	Assets map[string]AssetResult
	// ByPartition holds every asset's row per partition key.
	ByPartition map[string]map[flowstone.Partition]AssetResult
	// Order lists the asset keys in the order they were recorded
	// (topological).
	Order []string
}

// AssetResult is one asset's state within a run.
type AssetResult struct {
	Status    AssetStatus
	Partition flowstone.Partition
	// Error is the last error's message, empty when none.
	Error           string
	Attempts        int
	Materialization string
	StartedAt       time.Time
	FinishedAt      time.Time
}

// Counts tallies the run's assets by status.
func (r RunResult) Counts() map[AssetStatus]int {
	c := map[AssetStatus]int{}
	for _, a := range r.Assets {
		c[a.Status]++
	}
	return c
}

func micros(v sql.NullInt64) time.Time {
	if !v.Valid || v.Int64 == 0 {
		return time.Time{}
	}
	return time.UnixMicro(v.Int64)
}

// Run returns run id's current state.
func (e *Engine) Run(ctx context.Context, id string) (RunResult, error) {
	q := e.be.pool()
	r := RunResult{ID: id, Assets: map[string]AssetResult{}, ByPartition: map[string]map[flowstone.Partition]AssetResult{}}
	var status, part string
	var created int64
	var finished sql.NullInt64
	err := q.QueryRow(ctx, `SELECT pipeline, partition_key, status, created_at, finished_at FROM flowstone_runs WHERE id = ?`, id).
		Scan(&r.Pipeline, &part, &status, &created, &finished)
	if errors.Is(err, sql.ErrNoRows) {
		return r, fmt.Errorf("%w: %s", ErrRunNotFound, id)
	}
	if err != nil {
		return r, err
	}
	r.Partition, r.Status, r.CreatedAt, r.FinishedAt = flowstone.Partition(part), RunStatus(status), time.UnixMicro(created), micros(finished)
	rs, err := q.Query(ctx, `SELECT asset, partition_key, status, error, attempts, COALESCE(materialization_id, ''), started_at, finished_at
		FROM flowstone_run_assets WHERE run_id = ?`, id)
	if err != nil {
		return r, err
	}
	defer rs.Close()
	for rs.Next() {
		var key, p, st string
		var a AssetResult
		var started, fin sql.NullInt64
		if err := rs.Scan(&key, &p, &st, &a.Error, &a.Attempts, &a.Materialization, &started, &fin); err != nil {
			return r, err
		}
		a.Partition, a.Status, a.StartedAt, a.FinishedAt = flowstone.Partition(p), AssetStatus(st), micros(started), micros(fin)
		if r.ByPartition[key] == nil {
			r.ByPartition[key] = map[flowstone.Partition]AssetResult{}
			r.Order = append(r.Order, key)
		}
		r.ByPartition[key][a.Partition] = a
		if prev, seen := r.Assets[key]; !seen || a.Partition == r.Partition || prev.Partition != r.Partition && rank(a.Status) > rank(prev.Status) {
			r.Assets[key] = a
		}
	}
	if err := rs.Err(); err != nil {
		return r, err
	}
	if b, ok := e.bindings[r.Pipeline]; ok {
		r.Order = r.Order[:0]
		for _, a := range b.pipeline.assets {
			if _, in := r.Assets[a.Key]; in {
				r.Order = append(r.Order, a.Key)
			}
		}
	}
	return r, nil
}

// Wait blocks until run id finishes (or ctx ends) and returns its result.
// Its error reports a failure to wait, not a failed run: see
// RunResult.Status. It watches the database, so it sees work done by any
// process.
func (e *Engine) Wait(ctx context.Context, id string) (RunResult, error) {
	events, stop := e.Subscribe(64)
	defer stop()
	delay := 10 * time.Millisecond
	for {
		var status string
		err := e.be.pool().QueryRow(ctx, `SELECT status FROM flowstone_runs WHERE id = ?`, id).Scan(&status)
		if errors.Is(err, sql.ErrNoRows) {
			return RunResult{ID: id}, fmt.Errorf("%w: %s", ErrRunNotFound, id)
		}
		if err != nil {
			return RunResult{ID: id}, fmt.Errorf("wait for %s: %w", id, err)
		}
		if RunStatus(status).Terminal() {
			return e.Run(ctx, id)
		}
		timer := time.NewTimer(delay)
	wait:
		for {
			select {
			case <-ctx.Done():
				timer.Stop()
				return RunResult{ID: id}, ctx.Err()
			case ev, ok := <-events:
				if ok && (ev.RunID != id || ev.Kind != EventRunFinished) {
					continue
				}
				timer.Stop()
				break wait
			case <-timer.C:
				break wait
			}
		}
		delay = min(delay*2, 500*time.Millisecond)
	}
}

// Cancel cancels run id: its assets not yet finished are recorded
// cancelled, queued jobs do nothing when they run, and running jobs are
// asked to stop (their results are discarded). Cancelling a finished run
// is a no-op.
func (e *Engine) Cancel(ctx context.Context, id string) error {
	var jobIDs []int64
	var found bool
	err := e.be.inTx(ctx, func(tx txn) error {
		jobIDs, found = nil, false
		var status string
		err := tx.QueryRow(ctx, `SELECT status FROM flowstone_runs WHERE id = ?`, id).Scan(&status)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		found = true
		if RunStatus(status).Terminal() {
			return nil
		}
		var pipeline, backfill string
		if err := tx.QueryRow(ctx, `UPDATE flowstone_runs SET status = ?, finished_at = ? WHERE id = ? RETURNING pipeline, backfill_id`,
			string(RunCancelled), now(), id).Scan(&pipeline, &backfill); err != nil {
			return err
		}
		if err := scatter.CancelRun(ctx, tx, id); err != nil {
			return err
		}
		if backfill != "" {
			if err := tx.insertJobs(ctx, []river.InsertManyParams{backfillJob(pipeline, backfill)}); err != nil {
				return err
			}
		}
		rs, err := tx.Query(ctx, `UPDATE flowstone_run_assets SET status = ?, finished_at = ?, error = 'cancelled'
			WHERE run_id = ? AND status IN (?, ?, ?, ?) RETURNING COALESCE(job_id, 0), status`,
			string(StatusCancelled), now(), id, string(StatusPending), string(StatusQueued), string(StatusRunning), string(StatusWaiting))
		if err != nil {
			return err
		}
		defer rs.Close()
		for rs.Next() {
			var jid int64
			var st string
			if err := rs.Scan(&jid, &st); err != nil {
				return err
			}
			if jid != 0 {
				jobIDs = append(jobIDs, jid)
			}
		}
		return rs.Err()
	})
	if err != nil {
		return fmt.Errorf("cancel %s: %w", id, err)
	}
	if !found {
		return fmt.Errorf("%w: %s", ErrRunNotFound, id)
	}
	for _, jid := range jobIDs {
		if err := e.be.cancelJob(ctx, jid); err != nil {
			e.log.DebugContext(ctx, "cancel job", "job", jid, "error", err)
		}
	}
	e.events.publish(Event{Kind: EventRunFinished, RunID: id, Status: string(RunCancelled)})
	return nil
}

// RunSummary is one line of a run listing.
type RunSummary struct {
	ID         string
	Pipeline   string
	Partition  flowstone.Partition
	Status     RunStatus
	Pending    int
	Failed     int
	CreatedAt  time.Time
	FinishedAt time.Time
}

// Runs lists the newest runs of pipeline (all pipelines when empty).
func (e *Engine) Runs(ctx context.Context, pipeline string, limit int) ([]RunSummary, error) {
	if limit <= 0 {
		limit = 20
	}
	// Two statements rather than "? = '' OR pipeline = ?", which no index
	// serves: each reads its index newest first and stops at limit.
	where, args := ``, []any{}
	if pipeline != "" {
		where, args = `WHERE r.pipeline = ?`, []any{pipeline}
	}
	args = append([]any{string(StatusPending), string(StatusQueued), string(StatusRunning), string(StatusWaiting),
		string(StatusFailed), string(StatusUpstreamFailed)}, append(args, limit)...)
	rs, err := e.be.pool().Query(ctx, `SELECT r.id, r.pipeline, r.partition_key, r.status,
		(SELECT count(*) FROM flowstone_run_assets a WHERE a.run_id = r.id AND a.status IN (?, ?, ?, ?)),
		(SELECT count(*) FROM flowstone_run_assets a WHERE a.run_id = r.id AND a.status IN (?, ?)),
		r.created_at, r.finished_at
		FROM flowstone_runs r `+where+` ORDER BY r.created_at DESC, r.id DESC LIMIT ?`, args...)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []RunSummary
	for rs.Next() {
		var s RunSummary
		var part, st string
		var created int64
		var fin sql.NullInt64
		if err := rs.Scan(&s.ID, &s.Pipeline, &part, &st, &s.Pending, &s.Failed, &created, &fin); err != nil {
			return nil, err
		}
		s.Partition, s.Status, s.CreatedAt, s.FinishedAt = flowstone.Partition(part), RunStatus(st), time.UnixMicro(created), micros(fin)
		out = append(out, s)
	}
	return out, rs.Err()
}

// Materialization is one recorded materialization.
type Materialization struct {
	ID          string
	Pipeline    string
	Asset       string
	Partition   flowstone.Partition
	RunID       string
	Status      string
	CodeVersion string
	Attempts    int
	Error       string
	Metadata    map[string]any
	StartedAt   time.Time
	FinishedAt  time.Time
	// Upstream lists the materializations it read.
	Upstream []LineageEdge
}

// LineageEdge is one upstream materialization read.
type LineageEdge struct {
	Asset           string
	Partition       flowstone.Partition
	Materialization string
}

// Materializations lists the newest materializations of an asset (all
// partitions), newest first, with their lineage.
func (e *Engine) Materializations(ctx context.Context, pipeline, asset string, limit int) ([]Materialization, error) {
	if limit <= 0 {
		limit = 20
	}
	return e.queryMaterializations(ctx, true, `WHERE pipeline = ? AND asset = ? ORDER BY finished_at DESC, id DESC LIMIT ?`, pipeline, asset, limit)
}

// Latest returns, for each asset of pipeline, its newest materialization of
// any status (the assets listing).
func (e *Engine) Latest(ctx context.Context, pipeline string) (map[string]Materialization, error) {
	// The recursive part walks the pipeline's distinct assets through the
	// index (one probe per asset, not a scan of the history); each asset's
	// newest row is then one more probe.
	ms, err := e.queryMaterializations(ctx, true, `WHERE id IN (
		WITH RECURSIVE assets(asset) AS (
			SELECT min(asset) FROM flowstone_materializations WHERE pipeline = ?
			UNION ALL
			SELECT (SELECT min(m.asset) FROM flowstone_materializations m WHERE m.pipeline = ? AND m.asset > assets.asset)
			FROM assets WHERE assets.asset IS NOT NULL
		)
		SELECT (SELECT x.id FROM flowstone_materializations x WHERE x.pipeline = ? AND x.asset = assets.asset
			ORDER BY x.finished_at DESC, x.id DESC LIMIT 1)
		FROM assets WHERE assets.asset IS NOT NULL)`, pipeline, pipeline, pipeline)
	if err != nil {
		return nil, err
	}
	out := map[string]Materialization{}
	for _, m := range ms {
		out[m.Asset] = m
	}
	return out, nil
}

// PartitionStatus is what is known of one partition of an asset.
type PartitionStatus struct {
	Partition flowstone.Partition
	// Latest is the partition's newest materialization of any status,
	// without its lineage; its ID is empty when the partition has none.
	Latest Materialization
	// RunningIn is a run working on the partition now (pending, queued,
	// running or waiting in it), empty when none.
	RunningIn string
}

// PartitionStatuses returns one entry per partition of asset that has a
// materialization or is being worked on, ordered by partition key. The
// newest materialization of each partition is picked by the database, one
// index probe per partition, so the cost follows the number of partitions,
// not the length of their history.
func (e *Engine) PartitionStatuses(ctx context.Context, pipeline, asset string) ([]PartitionStatus, error) {
	ms, err := e.queryMaterializations(ctx, false, `WHERE id IN (
		WITH RECURSIVE keys(k) AS (
			SELECT min(partition_key) FROM flowstone_materializations WHERE pipeline = ? AND asset = ?
			UNION ALL
			SELECT (SELECT min(m.partition_key) FROM flowstone_materializations m
				WHERE m.pipeline = ? AND m.asset = ? AND m.partition_key > keys.k)
			FROM keys WHERE keys.k IS NOT NULL
		)
		SELECT (SELECT x.id FROM flowstone_materializations x WHERE x.pipeline = ? AND x.asset = ? AND x.partition_key = keys.k
			ORDER BY x.finished_at DESC, x.id DESC LIMIT 1)
		FROM keys WHERE keys.k IS NOT NULL)`, pipeline, asset, pipeline, asset, pipeline, asset)
	if err != nil {
		return nil, err
	}
	byKey := make(map[flowstone.Partition]*PartitionStatus, len(ms))
	out := make([]PartitionStatus, 0, len(ms))
	for _, m := range ms {
		out = append(out, PartitionStatus{Partition: m.Partition, Latest: m})
	}
	// CROSS JOIN keeps SQLite from walking every run of the pipeline: the
	// few unfinished rows (status-first index) lead.
	rs, err := e.be.pool().Query(ctx, `SELECT ra.partition_key, ra.run_id
		FROM flowstone_run_assets ra CROSS JOIN flowstone_runs r
		WHERE r.id = ra.run_id AND ra.status IN (?, ?, ?, ?) AND ra.asset = ? AND r.pipeline = ? ORDER BY ra.run_id`,
		string(StatusPending), string(StatusQueued), string(StatusRunning), string(StatusWaiting), asset, pipeline)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var running []PartitionStatus
	for rs.Next() {
		var part, run string
		if err := rs.Scan(&part, &run); err != nil {
			return nil, err
		}
		running = append(running, PartitionStatus{Partition: flowstone.Partition(part), RunningIn: run})
	}
	if err := rs.Err(); err != nil {
		return nil, err
	}
	for i := range out {
		byKey[out[i].Partition] = &out[i]
	}
	for _, r := range running {
		if ps, ok := byKey[r.Partition]; ok {
			ps.RunningIn = r.RunningIn
			continue
		}
		out = append(out, r)
		byKey[r.Partition] = &out[len(out)-1]
	}
	slices.SortFunc(out, func(a, b PartitionStatus) int { return strings.Compare(string(a.Partition), string(b.Partition)) })
	return out, nil
}

// MaterializationByID returns one materialization with its lineage.
func (e *Engine) MaterializationByID(ctx context.Context, id string) (Materialization, error) {
	ms, err := e.queryMaterializations(ctx, true, `WHERE id = ?`, id)
	if err != nil {
		return Materialization{}, err
	}
	if len(ms) == 0 {
		return Materialization{}, fmt.Errorf("%w: materialization %s", ErrNotMaterialized, id)
	}
	return ms[0], nil
}

func (e *Engine) queryMaterializations(ctx context.Context, withLineage bool, where string, args ...any) ([]Materialization, error) {
	q := e.be.pool()
	rs, err := q.Query(ctx, `SELECT id, pipeline, asset, partition_key, run_id, status, code_version, attempts, error, metadata, started_at, finished_at
		FROM flowstone_materializations `+where, args...)
	if err != nil {
		return nil, err
	}
	var out []Materialization
	for rs.Next() {
		var m Materialization
		var part, meta string
		var started, fin int64
		if err := rs.Scan(&m.ID, &m.Pipeline, &m.Asset, &part, &m.RunID, &m.Status, &m.CodeVersion, &m.Attempts, &m.Error, &meta, &started, &fin); err != nil {
			rs.Close()
			return nil, err
		}
		m.Partition, m.StartedAt, m.FinishedAt = flowstone.Partition(part), time.UnixMicro(started), time.UnixMicro(fin)
		_ = json.Unmarshal([]byte(meta), &m.Metadata)
		out = append(out, m)
	}
	rs.Close()
	if err := rs.Err(); err != nil {
		return nil, err
	}
	if !withLineage || len(out) == 0 {
		return out, nil
	}
	ids := make([]string, len(out))
	for i, m := range out {
		ids[i] = m.ID
	}
	edges, err := e.lineage(ctx, ids)
	if err != nil {
		return nil, err
	}
	for i := range out {
		out[i].Upstream = edges[out[i].ID]
	}
	return out, nil
}

// lineageChunk bounds the ids bound in one lineage query (PostgreSQL takes
// 65,535 parameters, SQLite 32,766).
const lineageChunk = 500

// lineage reads the upstream edges of many materializations, one query per
// lineageChunk of them.
func (e *Engine) lineage(ctx context.Context, ids []string) (map[string][]LineageEdge, error) {
	out := make(map[string][]LineageEdge, len(ids))
	for chunk := range slices.Chunk(ids, lineageChunk) {
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		rs, err := e.be.pool().Query(ctx, `SELECT materialization_id, upstream_asset, upstream_partition, upstream_materialization_id
			FROM flowstone_lineage WHERE materialization_id IN (`+placeholders(len(chunk))+`)
			ORDER BY materialization_id, upstream_asset, upstream_partition`, args...)
		if err != nil {
			return nil, err
		}
		for rs.Next() {
			var id, p string
			var l LineageEdge
			if err := rs.Scan(&id, &l.Asset, &p, &l.Materialization); err != nil {
				rs.Close()
				return nil, err
			}
			l.Partition = flowstone.Partition(p)
			out[id] = append(out[id], l)
		}
		rs.Close()
		if err := rs.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// placeholders is "?, ?, ?" with n marks.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// ScatterProgress reports the progress of the scatter asset ref: items
// done and failed of the total. A ref outside its run is refused with
// ErrNotInRun; a node that has not scattered (yet) with ErrNotMaterialized.
func (e *Engine) ScatterProgress(ctx context.Context, ref Ref) (scatter.Progress, error) {
	if _, err := resolveRef(ctx, e.be.pool(), ref); err != nil {
		return scatter.Progress{}, err
	}
	p, found, err := scatter.ProgressOf(ctx, e.be.pool(), scatter.Ref{Run: ref.RunID, Asset: ref.Asset, Partition: string(ref.Partition)})
	if err == nil && !found {
		err = fmt.Errorf("%w: %s has not scattered (yet)", ErrNotMaterialized, ref)
	}
	return p, err
}

// rank orders statuses from most to least successful, to pick the row that
// represents an asset with several partitions in a run.
func rank(s AssetStatus) int {
	switch s {
	case StatusSucceeded, StatusReused:
		return 0
	case StatusSkipped:
		return 1
	case StatusPending, StatusQueued, StatusRunning, StatusWaiting:
		return 2
	}
	return 3
}
