package store

import (
	"context"
)

// LogChunk is what one job of an attempt logged: JSON lines, bounded by
// the engine before they get here.
type LogChunk struct {
	Node
	Attempt   int
	Job       int64
	Truncated bool
	Lines     string
	LoggedAt  int64
}

// SaveLogs stores c; a job redelivered by River replaces what it stored
// before.
func (Store) SaveLogs(ctx context.Context, q Querier, c LogChunk) error {
	_, err := q.Exec(ctx, `INSERT INTO flowstone_logs (run_id, asset, partition_key, attempt, job_id, logged_at, truncated, lines)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (run_id, asset, partition_key, attempt, job_id) DO UPDATE
		SET logged_at = excluded.logged_at, truncated = excluded.truncated, lines = excluded.lines`,
		c.Run, c.Asset, c.Partition, c.Attempt, c.Job, now(), boolInt(c.Truncated), c.Lines)
	return err
}

// Logs returns the chunks logged in run, of asset unless it is "" and at
// partition unless all, by asset, partition, attempt and time.
func (Store) Logs(ctx context.Context, q Querier, run, asset, partition string, all bool) ([]LogChunk, error) {
	rows, err := q.Query(ctx, `SELECT asset, partition_key, attempt, job_id, logged_at, truncated, lines FROM flowstone_logs
		WHERE run_id = ? AND (? = '' OR asset = ?) AND (? = 1 OR partition_key = ?)
		ORDER BY asset, partition_key, attempt, logged_at, job_id`, run, asset, asset, boolInt(all), partition)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []LogChunk
	for rows.Next() {
		c := LogChunk{Node: Node{Run: run}}
		var truncated int
		if err := rows.Scan(&c.Asset, &c.Partition, &c.Attempt, &c.Job, &c.LoggedAt, &truncated, &c.Lines); err != nil {
			return nil, err
		}
		c.Truncated = truncated == 1
		out = append(out, c)
	}
	return out, rows.Err()
}
