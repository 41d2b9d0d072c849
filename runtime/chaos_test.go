package runtime

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone/internal/testdb"
	"github.com/flowstone-go/flowstone/strategy"
	"github.com/riverqueue/river/rivertype"
)

// The chaos runs (make chaos, FLOWSTONE_CHAOS=1; skipped otherwise) kill
// worker processes that run with every setting at its default: timeout=
// unset, Config.TakeoverAfter at its 30 s. They re-execute this test binary
// as TestChaosRole processes, like the multi-process tests, and print one
// markdown table line per run for docs/running.md.

// chaosKills is how many SIGKILLs a chaos run deals: 20, or
// FLOWSTONE_CHAOS_KILLS (0 measures an undisturbed run).
func chaosKills(t *testing.T) int { return chaosCount(t, "FLOWSTONE_CHAOS_KILLS", 20) }

// chaosCount is the count in the environment variable name, or def when
// it is unset.
func chaosCount(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		t.Fatalf("%s=%q: want a count", name, v)
	}
	return n
}

// chaosTakeoverGoal bounds the time from a kill to the next start of a job
// the killed worker was running, at the default TakeoverAfter.
const chaosTakeoverGoal = 45 * time.Second

const (
	chaosWide   = 205 // the wide layer
	chaosFanIns = 20  // each gathers a twentieth of the wide layer
	chaosChain  = 70  // one after the other, after every fan-in
)

// chaosAssets is the pipeline's size: a seed, the wide layer, the fan-ins,
// the chain, the scatter's source, scatter and gather, and the join.
const chaosAssets = 1 + chaosWide + chaosFanIns + chaosChain + 3 + 1

func requireChaos(t *testing.T) {
	t.Helper()
	if os.Getenv("FLOWSTONE_CHAOS") == "" {
		t.Skip("chaos run: make chaos (FLOWSTONE_CHAOS=1)")
	}
}

// chaosWork sleeps a few milliseconds, so kills land mid-asset.
func chaosWork(ctx context.Context, lo, hi int) error {
	select {
	case <-time.After(time.Duration(lo+rand.IntN(hi-lo+1)) * time.Millisecond):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// chaosPipeline is 300 assets: seed -> a wide layer of 205 -> 20 fan-ins
// -> a chain of 70; customers -> profiles (a scatter of 3,000 items in
// batches of 20) -> report; and a join of the chain's end and the report.
func chaosPipeline() *Pipeline {
	sum := func(deps []Dep) RunFunc {
		return func(ctx context.Context, in *Inputs) (any, error) {
			n := 1
			for _, d := range deps {
				v, err := Input[int](ctx, in, d.Asset)
				if err != nil {
					return nil, err
				}
				n = (n + v) % 1_000_003
			}
			return n, chaosWork(ctx, 5, 35)
		}
	}
	node := func(key string, deps ...Dep) AssetDef { return def(key, sum(deps), deps...) }

	seed := def("seed", func(ctx context.Context, in *Inputs) (any, error) {
		cfg, err := ConfigValue[stressConfig](in)
		if err != nil {
			return nil, err
		}
		if cfg.Tag != "chaos" {
			return nil, fmt.Errorf("config tag %q", cfg.Tag)
		}
		return 1, nil
	})
	seed.UsesConfig = true
	assets := []AssetDef{seed}
	for i := range chaosWide {
		assets = append(assets, node(fmt.Sprintf("wide_%03d", i), on("seed")))
	}
	var fanIns []Dep
	for f := range chaosFanIns {
		var deps []Dep
		for i := f; i < chaosWide; i += chaosFanIns {
			deps = append(deps, on(fmt.Sprintf("wide_%03d", i)))
		}
		key := fmt.Sprintf("fanin_%02d", f)
		assets = append(assets, node(key, deps...))
		fanIns = append(fanIns, on(key))
	}
	assets = append(assets, node("chain_00", fanIns...))
	for i := 1; i < chaosChain; i++ {
		assets = append(assets, node(fmt.Sprintf("chain_%02d", i), on(fmt.Sprintf("chain_%02d", i-1))))
	}

	customers := def("customers", func(ctx context.Context, in *Inputs) (any, error) {
		cs := make([]customer, stressItems)
		for i := range cs {
			cs[i] = customer{ID: i, Name: fmt.Sprintf("c%d", i)}
		}
		return cs, nil
	})
	profiles := def("profiles", func(ctx context.Context, in *Inputs) (any, error) {
		c, err := Item[customer](in)
		if err != nil {
			return nil, err
		}
		return profile{ID: c.ID}, chaosWork(ctx, 1, 4)
	}, Dep{Asset: "customers", Kind: DepOrder})
	profiles.Strategy, profiles.Kind, profiles.Item = strategy.Scatter{Source: "customers", Batch: 20, MaxConcurrent: 200}, "scatter", ItemOf[customer]()
	report := def("report", func(ctx context.Context, in *Inputs) (any, error) {
		ps, err := Input[[]profile](ctx, in, "profiles")
		if err != nil {
			return nil, err
		}
		seen := make([]bool, stressItems)
		for _, p := range ps {
			if p.ID < 0 || p.ID >= stressItems || seen[p.ID] {
				return nil, fmt.Errorf("profile %d out of place", p.ID)
			}
			seen[p.ID] = true
		}
		return len(ps), nil
	}, on("profiles"))
	last := fmt.Sprintf("chain_%02d", chaosChain-1)
	join := def("join", func(ctx context.Context, in *Inputs) (any, error) {
		n, err := Input[int](ctx, in, "report")
		if err != nil {
			return nil, err
		}
		if n != stressItems {
			return nil, fmt.Errorf("report counted %d profiles", n)
		}
		return Input[int](ctx, in, last)
	}, on(last), on("report"))
	assets = append(assets, customers, profiles, report, join)
	return NewPipeline(PipelineDef{Name: "chaos", Config: ConfigOf[stressConfig](), Assets: assets})
}

// TestChaosRole is a chaos process: "enqueue" records a run and exits at
// once; "worker" works jobs with the default settings until killed.
func TestChaosRole(t *testing.T) {
	role := os.Getenv("FLOWSTONE_CHAOS_ROLE")
	if role == "" {
		t.Skip("helper process for the chaos runs")
	}
	cfg := Config{
		Database: os.Getenv("FLOWSTONE_PROC_DATABASE"),
		Schema:   os.Getenv("FLOWSTONE_PROC_SCHEMA"),
		Logger:   slog.New(slog.DiscardHandler),
	}
	if os.Getenv("FLOWSTONE_CHAOS_LOG") != "" { // the workers' warnings, for a failing run
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	ctx := context.Background()
	p := chaosPipeline()
	switch role {
	case "enqueue":
		enqueueRole(t, cfg, p, Request{Config: stressConfig{Tag: "chaos"}})
	case "worker":
		e, err := Open(ctx, cfg, Bind(p, nil))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Println("READY", e.be.clientID())
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
		<-sig
		_ = e.Close(ctx)
	}
}

// chaosProc is a running TestChaosRole process.
type chaosProc struct {
	cmd  *exec.Cmd
	id   string // the run's ID (enqueue) or the River client's (worker)
	done chan error
}

func startChaos(t *testing.T, role, url, schema string) *chaosProc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestChaosRole$", "-test.count=1")
	cmd.Env = append(os.Environ(), "FLOWSTONE_CHAOS_ROLE="+role, "FLOWSTONE_PROC_DATABASE="+url, "FLOWSTONE_PROC_SCHEMA="+schema)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &chaosProc{cmd: cmd, done: make(chan error, 1)}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 2 && (f[0] == "RUN" || f[0] == "READY") {
			p.id = f[1]
			break
		}
	}
	go func() {
		for sc.Scan() {
		}
		p.done <- cmd.Wait()
	}()
	if p.id == "" {
		<-p.done
		t.Fatalf("%s process ended without announcing itself", role)
	}
	return p
}

func TestChaosKilledWorkers(t *testing.T) {
	requireChaos(t)
	for _, db := range databases(t) {
		t.Run(db.name, func(t *testing.T) {
			cfg, workers := db.config(t), 3
			if cfg.Schema == "" { // SQLite: one process, killed and restarted
				cfg.Database, workers = "sqlite://"+t.TempDir()+"/chaos.db", 1
			}
			chaosKillRun(t, db.name, cfg.Database, cfg.Schema, workers, nil)
		})
	}
}

// chaosOutages cuts the workers' connections to PostgreSQL now and then
// during a chaos run, through a proxy: the server itself, which other
// tests share, is never restarted.
type chaosOutages struct {
	proxy   *testdb.Proxy
	through string // the database URL through the proxy
}

// PostgreSQL goes away (every connection of the workers cut, new ones
// refused) for 1 to 5 s about once in four kills, and a worker is killed
// during half of the outages: workers killed before, during and after the
// database is away lose nothing.
func TestChaosOutagesAndKills(t *testing.T) {
	requireChaos(t)
	pg, ok := testdb.Postgres(t)
	if !ok {
		t.Skip("PostgreSQL only: SQLite has no server to lose")
	}
	url, schema := pg.New(t)
	proxy, through := testdb.NewProxy(t, url)
	chaosKillRun(t, "PostgreSQL", url, schema, 3, &chaosOutages{proxy: proxy, through: through})
}

// chaosKillRun enqueues the chaos pipeline from a process that exits at
// once, starts workers processes, SIGKILLs one at random every 0.3 to 1.5 s
// (restarting it 0.1 to 1 s later) until chaosKills kills or the run's
// end, waits for the run, checks it and prints its figures. With out, the
// workers reach the database through its proxy, and about one in five
// turns is an outage instead of a kill.
func chaosKillRun(t *testing.T, dbName, url, schema string, workers int, out *chaosOutages) {
	ctx := context.Background()
	observer := openEngine(t, Config{Database: url, Schema: schema, NoWorkers: true}) // migrates once
	load := loadAverage()

	began := time.Now()
	enq := startChaos(t, "enqueue", url, schema)
	if err := <-enq.done; err != nil {
		t.Fatalf("enqueuer: %v", err)
	}
	runID := enq.id
	workerURL := url
	if out != nil {
		workerURL = out.through
	}
	ws := startChaosWorkers(t, workers, workerURL, schema)
	defer ws.stop()
	mu, procs := &ws.mu, ws.procs

	killedAt := map[string]time.Time{} // River client ID -> when its process was killed
	var outages int
	var away, longestOutage time.Duration
	for kills := chaosKills(t); len(killedAt) < kills; {
		time.Sleep(time.Duration(300+rand.IntN(1200)) * time.Millisecond)
		r, err := observer.Run(ctx, runID)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status.Terminal() {
			break
		}
		i := rand.IntN(workers)
		mu.Lock()
		if out != nil && rand.IntN(5) == 0 {
			d := time.Duration(1000+rand.IntN(4000)) * time.Millisecond
			out.proxy.Cut()
			outages, away = outages+1, away+d
			longestOutage = max(longestOutage, d)
			if rand.IntN(2) == 0 {
				time.Sleep(d / 2)
				victim := procs[i]
				_ = victim.cmd.Process.Signal(syscall.SIGKILL)
				killedAt[victim.id] = time.Now()
				<-victim.done
				time.Sleep(d / 2)
				out.proxy.Restore()
				procs[i] = startChaos(t, "worker", workerURL, schema)
			} else {
				time.Sleep(d)
				out.proxy.Restore()
			}
			mu.Unlock()
			continue
		}
		victim := procs[i]
		_ = victim.cmd.Process.Signal(syscall.SIGKILL)
		killedAt[victim.id] = time.Now()
		<-victim.done
		time.Sleep(time.Duration(100+rand.IntN(900)) * time.Millisecond)
		procs[i] = startChaos(t, "worker", workerURL, schema)
		mu.Unlock()
	}

	wctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	res, err := observer.Wait(wctx, runID)
	finished := time.Since(began)
	if err != nil {
		r, _ := observer.Run(ctx, runID)
		t.Fatalf("%v; asset statuses %v", err, r.Counts())
	}
	if res.Status != RunSucceeded {
		t.Fatalf("run %s: %v", res.Status, res.Counts())
	}
	if len(res.Assets) != chaosAssets {
		t.Fatalf("%d assets in run; want %d", len(res.Assets), chaosAssets)
	}
	q := observer.be.pool()
	checkOneSuccessEach(t, q, runID, chaosAssets)
	checkScatterItemsOnce(t, q, runID)
	taken, worst, longest := chaosTakeovers(t, observer, killedAt)

	goal := chaosTakeoverGoal
	if out != nil {
		dbName += fmt.Sprintf(", %d outages (%s)", outages, seconds(away))
		// A process back from an outage takes nothing over until every
		// other could have beaten again: TakeoverAfter after the outage.
		goal += defaultTakeoverAfter + longestOutage
	}
	line := fmt.Sprintf("| %s | %d | %d | %s | %s | %s (%s) | %s |", dbName, workers, len(killedAt),
		seconds(finished), taken, seconds(worst), longest, load+" → "+loadAverage())
	fmt.Println("CHAOS " + line)
	t.Log(line)
	if worst > goal {
		t.Errorf("a killed worker's job waited %s to start again; goal %s", worst.Round(time.Millisecond), goal)
	}
}

// checkScatterItemsOnce asserts each of the scatter's items recorded once,
// succeeded, and counted once by its barrier.
func checkScatterItemsOnce(t *testing.T, q querier, runID string) {
	t.Helper()
	ctx := context.Background()
	rows, distinct, ok, _ := scatterCounts(t, q, runID, "")
	var done, failed int
	if err := q.QueryRow(ctx, `SELECT done, failed FROM flowstone_scatter_barriers WHERE run_id = ?`, runID).Scan(&done, &failed); err != nil {
		t.Fatal(err)
	}
	if rows != stressItems || distinct != stressItems || ok != stressItems || done != stressItems || failed != 0 {
		t.Fatalf("items: %d rows, %d distinct, %d succeeded; barrier counted %d done, %d failed; want %d exactly once each",
			rows, distinct, ok, done, failed, stressItems)
	}
}

// chaosTakeovers counts the takeovers of jobs from killed workers (and the
// jobs taken over more than once), and finds the longest time from a kill
// to the next start of a job the killed process was running (known for a
// takeover followed by the job's last attempt); longest names its asset.
func chaosTakeovers(t *testing.T, e *Engine, killedAt map[string]time.Time) (string, time.Duration, string) {
	t.Helper()
	taken, twice, worst, longest := 0, 0, time.Duration(0), "-"
	for _, j := range listAllJobs(t, e) {
		var args nodeJob
		_ = json.Unmarshal(j.EncodedArgs, &args)
		if j.State == rivertype.JobStateDiscarded || j.State == rivertype.JobStateCancelled {
			t.Errorf("job %d (%s %s) ended %s: %v", j.ID, j.Kind, args.Asset, j.State, j.Errors)
		}
		n := 0
		for _, ae := range j.Errors {
			if !strings.Contains(ae.Error, "worker process stopped") {
				continue
			}
			if n++; n == 2 {
				twice++
			}
			taken++
			if ae.Attempt != j.Attempt-1 || j.AttemptedAt == nil || ae.Attempt < 1 || ae.Attempt > len(j.AttemptedBy) {
				continue
			}
			kill, ok := killedAt[j.AttemptedBy[ae.Attempt-1]]
			if !ok {
				continue
			}
			if d := j.AttemptedAt.Sub(kill); d > worst {
				worst, longest = d, cmp.Or(args.Asset, j.Kind)
			}
		}
	}
	return fmt.Sprintf("%d (%d twice)", taken, twice), worst, longest
}

func seconds(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) }

// loadAverage is the machine's one-minute load average, for the figures.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) > 0 {
		return f[0]
	}
	return "?"
}

// chaosWorkers are the worker processes of a chaos run; a test that
// replaces one (after killing it) holds mu.
type chaosWorkers struct {
	mu    sync.Mutex
	procs []*chaosProc
}

// startChaosWorkers starts n worker processes on url's schema.
func startChaosWorkers(t *testing.T, n int, url, schema string) *chaosWorkers {
	w := &chaosWorkers{procs: make([]*chaosProc, n)}
	for i := range w.procs {
		w.procs[i] = startChaos(t, "worker", url, schema)
	}
	return w
}

// stop stops the current worker processes (SIGTERM) and waits for them.
func (w *chaosWorkers) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, p := range w.procs {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		<-p.done
	}
}
