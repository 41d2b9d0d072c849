package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// migrationLockKey is the PostgreSQL advisory lock migrators take ("flow").
const migrationLockKey = 0x666c6f77

// LockMigrations takes, on conn (one session), the PostgreSQL advisory lock
// that lets one process migrate at a time; unlock releases it.
func (Store) LockMigrations(ctx context.Context, conn Querier) (unlock func(), err error) {
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock(?)`, migrationLockKey); err != nil {
		return nil, fmt.Errorf("migration lock: %w", err)
	}
	return func() {
		_, _ = conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(?)`, migrationLockKey)
	}, nil
}

// CreateSchema creates a PostgreSQL schema unless it exists.
func (Store) CreateSchema(ctx context.Context, q Querier, schema string) error {
	if _, err := q.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+pgx.Identifier{schema}.Sanitize()); err != nil {
		return fmt.Errorf("create schema %s: %w", schema, err)
	}
	return nil
}
