package runtime

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone/strategy"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivertype"
)

// The multi-process test re-executes this test binary in three roles,
// chosen by FLOWSTONE_PROC_ROLE: "enqueue" records a run and exits at once;
// "worker" works jobs until killed. The parent kills workers with SIGKILL at
// random moments and checks the database afterwards.

const stressLayers, stressWidth = 30, 10 // 300 assets

type stressConfig struct {
	Tag string `json:"tag"`
}

func stressPipeline() *Pipeline {
	var assets []AssetDef
	rng := rand.New(rand.NewPCG(7, 7)) // the same graph in every process
	for l := range stressLayers {
		for w := range stressWidth {
			key := fmt.Sprintf("l%02d_%02d", l, w)
			var deps []Dep
			if l > 0 {
				a, b := rng.IntN(stressWidth), rng.IntN(stressWidth)
				deps = append(deps, on(fmt.Sprintf("l%02d_%02d", l-1, a)))
				if b != a {
					deps = append(deps, on(fmt.Sprintf("l%02d_%02d", l-1, b)))
				}
			}
			ds := deps
			a := def(key, func(ctx context.Context, in *Inputs) (any, error) {
				cfg, err := ConfigValue[stressConfig](in)
				if err != nil {
					return nil, err
				}
				n := 1
				for _, d := range ds {
					v, err := Input[int](ctx, in, d.Asset)
					if err != nil {
						return nil, err
					}
					n += v % 1000
				}
				select { // some work, so kills land mid-asset
				case <-time.After(time.Duration(5+rand.IntN(30)) * time.Millisecond):
				case <-ctx.Done():
					return nil, ctx.Err()
				}
				if cfg.Tag != "chaos" {
					return nil, fmt.Errorf("config tag %q", cfg.Tag)
				}
				return n, nil
			}, deps...)
			a.UsesConfig = true
			assets = append(assets, a)
		}
	}
	return NewPipeline(PipelineDef{Name: "stress", Config: ConfigOf[stressConfig](), Assets: assets})
}

const stressItems = 3000

// stressScatterPipeline: a source of 3,000 items scattered in batches of 20,
// at most 200 in flight, then gathered.
func stressScatterPipeline() *Pipeline {
	p := scatterPipeline("stress", scatterCase{n: stressItems, opts: strategy.Scatter{Batch: 20, MaxConcurrent: 200},
		item: func(ctx context.Context, c customer) (profile, error) {
			select {
			case <-time.After(time.Duration(1+rand.IntN(4)) * time.Millisecond):
			case <-ctx.Done():
				return profile{}, ctx.Err()
			}
			return profile{ID: c.ID}, nil
		}})
	var assets []AssetDef
	for _, a := range p.Assets() {
		d := *a
		if d.Key == "customers" {
			d.UsesConfig = true // the enqueuer passes the stress config
		}
		assets = append(assets, d)
	}
	return NewPipeline(PipelineDef{Name: "stress", Config: ConfigOf[stressConfig](), Assets: assets})
}

func TestProcessRole(t *testing.T) {
	role := os.Getenv("FLOWSTONE_PROC_ROLE")
	if role == "" {
		t.Skip("helper process for TestKilledWorkersLoseNothing")
	}
	cfg := Config{
		Database: os.Getenv("FLOWSTONE_PROC_DATABASE"),
		Schema:   os.Getenv("FLOWSTONE_PROC_SCHEMA"),
		// A killed worker's jobs are taken over once it is silent for
		// this long; DefaultTimeout stays at its hour.
		TakeoverAfter: 2 * time.Second,
		Concurrency:   8,
		Logger:        slog.New(slog.DiscardHandler),
		RetryDelay:    func(int) time.Duration { return 50 * time.Millisecond },
	}
	ctx := context.Background()
	p := stressPipeline()
	switch os.Getenv("FLOWSTONE_PROC_PIPELINE") {
	case "scatter":
		p = stressScatterPipeline()
	case "poison":
		p = NewPipeline(PipelineDef{Name: "stress", Config: ConfigOf[stressConfig](), Assets: []AssetDef{
			def("poison", func(ctx context.Context, in *Inputs) (any, error) {
				os.Exit(7) // a crash: the process dies mid-job
				return nil, nil
			}),
		}})
	case "poison-wide":
		// The poison kills its process a moment after it starts, while
		// its neighbours, started with it, are still running.
		assets := []AssetDef{def("poison", func(ctx context.Context, in *Inputs) (any, error) {
			time.Sleep(300 * time.Millisecond)
			os.Exit(7)
			return nil, nil
		})}
		for i := range cfg.Concurrency - 1 {
			assets = append(assets, def(fmt.Sprintf("neighbour%d", i), func(ctx context.Context, in *Inputs) (any, error) {
				select {
				case <-time.After(time.Second):
					return i, nil
				case <-ctx.Done():
					return nil, ctx.Err()
				}
			}))
		}
		p = NewPipeline(PipelineDef{Name: "stress", Config: ConfigOf[stressConfig](), Assets: assets})
	}
	switch role {
	case "enqueue":
		enqueueRole(t, cfg, p, Request{Config: stressConfig{Tag: "chaos"}})
	case "worker":
		// Listening before READY: a signal sent once the parent reads it
		// stops the worker as the CLI's does, never by the default action.
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
		e, err := Open(ctx, cfg, Bind(p, nil))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Println("READY", e.be.clientID())
		<-sig
		// Drain a little, then interrupt what still runs.
		cctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer cancel()
		if err := e.Close(cctx); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
}

func TestKilledWorkersLoseNothing(t *testing.T) {
	t.Parallel()
	killWorkers(t, "", func(t *testing.T, q querier, runID string, res RunResult) {
		if len(res.Assets) != stressLayers*stressWidth {
			t.Fatalf("%d assets in run", len(res.Assets))
		}
		checkOneSuccessEach(t, q, runID, stressLayers*stressWidth)
	})
}

func TestKilledWorkersMidScatterLoseNoItem(t *testing.T) {
	t.Parallel()
	killWorkers(t, "scatter", func(t *testing.T, q querier, runID string, res RunResult) {
		checkOneSuccessEach(t, q, runID, 4)
		ctx := context.Background()
		rows, distinct, ok, _ := scatterCounts(t, q, runID, "")
		other := rows - ok + (rows - distinct)
		var done, failed int
		if err := q.QueryRow(ctx, `SELECT done, failed FROM flowstone_scatter_barriers WHERE run_id = ?`, runID).Scan(&done, &failed); err != nil {
			t.Fatal(err)
		}
		if ok != stressItems || other != 0 || done != stressItems || failed != 0 {
			t.Fatalf("items: %d succeeded, %d other; barrier counted %d done, %d failed; want %d exactly once each",
				ok, other, done, failed, stressItems)
		}
	})
}

// startRole starts this test binary as a TestProcessRole process and
// waits for it to announce itself; it returns the enqueued run's ID, or
// the worker's process ID (its River client's).
func startRole(t *testing.T, role, url, schema, which string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestProcessRole$", "-test.count=1")
	cmd.Env = append(os.Environ(), "FLOWSTONE_PROC_ROLE="+role, "FLOWSTONE_PROC_DATABASE="+url,
		"FLOWSTONE_PROC_SCHEMA="+schema, "FLOWSTONE_PROC_PIPELINE="+which)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "RUN ") || strings.HasPrefix(line, "READY ") {
			go func() {
				for sc.Scan() {
				}
			}()
			_, id, _ := strings.Cut(line, " ")
			return cmd, id
		}
	}
	t.Fatalf("%s process ended without announcing itself", role)
	return nil, ""
}

// A job whose asset kills its own process is taken over each time, and
// after maxCrashes crashes (the last two running alone) its node fails and
// the run ends.
func TestCrashingJobFailsItsRun(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("slow: restarts processes")
	}
	eachDB(t, func(t *testing.T, db testDB) {
		res, crashes := crashUntilDone(t, db, "poison")
		if res.Status != RunFailed || !strings.Contains(res.Assets["poison"].Error, "crashed its worker 3 times (the last 2 running alone") {
			t.Fatalf("run %s, asset error %q; want failed, crashed its worker 3 times", res.Status, res.Assets["poison"].Error)
		}
		if crashes != maxCrashes {
			t.Fatalf("the worker crashed %d times; want %d", crashes, maxCrashes)
		}
	})
}

// The assets running next to one that kills its process each time are
// taken over with it, but run alone once and succeed; only the one that
// kills its process fails, after maxCrashes crashes.
func TestCrashingJobSparesItsNeighbours(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("slow: restarts processes")
	}
	eachDB(t, func(t *testing.T, db testDB) {
		res, crashes := crashUntilDone(t, db, "poison-wide")
		if res.Status != RunFailed || !strings.Contains(res.Assets["poison"].Error, "crashed its worker 3 times (the last 2 running alone") {
			t.Fatalf("run %s, asset error %q; want failed, crashed its worker 3 times", res.Status, res.Assets["poison"].Error)
		}
		for key, a := range res.Assets {
			if key != "poison" && a.Status != StatusSucceeded {
				t.Errorf("asset %s: %s %q; want succeeded", key, a.Status, a.Error)
			}
		}
		if crashes != maxCrashes {
			t.Fatalf("the worker crashed %d times; want %d", crashes, maxCrashes)
		}
	})
}

// crashUntilDone enqueues a run of the pipeline named by which and works
// it with one worker process at a time, starting another each time one
// dies, until the run ends; it returns the run and how many workers died.
func crashUntilDone(t *testing.T, db testDB, which string) (RunResult, int) {
	t.Helper()
	cfg := db.config(t)
	if cfg.Schema == "" {
		cfg.Database = "sqlite://" + t.TempDir() + "/crash.db"
	}
	observer := openEngine(t, Config{Database: cfg.Database, Schema: cfg.Schema, NoWorkers: true})
	enq, runID := startRole(t, "enqueue", cfg.Database, cfg.Schema, which)
	if err := enq.Wait(); err != nil {
		t.Fatalf("enqueuer: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	for crashes := 0; ; crashes++ {
		w, _ := startRole(t, "worker", cfg.Database, cfg.Schema, which)
		done := make(chan error, 1)
		go func() { done <- w.Wait() }()
		t.Cleanup(func() { _ = w.Process.Kill() }) // should the test fail first
		var res RunResult
		crashed := false
		for !crashed {
			select {
			case <-done:
				crashed = true
			case <-ctx.Done():
				t.Fatalf("run not finished after %d crashes", crashes)
			case <-time.After(100 * time.Millisecond):
			}
			r, err := observer.Run(ctx, runID)
			if err != nil {
				t.Fatal(err)
			}
			if res = r; r.Status.Terminal() {
				break
			}
		}
		if !crashed {
			// The worker that took the job over for the last time and
			// failed its node stops cleanly on SIGTERM.
			_ = w.Process.Signal(syscall.SIGTERM)
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("worker stopped with SIGTERM: %v", err)
				}
			case <-ctx.Done():
				_ = w.Process.Kill()
				t.Fatal("worker still running after SIGTERM")
			}
		}
		if res.Status.Terminal() {
			return res, crashes
		}
		if crashes > maxCrashes+1 {
			t.Fatalf("run still %s after %d crashes", res.Status, crashes)
		}
	}
}

// killWorkers runs the pipeline named by which ("" or "scatter") with an
// enqueuer that exits at once and worker processes (two on PostgreSQL, one
// on SQLite), SIGKILLs the first at random moments, restarting it, waits
// for the run, and hands it to check. DefaultTimeout stays at its hour:
// only the heartbeat takes the killed worker's jobs over.
func killWorkers(t *testing.T, which string, check func(t *testing.T, q querier, runID string, res RunResult)) {
	if testing.Short() {
		t.Skip("slow: kills and restarts processes")
	}
	for _, db := range databases(t) {
		t.Run(db.name, func(t *testing.T) {
			t.Parallel()
			cfg, workerCount := db.config(t), 2
			if cfg.Schema == "" { // SQLite: one process, killed and restarted
				cfg.Database, workerCount = "sqlite://"+t.TempDir()+"/kill.db", 1
			}
			killAndCheck(t, which, cfg.Database, cfg.Schema, workerCount, check)
		})
	}
}

func killAndCheck(t *testing.T, which, url, schema string, workerCount int, check func(t *testing.T, q querier, runID string, res RunResult)) {
	ctx := context.Background()
	// Migrate once so the roles start fast.
	observer := openEngine(t, Config{Database: url, Schema: schema, NoWorkers: true})

	start := func(role string) (*exec.Cmd, string) { return startRole(t, role, url, schema, which) }

	began := time.Now()
	enq, runID := start("enqueue")
	if err := enq.Wait(); err != nil {
		t.Fatalf("enqueuer: %v", err)
	}
	workers := make([]*exec.Cmd, workerCount)
	killed := map[string]bool{} // the processes killed, by River client ID
	var first string
	for i := range workers {
		var id string
		workers[i], id = start("worker")
		if i == 0 {
			first = id
		}
	}
	defer func() {
		for _, w := range workers {
			_ = w.Process.Signal(syscall.SIGTERM)
			_ = w.Wait()
		}
	}()

	// Kill worker 0 at random moments while the run is young, restarting
	// it each time. A node killed while running alone maxCrashes-1 times
	// fails at the next such kill, by design (it may be the job that kills
	// its worker), so the next kill waits until no such node is running.
	// The worker is stopped (SIGSTOP) while that is checked: a lone
	// attempt it started between the check and the kill would otherwise
	// be killed at its limit.
	var kills []time.Time
	held := 0 // kills held back at a node's crash limit
	for len(kills) < 4 {
		time.Sleep(time.Duration(300+rand.IntN(900)) * time.Millisecond)
		r, err := observer.Run(ctx, runID)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status.Terminal() {
			break
		}
		if !frozenSafeToKill(t, observer, workers[0]) {
			held++
			continue
		}
		_ = workers[0].Process.Signal(syscall.SIGKILL)
		kills = append(kills, time.Now())
		killed[first] = true
		_ = workers[0].Wait()
		workers[0], first = start("worker")
	}

	wctx, cancel := context.WithTimeout(ctx, 100*time.Second)
	defer cancel()
	res, err := observer.Wait(wctx, runID)
	if err != nil {
		r, _ := observer.Run(ctx, runID)
		t.Fatalf("%v; asset statuses %v", err, r.Counts())
	}
	if res.Status != RunSucceeded {
		var failed []string
		for key, a := range res.Assets {
			if a.Status == StatusFailed {
				failed = append(failed, key+": "+a.Error)
			}
		}
		_, _, live := takeoverDelays(t, observer, kills, killed)
		t.Fatalf("run %s: %v; failed: %s\nkills at %s (processes %v); %d jobs taken over from live processes\n%s", res.Status, res.Counts(), strings.Join(failed, "; "),
			fmtTimes(kills), killed, live, jobHistories(t, observer, res))
	}
	taken, worst, live := takeoverDelays(t, observer, kills, killed)
	t.Logf("killed a worker %d times (%d more held back at a node's crash limit); run finished in %s; %d jobs taken over (%d from live processes), at most %s from a kill to their next start",
		len(kills), held, time.Since(began).Round(time.Millisecond), taken, live, worst.Round(time.Millisecond))
	check(t, observer.be.pool(), runID, res)
}

// takeoverDelays finds the jobs taken over from a worker and the longest
// time from a kill to such a job's next start (for the jobs taken over
// once, whose last start is that one); live counts the takeovers from
// processes that were not killed.
func takeoverDelays(t *testing.T, e *Engine, kills []time.Time, killed map[string]bool) (taken int, worst time.Duration, live int) {
	t.Helper()
	jobs := listAllJobs(t, e)
	for _, j := range jobs {
		var takeovers []rivertype.AttemptError
		for _, ae := range j.Errors {
			if strings.Contains(ae.Error, "worker process stopped") {
				takeovers = append(takeovers, ae)
				if ae.Attempt <= len(j.AttemptedBy) && !killed[j.AttemptedBy[ae.Attempt-1]] {
					live++
				}
			}
		}
		if len(takeovers) == 0 {
			continue
		}
		taken++
		if len(takeovers) > 1 || j.AttemptedAt == nil {
			continue
		}
		var kill time.Time
		for _, k := range kills {
			if !k.After(takeovers[0].At) {
				kill = k
			}
		}
		if !kill.IsZero() {
			worst = max(worst, j.AttemptedAt.Sub(kill))
		}
	}
	return taken, worst, live
}

// jobHistories describes the jobs of the run's failed nodes: each
// attempt's process and how it ended, to tell kills from other deaths.
func jobHistories(t *testing.T, e *Engine, res RunResult) string {
	t.Helper()
	var b strings.Builder
	for _, j := range listAllJobs(t, e) {
		var args nodeJob
		if err := json.Unmarshal(j.EncodedArgs, &args); err != nil || args.Run != res.ID || res.Assets[args.Asset].Status != StatusFailed {
			continue
		}
		fmt.Fprintf(&b, "job %d %s %s/%s: %s, attempt %d, attempted by %v\n", j.ID, j.Kind, args.Asset, args.Partition, j.State, j.Attempt, j.AttemptedBy)
		for _, ae := range j.Errors {
			fmt.Fprintf(&b, "  attempt %d ended %s: %.100s\n", ae.Attempt, ae.At.Format("15:04:05.000"), ae.Error)
		}
	}
	return b.String()
}

func fmtTimes(ts []time.Time) string {
	var out []string
	for _, t := range ts {
		out = append(out, t.UTC().Format("15:04:05.000"))
	}
	return strings.Join(out, ", ")
}

// frozenSafeToKill stops w and reports whether no node runs alone at its
// crash limit (nearCrashLimit), leaving w stopped for the kill if so and
// continuing it otherwise. A statement w sent before it stopped may still
// be committed by PostgreSQL: the look waits for that first.
func frozenSafeToKill(t *testing.T, e *Engine, w *exec.Cmd) bool {
	t.Helper()
	if err := w.Process.Signal(syscall.SIGSTOP); err != nil {
		return false // it ended
	}
	time.Sleep(100 * time.Millisecond)
	if nearCrashLimit(t, e) {
		_ = w.Process.Signal(syscall.SIGCONT)
		return false
	}
	return true
}

// nearCrashLimit reports whether a node runs alone after crashing its
// worker maxCrashes-1 times already, so that one more kill would fail it.
func nearCrashLimit(t *testing.T, e *Engine) bool {
	t.Helper()
	var n int
	if err := e.be.pool().QueryRow(context.Background(), `SELECT count(*) FROM flowstone_run_assets
		WHERE status = 'running' AND alone = 1 AND crashes >= ?`, maxCrashes-1).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n > 0
}

// listAllJobs lists every River job of e's database.
func listAllJobs(t *testing.T, e *Engine) []*rivertype.JobRow {
	t.Helper()
	var list func(context.Context, *river.JobListParams) (*river.JobListResult, error)
	switch b := e.be.(type) {
	case *riverBackend[*riverpgxv5.Driver, pgx.Tx]:
		list = b.client.JobList
	case *riverBackend[*riversqlite.Driver, *sql.Tx]:
		list = b.client.JobList
	default:
		t.Fatalf("backend %T", e.be)
	}
	var out []*rivertype.JobRow
	params := river.NewJobListParams().States(rivertype.JobStateCompleted, rivertype.JobStateCancelled,
		rivertype.JobStateDiscarded, rivertype.JobStateRunning, rivertype.JobStateAvailable,
		rivertype.JobStateRetryable, rivertype.JobStateScheduled).First(10000)
	for {
		res, err := list(context.Background(), params)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, res.Jobs...)
		if len(res.Jobs) < 10000 {
			return out
		}
		params = params.After(res.LastCursor)
	}
}

// checkOneSuccessEach asserts exactly one successful materialization per
// asset of the run, none failed, and lineage pointing at the run's own
// materializations.
func checkOneSuccessEach(t *testing.T, q querier, runID string, assets int) {
	t.Helper()
	ctx := context.Background()
	var succeeded, other int
	if err := q.QueryRow(ctx, `SELECT count(*) FILTER (WHERE status = 'succeeded'), count(*) FILTER (WHERE status <> 'succeeded')
		FROM flowstone_materializations WHERE run_id = ?`, runID).Scan(&succeeded, &other); err != nil {
		t.Fatal(err)
	}
	var dupes int
	if err := q.QueryRow(ctx, `SELECT count(*) FROM (SELECT asset FROM flowstone_materializations
		WHERE run_id = ? AND status = 'succeeded' GROUP BY asset HAVING count(*) > 1) d`, runID).Scan(&dupes); err != nil {
		t.Fatal(err)
	}
	if succeeded != assets || other != 0 || dupes != 0 {
		t.Fatalf("materializations: %d succeeded, %d other, %d assets with duplicates; want %d", succeeded, other, dupes, assets)
	}
	var badLineage int
	if err := q.QueryRow(ctx, `SELECT count(*) FROM flowstone_lineage l
		JOIN flowstone_materializations m ON m.id = l.materialization_id
		JOIN flowstone_run_assets ra ON ra.run_id = m.run_id AND ra.asset = l.upstream_asset
		WHERE m.run_id = ? AND ra.materialization_id <> l.upstream_materialization_id`, runID).Scan(&badLineage); err != nil {
		t.Fatal(err)
	}
	if badLineage != 0 {
		t.Fatalf("%d lineage edges point at materializations other than the run's", badLineage)
	}
}

// enqueueRole is the subprocess role that records a run of p without
// working it, prints "RUN <id>" for the parent, and exits.
func enqueueRole(t *testing.T, cfg Config, p *Pipeline, req Request) {
	ctx := context.Background()
	cfg.NoWorkers = true
	e, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	run, err := e.Materialize(ctx, p, req)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("RUN", run.ID)
	_ = e.Close(ctx)
}
