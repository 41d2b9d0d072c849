package runtime

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// planSizes are the asset counts BenchmarkPlanWide plans: memory should grow
// linearly between them.
var planSizes = []int{1000, 10000}

const planNEnv = "FLOWSTONE_BENCH_PLAN_N" // the leaves of TestBenchRSSHelper's "plan" mode

// planWide opens an engine that works no jobs on a fresh database and
// returns how long Materialize takes to plan and enqueue a forced run of a
// wide pipeline of n leaves and a fan-in (validation, the run's rows, its
// edges, and n River jobs), on the clock and in this process's CPU time
// (which a loaded machine inflates less: the engine is otherwise idle).
func planWide(ctx context.Context, cfg Config, n int) (wall, cpu time.Duration, err error) {
	p := benchWidePipeline(n, DepOrder)
	cfg.NoWorkers = true
	e, err := openBenchEngine(ctx, cfg, p)
	if err != nil {
		return 0, 0, err
	}
	defer e.Close(context.WithoutCancel(ctx))
	cpu0, start := cpuTime(), time.Now()
	if _, err := e.Materialize(ctx, p, Request{Force: true}); err != nil {
		return 0, 0, err
	}
	return time.Since(start), cpuTime() - cpu0, nil
}

// cpuTime is the CPU time (user and system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkPlanWide measures planning and enqueueing a run of n+1 assets
// (n independent leaves and a fan-in) with no workers, so nothing runs:
// Materialize's time, and the peak RSS of a process that does only that.
func BenchmarkPlanWide(b *testing.B) {
	for _, db := range benchDatabases(b) {
		for _, n := range planSizes {
			b.Run(fmt.Sprintf("%s/assets_%d", db.name, n+1), func(b *testing.B) {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
				defer cancel()
				var total, cpu time.Duration
				iters := 0
				for b.Loop() {
					iters++
					d, c, err := planWide(ctx, benchConfig(db.fresh(b), benchProfiles()[0]), n)
					if err != nil {
						b.Fatal(err)
					}
					total, cpu = total+d, cpu+c
				}
				b.ReportMetric(ms(total)/float64(iters), "plan_ms")
				b.ReportMetric(ms(cpu)/float64(iters), "plan_cpu_ms")
				b.ReportMetric(float64(n+1)*float64(iters)/total.Seconds(), "assets/s")
				b.ReportMetric(rssOf(b, "plan", db.name, planNEnv+"="+strconv.Itoa(n))/1024, "peak_rss_MB")
			})
		}
	}
}

// planRSS is TestBenchRSSHelper's "plan" mode.
func planRSS(ctx context.Context, t *testing.T, cfg Config) {
	n, err := strconv.Atoi(os.Getenv(planNEnv))
	if err != nil {
		t.Fatalf("%s: %v", planNEnv, err)
	}
	if _, _, err := planWide(ctx, cfg, n); err != nil {
		t.Fatal(err)
	}
}
