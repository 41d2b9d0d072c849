package store

import "context"

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

// Working is a partition of an asset a run is working on.
type Working struct {
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
