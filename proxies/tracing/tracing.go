// Package tracing carries OpenTelemetry trace context across the bus and
// with jobs, and exports spans over OTLP when the standard environment
// asks for it. Without an exporter the global tracer is OpenTelemetry's
// no-op one: spans cost a context lookup and nothing leaves the process.
package tracing

import (
	"context"
	"fmt"
	"os"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// MaxParentLen bounds a traceparent read from the network. Version 00 is
// 55 bytes; later versions may append fields, which W3C tells a reader to
// ignore.
const MaxParentLen = 128

// propagator reads and writes W3C traceparent values.
var propagator = propagation.TraceContext{}

// noopProvider is the global provider before anyone installs one:
// OpenTelemetry's delegate, whose spans record nothing.
var noopProvider = otel.GetTracerProvider()

// Recording reports whether a tracer provider has been installed (by
// Setup, or a test), so that hot paths can skip starting spans that the
// default provider would throw away: with it a span only hands on its
// parent's context, which WithParent does for a fraction of the cost.
func Recording() bool { return otel.GetTracerProvider() != noopProvider }

// Tracer is the platform's tracer. It goes through the global provider,
// so a provider installed by Setup later still takes effect.
func Tracer() trace.Tracer { return otel.Tracer("faas") }

// Parent is the W3C traceparent naming the span in ctx, or "" when ctx
// carries none (the usual case without an exporter, where it costs no
// allocation).
func Parent(ctx context.Context) string {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ""
	}
	carrier := propagation.MapCarrier{}
	propagator.Inject(ctx, carrier)
	return carrier["traceparent"]
}

// WithParent returns ctx with the remote span traceparent names as the
// parent of the spans started from it. A malformed or empty traceparent
// leaves ctx as it is: a bad trace header must never fail a request.
func WithParent(ctx context.Context, traceparent string) context.Context {
	if traceparent == "" || len(traceparent) > MaxParentLen {
		return ctx
	}
	return propagator.Extract(ctx, propagation.MapCarrier{"traceparent": traceparent})
}

// Start starts a span as a child of the remote span traceparent names.
// Without a valid traceparent it starts none and returns ctx with a no-op
// span: work outside a trace (a job submitted before tracing was on, a
// heartbeat) would otherwise make a trace of its own for every request,
// noise that hides the traces an operator follows.
func Start(ctx context.Context, traceparent, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	withParent := WithParent(ctx, traceparent)
	if sc := trace.SpanContextFromContext(withParent); traceparent == "" || !sc.IsValid() || !sc.IsRemote() {
		return ctx, trace.SpanFromContext(context.Background())
	}
	return Tracer().Start(withParent, name, opts...)
}

// ID is the hex trace id in traceparent, or "" if it names no valid span.
func ID(traceparent string) string {
	sc := trace.SpanContextFromContext(WithParent(context.Background(), traceparent))
	if !sc.IsValid() {
		return ""
	}
	return sc.TraceID().String()
}

// Enabled reports whether the environment asks for spans to be exported:
// the standard OTEL_EXPORTER_OTLP_ENDPOINT, or its traces-only variant.
func Enabled() bool {
	return os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// Setup installs an OTLP/HTTP exporter as the global tracer provider when
// Enabled, naming the process service (OTEL_SERVICE_NAME overrides it),
// and the W3C propagator either way. The exporter reads the rest of the
// standard OTEL_EXPORTER_OTLP_* variables itself (headers, timeout, TLS)
// and the batch span processor reads OTEL_BSP_*. The returned function
// flushes the spans still buffered; call it at shutdown.
func Setup(ctx context.Context, service string) (shutdown func(context.Context) error, err error) {
	otel.SetTextMapPropagator(propagator)
	if !Enabled() {
		return func(context.Context) error { return nil }, nil
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("otlp trace exporter: %w", err)
	}
	res, err := resource.Merge(
		resource.NewSchemaless(attribute.String("service.name", service)),
		resource.Environment(),
	)
	if err != nil {
		return nil, fmt.Errorf("trace resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	otel.SetTracerProvider(tp)
	return tp.Shutdown, nil
}
