// Package longhistory builds, for benchmarks and tests, a database holding
// a long history of one pipeline recorded through the store: ten daily
// assets in a chain (asset_01 reads asset_00, ...), 100 partitions each,
// materialized once per partition (1,000 materializations) or 100 times
// (100,000), each with a check result, one run per round and partition.
// Whatever the size, what the views show is the same: the 20 newest runs,
// each asset's partitions by newest status, the failed checks among each
// asset's newest results, and the same staleness (see Insert).
package longhistory

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/runtime"
	"github.com/flowstone-go/flowstone/runtime/internal/store"
	"github.com/flowstone-go/flowstone/strategy"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Assets and Partitions are the history's shape; Name is its pipeline.
const (
	Assets     = 10
	Partitions = 100
	Name       = "history"
)

// Renewed are the partitions of asset_00 materialized once more after the
// history, which its downstream has not read since.
const Renewed = 5

// Asset names the history's asset a.
func Asset(a int) string { return fmt.Sprintf("asset_%02d", a) }

// Key is the history's partition k.
func Key(k int) string {
	return time.Date(2020, 1, 1+k, 0, 0, 0, 0, time.UTC).Format(time.DateOnly)
}

// Pipeline is the history's assets as a pipeline declares them: a chain,
// every asset with a check, the last one at code version v2 (its
// materializations were made by v1).
func Pipeline() *runtime.Pipeline {
	var assets []runtime.AssetDef
	var checks []runtime.CheckDef
	for a := range Assets {
		d := runtime.AssetDef{Key: Asset(a), Kind: "standard", Strategy: strategy.Standard{}, HasValue: true, CodeVersion: "v1",
			Partitions: flowstone.Daily("2020-01-01"),
			Run:        func(context.Context, *runtime.Inputs) (any, error) { return 1, nil }}
		if a > 0 {
			d.Deps = []runtime.Dep{{Asset: Asset(a - 1), Kind: runtime.DepValue}}
		}
		if a == Assets-1 {
			d.CodeVersion = "v2"
		}
		assets = append(assets, d)
		checks = append(checks, runtime.CheckDef{Name: "positive", Asset: Asset(a),
			Run: func(context.Context, *runtime.Inputs) (flowstone.CheckResult, error) {
				return flowstone.CheckResult{Passed: true}, nil
			}})
	}
	return runtime.NewPipeline(runtime.PipelineDef{Name: Name, Assets: assets, Checks: checks})
}

// Insert records size materializations of the history's assets, oldest
// first, through the store on a connection of its own (url and schema as
// testdb gives them): materialization i is of asset i%10 at partition
// i/10%100 in round i/1000, reads the same round's materialization of the
// asset before it at the same partition, and has a check result (every
// third failed); each round and partition is one succeeded run. Then
// asset_00's first Renewed partitions are materialized once more, so that
// whatever size: asset_01 is stale at those partitions (a newer upstream),
// asset_02 to asset_09 are stale because their upstream is, and asset_09
// also by its code version, at every partition.
func Insert(tb testing.TB, url, schema string, size int) {
	tb.Helper()
	insert(tb, url, schema, size, true)
}

// InsertLean is Insert without the check results, and with the runs of
// the last round only (those of the newest materializations): the same
// staleness, in a fraction of the time.
func InsertLean(tb testing.TB, url, schema string, size int) {
	tb.Helper()
	insert(tb, url, schema, size, false)
}

func insert(tb testing.TB, url, schema string, size int, full bool) {
	tb.Helper()
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
			tb.Fatal(err)
		}
		cfg.ConnConfig.RuntimeParams["search_path"] = schema
		pool, err := pgxpool.NewWithConfig(ctx, cfg)
		if err != nil {
			tb.Fatal(err)
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
	pairs := Assets * Partitions
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
	run := func(k, r int) string { return fmt.Sprintf("run_%05d_%03d", r, k) }
	matID := func(a, k, r int) string { return fmt.Sprintf("mat_%02d_%03d_%05d", a, k, r) }
	mat := func(i int) store.NewMaterialization {
		a, k, r := i%Assets, i/Assets%Partitions, i/pairs
		fin := base + int64(i)*1_000_000
		return store.NewMaterialization{ID: matID(a, k, r), Pipeline: Name, Asset: Asset(a),
			Partition: Key(k), Run: run(k, r), Status: store.MatSucceeded, CodeVersion: "v1", Value: []byte("1"), Attempts: 1,
			StartedAt: fin - 500_000, FinishedAt: fin}
	}
	record := func(q store.Querier, from, to int) error {
		var ms []store.NewMaterialization
		var reads []store.Read
		for i := from; i < to; i++ {
			m := mat(i)
			ms = append(ms, m)
			if a, k, r := i%Assets, i/Assets%Partitions, i/pairs; a > 0 {
				reads = append(reads, store.Read{Materialization: m.ID, Lineage: store.Lineage{Asset: Asset(a - 1), Partition: Key(k), Materialization: matID(a-1, k, r)}})
			}
		}
		for lo := 0; lo < len(ms); lo += 500 {
			if err := st.InsertMaterializations(ctx, q, ms[lo:min(lo+500, len(ms))]); err != nil {
				return err
			}
		}
		if err := st.InsertReads(ctx, q, reads); err != nil {
			return err
		}
		lastRound := to > size-pairs
		for i, m := range ms {
			if !full && !lastRound {
				break
			}
			if (from+i)%Assets == 0 {
				if err := recordRun(ctx, st, q, m.Run, m.Partition); err != nil {
					return err
				}
			}
			if !full {
				continue
			}
			if _, err := st.InsertCheckResult(ctx, q, store.CheckResult{Materialization: m.ID, Name: "positive",
				Pipeline: m.Pipeline, Asset: m.Asset, Partition: m.Partition, Run: m.Run, Passed: (from+i)%3 != 0,
				Severity: string(flowstone.SeverityError), Metadata: "{}"}); err != nil {
				return err
			}
		}
		return nil
	}
	// Chunks of 1,000 in order (a round each); on PostgreSQL four at a
	// time.
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
				if err := inTx(func(q store.Querier) error { return record(q, from, min(from+chunk, size)) }); err != nil {
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
			tb.Fatal(err)
		}
	}
	close(next)
	wg.Wait()
	select {
	case err := <-errs:
		tb.Fatal(err)
	default:
	}
	// asset_00 renewed at its first partitions, after everything else.
	err := inTx(func(q store.Querier) error {
		var ms []store.NewMaterialization
		for k := range Renewed {
			fin := base + int64(size+k)*1_000_000
			ms = append(ms, store.NewMaterialization{ID: fmt.Sprintf("mat_renewed_%03d", k), Pipeline: Name, Asset: Asset(0),
				Partition: Key(k), Run: "run_renewed", Status: store.MatSucceeded, CodeVersion: "v1", Value: []byte("2"), Attempts: 1,
				StartedAt: fin - 500_000, FinishedAt: fin})
		}
		if err := st.InsertMaterializations(ctx, q, ms); err != nil {
			return err
		}
		// Their run, so that the pages showing them find it.
		if _, err := st.InsertRun(ctx, q, store.NewRun{ID: "run_renewed", Pipeline: Name, Targets: "[]", Total: Renewed}); err != nil {
			return err
		}
		for _, m := range ms {
			n := store.Node{Run: m.Run, Asset: m.Asset, Partition: m.Partition}
			if err := st.InsertRunAssets(ctx, q, n.Run, []store.NodeDeps{{Asset: n.Asset, Partition: n.Partition}}); err != nil {
				return err
			}
			if _, err := st.ClaimAsset(ctx, q, n, store.AssetSucceeded, m.ID, ""); err != nil {
				return err
			}
		}
		_, err := st.FinishRun(ctx, q, "run_renewed", store.RunSucceeded)
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	if schema != "" {
		// What autovacuum does to tables that grew; the test server runs
		// without it.
		if _, err := q.Exec(ctx, "VACUUM ANALYZE flowstone_runs, flowstone_run_assets, flowstone_materializations, flowstone_lineage, flowstone_check_results"); err != nil {
			tb.Fatal(err)
		}
	}
}

// recordRun records a succeeded run of every asset at partition.
func recordRun(ctx context.Context, st store.Store, q store.Querier, id, partition string) error {
	if _, err := st.InsertRun(ctx, q, store.NewRun{ID: id, Pipeline: Name, Partition: partition, Targets: "[]", Total: Assets}); err != nil {
		return err
	}
	nodes := make([]store.NodeDeps, Assets)
	for a := range nodes {
		nodes[a] = store.NodeDeps{Asset: Asset(a), Partition: partition, Deps: min(a, 1), Required: min(a, 1)}
	}
	if err := st.InsertRunAssets(ctx, q, id, nodes); err != nil {
		return err
	}
	for a := range Assets {
		// The materialization of (a, partition) in this run.
		r, k := runRound(id)
		if _, err := st.ClaimAsset(ctx, q, store.Node{Run: id, Asset: Asset(a), Partition: partition}, store.AssetSucceeded,
			fmt.Sprintf("mat_%02d_%03d_%05d", a, k, r), ""); err != nil {
			return err
		}
	}
	_, err := st.FinishRun(ctx, q, id, store.RunSucceeded)
	return err
}

// runRound reads the round and partition number back from a run ID.
func runRound(id string) (r, k int) {
	_, _ = fmt.Sscanf(id, "run_%05d_%03d", &r, &k)
	return r, k
}
