package store

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"time"
)

//go:embed migrations/*.sql
var coreMigrations embed.FS

// CoreLine is the name FlowStone's own migrations are recorded under.
const CoreLine = "flowstone"

// Line is a sequence of migrations recorded under one name: FlowStone's own
// (Core), or an asset kind's that keeps tables of its own. Files holds
// NNN_description.sql files at its root, applied in number order.
type Line struct {
	Name  string
	Files fs.FS
}

// Core returns FlowStone's own migrations.
func Core() Line {
	sub, err := fs.Sub(coreMigrations, "migrations")
	if err != nil {
		panic(err) // the embedded directory exists
	}
	return Line{Name: CoreLine, Files: sub}
}

type migration struct {
	version int
	name    string
	sql     string
}

func (l Line) load() ([]migration, error) {
	entries, err := fs.ReadDir(l.Files, ".")
	if err != nil {
		return nil, fmt.Errorf("migrations of %s: %w", l.Name, err)
	}
	var out []migration
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration %s/%s: name must start with a number and _", l.Name, e.Name())
		}
		body, err := fs.ReadFile(l.Files, e.Name())
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: e.Name(), sql: string(body)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	// Two files with one number (two branches merged) would leave one of
	// them unapplied without a word: refuse instead.
	for i := 1; i < len(out); i++ {
		if out[i].version == out[i-1].version {
			return nil, fmt.Errorf("migrations of %s: %s and %s share version %d", l.Name, out[i-1].name, out[i].name, out[i].version)
		}
	}
	return out, nil
}

// InTx runs fn in one transaction on q.
type InTx func(ctx context.Context, fn func(q Querier) error) error

// Migrate applies the migrations of lines not yet recorded, each in its own
// transaction. Callers serialise concurrent migrators (an advisory lock on
// PostgreSQL, a lock file on SQLite).
func (Store) Migrate(ctx context.Context, inTx InTx, lines []Line) error {
	if err := inTx(ctx, func(q Querier) error { return adoptLegacy(ctx, q) }); err != nil {
		return fmt.Errorf("flowstone migrations table: %w", err)
	}
	for _, l := range lines {
		ms, err := l.load()
		if err != nil {
			return err
		}
		for _, m := range ms {
			err := inTx(ctx, func(q Querier) error {
				var n int
				if err := q.QueryRow(ctx, `SELECT count(*) FROM flowstone_schema_versions WHERE line = ? AND version = ?`,
					l.Name, m.version).Scan(&n); err != nil {
					return err
				}
				if n > 0 {
					return nil
				}
				for _, stmt := range splitStatements(m.sql) {
					if _, err := q.Exec(ctx, stmt); err != nil {
						return err
					}
				}
				_, err := q.Exec(ctx, `INSERT INTO flowstone_schema_versions (line, version, name, applied_at) VALUES (?, ?, ?, ?)`,
					l.Name, m.version, m.name, time.Now().UnixMicro())
				return err
			})
			if err != nil {
				return fmt.Errorf("migration %s/%s: %w", l.Name, m.name, err)
			}
		}
	}
	return nil
}

// adoptLegacy creates the versions table, taking over the rows of the one
// databases had before migrations came in lines: those were all FlowStone's
// own (its version 2 created the scatter kind's tables too, which the
// kind's first migration creates only if missing).
func adoptLegacy(ctx context.Context, q Querier) error {
	for _, stmt := range []string{
		`CREATE TABLE IF NOT EXISTS flowstone_schema_versions (
			line TEXT NOT NULL, version INTEGER NOT NULL, name TEXT NOT NULL, applied_at BIGINT NOT NULL,
			PRIMARY KEY (line, version))`,
		`CREATE TABLE IF NOT EXISTS flowstone_migrations (
			version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`,
		`INSERT INTO flowstone_schema_versions (line, version, name, applied_at)
			SELECT '` + CoreLine + `', version, name, applied_at FROM flowstone_migrations WHERE true
			ON CONFLICT DO NOTHING`,
		`DROP TABLE flowstone_migrations`,
	} {
		if _, err := q.Exec(ctx, stmt); err != nil {
			return err
		}
	}
	return nil
}

// splitStatements splits a migration on semicolons ending a line; comments
// are dropped.
func splitStatements(src string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(src, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "--") || trimmed == "" {
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
		if strings.HasSuffix(trimmed, ";") {
			out = append(out, strings.TrimSuffix(strings.TrimSpace(cur.String()), ";"))
			cur.Reset()
		}
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		out = append(out, s)
	}
	return out
}
