package runtime

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone/strategy"
	"github.com/jackc/pgx/v5"
)

// testDB is one database the suite runs against.
type testDB struct {
	name string
	// config returns a fresh, isolated database for one test.
	config func(t *testing.T) Config
}

var schemaSeq atomic.Int64

// databases returns SQLite always, and PostgreSQL when
// FLOWSTONE_TEST_DATABASE_URL is set (required when CI is set).
func databases(t *testing.T) []testDB {
	t.Helper()
	dbs := []testDB{{name: "sqlite", config: func(t *testing.T) Config {
		return Config{Database: "sqlite://" + filepath.Join(t.TempDir(), "flowstone.db")}
	}}}
	url := os.Getenv("FLOWSTONE_TEST_DATABASE_URL")
	if url == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("FLOWSTONE_TEST_DATABASE_URL is not set; CI requires the PostgreSQL tests")
		}
		t.Log("FLOWSTONE_TEST_DATABASE_URL not set: PostgreSQL cases skipped")
		return dbs
	}
	dbs = append(dbs, testDB{name: "postgres", config: func(t *testing.T) Config {
		return Config{Database: url, Schema: testSchema(t, url)}
	}})
	return dbs
}

// testSchema returns a new schema name, dropped when the test ends.
func testSchema(t *testing.T, url string) string {
	t.Helper()
	// River limits schema names to 46 characters.
	sum := sha256.Sum256([]byte(t.Name()))
	name := fmt.Sprintf("fs_%x_%d_%d", sum[:6], os.Getpid(), schemaSeq.Add(1))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Logf("drop schema: %v", err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{name}.Sanitize()+" CASCADE"); err != nil {
			t.Logf("drop schema %s: %v", name, err)
		}
	})
	return name
}

// eachDB runs fn as a parallel subtest per database.
func eachDB(t *testing.T, fn func(t *testing.T, db testDB)) {
	t.Helper()
	for _, db := range databases(t) {
		t.Run(db.name, func(t *testing.T) {
			t.Parallel()
			fn(t, db)
		})
	}
}

func fastConfig(c Config) Config {
	c.RetryDelay = func(int) time.Duration { return 10 * time.Millisecond }
	c.PollInterval = 50 * time.Millisecond
	if c.Logger == nil && os.Getenv("FLOWSTONE_TEST_LOG") == "" {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

func openEngine(t *testing.T, cfg Config, bindings ...Binding) *Engine {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	e, err := Open(ctx, fastConfig(cfg), bindings...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = e.Close(ctx)
	})
	return e
}

func waitRun(t *testing.T, e *Engine, id string) RunResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	res, err := e.Wait(ctx, id)
	if err != nil {
		t.Fatalf("Wait(%s): %v", id, err)
	}
	return res
}

// def is a small builder for hand-written pipelines in tests.
func def(key string, run RunFunc, deps ...Dep) AssetDef {
	return AssetDef{Key: key, Kind: "standard", Strategy: strategy.Standard{}, Deps: deps, HasValue: true, CodeVersion: "v1", Run: run}
}

func on(asset string) Dep { return Dep{Asset: asset, Kind: DepValue} }
