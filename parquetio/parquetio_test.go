package parquetio_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/blobio"
	"github.com/flowstone-go/flowstone/internal/fakes3"
	"github.com/flowstone-go/flowstone/parquetio"
	"github.com/flowstone-go/flowstone/runtime"
)

func TestMain(m *testing.M) {
	fakes3.Credentials()
	os.Exit(m.Run())
}

type trip struct {
	ID       int64
	Driver   string
	Miles    float64
	Paid     bool
	Started  time.Time
	Tip      *float64
	Tags     []string
	Extra    map[string]int
	Raw      []byte
	Hash     [4]byte
	Stops    []stop
	internal int //nolint:unused // unexported fields are not stored
}

type stop struct {
	At   time.Time
	Name string
}

func trips() []trip {
	tip := 2.5
	t0 := time.Date(2024, 1, 2, 8, 30, 0, 123, time.UTC)
	return []trip{
		{ID: 1, Driver: "ana", Miles: 3.2, Paid: true, Started: t0, Tip: &tip, Tags: []string{"airport", "night"}, Extra: map[string]int{"bags": 2}, Raw: []byte{0, 1},
			Hash: [4]byte{1, 2, 3, 4}, Stops: []stop{{At: t0, Name: "a"}, {At: t0.Add(time.Minute), Name: "b"}}},
		{ID: 2, Driver: "bo", Miles: 0.4, Started: t0.Add(time.Hour), Tags: []string{}, Extra: map[string]int{}, Raw: []byte{}, Stops: []stop{}},
	}
}

func open(t *testing.T, u string) *blobio.IO {
	t.Helper()
	b, err := blobio.Open(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func TestRoundTripOverS3AndFiles(t *testing.T) {
	t.Parallel()
	for name, u := range map[string]string{
		"s3":   fakes3.Start(t, "lake", "tables"),
		"file": "file://" + t.TempDir(),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			lake := parquetio.New(open(t, u), "date")
			ref := runtime.ValueRef{Pipeline: "taxi", Asset: "trips", Partition: "2024-01-02", Materialization: "mat_1"}
			if err := lake.Store(ctx, ref, trips()); err != nil {
				t.Fatal(err)
			}
			var got []trip
			if err := lake.Load(ctx, ref, &got); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(trips(), got, cmp.AllowUnexported(trip{})); diff != "" {
				t.Fatalf("round trip (-want +got):\n%s", diff)
			}
			// Pointers to structs work too.
			var ptrs []*trip
			if err := lake.Load(ctx, ref, &ptrs); err != nil || len(ptrs) != 2 || ptrs[0].Driver != "ana" {
				t.Fatalf("load []*trip: %v %v", ptrs, err)
			}
		})
	}
}

func TestHiveLayout(t *testing.T) {
	t.Parallel()
	lake := parquetio.New(nil, "date", "region")
	for part, want := range map[string]string{
		"":              "p/a/m.parquet",
		"2024-01-02":    "p/a/date=2024-01-02/m.parquet",
		"2024-01-02|eu": "p/a/date=2024-01-02/region=eu/m.parquet",
		"a|b|c":         "p/a/date=a/region=b/partition_3=c/m.parquet",
		"x=y/z":         "p/a/date=x%3Dy%2Fz/m.parquet",
	} {
		if got := lake.Key(runtime.ValueRef{Pipeline: "p", Asset: "a", Partition: toPartition(part), Materialization: "m"}); got != want {
			t.Errorf("Key(%q) = %s, want %s", part, got, want)
		}
	}
	if got := parquetio.New(nil).Key(runtime.ValueRef{Pipeline: "p", Asset: "a", Partition: "k", Materialization: "m"}); got != "p/a/partition=k/m.parquet" {
		t.Errorf("default column: %s", got)
	}
}

func TestLoadFailsLoudly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	lake := parquetio.New(open(t, "mem://"), "date")
	ref := runtime.ValueRef{Pipeline: "taxi", Asset: "trips", Partition: "2024-01-02", Materialization: "mat_1"}
	var got []trip
	err := lake.Load(ctx, ref, &got)
	if !errors.Is(err, blobio.ErrNotFound) || !strings.Contains(err.Error(), "taxi/trips/date=2024-01-02/mat_1.parquet") || !strings.Contains(err.Error(), "asset trips") {
		t.Fatalf("missing file: %v", err)
	}
	type narrow struct{ ID int64 }
	if err := lake.Store(ctx, ref, []narrow{{1}}); err != nil {
		t.Fatal(err)
	}
	if err := lake.Load(ctx, ref, &got); err == nil || !strings.Contains(err.Error(), "no column Driver") {
		t.Fatalf("file without the columns: %v", err)
	}
	if err := lake.Store(ctx, ref, 42); !errors.Is(err, parquetio.ErrNotTable) {
		t.Fatalf("store an int: %v", err)
	}
	var n int
	if err := lake.Load(ctx, ref, &n); !errors.Is(err, parquetio.ErrNotTable) {
		t.Fatalf("load into an int: %v", err)
	}
}

// TestDuckDBReadsPartitions checks that another tool reads the layout:
// DuckDB's hive_partitioning turns date=... into a column.
func TestDuckDBReadsPartitions(t *testing.T) {
	t.Parallel()
	duckdb, err := exec.LookPath("duckdb")
	if err != nil {
		t.Skip("duckdb is not installed")
	}
	ctx := context.Background()
	dir := t.TempDir()
	lake := parquetio.New(open(t, "file://"+dir), "date")
	for i, day := range []string{"2024-01-02", "2024-01-03"} {
		ref := runtime.ValueRef{Pipeline: "taxi", Asset: "trips", Partition: toPartition(day), Materialization: "mat_" + day}
		if err := lake.Store(ctx, ref, trips()[:i+1]); err != nil {
			t.Fatal(err)
		}
	}
	glob := filepath.Join(dir, "taxi", "trips", "*", "*.parquet")
	out, err := exec.CommandContext(ctx, duckdb, "-csv", "-noheader", "-c",
		"SELECT CAST(date AS VARCHAR), count(*), round(sum(Miles), 1) FROM read_parquet('"+glob+"', hive_partitioning=true) GROUP BY date ORDER BY date").CombinedOutput()
	if err != nil {
		t.Fatalf("duckdb: %v\n%s", err, out)
	}
	if got, want := strings.TrimSpace(string(out)), "2024-01-02,1,3.2\n2024-01-03,2,3.6"; got != want {
		t.Fatalf("duckdb read:\n%s\nwant:\n%s", got, want)
	}
}

func toPartition(s string) flowstone.Partition { return flowstone.Partition(s) }
