package store

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
)

// CheckResult is one check's result about one materialization.
type CheckResult struct {
	Materialization, Name      string
	Pipeline, Asset, Partition string
	// Run is empty for a check run alone.
	Run         string
	Blocking    bool
	Passed      bool
	Severity    string
	Description string
	// Metadata is a JSON object.
	Metadata string
	// CreatedAt is in microseconds; set by InsertCheckResult.
	CreatedAt int64
}

// InsertCheckResult records r unless the check already has a result for
// the materialization (a redelivered job); it reports whether it did.
func (Store) InsertCheckResult(ctx context.Context, q Querier, r CheckResult) (bool, error) {
	n, err := q.Exec(ctx, `INSERT INTO flowstone_check_results (materialization_id, name, pipeline, asset, partition_key, run_id,
		blocking, passed, severity, description, metadata, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (materialization_id, name) DO NOTHING`,
		r.Materialization, r.Name, r.Pipeline, r.Asset, r.Partition, r.Run, boolInt(r.Blocking), boolInt(r.Passed),
		r.Severity, r.Description, r.Metadata, now())
	return n == 1, err
}

// ReplaceCheckResult records r, replacing the check's earlier result for
// the materialization (a check run again alone).
func (Store) ReplaceCheckResult(ctx context.Context, q Querier, r CheckResult) error {
	_, err := q.Exec(ctx, `INSERT INTO flowstone_check_results (materialization_id, name, pipeline, asset, partition_key, run_id,
		blocking, passed, severity, description, metadata, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (materialization_id, name) DO UPDATE SET passed = excluded.passed, severity = excluded.severity,
		description = excluded.description, metadata = excluded.metadata, created_at = excluded.created_at`,
		r.Materialization, r.Name, r.Pipeline, r.Asset, r.Partition, r.Run, boolInt(r.Blocking), boolInt(r.Passed),
		r.Severity, r.Description, r.Metadata, now())
	return err
}

// CheckResults returns the results recorded about materialization mat, by
// name.
func (s Store) CheckResults(ctx context.Context, q Querier, mat string) ([]CheckResult, error) {
	return s.queryCheckResults(ctx, q, `SELECT `+checkColumns+` FROM flowstone_check_results WHERE materialization_id = ? ORDER BY name`, mat)
}

// AssetCheckResults returns the newest results of pipeline's checks (of
// asset, or every asset when empty), newest first, at most limit: three
// statements, whose cost follows the assets and limit, not the history.
func (s Store) AssetCheckResults(ctx context.Context, q Querier, pipeline, asset string, limit int) ([]CheckResult, error) {
	if asset != "" {
		return s.NewestCheckResults(ctx, q, pipeline, []string{asset}, limit)
	}
	// The pipeline's newest results are among each asset's newest: the
	// assets are walked through the index (one probe each), then each
	// one's newest read backwards (NewestCheckResults). Sorting the
	// pipeline's results by time read every one of them.
	assets, err := queryStrings(ctx, q, `WITH RECURSIVE a(asset) AS (
			SELECT min(asset) FROM flowstone_check_results WHERE pipeline = ?
			UNION ALL
			SELECT (SELECT min(c.asset) FROM flowstone_check_results c WHERE c.pipeline = ? AND c.asset > a.asset) FROM a WHERE a.asset IS NOT NULL
		) SELECT asset FROM a WHERE asset IS NOT NULL`, pipeline, pipeline)
	if err != nil || len(assets) == 0 {
		return nil, err
	}
	out, err := s.NewestCheckResults(ctx, q, pipeline, assets, limit)
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(out, func(a, b CheckResult) int {
		return cmp.Or(cmp.Compare(b.CreatedAt, a.CreatedAt), strings.Compare(a.Name, b.Name))
	})
	return out[:min(len(out), limit)], nil
}

// NewestCheckResults returns the newest results of pipeline's checks on
// each of assets, at most limit per asset, by asset (in the order given)
// and newest first: one statement for up to 100 assets, each asset's
// results read backwards from one probe of (pipeline, asset, created_at),
// so the cost follows limit, not the history's length.
func (s Store) NewestCheckResults(ctx context.Context, q Querier, pipeline string, assets []string, limit int) ([]CheckResult, error) {
	var out []CheckResult
	order := make(map[string]int, len(assets))
	for i, a := range assets {
		order[a] = i
	}
	for len(assets) > 0 {
		chunk := assets[:min(len(assets), maxArms)]
		assets = assets[len(chunk):]
		arms := make([]string, len(chunk))
		args := make([]any, 0, 3*len(chunk))
		for i, asset := range chunk {
			arms[i] = fmt.Sprintf(`SELECT * FROM (SELECT %s FROM flowstone_check_results WHERE pipeline = ? AND asset = ?
				ORDER BY created_at DESC, name LIMIT ?) r%d`, checkColumns, i)
			args = append(args, pipeline, asset, limit)
		}
		rs, err := s.queryCheckResults(ctx, q, strings.Join(arms, " UNION ALL "), args...)
		if err != nil {
			return nil, err
		}
		out = append(out, rs...)
	}
	// UNION ALL keeps no order.
	slices.SortStableFunc(out, func(a, b CheckResult) int {
		return cmp.Or(cmp.Compare(order[a.Asset], order[b.Asset]), cmp.Compare(b.CreatedAt, a.CreatedAt), strings.Compare(a.Name, b.Name))
	})
	return out, nil
}

const checkColumns = `materialization_id, name, pipeline, asset, partition_key, run_id, blocking, passed,
	severity, description, metadata, created_at`

func (Store) queryCheckResults(ctx context.Context, q Querier, query string, args ...any) ([]CheckResult, error) {
	rs, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []CheckResult
	for rs.Next() {
		var r CheckResult
		var blocking, passed int
		if err := rs.Scan(&r.Materialization, &r.Name, &r.Pipeline, &r.Asset, &r.Partition, &r.Run, &blocking, &passed,
			&r.Severity, &r.Description, &r.Metadata, &r.CreatedAt); err != nil {
			return nil, err
		}
		r.Blocking, r.Passed = blocking == 1, passed == 1
		out = append(out, r)
	}
	return out, rs.Err()
}

// HoldForChecks moves a node that just succeeded to checking: its
// dependents wait for its blocking checks.
func (Store) HoldForChecks(ctx context.Context, q Querier, n Node) error {
	_, err := q.Exec(ctx, `UPDATE flowstone_run_assets SET status = ? WHERE run_id = ? AND asset = ? AND partition_key = ? AND status = ?`,
		AssetChecking, n.Run, n.Asset, n.Partition, AssetSucceeded)
	return err
}

// ReleaseChecked sets a checking node's final status once its blocking
// checks have all reported; of two transactions only one does (ok).
func (Store) ReleaseChecked(ctx context.Context, q Querier, n Node, status AssetStatus, msg string) (ok bool, err error) {
	c, err := q.Exec(ctx, `UPDATE flowstone_run_assets SET status = ?, error = ?, finished_at = ?
		WHERE run_id = ? AND asset = ? AND partition_key = ? AND status = ?`,
		status, msg, now(), n.Run, n.Asset, n.Partition, AssetChecking)
	return c == 1, err
}
