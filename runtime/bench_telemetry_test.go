package runtime

import (
	"context"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// BenchmarkTelemetry materializes the wide pipeline (benchWide leaves and
// a fan-in) with telemetry off, and on with the SDK's in-memory exporter
// and a manual metric reader, in the same run: the ratio is what tracing
// and metrics cost per materialization.
func BenchmarkTelemetry(b *testing.B) {
	for _, db := range benchDatabases(b) {
		b.Run(db.name, func(b *testing.B) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
			defer cancel()
			var off, on time.Duration
			iters := 0
			for b.Loop() {
				iters++
				o, err := flowstoneWide(ctx, benchConfig(db.fresh(b), benchProfile{}), DepOrder)
				if err != nil {
					b.Fatal(err)
				}
				off += o.elapsed
				cfg := benchConfig(db.fresh(b), benchProfile{})
				spans := tracetest.NewInMemoryExporter()
				tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(spans))
				cfg.TracerProvider = tp
				cfg.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
				w, err := flowstoneWide(ctx, cfg, DepOrder)
				if err != nil {
					b.Fatal(err)
				}
				on += w.elapsed
				_ = tp.ForceFlush(ctx) // Shutdown would empty the exporter
				if n := len(spans.GetSpans()); n < benchWide {
					b.Fatalf("%d spans for %d assets", n, benchWide+1)
				}
				_ = tp.Shutdown(ctx)
			}
			n := float64(iters)
			offRate, onRate := (benchWide+1)*n/off.Seconds(), (benchWide+1)*n/on.Seconds()
			b.ReportMetric(offRate, "mat/s_off")
			b.ReportMetric(onRate, "mat/s_on")
			b.ReportMetric(onRate/offRate, "ratio_on_vs_off")
		})
	}
}
