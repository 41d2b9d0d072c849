package cli_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone/internal/testdb"
	"github.com/flowstone-go/flowstone/runtime"
	"github.com/flowstone-go/flowstone/runtime/cli"
	"github.com/flowstone-go/flowstone/runtime/internal/longhistory"
)

// historyApp is a command line bound to the long history's pipeline.
func historyApp() cli.App {
	return cli.App{Name: "history", Bind: func(context.Context) ([]runtime.Binding, error) {
		return []runtime.Binding{runtime.Bind(longhistory.Pipeline(), nil)}, nil
	}}
}

// historyDB returns the global flags of a fresh database of db holding
// size materializations (longhistory.Insert), migrated by the command
// line first.
func historyDB(tb testing.TB, db testdb.DB, size int) []string {
	tb.Helper()
	url, schema := db.New(tb)
	flags := []string{"--database", url}
	if schema != "" {
		flags = append(flags, "--schema", schema)
	}
	if r := invoke(context.Background(), historyApp(), args(flags, "migrate")...); r.code != 0 {
		tb.Fatalf("migrate: %s", r)
	}
	longhistory.Insert(tb, url, schema, size)
	return flags
}

// BenchmarkCommandsAfterLongHistory times the commands that show what the
// page shows (assets with staleness, an asset's partitions, show, checks,
// status) on a history of 1,000 and of 100,000 materializations, each a
// whole invocation (opening the database included), and reports each
// command's median time at both sizes (invocations alternate between
// them) and their ratio.
func BenchmarkCommandsAfterLongHistory(b *testing.B) {
	sizes := []int{1_000, 100_000}
	for _, db := range testdb.All(b) {
		b.Run(db.Name, func(b *testing.B) {
			dbs := make([][]string, len(sizes))
			for i, size := range sizes {
				dbs[i] = historyDB(b, db, size)
			}
			for _, cmd := range [][]string{{"assets"}, {"partitions", "asset_05"}, {"show", "asset_05"}, {"checks"}, {"status"}} {
				b.Run(cmd[0], func(b *testing.B) {
					var times []time.Duration
					for b.Loop() {
						ds := make([][]time.Duration, len(dbs))
						for range 7 {
							for i, flags := range dbs {
								start := time.Now()
								if r := invoke(context.Background(), historyApp(), args(flags, cmd...)...); r.code != 0 {
									b.Fatalf("%v: %s", cmd, r)
								}
								ds[i] = append(ds[i], time.Since(start))
							}
						}
						times = times[:0]
						for _, d := range ds {
							slices.Sort(d)
							times = append(times, d[len(d)/2])
						}
					}
					for i, size := range sizes {
						b.ReportMetric(float64(times[i].Microseconds())/1000, fmt.Sprintf("ms_at_%dk", size/1000))
					}
					b.ReportMetric(float64(times[len(times)-1])/float64(max(times[0], 1)), "ratio")
				})
			}
		})
	}
}
