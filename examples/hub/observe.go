package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.39.0"

	"github.com/ssekit/ssekit/core"
	"github.com/ssekit/ssekit/metrics"
	"github.com/ssekit/ssekit/middleware/tracing"
)

// Trace exporters -trace accepts.
const (
	traceOff    = ""
	traceStdout = "stdout"
	traceOTLP   = "otlp"
)

// observability is the hub's metrics registry, its log of refusals and,
// with -trace, its tracer provider. It is built before the broker, whose
// Observer it supplies; newHub then tracks the broker (see track).
type observability struct {
	registry *prometheus.Registry
	metrics  *metrics.Metrics
	observer *core.Observer
	tp       *sdktrace.TracerProvider // nil without -trace
	// log receives every refused stream with its request's context (set
	// it before the broker serves; slog.Default by default).
	log *slog.Logger

	mu      sync.Mutex
	tracked map[*core.Broker]bool
}

// newObservability registers the broker's metrics with the Go and process
// collectors, logs refused streams, and sets up tracing: "stdout" prints
// spans to out, "otlp" sends them where the standard
// OTEL_EXPORTER_OTLP_* variables say.
func newObservability(ctx context.Context, trace string, out io.Writer) (*observability, error) {
	o := &observability{registry: prometheus.NewRegistry(), log: slog.Default(), tracked: make(map[*core.Broker]bool)}
	o.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m, err := metrics.New(o.registry)
	if err != nil {
		return nil, err
	}
	o.metrics = m
	// The broker answers a refused stream with a fixed text (core's
	// Reject); the error behind it, which may name a database or a key
	// ID, belongs in the log.
	o.observer = core.JoinObservers(m.Observer(), &core.Observer{Reject: o.logReject})
	var exp sdktrace.SpanExporter
	switch trace {
	case traceOff:
		return o, nil
	case traceStdout:
		exp, err = stdouttrace.New(stdouttrace.WithWriter(out))
	case traceOTLP:
		exp, err = otlptracehttp.New(ctx)
	default:
		return nil, fmt.Errorf("unknown trace exporter %q (want stdout or otlp)", trace)
	}
	if err != nil {
		return nil, err
	}
	o.tp = sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName("ssekit-hub"))),
	)
	tr := tracing.New(tracing.WithTracerProvider(o.tp))
	o.observer = core.JoinObservers(o.observer, tr.Observer())
	return o, nil
}

// logReject logs a stream the broker refused. The context is the
// request's, so a handler that reads trace IDs from it ties the line to
// the request's trace. Refusals the client causes are routine (Info);
// outages and the unexpected are not (Warn).
func (o *observability) logReject(ctx context.Context, tenant string, err error) {
	reason := metrics.RejectReason(err)
	level := slog.LevelInfo
	if reason == metrics.RejectUnavailable || reason == metrics.RejectOther {
		level = slog.LevelWarn
	}
	o.log.Log(ctx, level, "hub: stream refused", "reason", reason, "tenant", tenant, "err", err)
}

// track adds b's history gauges and delivered count to the metrics
// (metrics.Track), once per broker: a broker outlives an http.Server and
// may be served by several hubs, and tracking it twice would count it
// twice.
func (o *observability) track(b *core.Broker) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.tracked[b] {
		o.tracked[b] = true
		o.metrics.Track(b)
	}
}

// metricsHandler serves /metrics.
func (o *observability) metricsHandler() http.Handler {
	return promhttp.HandlerFor(o.registry, promhttp.HandlerOpts{Registry: o.registry})
}

// instrument makes each request to h a server span, so that a publish span
// is its child and one trace runs from the request to every delivery.
func (o *observability) instrument(h http.Handler, name string) http.Handler {
	if o == nil || o.tp == nil {
		return h
	}
	return otelhttp.NewHandler(h, name,
		otelhttp.WithTracerProvider(o.tp),
		otelhttp.WithPropagators(propagation.TraceContext{}))
}

// shutdown flushes the spans still buffered.
func (o *observability) shutdown(ctx context.Context) error {
	if o.tp == nil {
		return nil
	}
	return o.tp.Shutdown(ctx)
}
