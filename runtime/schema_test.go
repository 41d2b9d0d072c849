package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/flowstone-go/flowstone/internal/testdb"
	"github.com/jackc/pgx/v5"
)

// schemaExists reports whether PostgreSQL has schema, and how many tables
// it holds.
func schemaTables(t *testing.T, url, schema string) (exists bool, tables int) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := conn.QueryRow(ctx, `SELECT count(*) > 0 FROM pg_namespace WHERE nspname = $1`, schema).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM information_schema.tables WHERE table_schema = $1`, schema).Scan(&tables); err != nil {
		t.Fatal(err)
	}
	return exists, tables
}

// dropSchemaAtEnd drops schema when t ends.
func dropSchemaAtEnd(t *testing.T, url, schema string) {
	t.Cleanup(func() {
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Log(err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Log(err)
		}
	})
}

func TestMixedCaseSchema(t *testing.T) {
	t.Parallel()
	pg, ok := testdb.Postgres(t)
	if !ok {
		t.Skip("no PostgreSQL")
	}
	url, _ := pg.New(t)
	schema := fmt.Sprintf("FlowStone_Mixed_%d_%d", os.Getpid(), time.Now().UnixNano()%1e6)
	dropSchemaAtEnd(t, url, schema)
	ctx := context.Background()
	p := NewPipeline(PipelineDef{Name: "mixed", Assets: []AssetDef{
		def("answer", func(ctx context.Context, in *Inputs) (any, error) { return 42, nil }),
	}})
	for range 2 { // the second Open finds the tables migrated
		e := openEngine(t, Config{Database: url, Schema: schema}, Bind(p, nil))
		run, err := e.Materialize(ctx, p, Request{Force: true})
		if err != nil {
			t.Fatal(err)
		}
		if res := waitRun(t, e, run.ID); res.Status != RunSucceeded {
			t.Fatalf("run %s: %+v", res.Status, res.Assets)
		}
		if v, err := Load[int](ctx, e, "mixed", "answer", ""); err != nil || v != 42 {
			t.Fatalf("Load = %d, %v", v, err)
		}
		_ = e.Close(ctx)
	}
	if exists, tables := schemaTables(t, url, schema); !exists || tables < 10 {
		t.Fatalf("schema %q: exists %v, %d tables", schema, exists, tables)
	}
	if exists, _ := schemaTables(t, url, strings.ToLower(schema)); exists {
		t.Fatalf("a lower-case %q was created too", strings.ToLower(schema))
	}
}

func TestInvalidSchemaRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sqlite, _ := testdb.SQLite().New(t)
	_, err := Open(ctx, Config{Database: sqlite, Schema: "reports"})
	if !errors.Is(err, ErrInvalidSchema) || !strings.Contains(err.Error(), "schemas are PostgreSQL's") {
		t.Errorf("schema on SQLite: %v", err)
	}
	pg, ok := testdb.Postgres(t)
	if !ok {
		return
	}
	url, _ := pg.New(t)
	for _, c := range []struct{ schema, want string }{
		{strings.Repeat("Long", 12), "48 bytes; at most 46"},
		{"nul\x00here", "use letters, digits and underscores"},
		{"   ", "use letters, digits and underscores"},
		{"Flow Stone", "use letters, digits and underscores"},
		{"1st", "starting with a letter or underscore"},
		{"pg_mine", "the pg_ prefix is reserved"},
		{"bad\xffutf8", "use letters, digits and underscores"},
	} {
		_, err := Open(ctx, Config{Database: url, Schema: c.schema, NoWorkers: true})
		if !errors.Is(err, ErrInvalidSchema) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("schema %q: %v, want ErrInvalidSchema (%s)", c.schema, err, c.want)
		}
		if !strings.ContainsRune(c.schema, 0) && utf8.ValidString(c.schema) {
			if exists, _ := schemaTables(t, url, c.schema); exists {
				t.Errorf("schema %q was created", c.schema)
			}
		}
	}
}
