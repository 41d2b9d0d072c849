package runtime

import (
	"context"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkLargeConfigBackfill: a backfill of 20 daily partitions of a
// five-asset pipeline, two of whose assets take a config of 900 KB (just
// under the default limit), one partition at a time, on SQLite. It reports
// the bytes allocated and the peak heap per backfill: every job used to
// read and decode the whole config; now only the assets that take it do,
// once per process and run.
func BenchmarkLargeConfigBackfill(b *testing.B) {
	const days = 20
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	b.ReportAllocs()
	var peak atomic.Uint64
	stop := make(chan struct{})
	go func() {
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
		}
	}()
	defer close(stop)
	config := bigSettings{Currency: "EUR", Blob: strings.Repeat("x", 900<<10)}
	for b.Loop() {
		p := wideConfigPipeline()
		e, err := openBenchEngine(ctx, benchConfig(benchDatabases(b)[0].fresh(b), benchProfile{}), p)
		if err != nil {
			b.Fatal(err)
		}
		id, err := e.Backfill(ctx, p, BackfillRequest{From: "2024-01-01", To: "2024-01-20", MaxConcurrent: 1, Config: config})
		if err != nil {
			b.Fatal(err)
		}
		for {
			st, err := e.BackfillStatus(ctx, id)
			if err != nil {
				b.Fatal(err)
			}
			if st.Status != "running" {
				if st.Status != "succeeded" || st.Succeeded != days {
					b.Fatalf("backfill %s: %d of %d succeeded", st.Status, st.Succeeded, st.Total)
				}
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		b.ReportMetric(float64(e.configs.decodes.Load()), "decodes")
		_ = e.Close(ctx)
	}
	b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MB")
}
