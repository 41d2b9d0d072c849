package store

import (
	"context"
	"time"
)

// Heartbeat records that process id (a River client) is alive now,
// registering it on its first beat.
func (Store) Heartbeat(ctx context.Context, q Querier, id, host string, pid int) error {
	t := now()
	_, err := q.Exec(ctx, `INSERT INTO flowstone_processes (id, host, pid, started_at, heartbeat_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at`, id, host, pid, t, t)
	return err
}

// StaleProcesses returns the processes whose last beat is older than
// before.
func (Store) StaleProcesses(ctx context.Context, q Querier, before time.Time) ([]string, error) {
	rows, err := q.Query(ctx, `SELECT id FROM flowstone_processes WHERE heartbeat_at < ? ORDER BY id`, before.UnixMicro())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// ForgetProcess removes process id's row: it stopped, or its jobs were
// taken over.
func (Store) ForgetProcess(ctx context.Context, q Querier, id string) error {
	_, err := q.Exec(ctx, `DELETE FROM flowstone_processes WHERE id = ?`, id)
	return err
}
