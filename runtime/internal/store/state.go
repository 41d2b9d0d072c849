package store

import (
	"context"
	"database/sql"
	"errors"
)

// State reads the value a strategy saved under name for node n.
func (Store) State(ctx context.Context, q Querier, n Node, name string) (value string, found bool, err error) {
	err = q.QueryRow(ctx, `SELECT value FROM flowstone_state WHERE run_id = ? AND asset = ? AND partition_key = ? AND name = ?`,
		n.Run, n.Asset, n.Partition, name).Scan(&value)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	return value, err == nil, err
}

// SaveState stores value under name for node n unless a value is there
// already; saved reports whether it stored it.
func (Store) SaveState(ctx context.Context, q Querier, n Node, name, value string) (saved bool, err error) {
	c, err := q.Exec(ctx, `INSERT INTO flowstone_state (run_id, asset, partition_key, name, value) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (run_id, asset, partition_key, name) DO NOTHING`, n.Run, n.Asset, n.Partition, name, value)
	return c == 1, err
}
