package runtime

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone/internal/testdb"
	"github.com/flowstone-go/flowstone/strategy"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// recorded is what one engine's providers recorded.
type recorded struct {
	spans  *tracetest.SpanRecorder
	reader *sdkmetric.ManualReader
}

func withTelemetry(cfg Config) (Config, recorded) {
	r := recorded{spans: tracetest.NewSpanRecorder(), reader: sdkmetric.NewManualReader()}
	cfg.TracerProvider = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(r.spans))
	cfg.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(r.reader))
	return cfg, r
}

// waitSpan waits for the ended span called name.
func (r recorded) waitSpan(t *testing.T, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for _, s := range r.spans.Ended() {
			if s.Name() == name {
				return s
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no span %s among %v", name, spanNames(r.spans.Ended()))
	return nil
}

func spanNames(spans []sdktrace.ReadOnlySpan) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name())
	}
	return out
}

func attrOf(kvs []attribute.KeyValue, key attribute.Key) string {
	for _, kv := range kvs {
		if kv.Key == key {
			return kv.Value.Emit()
		}
	}
	return ""
}

// metrics collects r's metrics by name.
func (r recorded) metrics(t *testing.T) map[string]metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]metricdata.Metrics{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			out[m.Name] = m
		}
	}
	return out
}

// sumBy adds a counter's points by the value of key.
func sumBy(m metricdata.Metrics, key attribute.Key) map[string]int64 {
	out := map[string]int64{}
	if s, ok := m.Data.(metricdata.Sum[int64]); ok {
		for _, p := range s.DataPoints {
			v, _ := p.Attributes.Value(key)
			out[v.Emit()] += p.Value
		}
	}
	return out
}

func histogramCount(m metricdata.Metrics) uint64 {
	var n uint64
	if h, ok := m.Data.(metricdata.Histogram[float64]); ok {
		for _, p := range h.DataPoints {
			n += p.Count
		}
	}
	return n
}

func TestTelemetryOfARun(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		var tries atomic.Int64
		flaky := def("flaky", func(ctx context.Context, in *Inputs) (any, error) {
			if tries.Add(1) < 2 {
				return nil, errors.New("transient")
			}
			return 1, nil
		})
		flaky.Retries = 1
		p := scatterPipeline("tel", scatterCase{n: 3, opts: strategy.Scatter{Batch: 2},
			item: func(ctx context.Context, c customer) (profile, error) { return profile{ID: c.ID}, nil }})
		p = NewPipeline(PipelineDef{Name: "tel", Assets: append(defsOf(p), flaky)})
		cfg, rec := withTelemetry(db.config(t))
		e := openEngine(t, cfg, Bind(p, nil))
		run, err := e.Materialize(ctx, p, Request{})
		if err != nil {
			t.Fatal(err)
		}
		if res := waitRun(t, e, run.ID); res.Status != RunSucceeded {
			t.Fatalf("run %s", res.Status)
		}

		runSpan := rec.waitSpan(t, "flowstone.run tel")
		root := rec.waitSpan(t, "flowstone.materialize tel")
		traceID := root.SpanContext().TraceID()
		if runSpan.SpanContext().TraceID() != traceID || attrOf(runSpan.Attributes(), attrStatus) != "succeeded" {
			t.Errorf("run span in trace %s with status %q, want the run's trace and succeeded", runSpan.SpanContext().TraceID(), attrOf(runSpan.Attributes(), attrStatus))
		}
		var attempts []sdktrace.ReadOnlySpan
		for _, s := range rec.spans.Ended() {
			if attrOf(s.Attributes(), attrAttempt) != "" {
				attempts = append(attempts, s)
			}
		}
		// customers, profiles (and its continuation), report, audit, flaky twice.
		if len(attempts) < 6 {
			t.Fatalf("attempt spans %v", spanNames(attempts))
		}
		statuses := map[string]int{}
		for _, s := range attempts {
			if s.SpanContext().TraceID() != traceID || s.Parent().SpanID() != root.SpanContext().SpanID() {
				t.Errorf("attempt %s is not a child of the run's span", s.Name())
			}
			if attrOf(s.Attributes(), attrRun) != run.ID || attrOf(s.Attributes(), attrPipeline) != "tel" {
				t.Errorf("attempt %s attributes %v", s.Name(), s.Attributes())
			}
			if attrOf(s.Attributes(), attrAsset) == "flaky" {
				statuses[attrOf(s.Attributes(), attrAttempt)+" "+attrOf(s.Attributes(), attrStatus)]++
			}
		}
		if statuses["1 failed"] != 1 || statuses["2 succeeded"] != 1 {
			t.Errorf("flaky's attempts %v, want 1 failed then 2 succeeded", statuses)
		}
		river := 0
		for _, s := range rec.spans.Ended() {
			if len(s.Name()) > 11 && s.Name()[:11] == "river.work/" {
				river++
			}
		}
		if river == 0 {
			t.Errorf("no River spans among %v", spanNames(rec.spans.Ended()))
		}

		ms := rec.metrics(t)
		byStatus := sumBy(ms["flowstone.materializations"], attrStatus)
		if byStatus["failed"] != 1 || byStatus["succeeded"] < 4 || byStatus["waiting"] == 0 {
			t.Errorf("materializations by status %v", byStatus)
		}
		if n := histogramCount(ms["flowstone.attempt.duration"]); n < 6 {
			t.Errorf("attempt durations recorded %d", n)
		}
		if n := histogramCount(ms["flowstone.queue.lag"]); n < 6 {
			t.Errorf("queue lags recorded %d", n)
		}
		if items := sumBy(ms["flowstone.scatter.items"], attrStatus); items["succeeded"] != 3 {
			t.Errorf("scatter items %v, want 3 succeeded", items)
		}
		g, ok := ms["flowstone.runs.in_flight"].Data.(metricdata.Gauge[int64])
		if !ok || len(g.DataPoints) != 1 || g.DataPoints[0].Value != 0 {
			t.Errorf("runs in flight %+v, want 0 once the run is done", ms["flowstone.runs.in_flight"].Data)
		}
		if _, ok := ms["river.work_count"]; !ok {
			t.Errorf("no River metrics among %d", len(ms))
		}
	})
}

func defsOf(p *Pipeline) []AssetDef {
	var out []AssetDef
	for _, a := range p.Assets() {
		out = append(out, *a)
	}
	return out
}

// Two engines on one database stand for two processes: one enqueues, the
// other works. The run is one trace across both.
func TestOneTracePerRunAcrossProcesses(t *testing.T) {
	t.Parallel()
	pg, ok := testdb.Postgres(t)
	if !ok {
		t.Skip("needs PostgreSQL")
	}
	ctx := context.Background()
	url, schema := pg.New(t)
	p := NewPipeline(PipelineDef{Name: "twoproc", Assets: []AssetDef{
		def("a", func(ctx context.Context, in *Inputs) (any, error) { return 1, nil }),
		def("b", func(ctx context.Context, in *Inputs) (any, error) { return 2, nil }, on("a")),
	}})
	enqCfg, enq := withTelemetry(Config{Database: url, Schema: schema, NoWorkers: true})
	workCfg, work := withTelemetry(Config{Database: url, Schema: schema})
	enqueuer := openEngine(t, enqCfg, Bind(p, nil))
	worker := openEngine(t, workCfg, Bind(p, nil))
	var ids []string
	for range 2 {
		run, err := enqueuer.Materialize(ctx, p, Request{Force: true})
		if err != nil {
			t.Fatal(err)
		}
		if res := waitRun(t, worker, run.ID); res.Status != RunSucceeded {
			t.Fatalf("run %s", res.Status)
		}
		ids = append(ids, run.ID)
	}
	// Each run: a span per attempt and the run's, once it is over.
	var runSpans []sdktrace.ReadOnlySpan
	for deadline := time.Now().Add(30 * time.Second); len(runSpans) < 6 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		runSpans = runSpans[:0]
		for _, s := range work.spans.Ended() {
			if attrOf(s.Attributes(), attrRun) != "" {
				runSpans = append(runSpans, s)
			}
		}
	}
	traces := map[string]trace.TraceID{}
	for _, s := range enq.spans.Ended() {
		if s.Name() == "flowstone.materialize twoproc" {
			traces[attrOf(s.Attributes(), attrRun)] = s.SpanContext().TraceID()
		}
	}
	if len(traces) != 2 || traces[ids[0]] == traces[ids[1]] {
		t.Fatalf("the enqueuer traced runs %v, want one trace each", traces)
	}
	for _, s := range runSpans {
		run := attrOf(s.Attributes(), attrRun)
		if s.SpanContext().TraceID() != traces[run] {
			t.Errorf("the worker's span %s of run %s is in trace %s, not the run's %s", s.Name(), run, s.SpanContext().TraceID(), traces[run])
		}
	}
	if len(runSpans) != 6 {
		t.Errorf("the worker recorded %d spans of the runs, want 6: %v", len(runSpans), spanNames(work.spans.Ended()))
	}
}
