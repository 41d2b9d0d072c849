package store

import "context"

// AddDynamicPartition adds key to dynamic set; adding it twice is a no-op.
func (Store) AddDynamicPartition(ctx context.Context, q Querier, set, key string) error {
	_, err := q.Exec(ctx, `INSERT INTO flowstone_dynamic_partitions (set_name, partition_key, added_at) VALUES (?, ?, ?)
		ON CONFLICT (set_name, partition_key) DO NOTHING`, set, key, now())
	return err
}

// RemoveDynamicPartition removes key from dynamic set.
func (Store) RemoveDynamicPartition(ctx context.Context, q Querier, set, key string) error {
	_, err := q.Exec(ctx, `DELETE FROM flowstone_dynamic_partitions WHERE set_name = ? AND partition_key = ?`, set, key)
	return err
}

// DynamicPartitions lists the keys of dynamic set, sorted.
func (Store) DynamicPartitions(ctx context.Context, q Querier, set string) ([]string, error) {
	return queryStrings(ctx, q, `SELECT partition_key FROM flowstone_dynamic_partitions WHERE set_name = ? ORDER BY partition_key`, set)
}

// HasDynamicPartition reports whether dynamic set holds key.
func (Store) HasDynamicPartition(ctx context.Context, q Querier, set, key string) (bool, error) {
	var n int
	err := q.QueryRow(ctx, `SELECT count(*) FROM flowstone_dynamic_partitions WHERE set_name = ? AND partition_key = ?`, set, key).Scan(&n)
	return n > 0, err
}
