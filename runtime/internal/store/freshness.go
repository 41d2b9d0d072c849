package store

import (
	"context"
	"database/sql"
	"errors"
)

// NewestSuccess returns when asset's newest succeeded materialization
// finished (microseconds), at partition, or at any partition when any is
// set; found is false when there is none. Each is one backward probe of
// an index: (pipeline, asset, partition_key, status, finished_at), or
// (pipeline, asset, finished_at, id) down to the newest success (one
// statement for both, with max(), read every materialization of the
// asset).
func (Store) NewestSuccess(ctx context.Context, q Querier, pipeline, asset, partition string, any bool) (at int64, found bool, err error) {
	if any {
		err = q.QueryRow(ctx, `SELECT finished_at FROM flowstone_materializations
			WHERE pipeline = ? AND asset = ? AND status = ? ORDER BY finished_at DESC LIMIT 1`,
			pipeline, asset, MatSucceeded).Scan(&at)
	} else {
		err = q.QueryRow(ctx, `SELECT finished_at FROM flowstone_materializations
			WHERE pipeline = ? AND asset = ? AND partition_key = ? AND status = ? ORDER BY finished_at DESC LIMIT 1`,
			pipeline, asset, partition, MatSucceeded).Scan(&at)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	return at, err == nil, err
}
