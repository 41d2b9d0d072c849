package cli_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone/internal/testdb"
	"github.com/flowstone-go/flowstone/runtime"
	"github.com/flowstone-go/flowstone/runtime/cli"
	"github.com/flowstone-go/flowstone/strategy"
	"github.com/jackc/pgx/v5"
)

// The chaos runs (make chaos, FLOWSTONE_CHAOS=1; skipped otherwise) also
// cut PostgreSQL away from running commands. The shared server is never
// restarted: the commands reach it through a TCP proxy that the test cuts
// (listener closed, every connection dropped, as a restart does) and
// restores.

// outageFor is how long the database stays unreachable.
const outageFor = 8 * time.Second

// outageLayers x outageWidth assets, each on two of the layer above.
const outageLayers, outageWidth = 12, 10

func outageApp() cli.App {
	var assets []runtime.AssetDef
	for l := range outageLayers {
		for w := range outageWidth {
			var deps []runtime.Dep
			if l > 0 {
				deps = []runtime.Dep{
					{Asset: fmt.Sprintf("l%02d_%02d", l-1, w), Kind: runtime.DepValue},
					{Asset: fmt.Sprintf("l%02d_%02d", l-1, (w+1)%outageWidth), Kind: runtime.DepValue},
				}
			}
			ds := deps
			assets = append(assets, runtime.AssetDef{
				Key: fmt.Sprintf("l%02d_%02d", l, w), Kind: "standard", Strategy: strategy.Standard{},
				Deps: deps, HasValue: true, CodeVersion: "v1",
				Run: func(ctx context.Context, in *runtime.Inputs) (any, error) {
					n := 1
					for _, d := range ds {
						v, err := runtime.Input[int](ctx, in, d.Asset)
						if err != nil {
							return nil, err
						}
						n += v % 1000
					}
					select {
					case <-time.After(time.Duration(50+rand.IntN(150)) * time.Millisecond):
						return n, nil
					case <-ctx.Done():
						return nil, ctx.Err()
					}
				},
			})
		}
	}
	p := runtime.NewPipeline(runtime.PipelineDef{Name: "outage", Assets: assets})
	return cli.App{
		Name: "outage",
		Bind: func(ctx context.Context) ([]runtime.Binding, error) {
			return []runtime.Binding{runtime.Bind(p, nil)}, nil
		},
	}
}

// proxy forwards TCP connections to a target until cut.
type proxy struct {
	target, addr string
	mu           sync.Mutex
	ln           net.Listener
	conns        map[net.Conn]bool
}

func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{target: target, addr: ln.Addr().String(), ln: ln, conns: map[net.Conn]bool{}}
	go p.accept(ln)
	t.Cleanup(p.cut)
	return p
}

func (p *proxy) accept(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go p.forward(c)
	}
}

func (p *proxy) forward(c net.Conn) {
	s, err := net.Dial("tcp", p.target)
	if err != nil {
		_ = c.Close()
		return
	}
	p.mu.Lock()
	if p.ln == nil { // cut meanwhile
		p.mu.Unlock()
		_, _ = c.Close(), s.Close()
		return
	}
	p.conns[c], p.conns[s] = true, true
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		done <- struct{}{}
	}
	go pipe(s, c)
	go pipe(c, s)
	<-done
	_, _ = c.Close(), s.Close()
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, s)
	p.mu.Unlock()
}

// cut refuses new connections and drops every open one.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		_ = p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		_ = c.Close()
	}
}

// restore listens again on the same address.
func (p *proxy) restore(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		t.Fatalf("proxy: listen again on %s: %v", p.addr, err)
	}
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go p.accept(ln)
}

// stream is an output written by one command while the test reads it.
type stream struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *stream) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(b)
}

func (s *stream) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// command is one CLI invocation running in the background.
type command struct {
	name           string
	stdout, stderr stream
	stop           context.CancelFunc
	done           chan int
	code           int
}

func startCommand(ctx context.Context, app cli.App, name string, args ...string) *command {
	ctx, stop := context.WithCancel(ctx)
	c := &command{name: name, stop: stop, done: make(chan int, 1)}
	go func() { c.done <- cli.Main(ctx, app, args, &c.stdout, &c.stderr) }()
	return c
}

func (c *command) String() string {
	return fmt.Sprintf("%s exit %d (-1: still running)\n--- stdout\n%s--- stderr\n%s", c.name, c.code, c.stdout.String(), c.stderr.String())
}

// exited reports whether the command has ended, recording its exit code.
func (c *command) exited() bool {
	select {
	case c.code = <-c.done:
		c.done <- c.code
		return true
	default:
		return false
	}
}

// wait returns the command's exit code, or -1 if it is still running when
// ctx ends.
func (c *command) wait(ctx context.Context) int {
	select {
	case c.code = <-c.done:
		c.done <- c.code
		return c.code
	case <-ctx.Done():
		c.code = -1
		return -1
	}
}

// TestChaosDatabaseOutage cuts PostgreSQL away from a materialize, a
// status --follow and a worker in the middle of a run, and starts a second
// worker while it is away: once it is back they all keep going, the run
// succeeds with one success per asset, and the workers keep working.
func TestChaosDatabaseOutage(t *testing.T) {
	if os.Getenv("FLOWSTONE_CHAOS") == "" {
		t.Skip("chaos run: make chaos (FLOWSTONE_CHAOS=1)")
	}
	pg, ok := testdb.Postgres(t)
	if !ok {
		t.Skip("needs PostgreSQL")
	}
	direct, schema := pg.New(t)
	u, err := url.Parse(direct)
	if err != nil {
		t.Fatal(err)
	}
	px := startProxy(t, u.Host)
	u.Host = px.addr
	db := []string{"--database", u.String(), "--schema", schema}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	app := outageApp()
	observer, err := runtime.Open(ctx, runtime.Config{Database: direct, Schema: schema, NoWorkers: true})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = observer.Close(context.Background()) }()

	worker := startCommand(ctx, app, "worker", args(db, "worker", "--drain", "10s")...)
	defer worker.stop()
	mat := startCommand(ctx, app, "materialize", args(db, "materialize")...)
	var id string
	for id == "" {
		if m := runIDRe.FindStringSubmatch(mat.stdout.String()); m != nil {
			id = m[1]
		} else if mat.exited() {
			t.Fatalf("materialize ended before its run started: %s", mat)
		} else {
			time.Sleep(20 * time.Millisecond)
		}
	}
	follow := startCommand(ctx, app, "status --follow", args(db, "status", "--follow", id)...)

	// Cut once a tenth of the run is done.
	for {
		r, err := observer.Run(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if r.Counts()[runtime.StatusSucceeded] >= outageLayers*outageWidth/10 || r.Status.Terminal() {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	px.cut()
	t.Logf("database cut for %s", outageFor)
	time.Sleep(outageFor / 2)
	late := startCommand(ctx, app, "worker started during the outage", args(db, "worker", "--drain", "10s")...)
	defer late.stop()
	time.Sleep(outageFor / 2)
	px.restore(t)
	t.Log("database back")

	// explain says where the run stands, read directly.
	explain := func() string {
		rctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r, err := observer.Run(rctx, id)
		if err != nil {
			return err.Error()
		}
		var notDone []string
		for key, a := range r.Assets {
			if a.Status != runtime.StatusSucceeded {
				notDone = append(notDone, fmt.Sprintf("%s %s %q", key, a.Status, a.Error))
			}
		}
		sort.Strings(notDone)
		return fmt.Sprintf("run %s %v; not succeeded: %s; their jobs: %s", r.Status, r.Counts(), strings.Join(notDone, ", "),
			unfinishedJobs(t, rctx, direct, schema, id))
	}
	wctx, cancelWait := context.WithTimeout(ctx, 2*time.Minute)
	defer cancelWait()
	if code := mat.wait(wctx); code != 0 {
		t.Fatalf("materialize through the outage: %s\n%s", mat, explain())
	}
	if code := follow.wait(wctx); code != 0 {
		t.Fatalf("status --follow through the outage: %s\n%s", follow, explain())
	}
	wantRe(t, mat.stdout.String(), `run `+id+` succeeded in \S+: 120 succeeded`)
	wantRe(t, follow.stdout.String(), `run `+id+` succeeded in \S+: 120 succeeded`)
	for _, w := range []*command{worker, late} {
		if w.exited() {
			t.Fatalf("a worker stopped: %s", w)
		}
	}
	checkOneSuccessPerAsset(t, ctx, direct, schema, id, outageLayers*outageWidth)

	// The workers still work: a second run, with nobody else to do it.
	r := invoke(ctx, app, args(db, "materialize", "--detach")...)
	if r.code != 0 {
		t.Fatalf("materialize --detach: %s", r)
	}
	res, err := observer.Wait(ctx, runID(t, r))
	if err != nil || res.Status != runtime.RunSucceeded {
		t.Fatalf("second run after the outage: %v %v %v", res.Status, res.Counts(), err)
	}
	for _, w := range []*command{worker, late} {
		w.stop()
		if code := w.wait(ctx); code != 0 {
			t.Fatalf("worker: %s", w)
		}
	}
	fmt.Printf("CHAOS | PostgreSQL outage | %s | materialize, status --follow and 2 workers kept going; run succeeded |\n", outageFor)
}

func wantRe(t *testing.T, out, pattern string) {
	t.Helper()
	if !regexp.MustCompile(`(?m)` + pattern).MatchString(out) {
		t.Errorf("no line matching %q in\n%s", pattern, out)
	}
}

// checkOneSuccessPerAsset asserts one successful materialization of each
// asset in the run.
func checkOneSuccessPerAsset(t *testing.T, ctx context.Context, url, schema, runID string, assets int) {
	t.Helper()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var ok, distinct, other int
	if err := conn.QueryRow(ctx, `SELECT count(*) FILTER (WHERE status = 'succeeded'), count(DISTINCT asset) FILTER (WHERE status = 'succeeded'),
		count(*) FILTER (WHERE status <> 'succeeded') FROM `+pgx.Identifier{schema, "flowstone_materializations"}.Sanitize()+` WHERE run_id = $1`,
		runID).Scan(&ok, &distinct, &other); err != nil {
		t.Fatal(err)
	}
	if ok != assets || distinct != assets {
		t.Fatalf("materializations: %d succeeded for %d assets; want one success for each of %d", ok, distinct, assets)
	}
	t.Logf("%d attempts failed and were retried", other)
}

// unfinishedJobs lists the River jobs of a run that did not complete, with
// their state, attempt and errors.
func unfinishedJobs(t *testing.T, ctx context.Context, url, schema, runID string) string {
	t.Helper()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err.Error()
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT kind, args->>'asset', state, attempt, attempted_by, errors::text FROM `+
		pgx.Identifier{schema, "river_job"}.Sanitize()+` WHERE args->>'run' = $1 AND state <> 'completed' ORDER BY id`, runID)
	if err != nil {
		return err.Error()
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var kind, asset, state string
		var attempt int
		var by []string
		var errs *string
		if err := rows.Scan(&kind, &asset, &state, &attempt, &by, &errs); err != nil {
			return err.Error()
		}
		e := ""
		if errs != nil {
			e = *errs
		}
		out = append(out, fmt.Sprintf("%s %s %s attempt %d by %v errors %s", kind, asset, state, attempt, by, e))
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, "; ")
}
