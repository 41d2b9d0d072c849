package cli_test

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone/internal/testdb"
	"github.com/flowstone-go/flowstone/runtime"
	"github.com/flowstone-go/flowstone/runtime/cli"
	"github.com/flowstone-go/flowstone/strategy"
)

// outage is a PostgreSQL schema reached directly and through a proxy the
// test cuts (the shared server is never restarted), and a pipeline of n
// leaves that block until release, under one fan-in.
type outage struct {
	url, through, schema string
	proxy                *testdb.Proxy
	started              chan string
	release              chan struct{}
	calls                sync.Map
	pipeline             *runtime.Pipeline
}

const outageLeaves = 4

func newOutage(t *testing.T) *outage {
	t.Helper()
	pg, ok := testdb.Postgres(t)
	if !ok {
		t.Skip("PostgreSQL only: SQLite has no server to lose")
	}
	o := &outage{started: make(chan string, outageLeaves), release: make(chan struct{})}
	o.url, o.schema = pg.New(t)
	o.proxy, o.through = testdb.NewProxy(t, o.url)
	count := func(key string) {
		c, _ := o.calls.LoadOrStore(key, new(atomic.Int64))
		c.(*atomic.Int64).Add(1)
	}
	def := func(key string, run runtime.RunFunc, deps ...runtime.Dep) runtime.AssetDef {
		return runtime.AssetDef{Key: key, Kind: "standard", Strategy: strategy.Standard{}, Deps: deps, HasValue: true, CodeVersion: "v1", Run: run}
	}
	var assets []runtime.AssetDef
	var deps []runtime.Dep
	for i := range outageLeaves {
		key := fmt.Sprintf("leaf_%d", i)
		assets = append(assets, def(key, func(ctx context.Context, _ *runtime.Inputs) (any, error) {
			count(key)
			o.started <- key
			<-o.release
			return i, nil
		}))
		deps = append(deps, runtime.Dep{Asset: key, Kind: runtime.DepOrder})
	}
	assets = append(assets, def("total", func(context.Context, *runtime.Inputs) (any, error) {
		count("total")
		return 1, nil
	}, deps...))
	o.pipeline = runtime.NewPipeline(runtime.PipelineDef{Name: "outage", Assets: assets})
	return o
}

func (o *outage) app() cli.App {
	return cli.App{
		Name: "outage",
		Bind: func(context.Context) ([]runtime.Binding, error) {
			return []runtime.Binding{runtime.Bind(o.pipeline, nil)}, nil
		},
		Configure: func(c *runtime.Config) {
			fast(c)
			c.Concurrency = outageLeaves
		},
	}
}

// cutWhileRunning waits for every leaf to start, cuts the database,
// lets the leaves finish while it is away, and restores it.
func (o *outage) cutWhileRunning() {
	for range outageLeaves {
		<-o.started
	}
	o.proxy.Cut()
	close(o.release)
	time.Sleep(2 * time.Second)
	o.proxy.Restore()
}

// check fails unless every asset ran exactly once and the outage was
// reported once, at its start and its end.
func (o *outage) check(t *testing.T, r result) {
	t.Helper()
	keys := []string{"total"}
	for i := range outageLeaves {
		keys = append(keys, fmt.Sprintf("leaf_%d", i))
	}
	for _, key := range keys {
		c, ok := o.calls.Load(key)
		if !ok {
			t.Errorf("%s never ran", key)
			continue
		}
		if n := c.(*atomic.Int64).Load(); n != 1 {
			t.Errorf("%s ran %d times; want once", key, n)
		}
	}
	if n := strings.Count(r.stderr, "database unreachable, retrying"); n != 1 {
		t.Errorf("the outage was reported %d times; want once\n%s", n, r)
	}
	if !strings.Contains(r.stderr, "database reachable again after") {
		t.Errorf("no word of the database coming back\n%s", r)
	}
}

// A PostgreSQL outage while materialize works and follows its run: it
// keeps going and the run succeeds, each asset once.
func TestMaterializeRidesOutADatabaseOutage(t *testing.T) {
	t.Parallel()
	o := newOutage(t)
	done := make(chan result, 1)
	go func() {
		done <- invoke(testContext(t), o.app(), "--database", o.through, "--schema", o.schema, "materialize")
	}()
	o.cutWhileRunning()
	r := <-done
	if r.code != cli.ExitOK {
		t.Fatalf("materialize through an outage:\n%s", r)
	}
	wantLine(t, r, `run run_[0-9a-f]+ succeeded in .*: 5 succeeded`)
	o.check(t, r)
}

// status --follow keeps following through an outage while another
// process works the run.
func TestStatusFollowRidesOutADatabaseOutage(t *testing.T) {
	t.Parallel()
	o := newOutage(t)
	ctx := testContext(t)
	cfg := runtime.Config{Database: o.url, Schema: o.schema, Concurrency: outageLeaves}
	fast(&cfg)
	eng, err := runtime.Open(ctx, cfg, runtime.Bind(o.pipeline, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close(context.Background())
	run, err := eng.Materialize(ctx, o.pipeline, runtime.Request{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan result, 1)
	following := make(chan struct{})
	out := &signalWriter{want: "run " + run.ID + ": pipeline outage", seen: following}
	go func() {
		var errOut strings.Builder
		code := cli.Main(ctx, o.app(), []string{"--database", o.through, "--schema", o.schema, "status", "--follow", run.ID}, out, &errOut)
		done <- result{stdout: out.String(), stderr: errOut.String(), code: code}
	}()
	select { // the cut comes once status follows, not before it opened
	case <-following:
	case r := <-done:
		t.Fatalf("status --follow ended early:\n%s", r)
	}
	o.cutWhileRunning()
	r := <-done
	if r.code != cli.ExitOK {
		t.Fatalf("status --follow through an outage:\n%s", r)
	}
	wantLine(t, r, `run `+run.ID+` succeeded in .*: 5 succeeded`)
	o.check(t, r)
}

// A worker started while the database is unreachable waits for it, then
// works; --wait-for-database 0 fails at once instead.
func TestWorkerWaitsForTheDatabase(t *testing.T) {
	t.Parallel()
	o := newOutage(t)
	close(o.release)
	o.proxy.Cut()
	db := []string{"--database", o.through, "--schema", o.schema}
	if r := invoke(testContext(t), o.app(), args(db, "worker", "--wait-for-database", "0")...); r.code != cli.ExitFailure || !strings.Contains(r.stderr, "to wait for it, give --wait-for-database") {
		t.Fatalf("worker --wait-for-database 0 with the database away:\n%s", r)
	}
	ctx, stop := context.WithCancel(testContext(t))
	defer stop()
	done := make(chan result, 1)
	go func() { done <- invoke(ctx, o.app(), args(db, "worker")...) }()
	time.Sleep(time.Second)
	o.proxy.Restore()

	cfg := runtime.Config{Database: o.url, Schema: o.schema, NoWorkers: true}
	fast(&cfg)
	eng, err := runtime.Open(ctx, cfg, runtime.Bind(o.pipeline, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close(context.Background())
	run, err := eng.Materialize(ctx, o.pipeline, runtime.Request{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := eng.Wait(ctx, run.ID)
	if err != nil || res.Status != runtime.RunSucceeded {
		t.Fatalf("run worked by the worker that waited: %s %v", res.Status, err)
	}
	stop()
	if r := <-done; r.code != cli.ExitOK || !strings.Contains(r.stderr, "database unreachable, retrying") {
		t.Fatalf("worker that waited for the database:\n%s", r)
	}
}

// signalWriter collects output and closes seen once it contains want.
type signalWriter struct {
	mu   sync.Mutex
	buf  strings.Builder
	want string
	seen chan struct{}
}

func (w *signalWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	had := strings.Contains(w.buf.String(), w.want)
	w.buf.Write(p)
	if !had && strings.Contains(w.buf.String(), w.want) {
		close(w.seen)
	}
	return len(p), nil
}

func (w *signalWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// A database that answers with an error (here: no such database) is no
// outage: worker fails at once instead of waiting for it.
func TestWorkerFailsAtOnceOnAnUnknownDatabase(t *testing.T) {
	t.Parallel()
	o := newOutage(t)
	u, err := url.Parse(o.through)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/flowstone_no_such_database"
	r := invoke(testContext(t), o.app(), "--database", u.String(), "worker")
	if r.code != cli.ExitFailure || !strings.Contains(r.stderr, "does not exist") || strings.Contains(r.stderr, "unreachable") {
		t.Fatalf("worker on an unknown database:\n%s", r)
	}
}
