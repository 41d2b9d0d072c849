package scatter

import (
	"context"
	"testing"
)

// BenchmarkGather gathers a completed scatter of 100,000 items in batches
// of 100 from SQLite: the read and decode of its stored results, and the
// two arrays built from them.
func BenchmarkGather(b *testing.B) {
	ctx := context.Background()
	db := migrated(b)
	o := Orchestrator{Plan: Plan{Batch: 100}}
	ref := Ref{Run: "r", Asset: "a"}
	const n = 100_000
	startScatter(b, db, o, ref, n)
	for batch := range n / 100 {
		if _, _, err := o.Store.RecordBatch(ctx, db, ref, Batch{N: batch, From: batch * 100, Size: 100, Layout: BatchRows},
			results(batch*100, batch*100+100)); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		values, outcomes, err := o.Store.Gather(ctx, db, ref, BatchRows, n)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(len(values)+len(outcomes)), "bytes")
	}
}
