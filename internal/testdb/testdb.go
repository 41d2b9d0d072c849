// Package testdb gives tests the databases FlowStone runs on: a fresh
// SQLite file per test always, and a fresh PostgreSQL schema per test when
// FLOWSTONE_TEST_DATABASE_URL is set. With CI set, a missing PostgreSQL URL
// fails the test instead of skipping the PostgreSQL half.
package testdb

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// URLEnv names the environment variable holding the PostgreSQL test URL.
const URLEnv = "FLOWSTONE_TEST_DATABASE_URL"

// DB is one database a test runs against.
type DB struct {
	// Name is "sqlite" or "postgres", for subtest names.
	Name string
	// New returns a database URL and schema isolated for t, removed when t
	// ends.
	New func(t testing.TB) (url, schema string)
}

// seq numbers schemas within a process; with the pid it makes them unique
// across parallel test binaries.
var seq atomic.Int64

// All returns SQLite, and PostgreSQL when configured.
func All(t testing.TB) []DB {
	t.Helper()
	dbs := []DB{SQLite()}
	if pg, ok := Postgres(t); ok {
		dbs = append(dbs, pg)
	}
	return dbs
}

// SQLite returns the SQLite database: a new file in the test's temp dir.
func SQLite() DB {
	return DB{Name: "sqlite", New: func(t testing.TB) (string, string) {
		return "sqlite://" + filepath.Join(t.TempDir(), "flowstone.db"), ""
	}}
}

// Postgres returns the PostgreSQL database, or false (after logging why)
// when FLOWSTONE_TEST_DATABASE_URL is unset; with CI set that is a failure.
func Postgres(t testing.TB) (DB, bool) {
	t.Helper()
	url := os.Getenv(URLEnv)
	if url == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not set; CI requires the PostgreSQL tests", URLEnv)
		}
		t.Logf("%s not set: PostgreSQL cases skipped", URLEnv)
		return DB{}, false
	}
	return DB{Name: "postgres", New: func(t testing.TB) (string, string) { return url, Schema(t, url) }}, true
}

// Schema returns a new schema name for t (at most 46 characters, River's
// limit) and drops the schema when t ends.
func Schema(t testing.TB, url string) string {
	t.Helper()
	sum := sha256.Sum256([]byte(t.Name()))
	name := fmt.Sprintf("fs_%x_%d_%d", sum[:6], os.Getpid(), seq.Add(1))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Logf("drop schema %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{name}.Sanitize()+" CASCADE"); err != nil {
			t.Logf("drop schema %s: %v", name, err)
		}
	})
	return name
}
