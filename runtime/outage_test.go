package runtime

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone/internal/testdb"
)

// postgresBehindProxy returns a config whose database goes through a
// proxy the test cuts to simulate an outage (the shared server is never
// restarted).
func postgresBehindProxy(t *testing.T) (Config, *testdb.Proxy) {
	t.Helper()
	pg, ok := testdb.Postgres(t)
	if !ok {
		t.Skip("PostgreSQL only: SQLite has no server to lose")
	}
	url, schema := pg.New(t)
	proxy, through := testdb.NewProxy(t, url)
	return Config{Database: through, Schema: schema}, proxy
}

// outagePipeline is n leaves that block until release is closed, under
// one fan-in; calls counts each asset's executions.
func outagePipeline(n int, started chan<- string, release <-chan struct{}, calls *sync.Map) *Pipeline {
	count := func(key string) {
		c, _ := calls.LoadOrStore(key, new(atomic.Int64))
		c.(*atomic.Int64).Add(1)
	}
	var assets []AssetDef
	var deps []Dep
	for i := range n {
		key := fmt.Sprintf("leaf_%02d", i)
		assets = append(assets, def(key, func(ctx context.Context, _ *Inputs) (any, error) {
			count(key)
			started <- key
			<-release
			return i, nil
		}))
		deps = append(deps, on(key))
	}
	assets = append(assets, def("total", func(ctx context.Context, in *Inputs) (any, error) {
		count("total")
		sum := 0
		for _, d := range deps {
			v, err := Input[int](ctx, in, d.Asset)
			if err != nil {
				return nil, err
			}
			sum += v
		}
		return sum, nil
	}, deps...))
	return NewPipeline(PipelineDef{Name: "outage", Assets: assets})
}

// A database outage while assets run and while the run is waited for: the
// jobs record their results once the database is back, Wait rides it out,
// and every asset ran exactly once.
func TestOutageDuringRunIsRiddenOut(t *testing.T) {
	t.Parallel()
	cfg, proxy := postgresBehindProxy(t)
	const n = 6
	started, release := make(chan string, n), make(chan struct{})
	var calls sync.Map
	p := outagePipeline(n, started, release, &calls)
	cfg.Concurrency = n
	e := openEngine(t, cfg, Bind(p, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	run, err := e.Materialize(ctx, p, Request{})
	if err != nil {
		t.Fatal(err)
	}
	type waited struct {
		res RunResult
		err error
	}
	done := make(chan waited, 1)
	go func() {
		res, err := e.Wait(ctx, run.ID)
		done <- waited{res, err}
	}()
	for range n {
		<-started // every leaf is running
	}
	proxy.Cut()
	close(release) // they finish while the database is away
	time.Sleep(2 * time.Second)
	proxy.Restore()
	w := <-done
	if w.err != nil {
		t.Fatalf("Wait: %v", w.err)
	}
	if w.res.Status != RunSucceeded {
		t.Fatalf("run %s: %+v", w.res.Status, w.res.Assets)
	}
	for key, a := range w.res.Assets {
		c, _ := calls.Load(key)
		if a.Status != StatusSucceeded || c == nil || c.(*atomic.Int64).Load() != 1 {
			t.Errorf("%s: %s, ran %v times, attempts %d; want succeeded once", key, a.Status, c, a.Attempts)
		}
	}
}

// A worker opened while the database is unreachable waits for it
// (Config.WaitForDatabase), then works.
func TestOpenWaitsForTheDatabase(t *testing.T) {
	t.Parallel()
	cfg, proxy := postgresBehindProxy(t)
	started, release := make(chan string, 4), make(chan struct{})
	close(release)
	var calls sync.Map
	p := outagePipeline(2, started, release, &calls)
	proxy.Cut()
	cfg.WaitForDatabase = time.Minute
	opened := make(chan error, 1)
	var e *Engine
	go func() {
		var err error
		e, err = Open(context.Background(), fastConfig(cfg), Bind(p, nil))
		opened <- err
	}()
	time.Sleep(time.Second)
	proxy.Restore()
	if err := <-opened; err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = e.Close(context.Background()) })
	run, err := e.Materialize(context.Background(), p, Request{})
	if err != nil {
		t.Fatal(err)
	}
	if res := waitRun(t, e, run.ID); res.Status != RunSucceeded {
		t.Fatalf("run %s", res.Status)
	}
}

// Without WaitForDatabase, Open fails at once on an unreachable database;
// with it, errors the server answers (an unknown database) still fail at
// once.
func TestOpenFailsAtOnceOnPermanentErrors(t *testing.T) {
	t.Parallel()
	cfg, proxy := postgresBehindProxy(t)
	proxy.Cut()
	p := NewPipeline(PipelineDef{Name: "perm", Assets: []AssetDef{def("a", func(context.Context, *Inputs) (any, error) { return 1, nil })}})
	_, err := Open(context.Background(), fastConfig(cfg), Bind(p, nil))
	if !IsUnreachable(err) {
		t.Fatalf("Open with the database cut: %v; want an unreachable database", err)
	}
	proxy.Restore()

	u, err := url.Parse(os.Getenv(testdb.URLEnv))
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/flowstone_no_such_database"
	bad := cfg
	bad.Database = u.String()
	bad.WaitForDatabase = 10 * time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err = Open(ctx, fastConfig(bad), Bind(p, nil))
	if err == nil || IsUnreachable(err) || errors.Is(err, ErrDatabaseUnreachable) || ctx.Err() != nil {
		t.Fatalf("Open of an unknown database: %v; want its error at once", err)
	}
}

// On SQLite there is no server to wait for: a file in a missing directory
// fails at once even with WaitForDatabase, and is not taken for an
// outage.
func TestOpenSQLiteMissingDirectoryFailsAtOnce(t *testing.T) {
	t.Parallel()
	p := NewPipeline(PipelineDef{Name: "lite", Assets: []AssetDef{def("a", func(context.Context, *Inputs) (any, error) { return 1, nil })}})
	cfg := Config{Database: "sqlite://" + t.TempDir() + "/no/such/dir/flowstone.db", WaitForDatabase: 10 * time.Minute}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := Open(ctx, fastConfig(cfg), Bind(p, nil))
	if err == nil || IsUnreachable(err) || errors.Is(err, ErrDatabaseUnreachable) || ctx.Err() != nil {
		t.Fatalf("Open of a file in a missing directory: %v; want its error at once", err)
	}
}
