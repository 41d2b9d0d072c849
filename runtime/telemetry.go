package runtime

import (
	"context"
	"errors"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/strategy"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/riverqueue/rivercontrib/otelriver"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// instrumentation names FlowStone's tracer and meter.
const instrumentation = "github.com/flowstone-go/flowstone/runtime"

// Attribute keys of FlowStone's spans and metrics.
const (
	attrPipeline  = attribute.Key("flowstone.pipeline")
	attrAsset     = attribute.Key("flowstone.asset")
	attrPartition = attribute.Key("flowstone.partition")
	attrRun       = attribute.Key("flowstone.run")
	attrAttempt   = attribute.Key("flowstone.attempt")
	attrKind      = attribute.Key("flowstone.kind")
	attrStatus    = attribute.Key("flowstone.status")
)

// telemetry is the engine's tracer and instruments; the engine holds nil
// when Config sets neither provider, and every hook checks that first, so
// telemetry that is off costs a nil check.
type telemetry struct {
	e      *Engine
	tracer trace.Tracer // nil when not tracing
	meter  metric.Meter

	materializations metric.Int64Counter
	attemptDuration  metric.Float64Histogram
	queueLag         metric.Float64Histogram
	scatterItems     metric.Int64Counter
	inFlight         metric.Registration
}

// newTelemetry returns nil when cfg asks for no telemetry.
func newTelemetry(e *Engine) (*telemetry, error) {
	cfg := e.cfg
	if cfg.TracerProvider == nil && cfg.MeterProvider == nil {
		return nil, nil
	}
	t := &telemetry{e: e}
	if cfg.TracerProvider != nil {
		t.tracer = cfg.TracerProvider.Tracer(instrumentation)
	}
	mp := cfg.MeterProvider
	if mp == nil {
		mp = metricnoop.NewMeterProvider()
	}
	m := mp.Meter(instrumentation)
	var errs [4]error
	t.materializations, errs[0] = m.Int64Counter("flowstone.materializations",
		metric.WithDescription("Attempts at materializing an asset, by outcome"), metric.WithUnit("{attempt}"))
	t.attemptDuration, errs[1] = m.Float64Histogram("flowstone.attempt.duration",
		metric.WithDescription("Duration of an asset attempt, from its start to its recorded outcome"), metric.WithUnit("s"))
	t.queueLag, errs[2] = m.Float64Histogram("flowstone.queue.lag",
		metric.WithDescription("Time an asset's job waited between becoming available and starting"), metric.WithUnit("s"))
	t.scatterItems, errs[3] = m.Int64Counter("flowstone.scatter.items",
		metric.WithDescription("Scatter items computed, by outcome"), metric.WithUnit("{item}"))
	t.meter = m
	return t, errors.Join(errs[:]...)
}

// observeRuns reports the runs in flight and the overdue assets of the
// bound pipelines, counted in the database when metrics are collected; the
// engine's database is open.
func (t *telemetry) observeRuns() error {
	runs, err := t.meter.Int64ObservableGauge("flowstone.runs.in_flight",
		metric.WithDescription("Runs not yet finished in the database, of every pipeline"), metric.WithUnit("{run}"))
	if err != nil {
		return err
	}
	overdue, err := t.meter.Int64ObservableGauge("flowstone.assets.overdue",
		metric.WithDescription("Assets past their freshness bound (fresh=) at the newest automation evaluation, per pipeline"),
		metric.WithUnit("{asset}"))
	if err != nil {
		return err
	}
	e := t.e
	t.inFlight, err = t.meter.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		n, err := e.st.RunsRunning(ctx, e.be.pool())
		if err != nil {
			return err
		}
		o.ObserveInt64(runs, n)
		counts, err := e.st.OverdueCounts(ctx, e.be.pool())
		if err != nil {
			return err
		}
		for _, p := range e.Pipelines() {
			if automated(p) {
				o.ObserveInt64(overdue, counts[p.name], metric.WithAttributes(attrPipeline.String(p.name)))
			}
		}
		return nil
	}, runs, overdue)
	return err
}

// riverMiddleware is River's own instrumentation (otelriver) on the same
// providers: its spans link to the span that enqueued each job.
func (t *telemetry) riverMiddleware() rivertype.Middleware {
	cfg := t.e.cfg
	tp, mp := cfg.TracerProvider, cfg.MeterProvider
	if tp == nil {
		tp = tracenoop.NewTracerProvider()
	}
	if mp == nil {
		mp = metricnoop.NewMeterProvider()
	}
	return otelriver.NewMiddleware(&otelriver.MiddlewareConfig{TracerProvider: tp, MeterProvider: mp,
		EnableTracePropagation: true, EnableWorkSpanJobKindSuffix: true})
}

// close stops observing the database.
func (t *telemetry) close() {
	if t.inFlight != nil {
		_ = t.inFlight.Unregister()
	}
}

// startRun starts the span of a run's creation, whose context the run
// keeps (traceparent) so that every attempt, in any process, joins its
// trace. traceparent is "" when not tracing.
func (t *telemetry) startRun(ctx context.Context, p *Pipeline, run string, part flowstone.Partition) (context.Context, trace.Span, string) {
	if t.tracer == nil {
		return ctx, nil, ""
	}
	ctx, span := t.tracer.Start(ctx, "flowstone.materialize "+p.name, trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(attrPipeline.String(p.name), attrRun.String(run), attrPartition.String(string(part))))
	c := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, c)
	return ctx, span, c["traceparent"]
}

// runContext returns ctx with the run's span as its remote parent, and a
// link to the span ctx had (River's work span); ctx unchanged when the run
// was not traced.
func (t *telemetry) runContext(ctx context.Context, run string) (context.Context, trace.Link, time.Time) {
	link := trace.LinkFromContext(ctx)
	tp, created, err := t.e.st.RunTrace(ctx, t.e.be.pool(), run)
	if err != nil || tp == "" {
		return ctx, link, micros(created)
	}
	parent := propagation.TraceContext{}.Extract(context.Background(), propagation.MapCarrier{"traceparent": tp})
	return trace.ContextWithRemoteSpanContext(ctx, trace.SpanContextFromContext(parent)), link, micros(created)
}

// attemptObs follows one attempt: its span and its start.
type attemptObs struct {
	t     *telemetry
	span  trace.Span // nil when not tracing
	start time.Time
	attrs []attribute.KeyValue
}

// startAttempt records the queue lag of job and starts task's span, a
// child of its run's; asset code gets the returned context.
func (t *telemetry) startAttempt(ctx context.Context, task *task, job *rivertype.JobRow) (context.Context, *attemptObs) {
	o := &attemptObs{t: t, start: time.Now(), attrs: []attribute.KeyValue{
		attrPipeline.String(task.run.p.name), attrAsset.String(task.asset.Key), attrKind.String(task.asset.Kind)}}
	if job != nil && !job.ScheduledAt.IsZero() {
		t.queueLag.Record(ctx, max(0, o.start.Sub(job.ScheduledAt).Seconds()), metric.WithAttributes(o.attrs...))
	}
	if t.tracer == nil {
		return ctx, o
	}
	ctx, link, _ := t.runContext(ctx, task.run.id)
	ctx, o.span = t.tracer.Start(ctx, "flowstone.attempt "+task.asset.Key, trace.WithLinks(link),
		trace.WithAttributes(append(o.attrs, attrRun.String(task.run.id), attrPartition.String(string(task.part)),
			attrAttempt.Int(task.attempts))...))
	return ctx, o
}

// end records the attempt's outcome: the error its strategy returned, or
// its result, and the error recording it returned.
func (o *attemptObs) end(ctx context.Context, runErr error, res strategy.Result, recordErr error) {
	status := "failed"
	if runErr == nil {
		switch res.Status {
		case strategy.Succeeded:
			status = "succeeded"
		case strategy.Skipped:
			status = "skipped"
		case strategy.Pending:
			status = "waiting"
		}
	}
	var cancel *river.JobCancelError
	if recordErr != nil && runErr == nil && !errors.As(recordErr, &cancel) {
		status = "failed" // the value did not store or encode
	}
	attrs := metric.WithAttributes(append(o.attrs, attrStatus.String(status))...)
	o.t.materializations.Add(ctx, 1, attrs)
	o.t.attemptDuration.Record(ctx, time.Since(o.start).Seconds(), attrs)
	if o.span == nil {
		return
	}
	o.span.SetAttributes(attrStatus.String(status))
	if err := errors.Join(runErr, recordErr); status == "failed" && err != nil {
		o.span.RecordError(err)
		o.span.SetStatus(codes.Error, firstLine(err.Error()))
	}
	o.span.End()
}

// scatterItem counts one scatter item of task.
func (t *telemetry) scatterItem(ctx context.Context, task *task, err error) {
	status := "succeeded"
	if err != nil {
		status = "failed"
	}
	t.scatterItems.Add(ctx, 1, metric.WithAttributes(attrPipeline.String(task.run.p.name),
		attrAsset.String(task.asset.Key), attrStatus.String(status)))
}

// observe turns a finished run into its span, from its creation to now, in
// the run's trace.
func (t *telemetry) observe(ev Event) {
	if t.tracer == nil || ev.Kind != EventRunFinished {
		return
	}
	ctx, _, created := t.runContext(context.Background(), ev.RunID)
	if created.IsZero() {
		created = ev.Time
	}
	_, span := t.tracer.Start(ctx, "flowstone.run "+ev.Pipeline, trace.WithTimestamp(created),
		trace.WithAttributes(attrPipeline.String(ev.Pipeline), attrRun.String(ev.RunID),
			attrPartition.String(string(ev.Partition)), attrStatus.String(ev.Status)))
	if ev.Status != string(RunSucceeded) {
		span.SetStatus(codes.Error, ev.Status)
	}
	span.End(trace.WithTimestamp(ev.Time))
}

func firstLine(s string) string {
	for i := range len(s) {
		if s[i] == '\n' {
			return s[:i]
		}
	}
	return s
}
