package store

import (
	"context"
	"fmt"
	"hash/fnv"

	"github.com/jackc/pgx/v5"
)

// migrationLockKey is the first half of the PostgreSQL advisory lock
// migrators take ("flow"); the second is the schema's hash.
const migrationLockKey = 0x666c6f77

// LockMigrations takes, on conn (one session), the PostgreSQL advisory lock
// that lets one process at a time migrate schema; unlock releases it.
// Migrators of other schemas of the database do not wait for it.
func (Store) LockMigrations(ctx context.Context, conn Querier, schema string) (unlock func(), err error) {
	h := fnv.New32a()
	h.Write([]byte(schema))
	key := int32(h.Sum32())
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock(?::int, ?::int)`, int32(migrationLockKey), key); err != nil {
		return nil, fmt.Errorf("migration lock: %w", err)
	}
	return func() {
		_, _ = conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(?::int, ?::int)`, int32(migrationLockKey), key)
	}, nil
}

// CreateSchema creates a PostgreSQL schema unless it exists.
func (Store) CreateSchema(ctx context.Context, q Querier, schema string) error {
	if _, err := q.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+pgx.Identifier{schema}.Sanitize()); err != nil {
		return fmt.Errorf("create schema %s: %w", schema, err)
	}
	return nil
}
