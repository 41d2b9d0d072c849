package blobio_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone/blobio"
	"github.com/flowstone-go/flowstone/internal/fakes3"
	"github.com/flowstone-go/flowstone/internal/testdb"
	"github.com/flowstone-go/flowstone/runtime"
	"github.com/flowstone-go/flowstone/strategy"
)

func TestMain(m *testing.M) {
	fakes3.Credentials()
	os.Exit(m.Run())
}

type order struct {
	ID     int     `json:"id"`
	Amount float64 `json:"amount"`
}

// stores returns an IO per kind of store: S3 (a real S3-protocol server
// on loopback), a directory, memory.
func stores(t *testing.T) map[string]*blobio.IO {
	t.Helper()
	out := map[string]*blobio.IO{}
	for name, u := range map[string]string{
		"s3":   fakes3.Start(t, "lake", "team/values"),
		"file": "file://" + filepath.Join(t.TempDir(), "lake"),
		"mem":  "mem://",
	} {
		b, err := blobio.Open(context.Background(), u)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		t.Cleanup(func() { b.Close() })
		out[name] = b
	}
	return out
}

func TestStoreLoadAndRetryOverwrites(t *testing.T) {
	t.Parallel()
	for name, b := range stores(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			ref := runtime.ValueRef{Pipeline: "shop", Asset: "orders", Partition: "2024-01-02", Materialization: "mat_1"}
			if err := b.Store(ctx, ref, []order{{1, 2.5}}); err != nil {
				t.Fatal(err)
			}
			// A retry of the same materialization writes the same key.
			if err := b.Store(ctx, ref, []order{{1, 2.5}, {2, 4}}); err != nil {
				t.Fatal(err)
			}
			var got []order
			if err := b.Load(ctx, ref, &got); err != nil {
				t.Fatal(err)
			}
			if len(got) != 2 || got[1] != (order{2, 4}) {
				t.Fatalf("loaded %v", got)
			}
			keys, err := b.List(ctx, "shop/")
			if err != nil {
				t.Fatal(err)
			}
			if len(keys) != 1 || keys[0] != "shop/orders/2024-01-02/mat_1.json" {
				t.Fatalf("keys = %v, want the one key of the ref", keys)
			}
		})
	}
}

func TestLoadFailsLoudly(t *testing.T) {
	t.Parallel()
	for name, b := range stores(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			missing := runtime.ValueRef{Pipeline: "shop", Asset: "orders", Partition: "2024-01-03", Materialization: "mat_gone"}
			var got []order
			err := b.Load(ctx, missing, &got)
			if !errors.Is(err, blobio.ErrNotFound) {
				t.Fatalf("missing value: %v, want ErrNotFound", err)
			}
			for _, want := range []string{"shop/orders/2024-01-03/mat_gone.json", "asset orders", `partition "2024-01-03"`} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not name %s", err, want)
				}
			}
			// A value of another shape does not decode into a zero value.
			ref := runtime.ValueRef{Pipeline: "shop", Asset: "orders", Materialization: "mat_2"}
			if err := b.Store(ctx, ref, map[string]int{"surprise": 1}); err != nil {
				t.Fatal(err)
			}
			var o order
			if err := b.Load(ctx, ref, &o); err == nil || !strings.Contains(err.Error(), "shop/orders/_/mat_2.json") {
				t.Fatalf("wrong shape: %v", err)
			}
		})
	}
}

func TestURLs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, bad := range []string{"lake", "nope://x", "file://relative/dir", "s3://b/p?prefix=x/"} {
		if _, err := blobio.Open(ctx, bad); err == nil {
			t.Errorf("Open(%q) succeeded", bad)
		}
	}
	_, err := blobio.Open(ctx, "gs://bucket/prefix")
	if err == nil || !strings.Contains(err.Error(), "gocloud.dev/blob/gcsblob") {
		t.Errorf("gs without its driver: %v, want a hint to import gcsblob", err)
	}
	// The prefix in the path is where keys go.
	u := fakes3.Start(t, "lake", "")
	root, err := blobio.Open(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	pre, err := blobio.Open(ctx, strings.Replace(u, "s3://lake", "s3://lake/a/b", 1))
	if err != nil {
		t.Fatal(err)
	}
	if err := pre.Store(ctx, runtime.ValueRef{Pipeline: "p", Asset: "x", Materialization: "m"}, 1); err != nil {
		t.Fatal(err)
	}
	if keys, err := root.List(ctx, ""); err != nil || len(keys) != 1 || keys[0] != "a/b/p/x/_/m.json" {
		t.Fatalf("keys = %v, %v", keys, err)
	}
}

func TestRedact(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"s3://b/p?region=eu-west-1":                    "s3://b/p?region=eu-west-1",
		"azblob://c?sas_token=abc&x=1":                 "azblob://c?sas_token=xxxxx&x=1",
		"s3://user:hunter2@b/p":                        "s3://user:xxxxx@b/p",
		"file:///d?secret_key_path=/etc/k&base_url=/u": "file:///d?base_url=%2Fu&secret_key_path=xxxxx",
	} {
		if got := blobio.Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
	b := blobio.New("s3://user:hunter2@b/p?endpoint=http://127.0.0.1:1&disable_https=true&use_path_style=true")
	err := b.Store(context.Background(), runtime.ValueRef{Pipeline: "p", Asset: "a", Materialization: "m"}, 1)
	if err == nil || strings.Contains(err.Error(), "hunter2") || strings.Contains(b.String(), "hunter2") {
		t.Fatalf("error %v or String %s shows the password", err, b)
	}
}

// TestEngineKeepsValuesInBucket runs a two-asset pipeline whose first
// value lives in S3, on both databases.
func TestEngineKeepsValuesInBucket(t *testing.T) {
	t.Parallel()
	lake, err := blobio.Open(context.Background(), fakes3.Start(t, "lake", "prod"))
	if err != nil {
		t.Fatal(err)
	}
	for _, db := range testdb.All(t) {
		t.Run(db.Name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			var cfg runtime.Config
			cfg.Database, cfg.Schema = db.New(t)
			cfg.Logger = slog.New(slog.DiscardHandler)
			cfg.PollInterval = 20 * time.Millisecond
			orders := runtime.AssetDef{Key: "orders", Kind: "standard", Strategy: strategy.Standard{}, HasValue: true, CodeVersion: "v1", IO: lake,
				Run: func(context.Context, *runtime.Inputs) (any, error) { return []order{{1, 10}, {2, 32}}, nil }}
			total := runtime.AssetDef{Key: "total", Kind: "standard", Strategy: strategy.Standard{}, HasValue: true, CodeVersion: "v1",
				Deps: []runtime.Dep{{Asset: "orders", Kind: runtime.DepValue}},
				Run: func(ctx context.Context, in *runtime.Inputs) (any, error) {
					os, err := runtime.Input[[]order](ctx, in, "orders")
					sum := 0.0
					for _, o := range os {
						sum += o.Amount
					}
					return sum, err
				}}
			p := runtime.NewPipeline(runtime.PipelineDef{Name: "shop_" + db.Name, Assets: []runtime.AssetDef{orders, total}})
			e, err := runtime.Open(ctx, cfg, runtime.Bind(p, nil))
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close(ctx)
			run, err := e.Materialize(ctx, p, runtime.Request{})
			if err != nil {
				t.Fatal(err)
			}
			res, err := e.Wait(ctx, run.ID)
			if err != nil || res.Status != runtime.RunSucceeded {
				t.Fatalf("run: %v %+v", err, res)
			}
			if v, err := runtime.Load[float64](ctx, e, p.Name(), "total", ""); err != nil || v != 42 {
				t.Fatalf("total = %v, %v", v, err)
			}
			got, err := runtime.Load[[]order](ctx, e, p.Name(), "orders", "")
			if err != nil || len(got) != 2 {
				t.Fatalf("orders = %v, %v", got, err)
			}
			key := "prod/" + p.Name() + "/orders/_/" + res.Assets["orders"].Materialization + ".json"
			root, _ := blobio.Open(ctx, strings.Replace(lake.String(), "s3://lake/prod", "s3://lake", 1))
			if _, err := root.ReadFile(ctx, key); err != nil {
				t.Fatalf("value not at %s: %v", key, err)
			}
		})
	}
}

func TestDelete(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for name, b := range stores(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ref := runtime.ValueRef{Pipeline: "shop", Asset: "orders", Partition: "2024-01-04", Materialization: "mat_d"}
			if err := b.Store(ctx, ref, 1); err != nil {
				t.Fatal(err)
			}
			for range 2 { // the second finds nothing to delete, quietly
				if err := b.Delete(ctx, ref); err != nil {
					t.Fatal(err)
				}
			}
			var n int
			if err := b.Load(ctx, ref, &n); !errors.Is(err, blobio.ErrNotFound) {
				t.Fatalf("load after delete: %v", err)
			}
		})
	}
}
