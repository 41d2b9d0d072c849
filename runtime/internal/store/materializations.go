package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
)

// NewMaterialization is a terminal materialization to record.
type NewMaterialization struct {
	ID, Pipeline, Asset, Partition, Run string
	Status                              MaterializationStatus
	CodeVersion, ConfigHash, InputHash  string
	// Value is the JSON value; nil when the asset has none or its IO
	// manager stores it (External).
	Value    []byte
	External bool
	// Views is the JSON object of alternative encodings; nil when none.
	Views    []byte
	Metadata string
	Attempts int
	Error    string
	// StartedAt and FinishedAt are microseconds since the epoch.
	StartedAt, FinishedAt int64
}

// InsertMaterialization records m.
func (Store) InsertMaterialization(ctx context.Context, q Querier, m NewMaterialization) error {
	if _, err := q.Exec(ctx, `INSERT INTO flowstone_materializations
		(id, pipeline, asset, partition_key, run_id, status, code_version, config_hash, input_hash, value, external, views, metadata, attempts, error, started_at, finished_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, materializationRow(m)...); err != nil {
		return fmt.Errorf("record materialization: %w", err)
	}
	return nil
}

// Lineage is one upstream materialization a materialization read.
type Lineage struct {
	Asset, Partition, Materialization string
}

// InsertLineage records what materialization mat read.
func (Store) InsertLineage(ctx context.Context, q Querier, mat string, read []Lineage) error {
	err := insertRows(ctx, q, `INSERT INTO flowstone_lineage (materialization_id, upstream_asset, upstream_partition, upstream_materialization_id) VALUES `,
		4, len(read), func(i int) []any {
			l := read[i]
			return []any{mat, l.Asset, l.Partition, l.Materialization}
		})
	if err != nil {
		return fmt.Errorf("record lineage: %w", err)
	}
	return nil
}

// ReuseKey is what makes a succeeded materialization reusable.
type ReuseKey struct {
	Pipeline, Asset, Partition         string
	CodeVersion, ConfigHash, InputHash string
	// Lock keeps the row found locked until the transaction ends
	// (PostgreSQL's FOR SHARE; SQLite's write transactions are exclusive
	// already), so Prune, which locks before it deletes, either waits and
	// then sees the claim, or has deleted it and the next one is found.
	Lock bool
}

// Reusable returns the newest succeeded materialization matching k that
// no blocking check failed.
func (Store) Reusable(ctx context.Context, q Querier, k ReuseKey) (id string, found bool, err error) {
	lock := ""
	if k.Lock {
		lock = " FOR SHARE"
	}
	err = q.QueryRow(ctx, `SELECT id FROM flowstone_materializations
		WHERE pipeline = ? AND asset = ? AND partition_key = ? AND status = ?
		AND code_version = ? AND config_hash = ? AND input_hash = ?
		AND NOT EXISTS (SELECT 1 FROM flowstone_check_results c WHERE c.materialization_id = flowstone_materializations.id
			AND c.blocking = 1 AND c.passed = 0 AND c.severity = 'error')
		ORDER BY finished_at DESC, id DESC LIMIT 1`+lock,
		k.Pipeline, k.Asset, k.Partition, MatSucceeded, k.CodeVersion, k.ConfigHash, k.InputHash).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	return id, err == nil, err
}

// LatestSucceeded returns the newest succeeded materialization of asset at
// partition.
func (Store) LatestSucceeded(ctx context.Context, q Querier, pipeline, asset, partition string) (id string, found bool, err error) {
	err = q.QueryRow(ctx, `SELECT id FROM flowstone_materializations
		WHERE pipeline = ? AND asset = ? AND partition_key = ? AND status = ?
		ORDER BY finished_at DESC, id DESC LIMIT 1`, pipeline, asset, partition, MatSucceeded).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	return id, err == nil, err
}

// PartitionMaterialization is a partition's newest succeeded
// materialization.
type PartitionMaterialization struct {
	Partition, ID string
}

// LatestSucceededByPartition returns, for each partition of asset, its
// newest succeeded materialization, ordered by partition.
func (Store) LatestSucceededByPartition(ctx context.Context, q Querier, pipeline, asset string) ([]PartitionMaterialization, error) {
	rs, err := q.Query(ctx, `SELECT m.partition_key, m.id FROM flowstone_materializations m
		WHERE m.pipeline = ? AND m.asset = ? AND m.status = ?
		AND m.finished_at = (SELECT max(finished_at) FROM flowstone_materializations x
			WHERE x.pipeline = m.pipeline AND x.asset = m.asset AND x.partition_key = m.partition_key AND x.status = m.status)
		ORDER BY m.partition_key`, pipeline, asset, MatSucceeded)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []PartitionMaterialization
	for rs.Next() {
		var x PartitionMaterialization
		if err := rs.Scan(&x.Partition, &x.ID); err != nil {
			return nil, err
		}
		out = append(out, x)
	}
	return out, rs.Err()
}

// Value is a materialization's stored value.
type Value struct {
	Partition string
	// JSON is the value; Valid is false when there is none in the
	// database.
	JSON sql.NullString
	// External is set when the asset's IO manager holds the value.
	External bool
}

// Value reads materialization id's value.
func (Store) Value(ctx context.Context, q Querier, id string) (v Value, found bool, err error) {
	var external int
	err = q.QueryRow(ctx, `SELECT value, external, partition_key FROM flowstone_materializations WHERE id = ?`, id).
		Scan(&v.JSON, &external, &v.Partition)
	if errors.Is(err, sql.ErrNoRows) {
		return v, false, nil
	}
	v.External = external == 1
	return v, err == nil, err
}

// Views reads materialization id's views (a JSON object); Valid is false
// when it has none.
func (Store) Views(ctx context.Context, q Querier, id string) (sql.NullString, error) {
	var views sql.NullString
	err := q.QueryRow(ctx, `SELECT views FROM flowstone_materializations WHERE id = ?`, id).Scan(&views)
	return views, err
}

// Materialization is a recorded materialization as listings show it.
type Materialization struct {
	ID, Pipeline, Asset, Partition, Run string
	Status                              MaterializationStatus
	CodeVersion                         string
	Attempts                            int
	Error                               string
	Metadata                            string
	StartedAt, FinishedAt               int64
}

// Materializations lists the newest materializations of asset (every
// partition), newest first.
func (s Store) Materializations(ctx context.Context, q Querier, pipeline, asset string, limit int) ([]Materialization, error) {
	return s.queryMaterializations(ctx, q, `WHERE pipeline = ? AND asset = ? ORDER BY finished_at DESC, id DESC LIMIT ?`, pipeline, asset, limit)
}

// Latest returns the newest materialization, of any status, of each asset
// of pipeline. The recursive part walks the pipeline's distinct assets
// through the index (one probe per asset, not a scan of the history); each
// asset's newest row is then one more probe.
func (s Store) Latest(ctx context.Context, q Querier, pipeline string) ([]Materialization, error) {
	return s.queryMaterializations(ctx, q, `WHERE id IN (
		WITH RECURSIVE assets(asset) AS (
			SELECT min(asset) FROM flowstone_materializations WHERE pipeline = ?
			UNION ALL
			SELECT (SELECT min(m.asset) FROM flowstone_materializations m WHERE m.pipeline = ? AND m.asset > assets.asset)
			FROM assets WHERE assets.asset IS NOT NULL
		)
		SELECT (SELECT x.id FROM flowstone_materializations x WHERE x.pipeline = ? AND x.asset = assets.asset
			ORDER BY x.finished_at DESC, x.id DESC LIMIT 1)
		FROM assets WHERE assets.asset IS NOT NULL)`, pipeline, pipeline, pipeline)
}

// Materialization reads one materialization.
func (s Store) Materialization(ctx context.Context, q Querier, id string) (Materialization, bool, error) {
	ms, err := s.queryMaterializations(ctx, q, `WHERE id = ?`, id)
	if err != nil || len(ms) == 0 {
		return Materialization{}, false, err
	}
	return ms[0], true, nil
}

func (Store) queryMaterializations(ctx context.Context, q Querier, where string, args ...any) ([]Materialization, error) {
	rs, err := q.Query(ctx, `SELECT id, pipeline, asset, partition_key, run_id, status, code_version, attempts, error, metadata, started_at, finished_at
		FROM flowstone_materializations `+where, args...)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []Materialization
	for rs.Next() {
		var m Materialization
		if err := rs.Scan(&m.ID, &m.Pipeline, &m.Asset, &m.Partition, &m.Run, &m.Status, &m.CodeVersion, &m.Attempts, &m.Error, &m.Metadata, &m.StartedAt, &m.FinishedAt); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rs.Err()
}

// lineageChunk bounds the ids bound in one lineage query (PostgreSQL takes
// 65,535 parameters, SQLite 32,766).
const lineageChunk = 500

// LineageOf returns the upstream materializations each of mats read,
// ordered by asset and partition: one query per 500 of them.
func (Store) LineageOf(ctx context.Context, q Querier, mats []string) (map[string][]Lineage, error) {
	out := make(map[string][]Lineage, len(mats))
	for chunk := range slices.Chunk(mats, lineageChunk) {
		rs, err := q.Query(ctx, `SELECT materialization_id, upstream_asset, upstream_partition, upstream_materialization_id
			FROM flowstone_lineage WHERE materialization_id IN (`+placeholders(len(chunk))+`)
			ORDER BY materialization_id, upstream_asset, upstream_partition`, anys(chunk)...)
		if err != nil {
			return nil, err
		}
		for rs.Next() {
			var mat string
			var l Lineage
			if err := rs.Scan(&mat, &l.Asset, &l.Partition, &l.Materialization); err != nil {
				rs.Close()
				return nil, err
			}
			out[mat] = append(out[mat], l)
		}
		rs.Close()
		if err := rs.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}
