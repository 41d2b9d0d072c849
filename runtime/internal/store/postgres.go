package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// migrationLockKey is the PostgreSQL advisory lock migrators take ("flow").
const migrationLockKey = 0x666c6f77

// LockMigrations takes, on conn (one session), the PostgreSQL advisory lock
// that lets one process at a time migrate schema ("" is the connection's
// current schema); unlock releases it. The lock is per schema, so
// processes migrating different schemas of one server do not wait on each
// other.
func (Store) LockMigrations(ctx context.Context, conn Querier, schema string) (unlock func(), err error) {
	const key = `hashtext(coalesce(nullif(?, ''), current_schema(), ''))`
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock(?, `+key+`)`, migrationLockKey, schema); err != nil {
		return nil, fmt.Errorf("migration lock: %w", err)
	}
	return func() {
		_, _ = conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(?, `+key+`)`, migrationLockKey, schema)
	}, nil
}

// CreateSchema creates a PostgreSQL schema unless it exists.
func (Store) CreateSchema(ctx context.Context, q Querier, schema string) error {
	if _, err := q.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+pgx.Identifier{schema}.Sanitize()); err != nil {
		return fmt.Errorf("create schema %s: %w", schema, err)
	}
	return nil
}

// NotifyJobs sends, in q's transaction, River's insert notification for
// each of queues on schema ("" is the connection's current schema): the
// channel and payload River's client sends after an insert, so River's
// producers listening there fetch as they do after their own client's
// inserts. Identical notifications in one transaction are delivered once:
// when River sent its own in the same transaction, listeners get one.
func (Store) NotifyJobs(ctx context.Context, q Querier, schema string, queues []string) error {
	if len(queues) == 0 {
		return nil
	}
	payloads := make([]string, len(queues))
	for i, queue := range queues {
		payloads[i] = fmt.Sprintf("{\"queue\": %q}", queue)
	}
	_, err := q.Exec(ctx, `SELECT pg_notify(concat(coalesce(nullif(?, ''), current_schema()), '.river_insert'), p) FROM unnest(?::text[]) AS p`,
		schema, payloads)
	if err != nil {
		return fmt.Errorf("notify inserted jobs: %w", err)
	}
	return nil
}
