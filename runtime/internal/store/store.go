// Package store is FlowStone's persistence: every SQL statement the engine,
// the strategies' state and the CLI run on FlowStone's own tables is one
// typed method of Store, next to the migrations that create the tables and
// their runner. Statements are written once with ? placeholders for both
// SQLite and PostgreSQL (the PostgreSQL adapter rewrites them): times are
// BIGINT microseconds, booleans INTEGER, documents TEXT.
//
// A Store holds no connection: each method takes the Querier it runs on,
// the engine's pool or a transaction that also inserts or completes River
// jobs, so FlowStone's rows and River's jobs commit together.
package store

import (
	"time"

	"github.com/flowstone-go/flowstone/scatter"
)

// Querier runs statements with ? placeholders: a pool or a transaction of
// either database. It is the one the scatter store and strategies use too.
type Querier = scatter.DB

// Rows are a query's result rows.
type Rows = scatter.Rows

// Row is a single-row query's result; Scan returns sql.ErrNoRows when there
// is none.
type Row = scatter.Row

// Store runs FlowStone's statements. Its zero value is ready to use.
type Store struct{}

// now is the store's clock: microseconds since the epoch, as the tables
// keep times.
func now() int64 { return time.Now().UnixMicro() }

// micros converts a stored time; zero and NULL are the zero time.
func micros(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMicro(v)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
