package runtime

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/riverqueue/river/rivertype"
)

// queued is how many members wait for the next group.
func (g *groupCommit[T]) queued() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.queue)
}

// setCommit replaces how a group is done.
func (g *groupCommit[T]) setCommit(commit func(ctx context.Context, group []T, handOff func())) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.commit = commit
}

// waitQueued waits until n results wait for the next group.
func waitQueued(r *recorder, n int) {
	for r.queued() < n {
		time.Sleep(2 * time.Millisecond)
	}
}

// A result that finds the recorder idle commits at once, alone; those that
// arrive while a group commits form the next groups, at most max each, and
// each returns once its own group is done. (The start group is the same
// groupCommit.)
func TestRecorderGroupsWhatFinishesMeanwhile(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var groups [][]string
	var committed []string
	hold := make(chan struct{})
	first := false
	r := &recorder{max: 2}
	r.commit = func(_ context.Context, group []*finished, handOff func()) {
		mu.Lock()
		names := make([]string, len(group))
		for i, f := range group {
			names[i] = f.fin.Asset
		}
		groups = append(groups, names)
		wait := first
		first = false
		mu.Unlock()
		if wait {
			<-hold
		}
		handOff()
		mu.Lock()
		committed = append(committed, names...)
		mu.Unlock()
	}
	record := func(name string) *finished {
		f := &finished{}
		f.fin.Asset = name
		r.join(context.Background(), f)
		mu.Lock()
		defer mu.Unlock()
		if !slices.Contains(committed, name) {
			t.Errorf("%s returned before its group committed", name)
		}
		return f
	}

	// One at a time: each alone, at once.
	for _, name := range []string{"a", "b"} {
		record(name)
	}
	if fmt.Sprint(groups) != "[[a] [b]]" {
		t.Fatalf("groups %v; want each result alone", groups)
	}

	// While c's group commits, five more arrive.
	groups, committed, first = nil, nil, true
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); record("c") }()
	for len(snapshot(&mu, &groups)) == 0 {
		time.Sleep(time.Millisecond)
	}
	for i, name := range []string{"d", "e", "f", "g", "h"} {
		wg.Add(1)
		go func() { defer wg.Done(); record(name) }()
		waitQueued(r, i+1)
	}
	close(hold)
	wg.Wait()
	want := "[[c] [d e] [f g] [h]]"
	if got := fmt.Sprint(groups); got != want {
		t.Fatalf("groups %v; want %v", got, want)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.busy || len(r.queue) != 0 {
		t.Fatalf("recorder left busy (%v) with %d queued", r.busy, len(r.queue))
	}
}

func snapshot(mu *sync.Mutex, groups *[][]string) [][]string {
	mu.Lock()
	defer mu.Unlock()
	return slices.Clone(*groups)
}

// Leaves that finish together are recorded in one group; a group whose
// transaction fails is recorded again result by result, so the one bad
// result fails only its own job (retried, it succeeds); and the fan-in
// still runs exactly once, with exact lineage, one success per asset and
// one finished event per asset.
func TestGroupCommitRecordsEachResultOnce(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		const n = 24
		var calls atomic.Int64
		p := widePipeline("group", n, &calls)
		cfg := db.config(t)
		cfg.Concurrency = n + 8
		e := openEngine(t, cfg, Bind(p, nil))

		var mu sync.Mutex
		var sizes []int
		bad := ""
		held := false
		e.rec.setCommit(func(ctx context.Context, group []*finished, handOff func()) {
			mu.Lock()
			sizes = append(sizes, len(group))
			hold := !held && len(group) == 1 && group[0].a.Key != "sum"
			held = held || hold
			mu.Unlock()
			if hold {
				// Every other leaf's result queues behind this one; one of
				// them reuses this one's materialization id, which fails
				// the next group's insert.
				waitQueued(e.rec, n-1)
				e.rec.mu.Lock()
				victim := e.rec.queue[n/2]
				victim.m.ID, victim.fin.Materialization = group[0].m.ID, group[0].m.ID
				bad = victim.a.Key
				e.rec.mu.Unlock()
			}
			e.commitGroup(ctx, group, handOff)
		})
		events, stop := e.Subscribe(10 * n)
		defer stop()

		run, err := e.Materialize(ctx, p, Request{})
		if err != nil {
			t.Fatal(err)
		}
		res := waitRun(t, e, run.ID)
		if res.Status != RunSucceeded || calls.Load() != 1 {
			t.Fatalf("run %s, fan-in ran %d times", res.Status, calls.Load())
		}
		mu.Lock()
		if len(sizes) < 2 || sizes[1] != n-1 {
			t.Errorf("groups of %v; want the %d leaves queued behind the first in one group", sizes, n-1)
		}
		mu.Unlock()
		if sum, err := Load[int](ctx, e, "group", "sum", ""); err != nil || sum != n*(n-1)/2 {
			t.Fatalf("sum = %d, %v", sum, err)
		}
		m, err := e.MaterializationByID(ctx, res.Assets["sum"].Materialization)
		if err != nil || len(m.Upstream) != n {
			t.Fatalf("sum's lineage: %d upstreams, %v; want %d", len(m.Upstream), err, n)
		}
		for _, u := range m.Upstream {
			if u.Materialization != res.Assets[u.Asset].Materialization {
				t.Errorf("sum read %s of %s; the run recorded %s", u.Materialization, u.Asset, res.Assets[u.Asset].Materialization)
			}
		}
		checkOneSuccessEach(t, e.be.pool(), run.ID, n+1)
		for key, a := range res.Assets {
			want := 1
			if key == bad {
				want = 2 // its first result failed alone, the retry recorded it
			}
			if a.Attempts != want {
				t.Errorf("%s: %d attempts, want %d", key, a.Attempts, want)
			}
		}
		finishedEvents := map[string]int{}
		for done := false; !done; {
			select {
			case ev := <-events:
				if ev.Kind == EventAssetFinished {
					finishedEvents[ev.Asset]++
				}
				done = ev.Kind == EventRunFinished
			case <-time.After(30 * time.Second):
				t.Fatal("no run_finished event")
			}
		}
		if len(finishedEvents) != n+1 {
			t.Errorf("finished events for %d assets, want %d", len(finishedEvents), n+1)
		}
		for key, c := range finishedEvents {
			if c != 1 {
				t.Errorf("%d finished events for %s", c, key)
			}
		}
	})
}

// A job whose result was recorded but whose process died before its run
// advanced is delivered again: it advances the run (starting the fan-in
// once) without running the asset again, and River completes it.
func TestRedeliveredJobAdvancesItsRecordedNode(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		const n = 3
		var calls atomic.Int64
		p := widePipeline("again", n, &calls)
		e := openEngine(t, db.config(t), Bind(p, nil))
		lost := errors.New("the process died before advancing")
		var dropped atomic.Int64
		e.rec.setCommit(func(ctx context.Context, group []*finished, handOff func()) {
			if dropped.Load() > 0 {
				e.commitGroup(ctx, group, handOff)
				return
			}
			// Record without advancing, and fail the jobs as a dead
			// process would leave them: River delivers them again.
			err := e.be.inTx(ctx, func(tx txn) error { _, err := e.recordGroup(ctx, tx, group); return err })
			handOff()
			for _, f := range group {
				f.err = errors.Join(lost, err)
			}
			dropped.Add(int64(len(group)))
		})
		run, err := e.Materialize(ctx, p, Request{})
		if err != nil {
			t.Fatal(err)
		}
		res := waitRun(t, e, run.ID)
		if res.Status != RunSucceeded || calls.Load() != 1 {
			t.Fatalf("run %s, fan-in ran %d times", res.Status, calls.Load())
		}
		if dropped.Load() == 0 {
			t.Fatal("no result was dropped before advancing")
		}
		for key, a := range res.Assets {
			if a.Attempts != 1 {
				t.Errorf("%s ran %d times", key, a.Attempts)
			}
		}
		checkOneSuccessEach(t, e.be.pool(), run.ID, n+1)
		// Every job ends completed: the redelivered ones by River once
		// they advanced.
		for deadline := time.Now().Add(30 * time.Second); ; {
			pending := 0
			for _, j := range listAllJobs(t, e) {
				if j.State != rivertype.JobStateCompleted {
					pending++
				}
			}
			if pending == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d jobs not completed", pending)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

// A fan-in whose upstreams finish in groups that three processes (three
// engines on one database) commit at the same moment still starts exactly
// once in each run, never zero times: each group checks the fan-in in the
// transaction that records its arrivals.
func TestFanInOnceAcrossConcurrentGroups(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		const leaves, runs = 30, 4
		var calls atomic.Int64
		p := widePipeline("concurrent", leaves, &calls)
		e, ids := runsCommittingTogether(t, db, p, runs)
		for _, id := range ids {
			checkOneSuccessEach(t, e.be.pool(), id, leaves+1)
		}
		if calls.Load() != runs {
			t.Fatalf("the fan-in ran %d times in %d runs", calls.Load(), runs)
		}
	})
}

// rendezvous lets up to n goroutines go on together: each waits for the
// others, or for a moment when they do not come.
type rendezvous struct {
	n       int
	mu      sync.Mutex
	waiting int
	ch      chan struct{}
}

func (r *rendezvous) wait() {
	r.mu.Lock()
	if r.ch == nil {
		r.ch = make(chan struct{})
	}
	ch := r.ch
	if r.waiting++; r.waiting == r.n {
		close(ch)
		r.ch, r.waiting = nil, 0
		r.mu.Unlock()
		return
	}
	r.mu.Unlock()
	select {
	case <-ch:
	case <-time.After(50 * time.Millisecond):
	}
}

// A run whose last assets finish in groups that engines commit at once
// ends: each group sees the others' assets still running in its own
// transaction, so on PostgreSQL the run's end is checked again once the
// group has committed.
func TestRunEndsWhenItsLastAssetsFinishInConcurrentGroups(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		var assets []AssetDef
		for i := range 12 {
			assets = append(assets, def(fmt.Sprintf("sink%02d", i), func(context.Context, *Inputs) (any, error) { return i, nil }))
		}
		runsCommittingTogether(t, db, NewPipeline(PipelineDef{Name: "sinks", Assets: assets}), 4)
	})
}

// runsCommittingTogether opens three engines on one database (three
// processes) whose recorders commit their groups at the same moment,
// works n forced runs of p with them, and returns one of the engines and
// the runs, all succeeded.
func runsCommittingTogether(t *testing.T, db testDB, p *Pipeline, n int) (*Engine, []string) {
	t.Helper()
	ctx := context.Background()
	const engines = 3
	cfg := db.config(t)
	cfg.Concurrency = 8
	together := &rendezvous{n: engines}
	var es []*Engine
	for range engines {
		e := openEngine(t, cfg, Bind(p, nil))
		e.rec.setCommit(func(ctx context.Context, group []*finished, handOff func()) {
			together.wait()
			e.commitGroup(ctx, group, handOff)
		})
		es = append(es, e)
	}
	var ids []string
	for i := range n {
		run, err := es[i%engines].Materialize(ctx, p, Request{Force: true})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, run.ID)
	}
	for _, id := range ids {
		if res := waitRun(t, es[0], id); res.Status != RunSucceeded {
			t.Fatalf("run %s: %s", id, res.Status)
		}
	}
	return es[0], ids
}
