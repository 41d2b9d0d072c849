package store

import (
	"context"
	"fmt"
)

// tableExists reports whether the current schema (PostgreSQL's search
// path, SQLite's main database) holds table.
func tableExists(ctx context.Context, q Querier, dialect, table string) (bool, error) {
	query := `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?`
	if dialect == "postgres" {
		// current_schema() is NULL when the search path's schema is missing.
		query = `SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = ?`
	}
	var n int
	err := q.QueryRow(ctx, query, table).Scan(&n)
	return n > 0, err
}

// Missing says what a read-only engine lacks to read the database with
// lines, reading only: "" when every migration is recorded, else why not
// ("no FlowStone tables", "2 of FlowStone's migrations not applied").
func (Store) Missing(ctx context.Context, q Querier, dialect string, lines []Line) (string, error) {
	versions, err := tableExists(ctx, q, dialect, "flowstone_schema_versions")
	if err != nil {
		return "", err
	}
	if versions {
		for _, l := range lines {
			ms, err := l.load()
			if err != nil {
				return "", err
			}
			missing := 0
			for _, m := range ms {
				var n int
				if err := q.QueryRow(ctx, `SELECT count(*) FROM flowstone_schema_versions WHERE line = ? AND version = ?`,
					l.Name, m.version).Scan(&n); err != nil {
					return "", err
				}
				if n == 0 {
					missing++
				}
			}
			if missing > 0 {
				return fmt.Sprintf("%d of the %s migrations not applied", missing, l.Name), nil
			}
		}
		return "", nil
	}
	legacy, err := tableExists(ctx, q, dialect, "flowstone_migrations")
	if err != nil {
		return "", err
	}
	if legacy {
		return "tables of an older FlowStone", nil
	}
	return "no FlowStone tables", nil
}
