package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// RunInfo is what a job needs of its run that never changes once the run
// is recorded, so a process may keep it for the run's other jobs.
type RunInfo struct {
	// HasConfig says the run has a config; RunConfig reads it, so a job
	// whose asset takes none never loads it.
	HasConfig  bool
	ConfigHash string
	Force      bool
	// Targets is the run's targets as JSON.
	Targets string
	// Partition is the run's partition.
	Partition string
	Backfill  string
}

// JobState is what a job reads of its run and node before it starts.
type JobState struct {
	RunStatus RunStatus
	RunInfo
	Status   AssetStatus
	Attempts int
	// Crashes counts the attempts of the node whose process died (see
	// StartAttempt); Alone says its last attempt ran alone in its process.
	Crashes int
	Alone   bool
}

// JobState reads n's state and its run's; found is false when n is not
// recorded.
func (Store) JobState(ctx context.Context, q Querier, n Node) (st JobState, found bool, err error) {
	var force, hasConfig, alone int
	err = q.QueryRow(ctx, `SELECT r.status, CASE WHEN r.config IS NULL THEN 0 ELSE 1 END, r.config_hash, r.force, r.targets, r.partition_key, r.backfill_id,
		ra.status, ra.attempts, ra.crashes, ra.alone
		FROM flowstone_runs r JOIN flowstone_run_assets ra ON ra.run_id = r.id
		WHERE r.id = ? AND ra.asset = ? AND ra.partition_key = ?`, n.Run, n.Asset, n.Partition).
		Scan(&st.RunStatus, &hasConfig, &st.ConfigHash, &force, &st.Targets, &st.Partition, &st.Backfill, &st.Status, &st.Attempts, &st.Crashes, &alone)
	if errors.Is(err, sql.ErrNoRows) {
		return st, false, nil
	}
	st.Force, st.HasConfig, st.Alone = force == 1, hasConfig == 1, alone == 1
	return st, err == nil, err
}

// RunInfo reads run's unchanging fields; found is false when the run is
// not recorded.
func (Store) RunInfo(ctx context.Context, q Querier, run string) (info RunInfo, found bool, err error) {
	var force, hasConfig int
	err = q.QueryRow(ctx, `SELECT CASE WHEN config IS NULL THEN 0 ELSE 1 END, config_hash, force, targets, partition_key, backfill_id
		FROM flowstone_runs WHERE id = ?`, run).
		Scan(&hasConfig, &info.ConfigHash, &force, &info.Targets, &info.Partition, &info.Backfill)
	if errors.Is(err, sql.ErrNoRows) {
		return info, false, nil
	}
	info.Force, info.HasConfig = force == 1, hasConfig == 1
	return info, err == nil, err
}

// RunConfig reads run's config as JSON; found is false when the run has
// none (or is gone).
func (Store) RunConfig(ctx context.Context, q Querier, run string) (config []byte, found bool, err error) {
	var c sql.NullString
	err = q.QueryRow(ctx, `SELECT config FROM flowstone_runs WHERE id = ?`, run).Scan(&c)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil || !c.Valid {
		return nil, false, err
	}
	return []byte(c.String), true, nil
}

// Started is what StartAttempt reports of the attempt it started.
type Started struct {
	// Attempts counts the node's attempts, this one included.
	Attempts int
	// Crashes counts the node's attempts whose process died, the one
	// before this included when it did.
	Crashes int
}

// CountsCrash reports whether a start of a node found in st after its
// last attempt's process died counts a crash: the first such death counts
// however it happened, later ones only when that attempt ran alone in its
// process.
func (st JobState) CountsCrash() bool {
	return st.Status == AssetRunning && (st.Alone || st.Crashes == 0)
}

// StartQueued starts the attempt of a queued node of a run that is not
// cancelled under job, in one statement, and returns its number; ok is
// false when the node is not queued or its run is cancelled (StartAttempt
// then decides, after JobState).
func (Store) StartQueued(ctx context.Context, q Querier, n Node, job int64) (attempts int, ok bool, err error) {
	err = q.QueryRow(ctx, `UPDATE flowstone_run_assets SET status = ?, attempts = attempts + 1,
		started_at = COALESCE(started_at, ?), job_id = ?, alone = 0
		WHERE run_id = ? AND asset = ? AND partition_key = ? AND status = ?
		AND NOT EXISTS (SELECT 1 FROM flowstone_runs r WHERE r.id = ? AND r.status = ?) RETURNING attempts`,
		AssetRunning, now(), job, n.Run, n.Asset, n.Partition, AssetQueued, n.Run, RunCancelled).Scan(&attempts)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	return attempts, err == nil, err
}

// Start is a node to start under a job: StartQueuedMany's argument.
type Start struct {
	Node
	Job int64
}

// StartQueuedMany is StartQueued for many nodes, in one statement per
// groupChunk of them: it starts each queued node of a run that is not
// cancelled under its job and returns the attempt numbers of those it
// started. A node named twice is started at most once, under either job:
// callers name each node once. postgres says q is PostgreSQL.
func (Store) StartQueuedMany(ctx context.Context, q Querier, postgres bool, starts []Start) (started map[Node]int, err error) {
	started = make(map[Node]int, len(starts))
	at := now()
	for first := 0; first < len(starts); first += groupChunk {
		chunk := starts[first:min(first+groupChunk, len(starts))]
		// The rows are padded to a power of two with copies of the last
		// (a row matched twice is updated once), so that the statement
		// has a few texts, each prepared once, instead of one per size.
		rows := ceilPow2(len(chunk))
		args := make([]any, 0, 4*rows+4)
		for i := range rows {
			s := chunk[min(i, len(chunk)-1)]
			// As text: PostgreSQL types a VALUES column of parameters
			// text, and the update casts it.
			args = append(args, s.Run, s.Asset, s.Partition, strconv.FormatInt(s.Job, 10))
		}
		args = append(args, AssetRunning, at, AssetQueued, RunCancelled)
		rs, err := q.Query(ctx, startQueuedManySQL(postgres, rows), args...)
		if err != nil {
			return nil, fmt.Errorf("start attempts: %w", err)
		}
		for rs.Next() {
			var n Node
			var attempts int
			if err := rs.Scan(&n.Run, &n.Asset, &n.Partition, &attempts); err != nil {
				rs.Close()
				return nil, err
			}
			started[n] = attempts
		}
		rs.Close()
		if err := rs.Err(); err != nil {
			return nil, fmt.Errorf("start attempts: %w", err)
		}
	}
	return started, nil
}

// startQueuedManySQL is StartQueuedMany's statement for rows rows. On
// SQLite the status test is written +status, which no index can serve:
// SQLite's planner, without statistics, otherwise prefers the index on
// (status, started_at) once the rows are 16 or more, and scans every
// queued node of every run for each row (a forced run's roots are all
// queued: 1,000 queued nodes, 128 rows, 128,000 comparisons a start
// group). The node's primary key finds it instead.
func startQueuedManySQL(postgres bool, rows int) string {
	status := "+status"
	if postgres {
		status = "status" // PostgreSQL has no unary plus on text
	}
	return valuesCTE("vr, va, vp, vj", rows) +
		`UPDATE flowstone_run_assets SET status = ?, attempts = attempts + 1,
		started_at = COALESCE(started_at, ?), job_id = CAST(v.vj AS BIGINT), alone = 0
		FROM v WHERE run_id = v.vr AND asset = v.va AND partition_key = v.vp AND ` + status + ` = ?
		AND NOT EXISTS (SELECT 1 FROM flowstone_runs r WHERE r.id = v.vr AND r.status = ?)
		RETURNING run_id, asset, partition_key, attempts`
}

// StartAttempt marks a queued (or running, when its last attempt did not
// record its end) node running under job, counting the attempt, and, when
// died says that attempt's process died, its crash (see
// JobState.CountsCrash); alone records that this attempt runs alone in its
// process. ok is false when the node is in neither status.
func (Store) StartAttempt(ctx context.Context, q Querier, n Node, job int64, died, alone bool) (s Started, ok bool, err error) {
	err = q.QueryRow(ctx, `UPDATE flowstone_run_assets SET status = ?, attempts = attempts + 1,
		started_at = COALESCE(started_at, ?), job_id = ?,
		crashes = CASE WHEN ? = 1 AND status = ? AND (alone = 1 OR crashes = 0) THEN crashes + 1 ELSE crashes END, alone = ?
		WHERE run_id = ? AND asset = ? AND partition_key = ? AND status IN (?, ?) RETURNING attempts, crashes`,
		AssetRunning, now(), job, boolInt(died), AssetRunning, boolInt(alone), n.Run, n.Asset, n.Partition, AssetQueued, AssetRunning).
		Scan(&s.Attempts, &s.Crashes)
	if errors.Is(err, sql.ErrNoRows) {
		return s, false, nil
	}
	return s, err == nil, err
}

// RetryAttempt puts a running node back to queued after a failed attempt,
// with its error.
func (Store) RetryAttempt(ctx context.Context, q Querier, n Node, msg string) error {
	_, err := q.Exec(ctx, `UPDATE flowstone_run_assets SET status = ?, error = ?
		WHERE run_id = ? AND asset = ? AND partition_key = ? AND status = ?`,
		AssetQueued, msg, n.Run, n.Asset, n.Partition, AssetRunning)
	return err
}

// SetWaiting marks a running or waiting node waiting, with why.
func (Store) SetWaiting(ctx context.Context, q Querier, n Node, reason string) error {
	_, err := q.Exec(ctx, `UPDATE flowstone_run_assets SET status = ?, error = ?
		WHERE run_id = ? AND asset = ? AND partition_key = ? AND status IN (?, ?)`,
		AssetWaiting, reason, n.Run, n.Asset, n.Partition, AssetRunning, AssetWaiting)
	return err
}

// FinishAttempt records a running or waiting node's outcome and
// materialization and returns when it started; ok is false when the node
// was in neither status (cancelled, or finished by another process).
func (Store) FinishAttempt(ctx context.Context, q Querier, n Node, status AssetStatus, mat, reason string) (startedAt int64, ok bool, err error) {
	err = q.QueryRow(ctx, `UPDATE flowstone_run_assets SET status = ?, materialization_id = ?, error = ?, finished_at = ?
		WHERE run_id = ? AND asset = ? AND partition_key = ? AND status IN (?, ?) RETURNING COALESCE(started_at, 0)`,
		status, mat, reason, now(), n.Run, n.Asset, n.Partition, AssetRunning, AssetWaiting).Scan(&startedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	return startedAt, err == nil, err
}

// FailAsset marks n failed with msg if its status is one of from; it
// reports false when it was not.
func (Store) FailAsset(ctx context.Context, q Querier, n Node, msg string, from ...AssetStatus) (bool, error) {
	args := []any{AssetFailed, msg, now(), n.Run, n.Asset, n.Partition}
	for _, s := range from {
		args = append(args, s)
	}
	c, err := q.Exec(ctx, `UPDATE flowstone_run_assets SET status = ?, error = ?, finished_at = ?
		WHERE run_id = ? AND asset = ? AND partition_key = ? AND status IN (`+placeholders(len(from))+`)`, args...)
	return c == 1, err
}

// SetMaterialization records the materialization of n.
func (Store) SetMaterialization(ctx context.Context, q Querier, n Node, mat string) error {
	_, err := q.Exec(ctx, `UPDATE flowstone_run_assets SET materialization_id = ? WHERE run_id = ? AND asset = ? AND partition_key = ?`,
		mat, n.Run, n.Asset, n.Partition)
	return err
}

// MarkEarly lets a pending node start once its required dependencies have
// arrived (its strategy's deadline passed).
func (Store) MarkEarly(ctx context.Context, q Querier, n Node) error {
	_, err := q.Exec(ctx, `UPDATE flowstone_run_assets SET early = 1
		WHERE run_id = ? AND asset = ? AND partition_key = ? AND status = ?`,
		n.Run, n.Asset, n.Partition, AssetPending)
	return err
}

// placeholders returns n comma-separated placeholders.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}
