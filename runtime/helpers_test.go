package runtime

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone/internal/testdb"
	"github.com/flowstone-go/flowstone/scatter"
	"github.com/flowstone-go/flowstone/strategy"
)

// testDB is one database the suite runs against.
type testDB struct {
	name string
	// config returns a fresh, isolated database for one test.
	config func(t *testing.T) Config
}

// databases returns SQLite always, and PostgreSQL when
// FLOWSTONE_TEST_DATABASE_URL is set (required when CI is set).
func databases(t *testing.T) []testDB {
	t.Helper()
	var out []testDB
	for _, db := range testdb.All(t) {
		out = append(out, testDB{name: db.Name, config: func(t *testing.T) Config {
			url, schema := db.New(t)
			return Config{Database: url, Schema: schema}
		}})
	}
	return out
}

// testSchema returns a new schema name, dropped when the test ends.
func testSchema(t *testing.T, url string) string { return testdb.Schema(t, url) }

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

// scatterRecords reads the record of every item of a run's scatters that
// has a result (scatter.Records), in asset, partition and index order.
func scatterRecords(t testing.TB, q querier, runID string) []scatter.ItemRecord {
	t.Helper()
	var out []scatter.ItemRecord
	if err := scatter.Records(context.Background(), q, runID, func(r scatter.ItemRecord) error {
		out = append(out, r)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// scatterCounts counts a run's item records (of asset, or of every asset
// when empty): all, distinct items, succeeded, and succeeded at the first
// attempt.
func scatterCounts(t testing.TB, q querier, runID, asset string) (rows, distinct, ok, firstTry int) {
	t.Helper()
	seen := map[string]bool{}
	for _, r := range scatterRecords(t, q, runID) {
		if asset != "" && r.Asset != asset {
			continue
		}
		rows++
		if k := fmt.Sprint(r.Asset, "\x00", r.Partition, "\x00", r.Index); !seen[k] {
			seen[k] = true
			distinct++
		}
		if r.Status == scatter.ItemSucceeded {
			ok++
			if r.Attempts == 1 {
				firstTry++
			}
		}
	}
	return rows, distinct, ok, firstTry
}
