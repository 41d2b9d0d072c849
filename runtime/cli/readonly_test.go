package cli_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone/internal/testdb"
	"github.com/flowstone-go/flowstone/runtime"
	"github.com/flowstone-go/flowstone/runtime/cli"
	"github.com/jackc/pgx/v5"
)

// readCommands are the commands that only read.
var readCommands = [][]string{
	{"status"},
	{"status", "run_nope"},
	{"assets"},
	{"partitions", "raw", "--last", "3"},
	{"gates"},
	{"sensors"},
	{"backfill", "status", "bf_nope"},
	{"dynamic", "list", "customers"},
	{"logs", "run_nope"},
}

func TestReadCommandsCreateNothing(t *testing.T) {
	t.Parallel()
	app := daysApp(daysPipeline(0))
	check := func(t *testing.T, db []string) {
		t.Helper()
		ctx := testContext(t)
		for _, cmd := range readCommands {
			r := invoke(ctx, app, args(db, cmd...)...)
			if r.code != cli.ExitFailure || !strings.Contains(r.stderr, "not initialised: run migrate or a worker") {
				t.Errorf("%s on an empty database: %s", strings.Join(cmd, " "), r)
			}
		}
	}
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		check(t, []string{"--database", "sqlite://" + filepath.Join(dir, "app.db")})
		if entries, _ := os.ReadDir(dir); len(entries) > 0 {
			t.Errorf("%s was created", entries[0].Name())
		}
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		pg, ok := testdb.Postgres(t)
		if !ok {
			t.Skip("no PostgreSQL")
		}
		url, _ := pg.New(t)
		schema := fmt.Sprintf("fs_cli_ro_%d_%d", os.Getpid(), time.Now().UnixNano()%1e6)
		t.Cleanup(func() { dropSchema(url, schema) })
		check(t, []string{"--database", url, "--schema", schema})
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_namespace WHERE nspname = $1`, schema).Scan(&n); err != nil || n != 0 {
			t.Errorf("schema %s created (%v)", schema, err)
		}
	})
}

func dropSchema(url, schema string) {
	ctx := context.Background()
	if conn, err := pgx.Connect(ctx, url); err == nil {
		_, _ = conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
		conn.Close(ctx)
	}
}

// Read commands work where the resources cannot be built: with
// App.Pipelines they do not call Bind.
func TestReadCommandsNeedNoResources(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db []string) {
		ctx := testContext(t)
		p := noSensors(0)
		r := invoke(ctx, daysApp(p), args(db, "materialize", "--partition", "2024-01-02", "raw")...)
		if r.code != 0 {
			t.Fatalf("materialize: %s", r)
		}
		id := runID(t, r)
		noResources := cli.App{
			Name:      "days",
			Bind:      func(ctx context.Context) ([]runtime.Binding, error) { return nil, errors.New("the vault is sealed") },
			Pipelines: func() []*runtime.Pipeline { return []*runtime.Pipeline{p} },
			Configure: fast,
		}
		for _, cmd := range readCommands {
			if cmd[len(cmd)-1] == "run_nope" {
				cmd = []string{cmd[0], id}
			}
			if cmd[0] == "backfill" {
				continue // no backfill to show
			}
			if r := invoke(ctx, noResources, args(db, cmd...)...); r.code != 0 {
				t.Errorf("%s: %s", strings.Join(cmd, " "), r)
			}
		}
		r = invoke(ctx, noResources, args(db, "materialize", "raw", "--partition", "2024-01-03")...)
		if r.code != cli.ExitFailure || !strings.Contains(r.stderr, "the vault is sealed") {
			t.Errorf("materialize without resources: %s", r)
		}
	})
}

func TestSchemaFlag(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	app := daysApp(noSensors(0))
	sqlite := filepath.Join(t.TempDir(), "app.db")
	r := invoke(ctx, app, "--database", "sqlite://"+sqlite, "--schema", "reports", "migrate")
	if r.code != cli.ExitUsage || !strings.Contains(r.stderr, `--schema: invalid schema "reports": schemas are PostgreSQL's`) {
		t.Errorf("--schema on SQLite: %s", r)
	}
	if _, err := os.Stat(sqlite); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the SQLite file was created: %v", err)
	}
	r = invoke(ctx, app, "--database", "sqlite://"+sqlite, "--schema", "", "status")
	if r.code != cli.ExitUsage || !strings.Contains(r.stderr, "--schema: empty") {
		t.Errorf("--schema '': %s", r)
	}
	pg, ok := testdb.Postgres(t)
	if !ok {
		return
	}
	url, _ := pg.New(t)
	bad := "Mixed Case"
	r = invoke(ctx, app, "--database", url, "--schema", bad, "migrate")
	if r.code != cli.ExitUsage || !strings.Contains(r.stderr, "use letters, digits and underscores") {
		t.Errorf("--schema %q: %s", bad, r)
	}
	mixed := fmt.Sprintf("Days_Mixed_%d_%d", os.Getpid(), time.Now().UnixNano()%1e6)
	t.Cleanup(func() { dropSchema(url, mixed) })
	db := []string{"--database", url, "--schema", mixed}
	if r := invoke(ctx, app, args(db, "materialize", "--partition", "2024-01-02", "total")...); r.code != 0 {
		t.Fatalf("materialize in schema %s: %s", mixed, r)
	}
	r = invoke(ctx, app, args(db, "partitions", "total", "--from", "2024-01-01", "--to", "2024-01-03")...)
	wantLine(t, r, `2024-01-02 succeeded \S+ \S+ run_\w+ -`)
}
