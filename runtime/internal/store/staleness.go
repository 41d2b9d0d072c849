package store

import "context"

// newestSucceeded is a CTE naming, as newest(id), the newest succeeded
// materialization of each partition of an asset (bound as pipeline,
// asset three times): the recursive part walks the asset's distinct
// partition keys through the index, one probe each, and each key's
// newest success is one backward probe of (pipeline, asset,
// partition_key, status, finished_at). The cost follows the partitions,
// not their history (a correlated max() per row read every
// materialization of the asset).
const newestSucceeded = `WITH RECURSIVE keys(k) AS (
		SELECT min(partition_key) FROM flowstone_materializations WHERE pipeline = ? AND asset = ?
		UNION ALL
		SELECT (SELECT min(x.partition_key) FROM flowstone_materializations x
			WHERE x.pipeline = ? AND x.asset = ? AND x.partition_key > keys.k)
		FROM keys WHERE keys.k IS NOT NULL
	), newest(id) AS (
		SELECT (SELECT x.id FROM flowstone_materializations x WHERE x.pipeline = ? AND x.asset = ? AND x.partition_key = keys.k
			AND x.status = 'succeeded' ORDER BY x.finished_at DESC, x.id DESC LIMIT 1)
		FROM keys WHERE keys.k IS NOT NULL
	)`

// Version is the code version of a partition's newest succeeded
// materialization.
type Version struct {
	Partition, Materialization, CodeVersion string
}

// NewestVersions returns, per partition of asset, its newest succeeded
// materialization and the code version that produced it, by partition.
func (Store) NewestVersions(ctx context.Context, q Querier, pipeline, asset string) ([]Version, error) {
	rs, err := q.Query(ctx, newestSucceeded+` SELECT m.partition_key, m.id, m.code_version
		FROM newest JOIN flowstone_materializations m ON m.id = newest.id ORDER BY m.partition_key`,
		pipeline, asset, pipeline, asset, pipeline, asset)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []Version
	for rs.Next() {
		var v Version
		if err := rs.Scan(&v.Partition, &v.Materialization, &v.CodeVersion); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rs.Err()
}

// NewerInput is an upstream materialization read by a partition's newest
// materialization that a newer succeeded one of the same upstream
// partition has replaced.
type NewerInput struct {
	Partition, Upstream, UpstreamPartition string
}

// NewerInputs returns the inputs of asset's newest materializations that
// have been materialized again since, by partition and upstream.
func (Store) NewerInputs(ctx context.Context, q Querier, pipeline, asset string) ([]NewerInput, error) {
	rs, err := q.Query(ctx, newestSucceeded+` SELECT m.partition_key, l.upstream_asset, l.upstream_partition
		FROM newest JOIN flowstone_materializations m ON m.id = newest.id
		JOIN flowstone_lineage l ON l.materialization_id = m.id
		JOIN flowstone_materializations u ON u.id = l.upstream_materialization_id
		WHERE EXISTS (SELECT 1 FROM flowstone_materializations n WHERE n.pipeline = m.pipeline AND n.asset = l.upstream_asset
			AND n.partition_key = l.upstream_partition AND n.status = 'succeeded' AND n.finished_at > u.finished_at)
		ORDER BY m.partition_key, l.upstream_asset, l.upstream_partition`, pipeline, asset, pipeline, asset, pipeline, asset)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []NewerInput
	for rs.Next() {
		var n NewerInput
		if err := rs.Scan(&n.Partition, &n.Upstream, &n.UpstreamPartition); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, rs.Err()
}
