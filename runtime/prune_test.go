package runtime

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

// prunePipeline: numbers (kept by FileIO under dir) returns [n, n] on its
// nth call; total sums it.
func prunePipeline(dir string, calls *atomic.Int64) *Pipeline {
	numbers := def("numbers", func(context.Context, *Inputs) (any, error) {
		n := int(calls.Add(1))
		return []int{n, n}, nil
	})
	numbers.IO = FileIO{Dir: dir}
	return NewPipeline(PipelineDef{Name: "prune", Assets: []AssetDef{
		numbers,
		def("total", func(ctx context.Context, in *Inputs) (any, error) {
			ns, err := Input[[]int](ctx, in, "numbers")
			return ns[0] + ns[1], err
		}, on("numbers")),
	}})
}

func materializeAndWait(t *testing.T, e *Engine, p *Pipeline, req Request) RunResult {
	t.Helper()
	run, err := e.Materialize(context.Background(), p, req)
	if err != nil {
		t.Fatal(err)
	}
	res := waitRun(t, e, run.ID)
	if res.Status != RunSucceeded {
		t.Fatalf("run %s: %s %+v", run.ID, res.Status, res.Assets)
	}
	return res
}

// files counts the values FileIO holds for asset.
func files(t *testing.T, dir, asset string) int {
	t.Helper()
	ms, err := filepath.Glob(filepath.Join(dir, "prune", asset, "_", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	return len(ms)
}

func TestPruneKeepsLoadAndReuseAndRemovesTheRest(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		dir := t.TempDir()
		var calls atomic.Int64
		p := prunePipeline(dir, &calls)
		e := openEngine(t, db.config(t), Bind(p, nil))
		var kept RunResult
		for range 3 {
			kept = materializeAndWait(t, e, p, Request{Force: true})
		}
		if _, err := e.Prune(ctx, PruneRequest{}); !errors.Is(err, ErrBadPrune) {
			t.Fatalf("Prune without a bound: %v", err)
		}

		// A dry run counts and deletes nothing. River's completer
		// completes a job shortly after its run has finished.
		waitJobsFinalized(t, e)
		bound := time.Now()
		dry, err := e.Prune(ctx, PruneRequest{Before: bound, DryRun: true})
		if err != nil {
			t.Fatal(err)
		}
		if dry.Runs != 3 || dry.Materializations != 4 || dry.Lineage != 2 || dry.Values != 0 || dry.Jobs == 0 {
			t.Fatalf("dry run = %+v; want 3 runs, 4 materializations, 2 lineage rows, River's jobs", dry)
		}
		if runs, _ := e.Runs(ctx, "prune", 10); len(runs) != 3 || files(t, dir, "numbers") != 3 {
			t.Fatalf("after a dry run: %d runs, %d files", len(runs), files(t, dir, "numbers"))
		}

		res, err := e.Prune(ctx, PruneRequest{Before: bound, BatchSize: 2})
		if err != nil {
			t.Fatal(err)
		}
		// River may finalize a last job meanwhile.
		want := dry
		want.ExternalDeleted, want.Jobs = 2, res.Jobs
		if res != want || res.Jobs < dry.Jobs {
			t.Fatalf("Prune = %+v\nwant   %+v (the dry run's counts)", res, want)
		}
		if runs, _ := e.Runs(ctx, "prune", 10); len(runs) != 0 {
			t.Fatalf("runs left: %+v", runs)
		}
		if n := files(t, dir, "numbers"); n != 1 {
			t.Fatalf("%d files of numbers left, want 1", n)
		}
		if ms, _ := e.Materializations(ctx, "prune", "total", 10); len(ms) != 1 || ms[0].ID != kept.Assets["total"].Materialization {
			t.Fatalf("materializations of total left: %+v", ms)
		}
		// Load reads the newest values; lineage still resolves.
		if v, err := Load[int](ctx, e, "prune", "total", ""); err != nil || v != 6 {
			t.Fatalf("Load total = %d, %v", v, err)
		}
		if v, err := Load[[]int](ctx, e, "prune", "numbers", ""); err != nil || !slices.Equal(v, []int{3, 3}) {
			t.Fatalf("Load numbers = %v, %v", v, err)
		}
		m, err := e.MaterializationByID(ctx, kept.Assets["total"].Materialization)
		if err != nil || len(m.Upstream) != 1 {
			t.Fatalf("total's lineage: %+v, %v", m.Upstream, err)
		}
		if _, err := e.MaterializationByID(ctx, m.Upstream[0].Materialization); err != nil {
			t.Fatalf("total's upstream: %v", err)
		}
		// Reuse works: nothing is computed again.
		again := materializeAndWait(t, e, p, Request{})
		if again.Assets["numbers"].Status != StatusReused || again.Assets["total"].Status != StatusReused || calls.Load() != 3 {
			t.Fatalf("after prune: %+v, numbers called %d times", again.Assets, calls.Load())
		}

		// numbers again: the numbers total read is superseded, but total's
		// lineage points at it: it stays, without its value.
		materializeAndWait(t, e, p, Request{Targets: []string{"numbers"}, Force: true})
		res, err = e.Prune(ctx, PruneRequest{Before: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		if res.Runs != 2 || res.Materializations != 0 || res.Values != 1 || res.ExternalDeleted != 1 {
			t.Fatalf("second prune = %+v; want 2 runs, 0 materializations, 1 value", res)
		}
		if _, err := e.MaterializationByID(ctx, m.Upstream[0].Materialization); err != nil {
			t.Fatalf("total's upstream after its value went: %v", err)
		}
		if v, err := Load[int](ctx, e, "prune", "total", ""); err != nil || v != 6 {
			t.Fatalf("Load total = %d, %v", v, err)
		}
		if v, err := Load[[]int](ctx, e, "prune", "numbers", ""); err != nil || !slices.Equal(v, []int{4, 4}) {
			t.Fatalf("Load numbers = %v, %v", v, err)
		}
		last := materializeAndWait(t, e, p, Request{})
		if last.Assets["numbers"].Status != StatusReused || last.Assets["total"].Status != StatusSucceeded {
			t.Fatalf("after the second prune: %+v", last.Assets)
		}
		if v, _ := Load[int](ctx, e, "prune", "total", ""); v != 8 {
			t.Fatalf("total = %d, want 8", v)
		}
	})
}

func TestPruneLeavesRunningRunsAlone(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		var calls atomic.Int64
		var block atomic.Bool
		started, release := make(chan struct{}, 1), make(chan struct{})
		p := NewPipeline(PipelineDef{Name: "hold", Assets: []AssetDef{
			def("src", func(context.Context, *Inputs) (any, error) { return int(calls.Add(1)), nil }),
			def("hold", func(ctx context.Context, in *Inputs) (any, error) {
				if block.Load() {
					started <- struct{}{}
					<-release
				}
				n, err := Input[int](ctx, in, "src")
				return n + 100, err
			}, on("src")),
		}})
		e := openEngine(t, db.config(t), Bind(p, nil))
		materializeAndWait(t, e, p, Request{Force: true})
		block.Store(true)
		running, err := e.Materialize(ctx, p, Request{Force: true})
		if err != nil {
			t.Fatal(err)
		}
		<-started
		block.Store(false)
		// A newer src supersedes the one the running run read.
		materializeAndWait(t, e, p, Request{Targets: []string{"src"}, Force: true})

		res, err := e.Prune(ctx, PruneRequest{Before: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		// The first src stays for the first hold's lineage, without its
		// value; the running run's src keeps its value.
		if res.Runs != 2 || res.Materializations != 0 || res.Values != 1 {
			t.Fatalf("Prune = %+v; want 2 runs, 0 materializations, 1 value", res)
		}
		if r, err := e.Run(ctx, running.ID); err != nil || r.Status != RunRunning || r.Assets["src"].Status != StatusSucceeded {
			t.Fatalf("running run after prune: %+v, %v", r, err)
		}
		close(release)
		r := waitRun(t, e, running.ID)
		if r.Status != RunSucceeded {
			t.Fatalf("running run: %s %+v", r.Status, r.Assets)
		}
		if v, err := Load[int](ctx, e, "hold", "hold", ""); err != nil || v != 102 {
			t.Fatalf("hold = %d, %v; want 102 (the value of the src its run read)", v, err)
		}
	})
}

func TestRetentionPrunesOnASchedule(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		cfg := db.config(t)
		cfg.Retention = Retention{Every: time.Hour}
		if _, err := Open(ctx, fastConfig(cfg)); !errors.Is(err, ErrBadPrune) {
			t.Fatalf("Retention without OlderThan: %v", err)
		}
		var calls atomic.Int64
		p := prunePipeline(t.TempDir(), &calls)
		cfg.Retention = Retention{Every: 200 * time.Millisecond, OlderThan: time.Millisecond}
		e := openEngine(t, cfg, Bind(p, nil))
		materializeAndWait(t, e, p, Request{Force: true})
		materializeAndWait(t, e, p, Request{Force: true})
		deadline := time.Now().Add(30 * time.Second)
		for {
			runs, err := e.Runs(ctx, "prune", 10)
			if err != nil {
				t.Fatal(err)
			}
			ms, _ := e.Materializations(ctx, "prune", "numbers", 10)
			if len(runs) == 0 && len(ms) == 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("not pruned: %d runs, %d materializations of numbers", len(runs), len(ms))
			}
			time.Sleep(50 * time.Millisecond)
		}
		if v, err := Load[int](ctx, e, "prune", "total", ""); err != nil || v != 4 {
			t.Fatalf("Load total = %d, %v", v, err)
		}
	})
}

// TestPruneMatchesItsModel prunes a history of lineage chains (each
// materialization read the one of the partition before, in its round) in
// small batches and compares the counts with a model of the rules, for one
// and two kept successes.
func TestPruneMatchesItsModel(t *testing.T) {
	t.Parallel()
	for _, keep := range []int{1, 2} {
		t.Run(fmt.Sprintf("keep%d", keep), func(t *testing.T) {
			eachDB(t, func(t *testing.T, db testDB) {
				ctx := context.Background()
				cfg := db.config(t)
				cfg.NoWorkers = true
				e := openEngine(t, cfg)
				h := history{pipeline: "hist", asset: "chain", partitions: 30, rounds: 4,
					failed: func(r, k int) bool { return (r+k)%5 == 0 }}
				insertHistory(t, e, h)
				bound := h.finished(2, 15)
				want := pruneModel(h, bound, keep)

				dry, err := e.Prune(ctx, PruneRequest{Before: bound, KeepLatest: keep, DryRun: true})
				if err != nil {
					t.Fatal(err)
				}
				if dry != want {
					t.Fatalf("keep %d: dry run = %+v\nwant           %+v", keep, dry, want)
				}
				res, err := e.Prune(ctx, PruneRequest{Before: bound, KeepLatest: keep, BatchSize: 7})
				if err != nil {
					t.Fatal(err)
				}
				if res != want {
					t.Fatalf("keep %d: Prune = %+v\nwant    %+v", keep, res, want)
				}
				again, err := e.Prune(ctx, PruneRequest{Before: bound, KeepLatest: keep})
				if err != nil {
					t.Fatal(err)
				}
				if again != (PruneResult{Before: bound}) {
					t.Fatalf("keep %d: second Prune = %+v, want nothing", keep, again)
				}
				ps, err := e.PartitionStatuses(ctx, "hist", "chain")
				if err != nil || len(ps) != h.partitions {
					t.Fatalf("PartitionStatuses: %d, %v", len(ps), err)
				}
				for k, p := range ps {
					if p.Latest.ID != h.mat(h.rounds-1, k) {
						t.Errorf("partition %d: newest %s, want %s", k, p.Latest.ID, h.mat(h.rounds-1, k))
					}
				}
			})
		})
	}
}

// pruneModel counts what Prune deletes from h, by the rules of
// PruneRequest.
func pruneModel(h history, before time.Time, keep int) PruneResult {
	res := PruneResult{Before: before}
	old := func(r, k int) bool { return h.finished(r, k).Before(before) }
	ok := func(r, k int) bool { return h.status(r, k) == "succeeded" }
	superseded := func(r, k int) bool {
		if r == h.rounds-1 {
			return false
		}
		if !ok(r, k) {
			return true
		}
		newer := 0
		for n := r + 1; n < h.rounds; n++ {
			if ok(n, k) {
				newer++
			}
		}
		return newer >= keep
	}
	kept := map[[2]int]bool{}
	var mark func(r, k int)
	mark = func(r, k int) {
		if kept[[2]int{r, k}] {
			return
		}
		kept[[2]int{r, k}] = true
		if k > 0 && ok(r, k) {
			mark(r, k-1)
		}
	}
	for r := range h.rounds {
		for k := range h.partitions {
			if !old(r, k) || !superseded(r, k) {
				mark(r, k)
			}
		}
	}
	for r := range h.rounds {
		for k := range h.partitions {
			switch {
			case !old(r, k):
				continue
			case !kept[[2]int{r, k}]:
				res.Materializations++
				if k > 0 && ok(r, k) {
					res.Lineage++
				}
			case superseded(r, k) && ok(r, k):
				res.Values++
			}
			res.Runs++
		}
	}
	return res
}

// TestPruneDeletesTheChecksOfWhatItDeletes fails while Store.
// DeleteMaterializations leaves flowstone_check_results behind: the
// results of the pruned revenue materializations outlive them.
func TestPruneDeletesTheChecksOfWhatItDeletes(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		var value atomic.Int64
		value.Store(20) // both checks pass: nothing blocks
		p := checkPipeline(&value)
		e := openEngine(t, db.config(t), Bind(p, nil))
		var mats []string
		for range 3 {
			res := materializeAndWait(t, e, p, Request{Force: true})
			mats = append(mats, res.Assets["revenue"].Materialization)
			checksByName(t, e, mats[len(mats)-1])
		}
		dry, err := e.Prune(ctx, PruneRequest{Before: time.Now(), DryRun: true})
		if err != nil {
			t.Fatal(err)
		}
		// Two revenue materializations go, each with its two checks.
		if dry.Checks != 4 {
			t.Fatalf("dry run = %+v; want 4 check results", dry)
		}
		res, err := e.Prune(ctx, PruneRequest{Before: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		if res.Checks != 4 || res.Materializations != dry.Materializations {
			t.Fatalf("Prune = %+v; want 4 check results and the dry run's %d materializations", res, dry.Materializations)
		}
		left, err := e.CheckResults(ctx, "checks", "revenue", 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(left) != 2 {
			t.Fatalf("%d check results left, want the newest materialization's 2: %+v", len(left), left)
		}
		for _, r := range left {
			if r.Materialization != mats[2] {
				t.Errorf("orphan check result %s of %s", r.Check, r.Materialization)
			}
			if _, err := e.MaterializationByID(ctx, r.Materialization); err != nil {
				t.Errorf("check %s points at %s: %v", r.Check, r.Materialization, err)
			}
		}
		for _, m := range mats[:2] {
			if rs, err := e.MaterializationChecks(ctx, m); err != nil || len(rs) != 0 {
				t.Errorf("checks of pruned %s: %+v, %v", m, rs, err)
			}
		}
	})
}

// waitJobsFinalized waits until River has finalized every job of e's
// database: a job's run finishes before River's batched completer marks
// the job completed.
func waitJobsFinalized(t *testing.T, e *Engine) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		open := 0
		for _, j := range listAllJobs(t, e) {
			if j.FinalizedAt == nil {
				open++
			}
		}
		if open == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d River jobs still not finalized", open)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
