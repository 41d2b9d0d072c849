package runtime

import (
	"bufio"
	"context"
	"fmt"
	"github.com/flowstone-go/flowstone/strategy"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"
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
		Database: os.Getenv("FLOWSTONE_TEST_DATABASE_URL"),
		Schema:   os.Getenv("FLOWSTONE_PROC_SCHEMA"),
		// A killed worker's jobs are retried once past this; River's
		// rescuer looks every 30s.
		DefaultTimeout: 3 * time.Second,
		Concurrency:    8,
		Logger:         slog.New(slog.DiscardHandler),
		RetryDelay:     func(int) time.Duration { return 50 * time.Millisecond },
	}
	ctx := context.Background()
	p := stressPipeline()
	if os.Getenv("FLOWSTONE_PROC_PIPELINE") == "scatter" {
		p = stressScatterPipeline()
	}
	switch role {
	case "enqueue":
		cfg.NoWorkers = true
		e, err := Open(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		run, err := e.Materialize(ctx, p, Request{Config: stressConfig{Tag: "chaos"}})
		if err != nil {
			t.Fatal(err)
		}
		fmt.Println("RUN", run.ID)
		_ = e.Close(ctx)
	case "worker":
		e, err := Open(ctx, cfg, Bind(p, nil))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Println("READY")
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
		<-sig
		_ = e.Close(ctx)
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
		var ok, other int
		if err := q.QueryRow(ctx, `SELECT count(*) FILTER (WHERE status = 'succeeded'), count(*) FILTER (WHERE status <> 'succeeded')
			FROM flowstone_scatter_items WHERE run_id = ?`, runID).Scan(&ok, &other); err != nil {
			t.Fatal(err)
		}
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

// killWorkers runs the pipeline named by which ("" or "scatter") with an
// enqueuer that exits at once and two worker processes, SIGKILLs one of
// them at random moments, waits for the run, and hands it to check.
func killWorkers(t *testing.T, which string, check func(t *testing.T, q querier, runID string, res RunResult)) {
	url := os.Getenv("FLOWSTONE_TEST_DATABASE_URL")
	if url == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("FLOWSTONE_TEST_DATABASE_URL is not set")
		}
		t.Skip("needs PostgreSQL (FLOWSTONE_TEST_DATABASE_URL)")
	}
	if testing.Short() {
		t.Skip("slow: waits for River's rescuer")
	}
	schema := testSchema(t, url)
	ctx := context.Background()

	// Migrate once so the roles start fast.
	observer := openEngine(t, Config{Database: url, Schema: schema, NoWorkers: true})

	start := func(role string) (*exec.Cmd, string) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestProcessRole$", "-test.count=1")
		cmd.Env = append(os.Environ(), "FLOWSTONE_PROC_ROLE="+role, "FLOWSTONE_PROC_SCHEMA="+schema, "FLOWSTONE_PROC_PIPELINE="+which)
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
			if strings.HasPrefix(line, "RUN ") || line == "READY" {
				go func() {
					for sc.Scan() {
					}
				}()
				return cmd, strings.TrimPrefix(line, "RUN ")
			}
		}
		t.Fatalf("%s process ended without announcing itself", role)
		return nil, ""
	}

	enq, runID := start("enqueue")
	if err := enq.Wait(); err != nil {
		t.Fatalf("enqueuer: %v", err)
	}
	workers := []*exec.Cmd{nil, nil}
	for i := range workers {
		workers[i], _ = start("worker")
	}
	defer func() {
		for _, w := range workers {
			_ = w.Process.Signal(syscall.SIGTERM)
			_ = w.Wait()
		}
	}()

	// Kill worker 0 at random moments while the run is young, restarting
	// it each time.
	kills := 0
	for kills < 4 {
		time.Sleep(time.Duration(300+rand.IntN(900)) * time.Millisecond)
		r, err := observer.Run(ctx, runID)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status.Terminal() {
			break
		}
		_ = workers[0].Process.Signal(syscall.SIGKILL)
		_ = workers[0].Wait()
		kills++
		workers[0], _ = start("worker")
	}
	t.Logf("killed a worker %d times", kills)

	wctx, cancel := context.WithTimeout(ctx, 100*time.Second)
	defer cancel()
	res, err := observer.Wait(wctx, runID)
	if err != nil {
		r, _ := observer.Run(ctx, runID)
		rs, qerr := observer.be.pool().Query(ctx, `SELECT state, attempt, count(*) FROM river_job GROUP BY state, attempt ORDER BY 1, 2`)
		if qerr == nil {
			for rs.Next() {
				var st string
				var att, n int
				_ = rs.Scan(&st, &att, &n)
				t.Logf("river jobs: %s attempt %d: %d", st, att, n)
			}
			rs.Close()
		}
		t.Fatalf("%v; asset statuses %v", err, r.Counts())
	}
	if res.Status != RunSucceeded {
		t.Fatalf("run %s: %v", res.Status, res.Counts())
	}
	check(t, observer.be.pool(), runID, res)
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
