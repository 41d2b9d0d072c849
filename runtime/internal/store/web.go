package store

import (
	"context"
	"strings"
)

// RunFilter narrows a run listing; empty fields match every run.
type RunFilter struct {
	Pipeline, Partition string
	Status              RunStatus
	// KeyPrefix matches the run key's start ("schedule:", "sensor:",
	// "backfill:"); Manual matches runs started by none of those.
	KeyPrefix string
	Manual    bool
	Limit     int
}

// FoundRun is one line of a filtered run listing.
type FoundRun struct {
	RunSummary
	// Key is the run key ("" when the request gave none).
	Key string
}

// FindRuns lists the newest runs that match f.
func (Store) FindRuns(ctx context.Context, q Querier, f RunFilter) ([]FoundRun, error) {
	var where []string
	args := []any{AssetPending, AssetQueued, AssetRunning, AssetWaiting, AssetFailed, AssetUpstreamFailed}
	add := func(cond string, vals ...any) {
		where = append(where, cond)
		args = append(args, vals...)
	}
	if f.Pipeline != "" {
		add(`r.pipeline = ?`, f.Pipeline)
	}
	if f.Partition != "" {
		add(`r.partition_key = ?`, f.Partition)
	}
	if f.Status != "" {
		add(`r.status = ?`, f.Status)
	}
	if f.KeyPrefix != "" {
		add(`r.run_key LIKE ?`, f.KeyPrefix+"%")
	}
	if f.Manual {
		add(`r.run_key NOT LIKE 'schedule:%' AND r.run_key NOT LIKE 'sensor:%' AND r.run_key NOT LIKE 'backfill:%' AND r.run_key NOT LIKE 'automation:%'`)
	}
	cond := ""
	if len(where) > 0 {
		cond = "WHERE " + strings.Join(where, " AND ")
	}
	rs, err := q.Query(ctx, `SELECT r.id, r.pipeline, r.partition_key, r.status,
		(SELECT count(*) FROM flowstone_run_assets a WHERE a.run_id = r.id AND a.status IN (?, ?, ?, ?)),
		(SELECT count(*) FROM flowstone_run_assets a WHERE a.run_id = r.id AND a.status IN (?, ?)),
		r.created_at, COALESCE(r.finished_at, 0), r.run_key
		FROM flowstone_runs r `+cond+` ORDER BY r.created_at DESC, r.id DESC LIMIT ?`, append(args, f.Limit)...)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []FoundRun
	for rs.Next() {
		var s FoundRun
		if err := rs.Scan(&s.ID, &s.Pipeline, &s.Partition, &s.Status, &s.Open, &s.Failed, &s.CreatedAt, &s.FinishedAt, &s.Key); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rs.Err()
}

// BackfillIDs lists the newest backfills' IDs of pipeline (every pipeline
// when empty).
func (Store) BackfillIDs(ctx context.Context, q Querier, pipeline string, limit int) ([]string, error) {
	if pipeline == "" {
		return queryStrings(ctx, q, `SELECT id FROM flowstone_backfills ORDER BY created_at DESC, id DESC LIMIT ?`, limit)
	}
	return queryStrings(ctx, q, `SELECT id FROM flowstone_backfills WHERE pipeline = ? ORDER BY created_at DESC, id DESC LIMIT ?`, pipeline, limit)
}
