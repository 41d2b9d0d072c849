package runtime

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// benchBackfillDays is how many daily partitions BenchmarkBackfill runs.
const benchBackfillDays = 1000

// BenchmarkBackfill: a backfill of 1,000 daily partitions of a three-asset
// pipeline (raw -> clean -> total), 16 partitions at a time; partitions per
// second and materializations per second, to read next to BenchmarkWide and
// BenchmarkChain of the same run.
func BenchmarkBackfill(b *testing.B) {
	for _, db := range benchDatabases(b) {
		for _, prof := range benchProfiles() {
			b.Run(db.name+"/"+prof.name, func(b *testing.B) {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
				defer cancel()
				var total time.Duration
				iters := 0
				for b.Loop() {
					iters++
					var calls atomic.Int64
					p := backfillPipeline(0, &calls)
					e, err := openBenchEngine(ctx, benchConfig(db.fresh(b), prof), p)
					if err != nil {
						b.Fatal(err)
					}
					start := time.Now()
					id, err := e.Backfill(ctx, p, BackfillRequest{Targets: []string{"total"}, From: "2024-01-01",
						To: "2026-09-26", MaxConcurrent: 16})
					if err != nil {
						b.Fatal(err)
					}
					for {
						st, err := e.BackfillStatus(ctx, id)
						if err != nil {
							b.Fatal(err)
						}
						if st.Status != "running" {
							if st.Status != "succeeded" || st.Succeeded != benchBackfillDays {
								b.Fatalf("backfill %s: %d of %d succeeded", st.Status, st.Succeeded, st.Total)
							}
							break
						}
						time.Sleep(20 * time.Millisecond)
					}
					total += time.Since(start)
					_ = e.Close(ctx)
				}
				n := float64(iters)
				b.ReportMetric(benchBackfillDays*n/total.Seconds(), "partitions/s")
				b.ReportMetric(3*benchBackfillDays*n/total.Seconds(), "mat/s")
			})
		}
	}
}
