package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
)

// CodeVersion is an asset and the code version its pipeline declares.
type CodeVersion struct {
	Asset, CodeVersion string
}

// Version is the code version of a partition's newest succeeded
// materialization.
type Version struct {
	Asset, Partition, CodeVersion string
}

// NewerInput is an upstream materialization read by a partition's newest
// succeeded materialization that a newer succeeded one of the same
// upstream partition has replaced.
type NewerInput struct {
	Asset, Partition, Upstream, UpstreamPartition string
}

// StaleFacts is what staleness is judged from, for the assets asked
// about.
type StaleFacts struct {
	// Materialized are the assets with a succeeded materialization.
	Materialized map[string]bool
	// Old are the partitions whose newest succeeded materialization was
	// made by another code version than the one asked about, by asset and
	// partition.
	Old []Version
	// Newer are the inputs of those newest materializations that have
	// been materialized again since, by asset, partition and upstream.
	Newer []NewerInput
}

// staleArms bounds the assets of one Staleness statement: SQLite refuses
// about 45 ("VIEWs and/or subqueries nested too deep").
const staleArms = 25

// Staleness reads the newest succeeded materialization of every partition
// of each of assets and returns those made by another code version, and
// the inputs they read that a newer success of the same upstream
// partition has replaced.
//
// One statement (per 25 assets) reads, per asset, its distinct partition
// keys through the index (a recursive CTE, one probe each), each key's
// newest success (one backward probe of (pipeline, asset, partition_key,
// ...), whose row PostgreSQL reads there and SQLite by rowid) and what it
// read (one probe of the
// lineage). An input is current when it is its upstream partition's
// newest success, found by the same statement when the upstream is one of
// assets: only the other inputs are looked up, in one more statement, so
// the cost follows the partitions, their inputs and what is stale, not
// the history.
func (Store) Staleness(ctx context.Context, q Querier, postgres bool, pipeline string, assets []CodeVersion) (StaleFacts, error) {
	out := StaleFacts{Materialized: map[string]bool{}}
	type key struct{ asset, partition string }
	type mat struct {
		id       string
		finished int64
	}
	type input struct {
		of       key
		upstream key
		read     string
	}
	newest := map[key]mat{}
	var inputs []input
	want := make(map[string]string, len(assets))
	for _, a := range assets {
		want[a.Asset] = a.CodeVersion
	}
	for len(assets) > 0 {
		chunk := assets[:min(len(assets), staleArms)]
		assets = assets[len(chunk):]
		var ctes, arms []string
		var args []any
		for i, a := range chunk {
			ctes = append(ctes, fmt.Sprintf(`k%d(k) AS (
				SELECT min(partition_key) FROM flowstone_materializations WHERE pipeline = ? AND asset = ?
				UNION ALL
				SELECT (SELECT min(m.partition_key) FROM flowstone_materializations m
					WHERE m.pipeline = ? AND m.asset = ? AND m.partition_key > k%d.k)
				FROM k%d WHERE k%d.k IS NOT NULL)`, i, i, i, i))
			args = append(args, pipeline, a.Asset, pipeline, a.Asset)
		}
		for i, a := range chunk {
			// The newest success is one backward probe; PostgreSQL
			// reads its row there (LATERAL), SQLite by the rowid the
			// index holds.
			newestRow := fmt.Sprintf(`JOIN flowstone_materializations m ON m.rowid = (SELECT x.rowid FROM flowstone_materializations x
					WHERE x.pipeline = ? AND x.asset = ? AND x.partition_key = k%d.k AND x.status = 'succeeded'
					ORDER BY x.finished_at DESC, x.id DESC LIMIT 1)`, i)
			if postgres {
				newestRow = fmt.Sprintf(`CROSS JOIN LATERAL (SELECT x.id, x.partition_key, x.code_version, x.finished_at FROM flowstone_materializations x
					WHERE x.pipeline = ? AND x.asset = ? AND x.partition_key = k%d.k AND x.status = 'succeeded'
					ORDER BY x.finished_at DESC, x.id DESC LIMIT 1) m`, i)
			}
			arms = append(arms, fmt.Sprintf(`SELECT ?, m.partition_key, m.id, m.code_version, m.finished_at,
				COALESCE(l.upstream_asset, ''), COALESCE(l.upstream_partition, ''), COALESCE(l.upstream_materialization_id, '')
				FROM k%d %s
				LEFT JOIN flowstone_lineage l ON l.materialization_id = m.id
				WHERE k%d.k IS NOT NULL`, i, newestRow, i))
			args = append(args, a.Asset, pipeline, a.Asset)
		}
		rs, err := q.Query(ctx, "WITH RECURSIVE "+strings.Join(ctes, ", ")+" "+strings.Join(arms, " UNION ALL "), args...)
		if err != nil {
			return out, err
		}
		// One row per input of each partition's newest success (one for a
		// success that read nothing).
		for rs.Next() {
			var k key
			var m mat
			var version, up, upPartition, read string
			if err := rs.Scan(&k.asset, &k.partition, &m.id, &version, &m.finished, &up, &upPartition, &read); err != nil {
				rs.Close()
				return out, err
			}
			out.Materialized[k.asset] = true
			if _, ok := newest[k]; !ok {
				newest[k] = m
				if version != want[k.asset] {
					out.Old = append(out.Old, Version{Asset: k.asset, Partition: k.partition, CodeVersion: version})
				}
			}
			if read != "" {
				inputs = append(inputs, input{of: k, upstream: key{up, upPartition}, read: read})
			}
		}
		err = rs.Err()
		rs.Close()
		if err != nil {
			return out, err
		}
	}
	// An input is replaced when a success of its upstream partition
	// finished after it. When the upstream is one of assets, its newest
	// success is known: the input is current when it is that one, and
	// otherwise replaced when that one finished after it. The others'
	// newest success is read.
	var unknown []key
	var reads []string
	for _, in := range inputs {
		if _, asked := want[in.upstream.asset]; !asked {
			if _, ok := newest[in.upstream]; !ok {
				newest[in.upstream] = mat{}
				unknown = append(unknown, in.upstream)
			}
		} else if u, ok := newest[in.upstream]; !ok || u.id == in.read {
			continue // no success to replace it, or current
		}
		reads = append(reads, in.read)
	}
	if len(reads) == 0 {
		return out, nil
	}
	finished, err := finishTimes(ctx, q, reads)
	if err != nil {
		return out, err
	}
	for chunk := range slices.Chunk(unknown, maxArms) {
		arms := make([]string, len(chunk))
		var args []any
		for i, k := range chunk {
			arms[i] = `SELECT ?, ?, (SELECT max(finished_at) FROM flowstone_materializations
				WHERE pipeline = ? AND asset = ? AND partition_key = ? AND status = 'succeeded')`
			args = append(args, k.asset, k.partition, pipeline, k.asset, k.partition)
		}
		rs, err := q.Query(ctx, strings.Join(arms, " UNION ALL "), args...)
		if err != nil {
			return out, err
		}
		for rs.Next() {
			var k key
			var at sql.NullInt64
			if err := rs.Scan(&k.asset, &k.partition, &at); err != nil {
				rs.Close()
				return out, err
			}
			if at.Valid {
				newest[k] = mat{id: "?", finished: at.Int64}
			}
		}
		err = rs.Err()
		rs.Close()
		if err != nil {
			return out, err
		}
	}
	for _, in := range inputs {
		at, ok := finished[in.read]
		u := newest[in.upstream]
		if ok && u.id != "" && u.id != in.read && u.finished > at {
			out.Newer = append(out.Newer, NewerInput{Asset: in.of.asset, Partition: in.of.partition,
				Upstream: in.upstream.asset, UpstreamPartition: in.upstream.partition})
		}
	}
	return out, nil
}

// finishTimes returns the finish time of each of ids that exists: one
// query per 500 of them.
func finishTimes(ctx context.Context, q Querier, ids []string) (map[string]int64, error) {
	out := make(map[string]int64, len(ids))
	for chunk := range slices.Chunk(ids, lineageChunk) {
		rs, err := q.Query(ctx, `SELECT id, finished_at FROM flowstone_materializations WHERE id IN (`+placeholders(len(chunk))+`)`, anys(chunk)...)
		if err != nil {
			return nil, err
		}
		for rs.Next() {
			var id string
			var at int64
			if err := rs.Scan(&id, &at); err != nil {
				rs.Close()
				return nil, err
			}
			out[id] = at
		}
		err = rs.Err()
		rs.Close()
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}
