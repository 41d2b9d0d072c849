package cli_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone/runtime"
	"github.com/flowstone-go/flowstone/runtime/cli"
	"github.com/flowstone-go/flowstone/strategy"
)

// The signal tests run this test binary as the program a user builds
// (TestCLIProcess, chosen by FLOWSTONE_CLI_ARGS), send it real signals and
// read the database afterwards.

const (
	envCLIArgs    = "FLOWSTONE_CLI_ARGS"    // the command line, a JSON array
	envCLIRelease = "FLOWSTONE_CLI_RELEASE" // a file whose existence lets "slow" finish
)

// slowApp binds a pipeline whose asset "slow" runs until the file named by
// release exists, or until its context ends; "after" reads it.
func slowApp(release string) cli.App {
	p := runtime.NewPipeline(runtime.PipelineDef{Name: "slow", Assets: []runtime.AssetDef{
		{Key: "slow", Kind: "standard", HasValue: true, CodeVersion: "v1", Strategy: strategy.Standard{},
			Run: func(ctx context.Context, _ *runtime.Inputs) (any, error) {
				t := time.NewTicker(10 * time.Millisecond)
				defer t.Stop()
				for {
					if _, err := os.Stat(release); err == nil {
						return 1, nil
					}
					select {
					case <-ctx.Done():
						return nil, ctx.Err()
					case <-t.C:
					}
				}
			}},
		{Key: "after", Kind: "standard", HasValue: true, CodeVersion: "v1", Strategy: strategy.Standard{},
			Deps: []runtime.Dep{{Asset: "slow", Kind: runtime.DepValue}},
			Run: func(ctx context.Context, in *runtime.Inputs) (any, error) {
				return runtime.Input[int](ctx, in, "slow")
			}},
	}})
	return cli.App{
		Name: "slow",
		Bind: func(context.Context) ([]runtime.Binding, error) {
			return []runtime.Binding{runtime.Bind(p, nil)}, nil
		},
		Configure: fast,
	}
}

// TestCLIProcess is the program the signal tests start.
func TestCLIProcess(t *testing.T) {
	line := os.Getenv(envCLIArgs)
	if line == "" {
		t.Skip("the program started by the signal tests")
	}
	var args []string
	if err := json.Unmarshal([]byte(line), &args); err != nil {
		t.Fatal(err)
	}
	os.Exit(cli.Main(context.Background(), slowApp(os.Getenv(envCLIRelease)), args, os.Stdout, os.Stderr))
}

// cliProcess is a running TestCLIProcess.
type cliProcess struct {
	cmd    *exec.Cmd
	lines  chan string // stdout, line by line
	stderr syncBuffer
	exited chan struct{}
	err    error // Wait's, once exited is closed
}

func startCLI(t *testing.T, release string, args ...string) *cliProcess {
	t.Helper()
	p := &cliProcess{lines: make(chan string, 100), exited: make(chan struct{})}
	p.cmd = exec.Command(os.Args[0], "-test.run=^TestCLIProcess$", "-test.count=1")
	line, err := json.Marshal(args)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Env = append(os.Environ(), envCLIArgs+"="+string(line), envCLIRelease+"="+release)
	p.cmd.Stderr = &p.stderr
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		p.err = p.cmd.Wait()
		close(p.lines)
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default: // the test failed first
			_ = p.cmd.Process.Kill()
			for range p.lines {
			}
		}
	})
	return p
}

func (p *cliProcess) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// waitLine waits for a line of stdout starting with prefix and returns it.
func (p *cliProcess) waitLine(ctx context.Context, t *testing.T, prefix string) string {
	t.Helper()
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				t.Fatalf("the program ended without printing %q\n%s", prefix, p.stderr.String())
			}
			if strings.HasPrefix(l, prefix) {
				return l
			}
		case <-ctx.Done():
			t.Fatalf("no line %q: %v", prefix, ctx.Err())
		}
	}
}

// wait waits for the program to exit and returns its status, or the
// signal that killed it.
func (p *cliProcess) wait(ctx context.Context, t *testing.T) (int, os.Signal) {
	t.Helper()
	for {
		select {
		case <-p.lines: // the rest of stdout
			continue
		case <-p.exited:
		case <-ctx.Done():
			t.Fatalf("the program did not exit: %v\n%s", ctx.Err(), p.stderr.String())
		}
		break
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return -1, ws.Signal()
		}
		return ee.ExitCode(), nil
	}
	if p.err != nil {
		t.Fatal(p.err)
	}
	return 0, nil
}

// observe opens the database of db's flags for reading runs.
func observe(t *testing.T, db []string) *runtime.Engine {
	t.Helper()
	cfg := runtime.Config{NoWorkers: true}
	for i := 0; i+1 < len(db); i += 2 {
		switch db[i] {
		case "--database":
			cfg.Database = db[i+1]
		case "--schema":
			cfg.Schema = db[i+1]
		}
	}
	e, err := runtime.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close(context.Background()) })
	return e
}

// waitAsset waits until asset of run id has status.
func waitAsset(ctx context.Context, t *testing.T, e *runtime.Engine, id, asset string, status runtime.AssetStatus) {
	t.Helper()
	for {
		r, err := e.Run(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if r.Assets[asset].Status == status {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s never %s: %v", asset, status, r.Counts())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// finish works run id to its end in this process and checks that each
// asset succeeded exactly once, "slow" after attempts attempts.
func finish(ctx context.Context, t *testing.T, app cli.App, db []string, obs *runtime.Engine, id string, attempts int) {
	t.Helper()
	wctx, stop := context.WithCancel(ctx)
	done := make(chan result, 1)
	go func() { done <- invoke(wctx, app, args(db, "worker")...) }()
	res, err := obs.Wait(ctx, id)
	stop()
	if w := <-done; w.code != 0 {
		t.Fatalf("worker: %s", w)
	}
	if err != nil || res.Status != runtime.RunSucceeded {
		t.Fatalf("run %s: %v %v", res.Status, res.Counts(), err)
	}
	if a := res.Assets["slow"]; a.Attempts != attempts {
		t.Errorf("slow: %d attempts; want %d", a.Attempts, attempts)
	}
	for _, asset := range []string{"slow", "after"} {
		ms, err := obs.Materializations(ctx, "slow", asset, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) != 1 || ms[0].Status != "succeeded" || ms[0].RunID != id {
			t.Errorf("materializations of %s: %+v; want one, succeeded", asset, ms)
		}
	}
}

// startSlowRun starts a run of the slow pipeline and waits until a
// process runs its slow asset.
func startSlowRun(ctx context.Context, t *testing.T, app cli.App, db []string, obs *runtime.Engine) string {
	t.Helper()
	r := invoke(ctx, app, args(db, "materialize", "--detach")...)
	if r.code != 0 {
		t.Fatalf("materialize --detach: %s", r)
	}
	id := runID(t, r)
	waitAsset(ctx, t, obs, id, "slow", runtime.StatusRunning)
	return id
}

// A SIGTERMed worker lets its running job finish within --drain-timeout
// and exits 0; the job is recorded once.
func TestWorkerDrainsOnSIGTERM(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db []string) {
		ctx := testContext(t)
		release := filepath.Join(t.TempDir(), "release")
		app := slowApp(release)
		obs := observe(t, db)
		w := startCLI(t, release, args(db, "worker", "--drain-timeout", "1m")...)
		w.waitLine(ctx, t, "worker started")
		id := startSlowRun(ctx, t, app, db, obs)

		w.signal(t, syscall.SIGTERM)
		w.waitLine(ctx, t, "stopping: running jobs have 1m0s to finish")
		if err := os.WriteFile(release, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		w.waitLine(ctx, t, "worker stopped")
		if code, sig := w.wait(ctx, t); code != 0 {
			t.Fatalf("worker exited %d (%v)\n%s", code, sig, w.stderr.String())
		}
		r, err := obs.Run(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if a := r.Assets["slow"]; a.Status != runtime.StatusSucceeded {
			t.Fatalf("slow after the worker stopped: %s %q; want succeeded", a.Status, a.Error)
		}
		finish(ctx, t, app, db, obs, id, 1)
	})
}

// A SIGTERMed worker whose job outlasts --drain-timeout cancels it,
// records it interrupted and exits 0; another worker then runs it once.
func TestWorkerInterruptsPastDrainTimeout(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db []string) {
		ctx := testContext(t)
		release := filepath.Join(t.TempDir(), "release")
		app := slowApp(release)
		obs := observe(t, db)
		w := startCLI(t, release, args(db, "worker", "--drain-timeout", "100ms")...)
		w.waitLine(ctx, t, "worker started")
		id := startSlowRun(ctx, t, app, db, obs)

		w.signal(t, syscall.SIGTERM)
		w.waitLine(ctx, t, "worker stopped")
		if code, sig := w.wait(ctx, t); code != 0 {
			t.Fatalf("worker exited %d (%v)\n%s", code, sig, w.stderr.String())
		}
		r, err := obs.Run(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if a := r.Assets["slow"]; a.Status != runtime.StatusQueued || a.Error != "interrupted by shutdown" {
			t.Fatalf("slow after the worker stopped: %s %q; want queued, interrupted by shutdown", a.Status, a.Error)
		}
		if err := os.WriteFile(release, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		finish(ctx, t, app, db, obs, id, 2)
	})
}

// A second signal quits a draining worker at once.
func TestWorkerQuitsOnSecondSignal(t *testing.T) {
	t.Parallel()
	db := databases(t)[0].flags(t)
	ctx := testContext(t)
	release := filepath.Join(t.TempDir(), "release")
	app := slowApp(release)
	obs := observe(t, db)
	w := startCLI(t, release, args(db, "worker", "--drain-timeout", "10m")...)
	w.waitLine(ctx, t, "worker started")
	startSlowRun(ctx, t, app, db, obs)
	w.signal(t, syscall.SIGTERM)
	w.waitLine(ctx, t, "stopping:")
	w.signal(t, syscall.SIGINT)
	if code, sig := w.wait(ctx, t); sig != syscall.SIGINT {
		t.Fatalf("worker exited %d (%v); want killed by the second signal\n%s", code, sig, w.stderr.String())
	}
}

// A SIGTERMed materialize stops following, lets this process's running
// job finish, and exits 130; a worker then finishes the run.
func TestMaterializeStopsOnSIGTERM(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db []string) {
		ctx := testContext(t)
		release := filepath.Join(t.TempDir(), "release")
		app := slowApp(release)
		obs := observe(t, db)
		m := startCLI(t, release, args(db, "materialize")...)
		id := strings.Fields(m.waitLine(ctx, t, "run "))[1]
		waitAsset(ctx, t, obs, id, "slow", runtime.StatusRunning)
		m.signal(t, syscall.SIGTERM)
		for !strings.Contains(m.stderr.String(), "stopped following run") {
			select { // stderr is written by the program, read here once it says so
			case <-ctx.Done():
				t.Fatalf("no word from materialize: %s", m.stderr.String())
			case <-time.After(20 * time.Millisecond):
			}
		}
		if err := os.WriteFile(release, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if code, sig := m.wait(ctx, t); code != cli.ExitInterrupted {
			t.Fatalf("materialize exited %d (%v); want %d\n%s", code, sig, cli.ExitInterrupted, m.stderr.String())
		}
		finish(ctx, t, app, db, obs, id, 1)
	})
}

// A SIGTERMed serve --workers stops serving, lets its running job finish
// and exits 0.
func TestServeStopsOnSIGTERM(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db []string) {
		ctx := testContext(t)
		release := filepath.Join(t.TempDir(), "release")
		app := slowApp(release)
		obs := observe(t, db)
		s := startCLI(t, release, args(db, "serve", "--addr", "127.0.0.1:0", "--workers")...)
		s.waitLine(ctx, t, "serving the FlowStone page")
		id := startSlowRun(ctx, t, app, db, obs)
		s.signal(t, syscall.SIGTERM)
		s.waitLine(ctx, t, "stopped serving")
		if err := os.WriteFile(release, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if code, sig := s.wait(ctx, t); code != 0 {
			t.Fatalf("serve exited %d (%v)\n%s", code, sig, s.stderr.String())
		}
		finish(ctx, t, app, db, obs, id, 1)
	})
}

// A worker stopped while it still opens the database (a signal right after
// start, or during --wait-for-database) stops cleanly: exit 0, nothing
// having run. It used to exit 1 with the open's "context canceled", which
// failed the tests whose run another process had already finished when
// they stopped the worker they started for it.
func TestWorkerStoppedWhileOpeningExitsCleanly(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db []string) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		r := invoke(ctx, slowApp(filepath.Join(t.TempDir(), "release")), args(db, "worker")...)
		if r.code != 0 || !strings.Contains(r.stdout, "worker stopped before it started") {
			t.Fatalf("worker stopped while opening: %s", r)
		}
	})
}
