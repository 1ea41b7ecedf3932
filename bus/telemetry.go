package bus

import (
	"context"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	toolbusv1 "github.com/toolbus/toolbus/gen/toolbus/v1"
	"github.com/toolbus/toolbus/telemetry"
)

// tracerName is the instrumentation scope of bus spans.
const tracerName = "github.com/toolbus/toolbus/bus"

func tracerFrom(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		tp = tracenoop.NewTracerProvider()
	}
	return tp.Tracer(tracerName)
}

// untraced reports a tracer that records nothing (tracing off): starting
// its spans would only allocate a context and a span per call. The context
// then keeps its parent's span context, which is all a no-op span carries,
// so trace ids still propagate to logs and message headers.
func untraced(tr trace.Tracer) bool {
	_, ok := tr.(tracenoop.Tracer)
	return ok
}

// noSpan is the non-recording span used when tracing is off.
var noSpan = trace.SpanFromContext(context.Background())

// A call's publish has no span, and no event: the call message carries the
// trace context of the caller's current span (mcp-front's tools/call server
// span), so each delivery's process span is its direct child. A "publish"
// event (subject, body size) on the caller's span was measured (6 more
// allocations and ~480 B per call in BenchmarkBusRoundTrip/traced, ~125 B
// more OTLP per call) and would add nothing: the caller's span names the
// tool, upstream, call id and caller and says bus_unavailable when
// JetStream did not store the call; the process span has the subject and
// the same body size, and its queue wait covers the publish.

// processSpanOpts is shared: building the option and its slice per call
// costs two allocations.
var processSpanOpts = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindConsumer)}

// startProcessSpan starts the consumer span of one delivery of a call. The
// call-specific attributes are added by annotateProcessSpan once the
// message is decoded.
func startProcessSpan(ctx context.Context, tr trace.Tracer, consumer string, d Delivery, size int) (context.Context, trace.Span) {
	if untraced(tr) {
		return ctx, noSpan
	}
	ctx, span := tr.Start(ctx, "process "+d.Subject, processSpanOpts...)
	if span.IsRecording() {
		span.SetAttributes(
			telemetry.AttrMessagingSystem.String(telemetry.MessagingSystemNATS),
			telemetry.AttrMessagingOperationName.String("process"),
			telemetry.AttrMessagingOperationType.String("process"),
			telemetry.AttrMessagingDestination.String(d.Subject),
			telemetry.AttrMessagingConsumerGroup.String(consumer),
			telemetry.AttrMessagingBodySize.Int(size),
			telemetry.AttrMessagingDeliveryCount.Int64(int64(d.Number)),
			telemetry.AttrMessagingStreamSeq.Int64(int64(d.StreamSequence)),
		)
	}
	return ctx, span
}

// attrReplyBodySize is the size of the result a delivery sent to its
// caller, on the process span: there is no reply span, and this is the only
// thing such a span would add (the reply subject holds the call id,
// already on the span, and the caller's instance).
const attrReplyBodySize = attribute.Key("toolbus.reply.body_size")

// annotateProcessSpan adds what the decoded call tells. The caller's
// identity is not repeated here: it is on the caller's span, this span's
// parent.
func annotateProcessSpan(span trace.Span, call *toolbusv1.ToolCall, queueWait time.Duration) {
	if !span.IsRecording() {
		return
	}
	// One SetAttributes call: each one allocates its argument slice.
	attrs := [5]attribute.KeyValue{
		telemetry.AttrMessagingMessageID.String(call.Id),
		telemetry.AttrTool.String(call.Tool),
		telemetry.AttrUpstream.String(call.Upstream),
		telemetry.AttrCallID.String(call.Id),
	}
	n := 4
	if queueWait > 0 {
		attrs[n] = telemetry.AttrQueueWait.Float64(float64(queueWait.Microseconds()) / 1000)
		n++
	}
	span.SetAttributes(attrs[:n]...)
}

// endProcessSpan records how a delivery ended: disposition is ack, nak,
// term or dead_letter; replySize is the size of the result sent to the
// caller, 0 when none was sent.
func endProcessSpan(span trace.Span, res *toolbusv1.ToolResult, disposition string, replySize int, err error) {
	if !span.IsRecording() {
		return
	}
	var attrs [5]attribute.KeyValue
	attrs[0] = telemetry.AttrDisposition.String(disposition)
	n := 1
	if replySize > 0 {
		attrs[n] = attrReplyBodySize.Int(replySize)
		n++
	}
	if res != nil {
		outcome := ResultOutcome(res)
		attrs[n] = telemetry.AttrOutcome.String(outcome)
		n++
		if res.Attempts > 0 {
			attrs[n] = telemetry.AttrAttempt.Int(int(res.Attempts))
			n++
		}
		if res.Error != nil {
			attrs[n] = telemetry.AttrErrorType.String(outcome)
			n++
			span.SetStatus(codes.Error, outcome)
		}
	}
	span.SetAttributes(attrs[:n]...)
	if err != nil {
		span.SetStatus(codes.Error, disposition)
	}
}

// ResultOutcome names the outcome of a result for spans, metrics and logs:
// "ok" or the error's code (its class when it has no code).
func ResultOutcome(res *toolbusv1.ToolResult) string {
	e := res.GetError()
	if e == nil {
		return "ok"
	}
	if e.GetCode() != "" {
		return e.GetCode()
	}
	n, ok := toolbusv1.ErrorClass_name[int32(e.GetClass())]
	if !ok {
		return "unspecified"
	}
	return strings.ToLower(strings.TrimPrefix(n, "ERROR_CLASS_"))
}
