package store

import (
	"context"
	"fmt"
	"strings"
)

// NewestByPartition returns the newest materialization, of any status, of
// each partition of asset, ordered by partition. The recursive part walks
// the asset's distinct partition keys through the index, one probe each;
// each key's newest row is one more probe: the cost follows the number of
// partitions, not the length of their history.
func (s Store) NewestByPartition(ctx context.Context, q Querier, pipeline, asset string) ([]Materialization, error) {
	return s.queryMaterializations(ctx, q, `WHERE id IN (
		WITH RECURSIVE keys(k) AS (
			SELECT min(partition_key) FROM flowstone_materializations WHERE pipeline = ? AND asset = ?
			UNION ALL
			SELECT (SELECT min(m.partition_key) FROM flowstone_materializations m
				WHERE m.pipeline = ? AND m.asset = ? AND m.partition_key > keys.k)
			FROM keys WHERE keys.k IS NOT NULL
		)
		SELECT (SELECT x.id FROM flowstone_materializations x WHERE x.pipeline = ? AND x.asset = ? AND x.partition_key = keys.k
			ORDER BY x.finished_at DESC, x.id DESC LIMIT 1)
		FROM keys WHERE keys.k IS NOT NULL) ORDER BY partition_key`, pipeline, asset, pipeline, asset, pipeline, asset)
}

// maxArms bounds the arms of one compound statement (SQLite allows 500).
const maxArms = 100

// PartitionStatusOf is the status of one partition's newest
// materialization.
type PartitionStatusOf struct {
	Asset, Partition string
	Status           MaterializationStatus
}

// NewestStatuses returns the status of the newest materialization of each
// partition of each of assets, in one statement for up to 100 assets: per
// asset, the recursive part walks its distinct partition keys through the
// index and each key's newest row is one backward probe, so the cost
// follows the partitions, not their history.
func (Store) NewestStatuses(ctx context.Context, q Querier, pipeline string, assets []string) ([]PartitionStatusOf, error) {
	var out []PartitionStatusOf
	for len(assets) > 0 {
		chunk := assets[:min(len(assets), maxArms)]
		assets = assets[len(chunk):]
		var ctes, arms []string
		var cteArgs, armArgs []any
		for i, asset := range chunk {
			ctes = append(ctes, fmt.Sprintf(`k%d(k) AS (
				SELECT min(partition_key) FROM flowstone_materializations WHERE pipeline = ? AND asset = ?
				UNION ALL
				SELECT (SELECT min(m.partition_key) FROM flowstone_materializations m
					WHERE m.pipeline = ? AND m.asset = ? AND m.partition_key > k%d.k)
				FROM k%d WHERE k%d.k IS NOT NULL)`, i, i, i, i))
			cteArgs = append(cteArgs, pipeline, asset, pipeline, asset)
			arms = append(arms, fmt.Sprintf(`SELECT ?, k%d.k, (SELECT x.status FROM flowstone_materializations x
				WHERE x.pipeline = ? AND x.asset = ? AND x.partition_key = k%d.k ORDER BY x.finished_at DESC, x.id DESC LIMIT 1)
				FROM k%d WHERE k%d.k IS NOT NULL`, i, i, i, i))
			armArgs = append(armArgs, asset, pipeline, asset)
		}
		rs, err := q.Query(ctx, "WITH RECURSIVE "+strings.Join(ctes, ", ")+" "+strings.Join(arms, " UNION ALL "),
			append(cteArgs, armArgs...)...)
		if err != nil {
			return nil, err
		}
		for rs.Next() {
			var r PartitionStatusOf
			if err := rs.Scan(&r.Asset, &r.Partition, &r.Status); err != nil {
				rs.Close()
				return nil, err
			}
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

// WorkingOf returns the partitions of pipeline's assets that runs are
// working on (pending, queued, running or waiting), by asset and run.
func (Store) WorkingOf(ctx context.Context, q Querier, pipeline string) ([]Working, error) {
	rs, err := q.Query(ctx, `SELECT ra.asset, ra.partition_key, ra.run_id
		FROM flowstone_run_assets ra CROSS JOIN flowstone_runs r
		WHERE r.id = ra.run_id AND ra.status IN (?, ?, ?, ?) AND r.pipeline = ? ORDER BY ra.asset, ra.run_id`,
		AssetPending, AssetQueued, AssetRunning, AssetWaiting, pipeline)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []Working
	for rs.Next() {
		var w Working
		if err := rs.Scan(&w.Asset, &w.Partition, &w.Run); err != nil {
			return nil, err
		}
		out = append(out, w)
	}
	return out, rs.Err()
}

// Working is a partition of an asset a run is working on.
type Working struct {
	// Asset is set by WorkingOf only.
	Asset          string
	Partition, Run string
}

// Working returns the partitions of asset that runs are working on
// (pending, queued, running or waiting), by run.
func (Store) Working(ctx context.Context, q Querier, pipeline, asset string) ([]Working, error) {
	// CROSS JOIN keeps SQLite from walking every run of the pipeline: the
	// few unfinished rows (status-first index) lead.
	rs, err := q.Query(ctx, `SELECT ra.partition_key, ra.run_id
		FROM flowstone_run_assets ra CROSS JOIN flowstone_runs r
		WHERE r.id = ra.run_id AND ra.status IN (?, ?, ?, ?) AND ra.asset = ? AND r.pipeline = ? ORDER BY ra.run_id`,
		AssetPending, AssetQueued, AssetRunning, AssetWaiting, asset, pipeline)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []Working
	for rs.Next() {
		var w Working
		if err := rs.Scan(&w.Partition, &w.Run); err != nil {
			return nil, err
		}
		out = append(out, w)
	}
	return out, rs.Err()
}

func anys(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
