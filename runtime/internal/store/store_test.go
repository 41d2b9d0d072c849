package store

import (
	"context"
	"database/sql"
	"errors"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/flowstone-go/flowstone/internal/testdb"
	"github.com/flowstone-go/flowstone/scatter"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// testDB is a database opened for the store alone: a querier and the
// transactions migrations run in.
type testDB struct {
	q        Querier
	inTx     InTx
	postgres bool
}

func open(t testing.TB, db testdb.DB) testDB {
	t.Helper()
	ctx := context.Background()
	url, schema := db.New(t)
	if db.Name == "sqlite" {
		path := strings.TrimPrefix(url, "sqlite://")
		sdb := sql.OpenDB(SQLiteConnector("file:" + path + "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate"))
		sdb.SetMaxOpenConns(1)
		t.Cleanup(func() { sdb.Close() })
		return testDB{q: SQL(sdb), inTx: func(ctx context.Context, fn func(q Querier) error) error {
			tx, err := sdb.BeginTx(ctx, nil)
			if err != nil {
				return err
			}
			if err := fn(SQL(tx)); err != nil {
				_ = tx.Rollback()
				return err
			}
			return tx.Commit()
		}}
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := (Store{}).CreateSchema(ctx, Pgx(pool), schema); err != nil {
		t.Fatal(err)
	}
	return testDB{q: Pgx(pool), inTx: func(ctx context.Context, fn func(q Querier) error) error {
		return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return fn(Pgx(tx)) })
	}, postgres: true}
}

func eachDB(t *testing.T, fn func(t *testing.T, db testDB)) {
	for _, db := range testdb.All(t) {
		t.Run(db.Name, func(t *testing.T) {
			t.Parallel()
			fn(t, open(t, db))
		})
	}
}

func versions(t *testing.T, db testDB) []string {
	t.Helper()
	rs, err := db.q.Query(context.Background(), `SELECT line, name FROM flowstone_schema_versions ORDER BY line, version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	var out []string
	for rs.Next() {
		var line, name string
		if err := rs.Scan(&line, &name); err != nil {
			t.Fatal(err)
		}
		out = append(out, line+"/"+name)
	}
	return out
}

// kindLine is a kind's own migrations, as a strategy.Migrator gives them.
func kindLine() Line {
	return Line{Name: "kind", Files: fstest.MapFS{
		"001_items.sql": {Data: []byte("CREATE TABLE IF NOT EXISTS kind_items (id TEXT PRIMARY KEY);\n")},
	}}
}

func TestMigrateCreatesEveryLineOnce(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		lines := []Line{Core(), kindLine()}
		for range 2 {
			if err := (Store{}).Migrate(ctx, db.inTx, lines); err != nil {
				t.Fatal(err)
			}
		}
		got := versions(t, db)
		core, _ := fs.Glob(Core().Files, "*.sql")
		if len(got) != len(core)+1 || got[len(got)-1] != "kind/001_items.sql" {
			t.Fatalf("recorded %v", got)
		}
		if _, err := db.q.Exec(ctx, `INSERT INTO kind_items (id) VALUES (?)`, "a"); err != nil {
			t.Fatalf("kind's table: %v", err)
		}
	})
}

// A database migrated before migrations came in lines records its versions
// in flowstone_migrations: they are adopted, and nothing runs twice.
func TestMigrateAdoptsTheVersionsOfEarlierDatabases(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		// The scatter tables came with FlowStone's version 2; they are the
		// scatter kind's line now, which finds them there.
		lines := []Line{Core(), {Name: "scatter", Files: scatter.Migrations()}}
		if err := (Store{}).Migrate(ctx, db.inTx, lines); err != nil {
			t.Fatal(err)
		}
		want := versions(t, db)
		// Back to the earlier layout: the same tables without the columns
		// added since (017, and the scatter line's 003 and 004), the old record.
		for _, stmt := range []string{
			`ALTER TABLE flowstone_run_assets DROP COLUMN crashes`,
			`ALTER TABLE flowstone_run_assets DROP COLUMN alone`,
			`DROP INDEX flowstone_scatter_batches_open`,
			`ALTER TABLE flowstone_scatter_barriers DROP COLUMN by_batch`,
			`ALTER TABLE flowstone_scatter_batches DROP COLUMN done`,
			`ALTER TABLE flowstone_scatter_batches DROP COLUMN failed`,
			`ALTER TABLE flowstone_scatter_batches DROP COLUMN finished`,
			`ALTER TABLE flowstone_scatter_batches DROP COLUMN claimed`,
			`ALTER TABLE flowstone_scatter_batches DROP COLUMN results`,
			`DROP TABLE flowstone_schema_versions`,
			`CREATE TABLE flowstone_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`,
			`INSERT INTO flowstone_migrations (version, name, applied_at) VALUES (1, '001_init.sql', 0), (2, '002_scatter.sql', 0),
				(3, '003_run_keys.sql', 0), (4, '004_sensors.sql', 0), (5, '005_backfills.sql', 0), (6, '006_dynamic_partitions.sql', 0)`,
		} {
			if _, err := db.q.Exec(ctx, stmt); err != nil {
				t.Fatal(err)
			}
		}
		if err := (Store{}).Migrate(ctx, db.inTx, lines); err != nil {
			t.Fatalf("upgrade: %v", err)
		}
		if got := versions(t, db); len(got) != len(want) {
			t.Fatalf("after upgrade %v, want %v", got, want)
		}
	})
}

func TestRetryableMatchesSQLiteBusyByCode(t *testing.T) {
	t.Parallel()
	path := t.TempDir() + "/busy.db"
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_txlock=immediate"
	a := sql.OpenDB(SQLiteConnector(dsn))
	b := sql.OpenDB(SQLiteConnector(dsn))
	defer a.Close()
	defer b.Close()
	ctx := context.Background()
	tx, err := a.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback() //nolint:errcheck
	if _, err := tx.ExecContext(ctx, `CREATE TABLE t (x INTEGER)`); err != nil {
		t.Fatal(err)
	}
	_, err = b.BeginTx(ctx, nil)
	if err == nil || !Retryable(err) {
		t.Fatalf("a second writer: %v; want a retryable busy error", err)
	}
	_, err = a.ExecContext(ctx, `SELEC 1`)
	if err == nil || Retryable(err) {
		t.Fatalf("a syntax error: %v; want not retryable", err)
	}
	if Retryable(errors.New("database is locked")) {
		t.Fatal("an error's text made it retryable")
	}
}

// Two migrations with one number (two branches merged) are refused, not
// half applied; FlowStone's own line has none.
func TestMigrationNumbersAreUnique(t *testing.T) {
	t.Parallel()
	if _, err := Core().load(); err != nil {
		t.Fatal(err)
	}
	dup := Line{Name: "kind", Files: fstest.MapFS{
		"001_a.sql": {Data: []byte("SELECT 1")},
		"001_b.sql": {Data: []byte("SELECT 1")},
	}}
	if _, err := dup.load(); err == nil || !strings.Contains(err.Error(), "share version 1") {
		t.Fatalf("load of two 001 migrations: %v, want a 'share version 1' error", err)
	}
}
