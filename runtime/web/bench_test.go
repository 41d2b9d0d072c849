package web_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/internal/testdb"
	"github.com/flowstone-go/flowstone/runtime"
	"github.com/flowstone-go/flowstone/runtime/internal/store"
	"github.com/flowstone-go/flowstone/runtime/web"
	"github.com/flowstone-go/flowstone/strategy"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The page after a long history: ten daily assets of 100 partitions each,
// every asset with a check, materialized once per partition (1,000
// materializations and check results), then 100 times (100,000 of each).
// The graph and health views show the same at both sizes: each asset's
// partitions by newest status, and the failed checks among each asset's
// newest results.
const (
	histAssets     = 10
	histPartitions = 100
)

var pageHistorySizes = []int{1_000, 100_000}

// BenchmarkPageAfterLongHistory times the graph and health views through
// HTTP (the web package's handlers over an httptest server) on a history
// of 1,000 and of 100,000 materializations and check results inserted
// through the store, and reports each view's median time at both sizes
// (requests alternate between them) and their ratio: a view that costs
// what it shows has a ratio near 1.
func BenchmarkPageAfterLongHistory(b *testing.B) {
	for _, db := range testdb.All(b) {
		b.Run(db.Name, func(b *testing.B) {
			sites := make([]string, len(pageHistorySizes))
			for i, size := range pageHistorySizes {
				sites[i] = historySite(b, db, size)
			}
			for _, view := range []string{"graph", "health"} {
				b.Run(view, func(b *testing.B) {
					var times []time.Duration
					for b.Loop() {
						times = medianGets(b, 11, sites, "/api/"+view)
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

// historyPipeline is the history's assets as a pipeline declares them.
func historyPipeline() *runtime.Pipeline {
	var assets []runtime.AssetDef
	var checks []runtime.CheckDef
	for a := range histAssets {
		key := fmt.Sprintf("asset_%02d", a)
		assets = append(assets, runtime.AssetDef{Key: key, Kind: "standard", Strategy: strategy.Standard{}, HasValue: true, CodeVersion: "v1",
			Partitions: flowstone.Daily("2020-01-01"),
			Run:        func(context.Context, *runtime.Inputs) (any, error) { return 1, nil }})
		checks = append(checks, runtime.CheckDef{Name: "positive", Asset: key,
			Run: func(context.Context, *runtime.Inputs) (flowstone.CheckResult, error) {
				return flowstone.CheckResult{Passed: true}, nil
			}})
	}
	return runtime.NewPipeline(runtime.PipelineDef{Name: "history", Assets: assets, Checks: checks})
}

// historySite opens an engine on a fresh database of db holding size
// materializations, each with a check result (a third of them failed),
// and serves its page; it returns the server's URL.
func historySite(b testing.TB, db testdb.DB, size int) string {
	b.Helper()
	ctx := context.Background()
	url, schema := db.New(b)
	p := historyPipeline()
	eng, err := runtime.Open(ctx, runtime.Config{Database: url, Schema: schema, NoWorkers: true, Logger: slog.New(slog.DiscardHandler)},
		runtime.Bind(p, nil))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = eng.Close(context.Background()) })
	start := time.Now()
	insertPageHistory(b, url, schema, size)
	b.Logf("%s: %d materializations and check results inserted in %s", db.Name, size, time.Since(start).Round(time.Millisecond))
	h, err := web.New(eng, web.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(h)
	b.Cleanup(srv.Close)
	return srv.URL
}

// insertPageHistory records size materializations of the history's assets
// and a check result for each, oldest first, through the store on a
// connection of its own.
func insertPageHistory(b testing.TB, url, schema string, size int) {
	b.Helper()
	ctx := context.Background()
	var st store.Store
	var inTx func(fn func(q store.Querier) error) error
	var q store.Querier
	if schema == "" {
		sdb := sql.OpenDB(store.SQLiteConnector("file:" + strings.TrimPrefix(url, "sqlite://") + "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_txlock=immediate"))
		sdb.SetMaxOpenConns(1)
		defer sdb.Close()
		q = store.SQL(sdb)
		inTx = func(fn func(q store.Querier) error) error {
			tx, err := sdb.BeginTx(ctx, nil)
			if err != nil {
				return err
			}
			if err := fn(store.SQL(tx)); err != nil {
				_ = tx.Rollback()
				return err
			}
			return tx.Commit()
		}
	} else {
		cfg, err := pgxpool.ParseConfig(url)
		if err != nil {
			b.Fatal(err)
		}
		cfg.ConnConfig.RuntimeParams["search_path"] = schema
		pool, err := pgxpool.NewWithConfig(ctx, cfg)
		if err != nil {
			b.Fatal(err)
		}
		defer pool.Close()
		q = store.Pgx(pool)
		inTx = func(fn func(q store.Querier) error) error {
			tx, err := pool.Begin(ctx)
			if err != nil {
				return err
			}
			if err := fn(store.Pgx(tx)); err != nil {
				_ = tx.Rollback(ctx)
				return err
			}
			return tx.Commit(ctx)
		}
	}
	pairs := histAssets * histPartitions
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
	mat := func(i int) store.NewMaterialization {
		a, k, r := i%histAssets, i/histAssets%histPartitions, i/pairs
		fin := base + int64(i)*1_000_000
		return store.NewMaterialization{ID: fmt.Sprintf("mat_%02d_%03d_%05d", a, k, r), Pipeline: "history", Asset: fmt.Sprintf("asset_%02d", a),
			Partition: time.Date(2020, 1, 1+k, 0, 0, 0, 0, time.UTC).Format(time.DateOnly), Run: fmt.Sprintf("run_%05d", r),
			Status: store.MatSucceeded, CodeVersion: "v1", Value: []byte("1"), Attempts: 1, StartedAt: fin - 500_000, FinishedAt: fin}
	}
	// Chunks of 1,000 in order; on PostgreSQL four at a time, each chunk
	// a round trip per check result.
	const chunk = 1000
	workers := 1
	if schema != "" {
		workers = 4
	}
	next := make(chan int)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for from := range next {
				err := inTx(func(q store.Querier) error {
					var ms []store.NewMaterialization
					for i := from; i < min(from+chunk, size); i++ {
						ms = append(ms, mat(i))
					}
					for lo := 0; lo < len(ms); lo += 500 {
						if err := st.InsertMaterializations(ctx, q, ms[lo:min(lo+500, len(ms))]); err != nil {
							return err
						}
					}
					for i, m := range ms {
						if _, err := st.InsertCheckResult(ctx, q, store.CheckResult{Materialization: m.ID, Name: "positive",
							Pipeline: m.Pipeline, Asset: m.Asset, Partition: m.Partition, Run: m.Run, Passed: (from+i)%3 != 0,
							Severity: string(flowstone.SeverityError), Metadata: "{}"}); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for from := 0; from < size; from += chunk {
		select {
		case next <- from:
		case err := <-errs:
			b.Fatal(err)
		}
	}
	close(next)
	wg.Wait()
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
	if schema != "" {
		// What autovacuum does to tables that grew; the test server runs
		// without it.
		if _, err := q.Exec(ctx, "VACUUM ANALYZE flowstone_materializations, flowstone_check_results"); err != nil {
			b.Fatal(err)
		}
	}
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
