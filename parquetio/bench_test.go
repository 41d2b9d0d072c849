package parquetio_test

import (
	"context"
	"fmt"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone/blobio"
	"github.com/flowstone-go/flowstone/parquetio"
	"github.com/flowstone-go/flowstone/runtime"
)

// benchRow is a typical fact table row: ten fields of the common types.
type benchRow struct {
	ID       int64
	Customer string
	Country  string
	SKU      string
	Quantity int32
	Price    float64
	Discount float64
	Paid     bool
	At       time.Time
	Note     string
}

func benchRows(n int) []benchRow {
	rows := make([]benchRow, n)
	t0 := time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC)
	countries := []string{"DE", "FR", "US", "JP", "BR"}
	for i := range rows {
		rows[i] = benchRow{
			ID: int64(i), Customer: fmt.Sprintf("cust-%06d", i%50_000), Country: countries[i%len(countries)],
			SKU: fmt.Sprintf("sku-%04d", i%2_000), Quantity: int32(1 + i%7), Price: float64(i%10_000) / 100,
			Discount: float64(i%5) * 0.05, Paid: i%3 != 0, At: t0.Add(time.Duration(i) * time.Second), Note: "",
		}
	}
	return rows
}

// peakHeap samples the live heap while it runs and returns the largest
// value seen above the level when it started.
func peakHeap() (stop func() float64) {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() uint64 { metrics.Read(sample); return sample[0].Value.Uint64() }
	base, peak := read(), uint64(0)
	done, wg := make(chan struct{}), sync.WaitGroup{}
	wg.Go(func() {
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			if v := read(); v > peak {
				peak = v
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	})
	return func() float64 {
		close(done)
		wg.Wait()
		if peak < base {
			return 0
		}
		return float64(peak-base) / (1 << 20)
	}
}

// BenchmarkTable writes a 1,000,000-row slice of a 10-field struct and
// reads it back, as Parquet (parquetio) and as JSON (blobio), both into an
// in-memory bucket so the figures are the encodings' own. It reports the
// stored size and the peak live heap above the input slice.
func BenchmarkTable(b *testing.B) {
	const n = 1_000_000
	rows := benchRows(n)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		io   func(*blobio.IO) runtime.IOManager
		ext  string
	}{
		{"parquet", func(b *blobio.IO) runtime.IOManager { return parquetio.New(b) }, ".parquet"},
		{"json", func(b *blobio.IO) runtime.IOManager { return b }, ".json"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			bucket, err := blobio.Open(ctx, "mem://")
			if err != nil {
				b.Fatal(err)
			}
			defer bucket.Close()
			m := tc.io(bucket)
			ref := runtime.ValueRef{Pipeline: "bench", Asset: "rows", Materialization: "m"}
			var write, read time.Duration
			var wPeak, rPeak float64
			b.ReportAllocs()
			for b.Loop() {
				stop := peakHeap()
				start := time.Now()
				if err := m.Store(ctx, ref, rows); err != nil {
					b.Fatal(err)
				}
				write += time.Since(start)
				wPeak = max(wPeak, stop())
				stop = peakHeap()
				start = time.Now()
				var back []benchRow
				if err := m.Load(ctx, ref, &back); err != nil {
					b.Fatal(err)
				}
				read += time.Since(start)
				rPeak = max(rPeak, stop())
				if len(back) != n || back[n-1].ID != n-1 {
					b.Fatalf("read back %d rows", len(back))
				}
			}
			keys, _ := bucket.List(ctx, "bench/")
			data, _ := bucket.ReadFile(ctx, keys[0])
			b.ReportMetric(float64(len(data))/(1<<20), "MB-stored")
			b.ReportMetric(write.Seconds()/float64(b.N), "write-s")
			b.ReportMetric(read.Seconds()/float64(b.N), "read-s")
			b.ReportMetric(wPeak, "write-peak-MB")
			b.ReportMetric(rPeak, "read-peak-MB")
		})
	}
}
