package store

import (
	"context"
	"database/sql"
	"errors"
)

// NewBackfill is a backfill to record.
type NewBackfill struct {
	ID, Pipeline string
	// Targets is the requested targets as JSON; Config the runs' config as
	// JSON, nil when none.
	Targets       string
	Config        []byte
	Force         bool
	MaxConcurrent int
	// Partitions are the keys in backfill order.
	Partitions []string
}

// InsertBackfill records a running backfill and its partitions, pending.
func (Store) InsertBackfill(ctx context.Context, q Querier, b NewBackfill) error {
	var cfg any
	if b.Config != nil {
		cfg = string(b.Config)
	}
	if _, err := q.Exec(ctx, `INSERT INTO flowstone_backfills (id, pipeline, targets, config, force, max_concurrent, status, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, b.ID, b.Pipeline, b.Targets, cfg, boolInt(b.Force), b.MaxConcurrent, BackfillRunning, now()); err != nil {
		return err
	}
	return insertRows(ctx, q, `INSERT INTO flowstone_backfill_partitions (backfill_id, idx, partition_key, status) VALUES `, 4, len(b.Partitions),
		func(i int) []any { return []any{b.ID, i, b.Partitions[i], PartitionPending} })
}

// Backfill is a backfill's stored row.
type Backfill struct {
	ID, Pipeline  string
	Status        BackfillStatus
	Targets       string
	Config        sql.NullString
	Force         bool
	MaxConcurrent int
	// CreatedAt and FinishedAt are microseconds; FinishedAt is 0 while
	// running.
	CreatedAt, FinishedAt int64
}

// Backfill reads backfill id.
func (Store) Backfill(ctx context.Context, q Querier, id string) (b Backfill, found bool, err error) {
	var force int
	var fin sql.NullInt64
	err = q.QueryRow(ctx, `SELECT pipeline, status, targets, config, force, max_concurrent, created_at, finished_at
		FROM flowstone_backfills WHERE id = ?`, id).
		Scan(&b.Pipeline, &b.Status, &b.Targets, &b.Config, &force, &b.MaxConcurrent, &b.CreatedAt, &fin)
	if errors.Is(err, sql.ErrNoRows) {
		return b, false, nil
	}
	b.ID, b.Force, b.FinishedAt = id, force == 1, fin.Int64
	return b, err == nil, err
}

// LockBackfill takes backfill id's row lock for the rest of the
// transaction, so concurrent advances claim partitions one at a time.
func (Store) LockBackfill(ctx context.Context, q Querier, id string) error {
	_, err := q.Exec(ctx, `UPDATE flowstone_backfills SET max_concurrent = max_concurrent WHERE id = ?`, id)
	return err
}

// RefreshBackfill gives running partitions whose runs finished their run's
// status.
func (Store) RefreshBackfill(ctx context.Context, q Querier, id string) error {
	_, err := q.Exec(ctx, `UPDATE flowstone_backfill_partitions SET status =
		(SELECT r.status FROM flowstone_runs r WHERE r.id = flowstone_backfill_partitions.run_id)
		WHERE backfill_id = ? AND status = ?
		AND EXISTS (SELECT 1 FROM flowstone_runs r WHERE r.id = flowstone_backfill_partitions.run_id AND r.status <> ?)`,
		id, PartitionRunning, RunRunning)
	return err
}

// CountPartitions counts the partitions of backfill id in the statuses.
func (Store) CountPartitions(ctx context.Context, q Querier, id string, statuses ...PartitionStatus) (int, error) {
	args := []any{id}
	for _, s := range statuses {
		args = append(args, s)
	}
	var n int
	err := q.QueryRow(ctx, `SELECT count(*) FROM flowstone_backfill_partitions WHERE backfill_id = ? AND status IN (`+placeholders(len(statuses))+`)`,
		args...).Scan(&n)
	return n, err
}

// BackfillPartition is one partition of a backfill.
type BackfillPartition struct {
	Index  int
	Key    string
	Status PartitionStatus
	// RunStatus is the status of its run; empty when it has none.
	RunStatus RunStatus
}

// NextPartition returns the first partition of backfill id in status.
func (Store) NextPartition(ctx context.Context, q Querier, id string, status PartitionStatus) (p BackfillPartition, found bool, err error) {
	err = q.QueryRow(ctx, `SELECT idx, partition_key FROM flowstone_backfill_partitions
		WHERE backfill_id = ? AND status = ? ORDER BY idx LIMIT 1`, id, status).Scan(&p.Index, &p.Key)
	if errors.Is(err, sql.ErrNoRows) {
		return p, false, nil
	}
	p.Status = status
	return p, err == nil, err
}

// SetPartition moves partition idx of backfill id from status from to
// status, recording its run when run is not empty; it reports false when
// the partition was not in from (another advance moved it first).
func (Store) SetPartition(ctx context.Context, q Querier, id string, idx int, from, status PartitionStatus, run string) (bool, error) {
	n, err := q.Exec(ctx, `UPDATE flowstone_backfill_partitions SET status = ?, run_id = COALESCE(?, run_id)
		WHERE backfill_id = ? AND idx = ? AND status = ?`,
		status, nullString(run), id, idx, from)
	return n == 1, err
}

// SetPartitions moves the partitions of backfill id in the from statuses
// to status.
func (Store) SetPartitions(ctx context.Context, q Querier, id string, status PartitionStatus, from ...PartitionStatus) error {
	args := []any{status, id}
	for _, s := range from {
		args = append(args, s)
	}
	_, err := q.Exec(ctx, `UPDATE flowstone_backfill_partitions SET status = ? WHERE backfill_id = ? AND status IN (`+placeholders(len(from))+`)`, args...)
	return err
}

// FinishBackfill sets a running backfill's final status; it reports false
// when it was not running.
func (Store) FinishBackfill(ctx context.Context, q Querier, id string, status BackfillStatus) (bool, error) {
	n, err := q.Exec(ctx, `UPDATE flowstone_backfills SET status = ?, finished_at = ? WHERE id = ? AND status = ?`,
		status, now(), id, BackfillRunning)
	return n == 1, err
}

// BackfillPartitions lists the partitions of backfill id in order, with
// their runs' statuses.
func (Store) BackfillPartitions(ctx context.Context, q Querier, id string) ([]BackfillPartition, error) {
	rs, err := q.Query(ctx, `SELECT bp.idx, bp.partition_key, bp.status, COALESCE(r.status, '')
		FROM flowstone_backfill_partitions bp LEFT JOIN flowstone_runs r ON r.id = bp.run_id
		WHERE bp.backfill_id = ? ORDER BY bp.idx`, id)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []BackfillPartition
	for rs.Next() {
		var p BackfillPartition
		if err := rs.Scan(&p.Index, &p.Key, &p.Status, &p.RunStatus); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rs.Err()
}

// PartitionRuns lists the runs of the partitions of backfill id in status.
func (Store) PartitionRuns(ctx context.Context, q Querier, id string, status PartitionStatus) ([]string, error) {
	return queryStrings(ctx, q, `SELECT run_id FROM flowstone_backfill_partitions WHERE backfill_id = ? AND status = ? AND run_id IS NOT NULL`,
		id, status)
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}
