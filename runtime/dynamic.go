package runtime

import (
	"context"
	"fmt"
	"strings"

	"github.com/flowstone-go/flowstone"
)

// AddPartitions adds keys to the dynamic partition set named set (see
// flowstone.Dynamic). Adding a key twice is a no-op.
func (e *Engine) AddPartitions(ctx context.Context, set string, keys ...flowstone.Partition) error {
	if err := e.writable(); err != nil {
		return err
	}
	ds, ok := flowstone.Dynamic(set).(*flowstone.DynamicSet)
	if !ok {
		return fmt.Errorf("dynamic set %q", set)
	}
	for _, k := range keys {
		if err := ds.Validate(k); err != nil {
			return err
		}
	}
	return e.be.inTx(ctx, func(tx txn) error {
		for _, k := range keys {
			if _, err := tx.Exec(ctx, `INSERT INTO flowstone_dynamic_partitions (set_name, partition_key, added_at) VALUES (?, ?, ?)
				ON CONFLICT (set_name, partition_key) DO NOTHING`, set, string(k), now()); err != nil {
				return err
			}
		}
		return nil
	})
}

// RemovePartitions removes keys from the dynamic set; their
// materializations stay recorded.
func (e *Engine) RemovePartitions(ctx context.Context, set string, keys ...flowstone.Partition) error {
	if err := e.writable(); err != nil {
		return err
	}
	return e.be.inTx(ctx, func(tx txn) error {
		for _, k := range keys {
			if _, err := tx.Exec(ctx, `DELETE FROM flowstone_dynamic_partitions WHERE set_name = ? AND partition_key = ?`, set, string(k)); err != nil {
				return err
			}
		}
		return nil
	})
}

// DynamicPartitions lists the keys of a dynamic set, sorted.
func (e *Engine) DynamicPartitions(ctx context.Context, set string) ([]flowstone.Partition, error) {
	rs, err := e.be.pool().Query(ctx, `SELECT partition_key FROM flowstone_dynamic_partitions WHERE set_name = ? ORDER BY partition_key`, set)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []flowstone.Partition
	for rs.Next() {
		var k string
		if err := rs.Scan(&k); err != nil {
			return nil, err
		}
		out = append(out, flowstone.Partition(k))
	}
	return out, rs.Err()
}

// checkDynamic checks that key belongs to the dynamic sets of assets.
func (e *Engine) checkDynamic(ctx context.Context, assets []*AssetDef, key flowstone.Partition) error {
	for _, a := range assets {
		ds, ok := a.Partitions.(*flowstone.DynamicSet)
		if !ok {
			continue
		}
		var n int
		if err := e.be.pool().QueryRow(ctx, `SELECT count(*) FROM flowstone_dynamic_partitions WHERE set_name = ? AND partition_key = ?`,
			ds.Name(), string(key)).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			keys, _ := e.DynamicPartitions(ctx, ds.Name())
			example := "none yet: add some with AddPartitions"
			if len(keys) > 0 {
				ks := make([]string, 0, 3)
				for _, k := range keys[:min(3, len(keys))] {
					ks = append(ks, string(k))
				}
				example = "e.g. " + strings.Join(ks, ", ")
			}
			return fmt.Errorf("asset %s: %w %q: not in dynamic set %s (%s)", a.Key, flowstone.ErrInvalidPartition, key, ds.Name(), example)
		}
	}
	return nil
}
