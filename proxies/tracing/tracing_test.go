package tracing_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"faas/proxies/tracing"
)

const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

func TestID(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		traceparent, want string
	}{
		{parent, "4bf92f3577b34da6a3ce929d0e0e4736"},
		{"", ""},
		{"not a traceparent", ""},
		{"00-00000000000000000000000000000000-00f067aa0ba902b7-01", ""}, // all-zero trace id is invalid
		{parent + strings.Repeat("x", tracing.MaxParentLen), ""},
	} {
		require.Equal(t, tc.want, tracing.ID(tc.traceparent), "traceparent %q", tc.traceparent)
	}
}

func TestParentRoundTrips(t *testing.T) {
	t.Parallel()
	require.Empty(t, tracing.Parent(context.Background()))
	require.Equal(t, parent, tracing.Parent(tracing.WithParent(context.Background(), parent)))
}

// TestStartOutsideATraceStartsNothing checks that work with no trace
// context makes no root span: with an exporter on, every heartbeat would
// otherwise be a trace.
func TestStartOutsideATraceStartsNothing(t *testing.T) {
	t.Parallel()
	for _, traceparent := range []string{"", "garbage"} {
		ctx, span := tracing.Start(context.Background(), traceparent, "x")
		require.False(t, span.SpanContext().IsValid())
		require.False(t, trace.SpanContextFromContext(ctx).IsValid())
	}
	// With no provider installed the span is the no-op one, but the trace
	// still flows through, so a process without an exporter relays it.
	ctx, _ := tracing.Start(context.Background(), parent, "x")
	require.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", trace.SpanContextFromContext(ctx).TraceID().String())
}

// TestRecording checks that Recording tells OpenTelemetry's default
// provider, whose spans the frontend skips, from an installed one. It is
// not parallel: it installs a global provider, which cannot be taken back,
// and runs before the parallel tests, which pass either way.
func TestRecording(t *testing.T) {
	require.False(t, tracing.Recording(), "the default provider")
	tp := sdktrace.NewTracerProvider()
	t.Cleanup(func() { require.NoError(t, tp.Shutdown(context.Background())) })
	otel.SetTracerProvider(tp)
	require.True(t, tracing.Recording(), "an installed provider")
}
