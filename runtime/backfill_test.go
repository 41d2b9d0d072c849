package runtime

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/runtime/internal/store"
)

func backfillPipeline(delay time.Duration, calls *atomic.Int64) *Pipeline {
	days := flowstone.Daily("2024-01-01")
	mk := func(key string, deps ...Dep) AssetDef {
		a := def(key, func(ctx context.Context, in *Inputs) (any, error) {
			calls.Add(1)
			time.Sleep(delay)
			return key + "@" + string(in.Partition()), nil
		}, deps...)
		a.Partitions = days
		return a
	}
	return NewPipeline(PipelineDef{Name: "bf", Assets: []AssetDef{mk("raw"), mk("clean", on("raw")), mk("total", on("clean"))}})
}

func waitBackfill(t *testing.T, e *Engine, id string) BackfillStatus {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		b, err := e.BackfillStatus(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if b.Status != "running" {
			return b
		}
		if time.Now().After(deadline) {
			t.Fatalf("backfill still running: %+v", b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestBackfillRunsEveryPartitionWithinItsBound(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		var calls atomic.Int64
		p := backfillPipeline(10*time.Millisecond, &calls)
		cfg := db.config(t)
		cfg.Concurrency = 8
		e := openEngine(t, cfg, Bind(p, nil))
		id, err := e.Backfill(ctx, p, BackfillRequest{Targets: []string{"total"}, From: "2024-02-25", To: "2024-03-04", MaxConcurrent: 3})
		if err != nil {
			t.Fatal(err)
		}
		b := waitBackfill(t, e, id)
		if b.Status != "succeeded" || b.Total != 9 || b.Succeeded != 9 || b.Order[4] != "2024-02-29" {
			t.Fatalf("backfill: %+v", b)
		}
		if v, err := Load[string](ctx, e, "bf", "total", "2024-03-01"); err != nil || v != "total@2024-03-01" {
			t.Fatalf("total = %q, %v", v, err)
		}
		// From the runs' own records: never more than 3 at once.
		runs, _ := e.Runs(ctx, "bf", 100)
		most := 0
		for _, r := range runs {
			n := 0
			for _, o := range runs {
				if !o.CreatedAt.After(r.CreatedAt) && o.FinishedAt.After(r.CreatedAt) {
					n++
				}
			}
			most = max(most, n)
		}
		if len(runs) != 9 || most > 3 {
			t.Fatalf("%d runs, at most %d at once; want 9, at most 3", len(runs), most)
		}

		// Again: every partition is up to date, nothing recomputes.
		before := calls.Load()
		id2, err := e.Backfill(ctx, p, BackfillRequest{Targets: []string{"total"}, Partitions: []flowstone.Partition{"2024-02-25", "2024-03-04"}})
		if err != nil {
			t.Fatal(err)
		}
		if b := waitBackfill(t, e, id2); b.Status != "succeeded" || calls.Load() != before {
			t.Fatalf("second backfill %s recomputed %d assets", b.Status, calls.Load()-before)
		}
	})
}

func TestBackfillResumesAfterRestartAndCancels(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		var calls atomic.Int64
		cfg := db.config(t)
		// The process that started it works a little, then goes away.
		e1 := openEngine(t, cfg, Bind(backfillPipeline(30*time.Millisecond, &calls), nil))
		id, err := e1.Backfill(ctx, backfillPipeline(0, &calls), BackfillRequest{Targets: []string{"total"}, From: "2024-01-01", To: "2024-01-10", MaxConcurrent: 2})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(150 * time.Millisecond)
		if err := e1.Close(ctx); err != nil {
			t.Fatal(err)
		}
		e2 := openEngine(t, cfg, Bind(backfillPipeline(0, &calls), nil))
		if b := waitBackfill(t, e2, id); b.Status != "succeeded" || b.Succeeded != 10 {
			t.Fatalf("after restart: %+v", b)
		}

		// Cancel one mid-way.
		slow := backfillPipeline(200*time.Millisecond, &calls)
		cfg3 := db.config(t)
		e3 := openEngine(t, cfg3, Bind(slow, nil))
		id3, err := e3.Backfill(ctx, slow, BackfillRequest{Targets: []string{"total"}, From: "2024-01-01", To: "2024-01-31", MaxConcurrent: 2})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond)
		if err := e3.CancelBackfill(ctx, id3); err != nil {
			t.Fatal(err)
		}
		b := waitBackfill(t, e3, id3)
		if b.Status != "cancelled" || b.Cancelled < 25 || b.Succeeded > 4 {
			t.Fatalf("cancelled backfill: %+v", b)
		}
	})
}

func TestBackfillBadInput(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	p := backfillPipeline(0, &calls)
	e := openEngine(t, Config{Database: "sqlite::memory:"}, Bind(p, nil))
	ctx := context.Background()
	for _, req := range []BackfillRequest{
		{Targets: []string{"total"}, From: "2024-03-04", To: "2024-02-25"},
		{Targets: []string{"total"}, From: "2023-12-30", To: "2024-01-02"},
		{Targets: []string{"total"}},
		{Targets: []string{"total"}, Partitions: []flowstone.Partition{"2024-01-01", "2024-01-01"}},
		{Targets: []string{"totl"}, From: "2024-01-01", To: "2024-01-02"},
	} {
		if _, err := e.Backfill(ctx, p, req); err == nil {
			t.Errorf("%+v: accepted", req)
		}
	}
	if _, err := e.BackfillStatus(ctx, "bf_nope"); !errors.Is(err, ErrBackfillNotFound) {
		t.Errorf("status of unknown: %v", err)
	}
}

// A process that died between claiming a partition and recording its run
// leaves the partition launching: the next advance launches it again, and
// the run key makes that start the run once.
func TestBackfillRecoversPartitionsLeftLaunching(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		var calls atomic.Int64
		p := backfillPipeline(0, &calls)
		cfg := db.config(t)
		idle := cfg
		idle.NoWorkers = true
		e1 := openEngine(t, idle, Bind(p, nil))
		id, err := e1.Backfill(ctx, p, BackfillRequest{Targets: []string{"total"}, From: "2024-01-01", To: "2024-01-03", MaxConcurrent: 2})
		if err != nil {
			t.Fatal(err)
		}
		// The dead advance claimed the first two partitions; it started the
		// second's run, not the first's.
		q := e1.be.pool()
		for idx := range 2 {
			if ok, err := e1.st.SetPartition(ctx, q, id, idx, store.PartitionPending, store.PartitionLaunching, ""); err != nil || !ok {
				t.Fatalf("claim %d: %v, %v", idx, ok, err)
			}
		}
		if _, err := e1.materialize(ctx, p, Request{Targets: []string{"total"}, Partition: "2024-01-02", RunKey: "backfill:" + id + ":2024-01-02"}, id); err != nil {
			t.Fatal(err)
		}
		if err := e1.Close(ctx); err != nil {
			t.Fatal(err)
		}

		e2 := openEngine(t, cfg, Bind(p, nil))
		b := waitBackfill(t, e2, id)
		if b.Status != "succeeded" || b.Succeeded != 3 {
			t.Fatalf("backfill: %+v", b)
		}
		runs, err := e2.Runs(ctx, "bf", 10)
		if err != nil || len(runs) != 3 {
			t.Fatalf("%d runs (%v), want one per partition", len(runs), err)
		}
		if calls.Load() != 9 {
			t.Errorf("%d assets computed, want 9", calls.Load())
		}
	})
}

func TestFuturePartitionsAreRefusedAndRangesClipped(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		var calls atomic.Int64
		p := backfillPipeline(0, &calls)
		e := openEngine(t, db.config(t), Bind(p, nil))
		day := func(d int) flowstone.Partition {
			return flowstone.Partition(time.Now().UTC().AddDate(0, 0, d).Format("2006-01-02"))
		}
		for _, k := range []flowstone.Partition{day(0), "2099-01-01"} {
			_, err := e.Materialize(ctx, p, Request{Targets: []string{"total"}, Partition: k})
			if !errors.Is(err, flowstone.ErrFuturePartition) {
				t.Errorf("Materialize %s: %v; want ErrFuturePartition", k, err)
			}
		}
		// A range reaching into the future is clipped at yesterday.
		id, err := e.Backfill(ctx, p, BackfillRequest{Targets: []string{"total"}, From: day(-2), To: day(30)})
		if err != nil {
			t.Fatal(err)
		}
		b := waitBackfill(t, e, id)
		if b.Status != "succeeded" || b.Total != 2 || b.Order[1] != day(-1) {
			t.Fatalf("backfill: %+v; want %s and %s only", b, day(-2), day(-1))
		}
		// A range wholly in the future has nothing to clip to.
		if _, err := e.Backfill(ctx, p, BackfillRequest{Targets: []string{"total"}, From: day(1), To: day(3)}); !errors.Is(err, flowstone.ErrFuturePartition) {
			t.Errorf("future backfill: %v; want ErrFuturePartition", err)
		}
	})
}
