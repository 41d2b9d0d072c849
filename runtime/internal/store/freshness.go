package store

import (
	"context"
	"database/sql"
)

// NewestSuccess returns when asset's newest succeeded materialization
// finished (microseconds), at partition, or at any partition when any is
// set; found is false when there is none.
func (Store) NewestSuccess(ctx context.Context, q Querier, pipeline, asset, partition string, any bool) (at int64, found bool, err error) {
	var v sql.NullInt64
	err = q.QueryRow(ctx, `SELECT max(finished_at) FROM flowstone_materializations
		WHERE pipeline = ? AND asset = ? AND (? = 1 OR partition_key = ?) AND status = ?`,
		pipeline, asset, boolInt(any), partition, MatSucceeded).Scan(&v)
	return v.Int64, v.Valid, err
}
