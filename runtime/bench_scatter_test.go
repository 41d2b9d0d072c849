package runtime

// Scatter against raw River on the same database, in the same run (see
// docs/benchmarks.md, "Scatter"). FlowStone runs a scatter of n small items
// with batch=100 between a source and a gather; raw River inserts with
// InsertManyFast and works the same n items as n no-op jobs, and as n/100
// jobs of 100 items each (the batch equivalent). Each is on a fresh
// database opened as bench_test.go opens them, with the same River
// settings.

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone/scatter"
	"github.com/flowstone-go/flowstone/strategy"
	"github.com/riverqueue/river"
)

const (
	scatterItems = 100_000 // items of the full-size run
	scatterBatch = 100
	// scatterSmall is the smaller item count the RSS benchmark compares the
	// full size with: memory should follow the batch, not the item count.
	scatterSmall = 20_000
)

// scatterNEnv overrides the item count on both databases, for a quicker
// run; the default is the full scatterItems, which takes under two minutes
// per benchmark on SQLite (most of it raw River's 100,000 jobs).
const scatterNEnv = "FLOWSTONE_BENCH_SCATTER_N"

// scatterProfiles are the throughput profiles: with the engine defaults
// River's fetch loop caps raw River at Concurrency/FetchCooldown jobs per
// second, which would measure only that cap. c100 is the issue's
// "Concurrency 100" profile.
var scatterProfiles = []benchProfile{
	{name: "c16_poll10ms", concurrency: 16, poll: 10 * time.Millisecond},
	{name: "c100_poll10ms", concurrency: 100, poll: 10 * time.Millisecond},
}

// scatterProfile is the profile of the RSS benchmark.
var scatterProfile = scatterProfiles[0]

// scatterRiverJobsEnv, set to 1, adds raw River working the n items as n
// no-op jobs (80 s of a shared machine at 100,000 on SQLite); the floor
// compared with is its batch equivalent, n/100 jobs of 100 items.
const scatterRiverJobsEnv = "FLOWSTONE_BENCH_SCATTER_RIVER_JOBS"

func scatterN(tb testing.TB) int {
	v := os.Getenv(scatterNEnv)
	if v == "" {
		return scatterItems
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < scatterBatch {
		tb.Fatalf("%s=%q: want an item count of at least %d", scatterNEnv, v, scatterBatch)
	}
	return n
}

// ---- FlowStone ----

// benchScatterPipeline: items (n small ints) -> work (scatter, one no-op
// call per item, batch items per job) -> gather ([]int of every result).
func benchScatterPipeline(n, batch int) *Pipeline {
	work := def("work", func(ctx context.Context, in *Inputs) (any, error) {
		v, err := Item[int](in)
		return v, err
	}, Dep{Asset: "items", Kind: DepOrder})
	work.Strategy, work.Kind, work.Item = strategy.Scatter{Source: "items", Batch: batch}, "scatter", ItemOf[int]()
	return NewPipeline(PipelineDef{Name: "bench_scatter", Assets: []AssetDef{
		def("items", func(context.Context, *Inputs) (any, error) {
			s := make([]int, n)
			for i := range s {
				s[i] = i % 10 // one byte of JSON each: the source slice stays small
			}
			return s, nil
		}),
		work,
		def("gather", func(ctx context.Context, in *Inputs) (any, error) {
			vs, err := Input[[]int](ctx, in, "work")
			if err == nil && len(vs) != n {
				err = fmt.Errorf("gathered %d values, want %d", len(vs), n)
			}
			return len(vs), err
		}, on("work")),
	}})
}

// scatterResult splits the source's finish to the gather's start, from the
// database's own records.
type scatterResult struct {
	span    time.Duration // source finished -> gather started
	queue   time.Duration // source finished -> scatter job started
	fanOut  time.Duration // scatter job started -> first item started (load source, store items, insert batch jobs, fetch)
	items   time.Duration // first item started -> last item finished
	gather  time.Duration // last item finished -> scatter recorded (gather the values, record the materialization)
	handoff time.Duration // scatter recorded -> gather job started
}

func flowstoneScatter(ctx context.Context, cfg Config, n, batch int) (scatterResult, error) {
	p := benchScatterPipeline(n, batch)
	e, err := openBenchEngine(ctx, cfg, p)
	if err != nil {
		return scatterResult{}, err
	}
	defer e.Close(context.WithoutCancel(ctx))
	run, err := e.Materialize(ctx, p, Request{Force: true})
	if err != nil {
		return scatterResult{}, err
	}
	res, err := e.Wait(ctx, run.ID)
	if err != nil {
		return scatterResult{}, err
	}
	if res.Status != RunSucceeded {
		return scatterResult{}, fmt.Errorf("run %s %s: %+v", run.ID, res.Status, res.Assets)
	}
	q := e.be.pool()
	starts, finishes := map[string]int64{}, map[string]int64{}
	rs, err := q.Query(ctx, `SELECT asset, started_at, finished_at FROM flowstone_run_assets WHERE run_id = ?`, run.ID)
	if err != nil {
		return scatterResult{}, err
	}
	for rs.Next() {
		var a string
		var s, f sql.NullInt64
		if err := rs.Scan(&a, &s, &f); err != nil {
			rs.Close()
			return scatterResult{}, err
		}
		starts[a], finishes[a] = s.Int64, f.Int64
	}
	rs.Close()
	if err := rs.Err(); err != nil {
		return scatterResult{}, err
	}
	var first, last int64
	if err := scatter.Records(ctx, q, run.ID, func(r scatter.ItemRecord) error {
		if s := r.Started.UnixMicro(); first == 0 || s < first {
			first = s
		}
		last = max(last, r.Finished.UnixMicro())
		return nil
	}); err != nil {
		return scatterResult{}, err
	}
	us := func(from, to int64) time.Duration { return time.Duration(to-from) * time.Microsecond }
	return scatterResult{
		span:    us(finishes["items"], starts["gather"]),
		queue:   us(finishes["items"], starts["work"]),
		fanOut:  us(starts["work"], first),
		items:   us(first, last),
		gather:  us(last, finishes["work"]),
		handoff: us(finishes["work"], starts["gather"]),
	}, nil
}

// ---- raw River ----

// benchBatchArgs is a raw River job carrying a batch's items; the no-op
// worker (same kind) works it, so only the items' insert and fetch cost.
type benchBatchArgs struct {
	Items []int `json:"items"`
}

func (benchBatchArgs) Kind() string { return benchNoopArgs{}.Kind() }

// completedEvents subscribes to job-completed events with room for n:
// River drops the events a full subscriber cannot take.
func (b *riverBackend[D, T]) completedEvents(n int) (<-chan *river.Event, func()) {
	return b.client.SubscribeConfig(&river.SubscribeConfig{ChanSize: n, Kinds: []river.EventKind{river.EventKindJobCompleted}})
}

// scatter inserts jobs no-op jobs of per items each with one
// InsertManyFast and returns the time until River has recorded all of them
// completed.
func (r *rawRiver) scatter(ctx context.Context, jobs, per int) (time.Duration, error) {
	sub, ok := r.be.(interface {
		completedEvents(int) (<-chan *river.Event, func())
	})
	if !ok {
		return 0, fmt.Errorf("backend %T cannot subscribe", r.be)
	}
	events, cancel := sub.completedEvents(jobs + 16)
	defer cancel()
	params := make([]river.InsertManyParams, jobs)
	for i := range params {
		if per == 1 {
			params[i] = river.InsertManyParams{Args: benchNoopArgs{}}
			continue
		}
		items := make([]int, per)
		for j := range items {
			items[j] = (i*per + j) % 10
		}
		params[i] = river.InsertManyParams{Args: benchBatchArgs{Items: items}}
	}
	start := time.Now()
	if err := r.be.insertJobs(ctx, params); err != nil {
		return 0, err
	}
	params = nil // as the engine, hold no more than a batch once inserted
	for done := 0; done < jobs; {
		select {
		case ev := <-events:
			if ev.Job != nil && ev.Job.Kind == (benchNoopArgs{}).Kind() {
				done++
			}
		case <-ctx.Done():
			return 0, fmt.Errorf("raw scatter: %d of %d completed: %w", done, jobs, ctx.Err())
		}
	}
	return time.Since(start), nil
}

func rawScatter(ctx context.Context, cfg Config, jobs, per int) (time.Duration, error) {
	r, err := openRawRiver(ctx, cfg)
	if err != nil {
		return 0, err
	}
	defer r.close()
	return r.scatter(ctx, jobs, per)
}

// ---- benchmarks ----

// BenchmarkScatter: FlowStone scatters n items with batch=100, timed from
// the source's recorded finish to the gather's recorded start; raw River
// inserts and works n no-op jobs, and n/100 jobs of 100 items each.
func BenchmarkScatter(b *testing.B) {
	withJobs := os.Getenv(scatterRiverJobsEnv) == "1"
	for _, db := range benchDatabases(b) {
		for _, prof := range scatterProfiles {
			n := scatterN(b)
			b.Run(fmt.Sprintf("%s/%s/n=%d", db.name, prof.name, n), func(b *testing.B) {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
				defer cancel()
				var riverJobs, riverBatches time.Duration
				var fs scatterResult
				iters := 0
				for b.Loop() {
					iters++
					if withJobs {
						d, err := rawScatter(ctx, benchConfig(db.fresh(b), prof), n, 1)
						if err != nil {
							b.Fatal(err)
						}
						riverJobs += d
					}
					d, err := rawScatter(ctx, benchConfig(db.fresh(b), prof), n/scatterBatch, scatterBatch)
					if err != nil {
						b.Fatal(err)
					}
					riverBatches += d
					r, err := flowstoneScatter(ctx, benchConfig(db.fresh(b), prof), n, scatterBatch)
					if err != nil {
						b.Fatal(err)
					}
					fs.span, fs.queue, fs.fanOut = fs.span+r.span, fs.queue+r.queue, fs.fanOut+r.fanOut
					fs.items, fs.gather, fs.handoff = fs.items+r.items, fs.gather+r.gather, fs.handoff+r.handoff
				}
				k := float64(iters)
				items := float64(n) * k
				rate := items / fs.span.Seconds()
				b.ReportMetric(rate, "items/s")
				b.ReportMetric(fs.span.Seconds()/k, "wall_s")
				if withJobs {
					jobsRate := items / riverJobs.Seconds()
					b.ReportMetric(jobsRate, "river_jobs_items/s")
					b.ReportMetric(rate/jobsRate, "ratio_vs_river_jobs")
				}
				batchRate := float64(n/scatterBatch*scatterBatch) * k / riverBatches.Seconds()
				b.ReportMetric(batchRate, "river_batch_items/s")
				b.ReportMetric(rate/batchRate, "ratio_vs_river_batch")
				b.ReportMetric(ms(fs.queue)/k, "queue_ms")
				b.ReportMetric(ms(fs.fanOut)/k, "fanout_ms")
				b.ReportMetric(fs.items.Seconds()/k, "items_s")
				b.ReportMetric(ms(fs.gather)/k, "gather_ms")
				b.ReportMetric(ms(fs.handoff)/k, "handoff_ms")
			})
		}
	}
}

// ---- peak RSS ----

// scatterRSSEnv selects the helper's case: "flowstone/N/BATCH" or
// "river/N" (N no-op jobs), on the database named by rssDBEnv.
const scatterRSSEnv = "FLOWSTONE_BENCH_SCATTER_RSS"

// TestBenchScatterRSSHelper is not a test: BenchmarkScatterRSS re-executes
// the test binary to run only this, so the process's peak RSS is one
// case's alone. It prints the peak as "maxrss_kb=N".
func TestBenchScatterRSSHelper(t *testing.T) {
	mode := os.Getenv(scatterRSSEnv)
	if mode == "" {
		t.Skip("helper process for BenchmarkScatterRSS")
	}
	var db *benchDB
	for _, d := range benchDatabases(t) {
		if d.name == os.Getenv(rssDBEnv) {
			db = &d
		}
	}
	if db == nil {
		t.Fatalf("%s=%q: no such database", rssDBEnv, os.Getenv(rssDBEnv))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	cfg := benchConfig(db.fresh(t), scatterProfile)
	parts := strings.Split(mode, "/")
	num := func(i int) int {
		if i >= len(parts) {
			t.Fatalf("%s=%q: want flowstone/N/BATCH or river/N", scatterRSSEnv, mode)
		}
		v, err := strconv.Atoi(parts[i])
		if err != nil {
			t.Fatalf("%s=%q: %v", scatterRSSEnv, mode, err)
		}
		return v
	}
	switch parts[0] {
	case "river":
		if _, err := rawScatter(ctx, cfg, num(1), 1); err != nil {
			t.Fatal(err)
		}
	case "flowstone":
		if _, err := flowstoneScatter(ctx, cfg, num(1), num(2)); err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatalf("%s=%q: want flowstone/N/BATCH or river/N", scatterRSSEnv, mode)
	}
	fmt.Printf("maxrss_kb=%d\n", peakRSSKB(t))
}

// BenchmarkScatterRSS reports the peak RSS of processes that each run one
// case: raw River with n no-op jobs, FlowStone scattering n items and
// scatterSmall items with batch=100, and n items with batch=1000. Memory
// that followed the item count would differ between n and scatterSmall.
func BenchmarkScatterRSS(b *testing.B) {
	for _, db := range benchDatabases(b) {
		n := scatterN(b)
		b.Run(fmt.Sprintf("%s/n=%d", db.name, n), func(b *testing.B) {
			var raw, full, small, big float64
			iters := 0
			for b.Loop() {
				iters++
				raw += scatterRSSOf(b, fmt.Sprintf("river/%d", n), db.name)
				full += scatterRSSOf(b, fmt.Sprintf("flowstone/%d/%d", n, scatterBatch), db.name)
				small += scatterRSSOf(b, fmt.Sprintf("flowstone/%d/%d", min(scatterSmall, n), scatterBatch), db.name)
				big += scatterRSSOf(b, fmt.Sprintf("flowstone/%d/%d", n, 10*scatterBatch), db.name)
			}
			mb := func(kb float64) float64 { return kb / 1024 / float64(iters) }
			b.ReportMetric(mb(raw), "river_peak_rss_MB")
			b.ReportMetric(mb(full), "peak_rss_MB")
			b.ReportMetric(mb(small), "small_n_peak_rss_MB")
			b.ReportMetric(mb(big), "batch1000_peak_rss_MB")
		})
	}
}

func scatterRSSOf(b *testing.B, mode, db string) float64 {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestBenchScatterRSSHelper$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), scatterRSSEnv+"="+mode, rssDBEnv+"="+db)
	out, err := cmd.CombinedOutput()
	if err != nil {
		b.Fatalf("RSS helper (%s on %s): %v\n%s", mode, db, err, out)
	}
	for line := range strings.Lines(string(out)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "maxrss_kb="); ok {
			kb, err := strconv.ParseFloat(v, 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb
		}
	}
	b.Fatalf("RSS helper (%s on %s) printed no maxrss_kb:\n%s", mode, db, out)
	return 0
}
