package store

import "context"

// newestSucceeded selects the newest succeeded materialization of each
// partition of an asset (pipeline and asset bound as m.pipeline, m.asset).
const newestSucceeded = `m.status = 'succeeded' AND m.finished_at = (SELECT max(x.finished_at) FROM flowstone_materializations x
	WHERE x.pipeline = m.pipeline AND x.asset = m.asset AND x.partition_key = m.partition_key AND x.status = m.status)`

// Version is the code version of a partition's newest succeeded
// materialization.
type Version struct {
	Partition, Materialization, CodeVersion string
}

// NewestVersions returns, per partition of asset, its newest succeeded
// materialization and the code version that produced it, by partition.
func (Store) NewestVersions(ctx context.Context, q Querier, pipeline, asset string) ([]Version, error) {
	rs, err := q.Query(ctx, `SELECT m.partition_key, m.id, m.code_version FROM flowstone_materializations m
		WHERE m.pipeline = ? AND m.asset = ? AND `+newestSucceeded+` ORDER BY m.partition_key`, pipeline, asset)
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
	rs, err := q.Query(ctx, `SELECT m.partition_key, l.upstream_asset, l.upstream_partition
		FROM flowstone_materializations m
		JOIN flowstone_lineage l ON l.materialization_id = m.id
		JOIN flowstone_materializations u ON u.id = l.upstream_materialization_id
		WHERE m.pipeline = ? AND m.asset = ? AND `+newestSucceeded+`
		AND EXISTS (SELECT 1 FROM flowstone_materializations n WHERE n.pipeline = m.pipeline AND n.asset = l.upstream_asset
			AND n.partition_key = l.upstream_partition AND n.status = 'succeeded' AND n.finished_at > u.finished_at)
		ORDER BY m.partition_key, l.upstream_asset, l.upstream_partition`, pipeline, asset)
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
