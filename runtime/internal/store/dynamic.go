package store

import "context"

// A dynamic set's keys live in a scope: its pipeline's name, or "" for a
// set declared shared.

// AddDynamicPartition adds key to dynamic set in scope; adding it twice is
// a no-op.
func (Store) AddDynamicPartition(ctx context.Context, q Querier, scope, set, key string) error {
	_, err := q.Exec(ctx, `INSERT INTO flowstone_dynamic_partitions (scope, set_name, partition_key, added_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (scope, set_name, partition_key) DO NOTHING`, scope, set, key, now())
	return err
}

// RemoveDynamicPartition removes key from dynamic set in scope.
func (Store) RemoveDynamicPartition(ctx context.Context, q Querier, scope, set, key string) error {
	_, err := q.Exec(ctx, `DELETE FROM flowstone_dynamic_partitions WHERE scope = ? AND set_name = ? AND partition_key = ?`, scope, set, key)
	return err
}

// DynamicPartitions lists the keys of dynamic set in scope, sorted.
func (Store) DynamicPartitions(ctx context.Context, q Querier, scope, set string) ([]string, error) {
	return queryStrings(ctx, q, `SELECT partition_key FROM flowstone_dynamic_partitions WHERE scope = ? AND set_name = ? ORDER BY partition_key`, scope, set)
}

// HasDynamicPartition reports whether dynamic set in scope holds key.
func (Store) HasDynamicPartition(ctx context.Context, q Querier, scope, set, key string) (bool, error) {
	var n int
	err := q.QueryRow(ctx, `SELECT count(*) FROM flowstone_dynamic_partitions WHERE scope = ? AND set_name = ? AND partition_key = ?`, scope, set, key).Scan(&n)
	return n > 0, err
}
