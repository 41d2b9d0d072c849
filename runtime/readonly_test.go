package runtime

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone/internal/testdb"
	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite" // the test inspects the file directly
)

func TestReadOnlyCreatesNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ro := func(database, schema string) error {
		e, err := Open(ctx, Config{Database: database, Schema: schema, ReadOnly: true}, Bind(gatePipeline(0, ""), nil))
		if err == nil {
			_ = e.Close(ctx)
		}
		return err
	}
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		missing := filepath.Join(dir, "missing.db")
		if err := ro("sqlite://"+missing, ""); !errors.Is(err, ErrNotInitialised) || !strings.Contains(err.Error(), "not initialised: run migrate or a worker (sqlite database "+missing+" does not exist)") {
			t.Errorf("missing file: %v", err)
		}
		if entries, _ := os.ReadDir(dir); len(entries) > 0 {
			t.Errorf("created %v", entries[0].Name())
		}
		empty := filepath.Join(dir, "empty.db")
		db, err := sql.Open("sqlite", empty)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if _, err := db.Exec(`CREATE TABLE mine (x INTEGER)`); err != nil {
			t.Fatal(err)
		}
		if err := ro("sqlite://"+empty, ""); !errors.Is(err, ErrNotInitialised) || !strings.Contains(err.Error(), "(the database has no FlowStone tables)") {
			t.Errorf("empty database: %v", err)
		}
		var n int
		if err := db.QueryRow(`SELECT count(*) FROM sqlite_master`).Scan(&n); err != nil || n != 1 {
			t.Errorf("%d objects in the database after a read-only open (%v); want only the test's table", n, err)
		}
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		pg, ok := testdb.Postgres(t)
		if !ok {
			t.Skip("no PostgreSQL")
		}
		url, _ := pg.New(t)
		missing := fmt.Sprintf("fs_ro_missing_%d_%d", os.Getpid(), time.Now().UnixNano()%1e6)
		dropSchemaAtEnd(t, url, missing)
		if err := ro(url, missing); !errors.Is(err, ErrNotInitialised) || !strings.Contains(err.Error(), "(schema "+missing+" has no FlowStone tables)") {
			t.Errorf("missing schema: %v", err)
		}
		if exists, _ := schemaTables(t, url, missing); exists {
			t.Errorf("schema %s created", missing)
		}
		empty := testSchema(t, url)
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "CREATE SCHEMA "+empty); err != nil {
			t.Fatal(err)
		}
		if err := ro(url, empty); !errors.Is(err, ErrNotInitialised) {
			t.Errorf("empty schema: %v", err)
		}
		if _, tables := schemaTables(t, url, empty); tables != 0 {
			t.Errorf("%d tables created in an empty schema", tables)
		}
	})
}

func TestReadOnlyReadsWithoutResources(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		type resources struct{ DB *strings.Builder }
		p := NewPipeline(PipelineDef{Name: "res", Resources: ResourcesOf[resources](), Assets: []AssetDef{
			def("a", func(ctx context.Context, in *Inputs) (any, error) { return 1, nil }),
		}})
		cfg := db.config(t)
		e := openEngine(t, cfg, Bind(p, resources{DB: &strings.Builder{}}))
		run, err := e.Materialize(ctx, p, Request{})
		if err != nil {
			t.Fatal(err)
		}
		waitRun(t, e, run.ID)

		cfg.ReadOnly = true
		r := openEngine(t, cfg, Bind(p, nil)) // no resources: it runs nothing
		res, err := r.Run(ctx, run.ID)
		if err != nil || res.Status != RunSucceeded {
			t.Fatalf("Run = %s, %v", res.Status, err)
		}
		if v, err := Load[int](ctx, r, "res", "a", ""); err != nil || v != 1 {
			t.Errorf("Load = %d, %v", v, err)
		}
		if _, err := r.Materialize(ctx, p, Request{}); !errors.Is(err, ErrReadOnly) {
			t.Errorf("Materialize on a read-only engine: %v", err)
		}
		if err := r.Cancel(ctx, run.ID); !errors.Is(err, ErrReadOnly) {
			t.Errorf("Cancel on a read-only engine: %v", err)
		}
	})
}
