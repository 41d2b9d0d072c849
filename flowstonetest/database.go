package flowstonetest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/flowstone-go/flowstone/internal/testdb"
)

// URLEnv names the environment variable that points tests at PostgreSQL:
// postgres://user@host:5432/db. Each test gets a schema of its own in it.
const URLEnv = testdb.URLEnv

// A Database is where a test's engine keeps its state. As an Option it
// chooses the database of Materialize or Open; without one they use
// PostgreSQL when URLEnv is set, SQLite otherwise.
type Database struct {
	name string
	// open returns the URL and schema of a fresh database for t, removed
	// when t ends.
	open func(t testing.TB) (url, schema string)
}

func (d Database) apply(s *settings) { s.db = &d }

// Name is "sqlite" or "postgres".
func (d Database) Name() string { return d.name }

// SQLite is a new SQLite file in the test's temporary directory.
func SQLite() Database {
	return Database{name: "sqlite", open: func(t testing.TB) (string, string) {
		return "sqlite://" + filepath.Join(t.TempDir(), "flowstone.db"), ""
	}}
}

// Postgres is a new schema in the database URLEnv names, dropped when the
// test ends. Without URLEnv the test is skipped (it fails when the CI
// environment variable is set: CI means to test PostgreSQL).
func Postgres() Database {
	return Database{name: "postgres", open: func(t testing.TB) (string, string) {
		t.Helper()
		pg, ok := testdb.Postgres(t)
		if !ok {
			t.Skipf("%s is not set: PostgreSQL test skipped", URLEnv)
		}
		return pg.New(t)
	}}
}

// defaultDatabase is PostgreSQL when URLEnv is set, else SQLite.
func defaultDatabase() Database {
	if os.Getenv(URLEnv) != "" {
		return Postgres()
	}
	return SQLite()
}

// EachDatabase runs fn as a parallel subtest per database: SQLite always,
// PostgreSQL when URLEnv is set (with CI set, a missing URLEnv fails the
// test instead of leaving PostgreSQL out). Pass db to Materialize or Open.
func EachDatabase(t *testing.T, fn func(t *testing.T, db Database)) {
	t.Helper()
	dbs := []Database{SQLite()}
	if _, ok := testdb.Postgres(t); ok {
		dbs = append(dbs, Postgres())
	}
	for _, db := range dbs {
		t.Run(db.name, func(t *testing.T) {
			t.Parallel()
			fn(t, db)
		})
	}
}
