package jqmanager_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"faas/proxies/faas"
	"faas/proxies/tracing"
)

// spans records every span the package's tests end. Tests tell theirs
// apart by trace id, so they can still run in parallel.
var spans = tracetest.NewSpanRecorder()

func TestMain(m *testing.M) {
	otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans)))
	os.Exit(m.Run())
}

// spansOf returns the ended spans of one trace by name.
func spansOf(id trace.TraceID) map[string]sdktrace.ReadOnlySpan {
	byName := make(map[string]sdktrace.ReadOnlySpan)
	for _, s := range spans.Ended() {
		if s.SpanContext().TraceID() == id {
			byName[s.Name()] = s
		}
	}
	return byName
}

// TestLeasedJobJoinsItsSubmissionsTrace checks that a job's queue wait and
// lease are children of the span that submitted it, though the worker's
// poll that leases it belongs to no trace, and that the wait lasts from
// submission to lease.
func TestLeasedJobJoinsItsSubmissionsTrace(t *testing.T) {
	eachQueue(t, func(t *testing.T, r *rig, q faas.JobQueue) {
		ctx, submit := tracing.Tracer().Start(r.ctx, "submit")
		j, err := q.Submit(ctx, faas.Job{ID: uuid.NewString(), Owner: "ada", Function: "f"})
		submit.End()
		require.NoError(t, err)
		id := submit.SpanContext().TraceID()
		require.Equal(t, id.String(), tracing.ID(j.Trace))
		stored, err := r.store.Job(r.ctx, j.ID)
		require.NoError(t, err)
		require.Equal(t, j.Trace, stored.Trace)

		time.Sleep(20 * time.Millisecond) // a queue wait long enough to measure
		leased, ok, err := nextOne(q, context.Background(), "w1", time.Second)
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, j.Trace, leased.Trace)

		parent := trace.SpanContextFromContext(tracing.WithParent(context.Background(), j.Trace)).SpanID()
		got := spansOf(id)
		for _, name := range []string{"queue wait", "lease"} {
			s, ok := got[name]
			require.True(t, ok, "no %q span in %v", name, got)
			require.Equal(t, parent, s.Parent().SpanID(), name)
		}
		require.GreaterOrEqual(t, got["queue wait"].EndTime().Sub(got["queue wait"].StartTime()), 20*time.Millisecond)
	}, "ada")
}

// TestSubmittedTraceIsNotTrusted checks that a job submitted outside a
// trace gets none, whatever trace context the caller wrote into it: a
// caller must not attach its job's spans to someone else's trace.
func TestSubmittedTraceIsNotTrusted(t *testing.T) {
	eachQueue(t, func(t *testing.T, r *rig, q faas.JobQueue) {
		j, err := q.Submit(context.Background(), faas.Job{ID: uuid.NewString(), Owner: "ada", Function: "f",
			Trace: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"})
		require.NoError(t, err)
		require.Empty(t, j.Trace)
		stored, err := r.store.Job(r.ctx, j.ID)
		require.NoError(t, err)
		require.Empty(t, stored.Trace)
	}, "ada")
}
