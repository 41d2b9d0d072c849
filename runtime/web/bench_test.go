package web_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone/internal/testdb"
	"github.com/flowstone-go/flowstone/runtime"
	"github.com/flowstone-go/flowstone/runtime/internal/longhistory"
	"github.com/flowstone-go/flowstone/runtime/web"
)

// The page after a long history (runtime/internal/longhistory): ten daily
// assets in a chain, 100 partitions each, every asset with a check,
// materialized once per partition (1,000 materializations and check
// results) and 100 times (100,000 of each), one run per round and
// partition. Every view shows the same at both sizes.
var pageHistorySizes = []int{1_000, 100_000}

// pageViews are the views BenchmarkPageAfterLongHistory times: the
// graph, the Health view, the run list (and filtered by a status no run
// has, and by a partition) and an asset's page.
var pageViews = []struct{ name, path string }{
	{"graph", "/api/graph"},
	{"health", "/api/health"},
	{"runs", "/api/runs?pipeline=history"},
	{"runs_failed", "/api/runs?pipeline=history&status=failed"},
	{"runs_partition", "/api/runs?pipeline=history&partition=2020-01-05"},
	{"asset", "/api/pipelines/history/assets/asset_05"},
}

// BenchmarkPageAfterLongHistory times the page's views through HTTP (the
// web package's handlers over an httptest server) on a history of 1,000
// and of 100,000 materializations and check results inserted through the
// store, and reports each view's median time at both sizes (requests
// alternate between them) and their ratio: a view that costs what it
// shows has a ratio near 1.
func BenchmarkPageAfterLongHistory(b *testing.B) {
	for _, db := range testdb.All(b) {
		b.Run(db.Name, func(b *testing.B) {
			sites := make([]string, len(pageHistorySizes))
			for i, size := range pageHistorySizes {
				sites[i] = historySite(b, db, size)
			}
			for _, view := range pageViews {
				b.Run(view.name, func(b *testing.B) {
					var times []time.Duration
					for b.Loop() {
						times = medianGets(b, 11, sites, view.path)
					}
					for i, size := range pageHistorySizes {
						b.ReportMetric(float64(times[i].Microseconds())/1000, fmt.Sprintf("ms_at_%dk", size/1000))
					}
					b.ReportMetric(float64(times[len(times)-1])/float64(max(times[0], 1)), "ratio")
				})
			}
		})
	}
}

// historySite opens an engine on a fresh database of db holding size
// materializations (longhistory.Insert) and serves its page; it returns
// the server's URL.
func historySite(b testing.TB, db testdb.DB, size int) string {
	b.Helper()
	ctx := context.Background()
	url, schema := db.New(b)
	eng, err := runtime.Open(ctx, runtime.Config{Database: url, Schema: schema, NoWorkers: true, Logger: slog.New(slog.DiscardHandler)},
		runtime.Bind(longhistory.Pipeline(), nil))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = eng.Close(context.Background()) })
	start := time.Now()
	longhistory.Insert(b, url, schema, size)
	b.Logf("%s: %d materializations and check results inserted in %s", db.Name, size, time.Since(start).Round(time.Millisecond))
	h, err := web.New(eng, web.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(h)
	b.Cleanup(srv.Close)
	return srv.URL
}

// medianGets gets path from each site n times, taking turns (so that a
// change of the machine's load falls on every size alike), and returns
// each site's median time.
func medianGets(b *testing.B, n int, sites []string, path string) []time.Duration {
	b.Helper()
	ds := make([][]time.Duration, len(sites))
	for range n {
		for i, site := range sites {
			start := time.Now()
			res, err := http.Get(site + path)
			if err != nil {
				b.Fatal(err)
			}
			body, err := io.ReadAll(res.Body)
			res.Body.Close()
			if err != nil || res.StatusCode != http.StatusOK {
				b.Fatalf("GET %s: %d %s %v", path, res.StatusCode, body, err)
			}
			ds[i] = append(ds[i], time.Since(start))
		}
	}
	out := make([]time.Duration, len(sites))
	for i := range ds {
		slices.Sort(ds[i])
		out[i] = ds[i][n/2]
	}
	return out
}
