package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/flowstone-go/flowstone/runtime"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Environment variables that turn on OTLP trace export, as every
// OpenTelemetry SDK reads them.
const (
	EnvOTLPEndpoint       = "OTEL_EXPORTER_OTLP_ENDPOINT"
	EnvOTLPTracesEndpoint = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
)

// telemetry fills in cfg's providers: traces exported over OTLP/HTTP when
// --otlp-endpoint or the OTEL_EXPORTER_OTLP_*ENDPOINT variables ask for it,
// and metrics in a Prometheus registry when the command serves /metrics.
// What it starts is stopped (and flushed) by s.shutdown.
func (s *session) telemetry(ctx context.Context, cfg *runtime.Config) error {
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(attribute.String("service.name", s.app.Name)))
	if err != nil {
		return err
	}
	if env, err := resource.New(ctx, resource.WithFromEnv()); err == nil {
		res, _ = resource.Merge(res, env) // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win
	}
	if s.otlpEndpoint != "" || os.Getenv(EnvOTLPEndpoint) != "" || os.Getenv(EnvOTLPTracesEndpoint) != "" {
		var opts []otlptracehttp.Option
		if s.otlpEndpoint != "" {
			opts = append(opts, otlptracehttp.WithEndpointURL(s.otlpEndpoint))
		}
		exp, err := otlptracehttp.New(ctx, opts...)
		if err != nil {
			return fmt.Errorf("OTLP trace exporter: %w", err)
		}
		tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
		s.shutdown = append(s.shutdown, tp.Shutdown)
		cfg.TracerProvider = tp
	}
	if s.metrics != nil {
		exp, err := otelprom.New(otelprom.WithRegisterer(s.metrics))
		if err != nil {
			return fmt.Errorf("prometheus exporter: %w", err)
		}
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp), sdkmetric.WithResource(res))
		s.shutdown = append(s.shutdown, mp.Shutdown)
		cfg.MeterProvider = mp
	}
	return nil
}

// serveMetrics asks telemetry for a Prometheus registry, and returns the
// handler of /metrics over it.
func (s *session) serveMetrics() http.Handler {
	s.metrics = prometheus.NewRegistry()
	return promhttp.HandlerFor(s.metrics, promhttp.HandlerOpts{})
}

// withMetrics answers /metrics from the registry and the rest from h.
func withMetrics(h http.Handler, metrics http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", metrics)
	mux.Handle("/", h)
	return mux
}

// listenMetrics serves /metrics on addr until the returned stop is called.
func (s *session) listenMetrics(addr string, metrics http.Handler) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-addr: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", metrics)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	fmt.Fprintf(s.stdout, "metrics at http://%s/metrics\n", ln.Addr())
	return func() { _ = srv.Close() }, nil
}

// stopTelemetry flushes and stops the providers telemetry started.
func (s *session) stopTelemetry() error {
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	var errs []error
	for _, stop := range s.shutdown {
		errs = append(errs, stop(ctx))
	}
	return errors.Join(errs...)
}
