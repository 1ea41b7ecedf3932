package projection

import (
	"context"
	"log/slog"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

func TestTraceContextRoundTrip(t *testing.T) {
	if traceOf(context.Background()) != nil {
		t.Error("a context without a span gave a trace context")
	}
	var nilTC *TraceContext
	if nilTC.SpanContext().IsValid() || (&TraceContext{Traceparent: "garbage"}).SpanContext().IsValid() {
		t.Error("a missing or malformed traceparent gave a valid span context")
	}
	ts, _ := trace.ParseTraceState("vendor=x")
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2}, TraceFlags: trace.FlagsSampled, TraceState: ts,
	})
	tc := traceOf(trace.ContextWithSpanContext(context.Background(), sc))
	if tc == nil || tc.Traceparent != "00-01000000000000000000000000000000-0200000000000000-01" || tc.Tracestate != "vendor=x" {
		t.Fatalf("traceOf = %+v", tc)
	}
	got := tc.SpanContext()
	if got.TraceID() != sc.TraceID() || got.SpanID() != sc.SpanID() || !got.IsSampled() || !got.IsRemote() || got.TraceState().String() != "vendor=x" {
		t.Errorf("SpanContext = %+v", got)
	}
}

func TestNotifySpanParents(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	srv := mcp.NewServer(&mcp.Implementation{Name: "test"}, nil)
	parent := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{7}, SpanID: trace.SpanID{8}, TraceFlags: trace.FlagsSampled})
	tc := traceOf(trace.ContextWithSpanContext(context.Background(), parent))
	// A span in ctx must not become the parent of a record without trace.
	ctx, outer := tp.Tracer("t").Start(context.Background(), "outer")
	notifyEntity(ctx, srv, tp.Tracer("t"), slog.Default(), "payments", &Entity{Key: "k1", Trace: tc})
	notifyEntity(ctx, srv, tp.Tracer("t"), slog.Default(), "payments", &Entity{Key: "k2"})
	outer.End()
	spans := rec.Ended()
	if len(spans) != 3 || spans[0].Name() != "notify payments" || spans[1].Name() != "notify payments" {
		t.Fatalf("spans %v", spans)
	}
	if p := spans[0].Parent(); p.TraceID() != parent.TraceID() || p.SpanID() != parent.SpanID() {
		t.Errorf("with trace context: parent %v, want %v", p, parent)
	}
	if p := spans[1].Parent(); p.IsValid() {
		t.Errorf("without trace context: parent %v, want a root span", p)
	}
	if spans[0].SpanKind() != trace.SpanKindProducer {
		t.Errorf("kind %v", spans[0].SpanKind())
	}
}
