package bus

import (
	"context"
	"strings"
	"time"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	toolbusv1 "github.com/toolbus/toolbus/gen/toolbus/v1"
	"github.com/toolbus/toolbus/telemetry"
)

// tracerName is the instrumentation scope of bus spans.
const tracerName = "github.com/toolbus/toolbus/bus"

// replySubjectTemplate names the reply destination in spans: the subject
// itself holds a call id, too many values for a span name.
const replySubjectTemplate = replySubjectRoot + ".{instance}.{call_id}"

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

// startPublishSpan starts the producer span of a call published on subject.
func startPublishSpan(ctx context.Context, tr trace.Tracer, subject string, call *toolbusv1.ToolCall, size int) (context.Context, trace.Span) {
	if untraced(tr) {
		return ctx, noSpan
	}
	ctx, span := tr.Start(ctx, "publish "+subject, trace.WithSpanKind(trace.SpanKindProducer))
	if span.IsRecording() {
		span.SetAttributes(
			telemetry.AttrMessagingSystem.String(telemetry.MessagingSystemNATS),
			telemetry.AttrMessagingOperationName.String("publish"),
			telemetry.AttrMessagingOperationType.String("send"),
			telemetry.AttrMessagingDestination.String(subject),
			telemetry.AttrMessagingMessageID.String(call.Id),
			telemetry.AttrMessagingBodySize.Int(size),
			telemetry.AttrTool.String(call.Tool),
			telemetry.AttrUpstream.String(call.Upstream),
			telemetry.AttrCallID.String(call.Id),
		)
		span.SetAttributes(telemetry.CallerAttrs(call.GetCaller())...)
	}
	return ctx, span
}

// startProcessSpan starts the consumer span of one delivery of a call. The
// call-specific attributes are added by annotateProcessSpan once the
// message is decoded.
func startProcessSpan(ctx context.Context, tr trace.Tracer, consumer string, d Delivery, size int) (context.Context, trace.Span) {
	if untraced(tr) {
		return ctx, noSpan
	}
	ctx, span := tr.Start(ctx, "process "+d.Subject, trace.WithSpanKind(trace.SpanKindConsumer))
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
			telemetry.AttrDelivery.Int64(int64(d.Number)),
		)
	}
	return ctx, span
}

func annotateProcessSpan(span trace.Span, call *toolbusv1.ToolCall, queueWait time.Duration) {
	if !span.IsRecording() {
		return
	}
	span.SetAttributes(
		telemetry.AttrMessagingMessageID.String(call.Id),
		telemetry.AttrTool.String(call.Tool),
		telemetry.AttrUpstream.String(call.Upstream),
		telemetry.AttrCallID.String(call.Id),
	)
	if queueWait > 0 {
		span.SetAttributes(telemetry.AttrQueueWait.Float64(float64(queueWait.Microseconds()) / 1000))
	}
	span.SetAttributes(telemetry.CallerAttrs(call.GetCaller())...)
}

// endProcessSpan records how a delivery ended: disposition is ack, nak,
// term or dead_letter.
func endProcessSpan(span trace.Span, res *toolbusv1.ToolResult, disposition string, err error) {
	if !span.IsRecording() {
		return
	}
	span.SetAttributes(telemetry.AttrDisposition.String(disposition))
	if res != nil {
		outcome := ResultOutcome(res)
		span.SetAttributes(telemetry.AttrOutcome.String(outcome))
		if res.Attempts > 0 {
			span.SetAttributes(telemetry.AttrAttempt.Int(int(res.Attempts)))
		}
		if res.Error != nil {
			span.SetAttributes(telemetry.AttrErrorType.String(outcome))
			span.SetStatus(codes.Error, outcome)
		}
	}
	if err != nil {
		span.SetStatus(codes.Error, disposition)
	}
}

// startReplySpan starts the producer span of a result sent to its caller.
func startReplySpan(ctx context.Context, tr trace.Tracer, call *toolbusv1.ToolCall, size int) (context.Context, trace.Span) {
	if untraced(tr) {
		return ctx, noSpan
	}
	ctx, span := tr.Start(ctx, "publish "+replySubjectTemplate, trace.WithSpanKind(trace.SpanKindProducer))
	if span.IsRecording() {
		span.SetAttributes(
			telemetry.AttrMessagingSystem.String(telemetry.MessagingSystemNATS),
			telemetry.AttrMessagingOperationName.String("publish"),
			telemetry.AttrMessagingOperationType.String("send"),
			telemetry.AttrMessagingDestination.String(call.ReplySubject),
			telemetry.AttrMessagingTemplate.String(replySubjectTemplate),
			telemetry.AttrMessagingBodySize.Int(size),
			telemetry.AttrCallID.String(call.Id),
		)
	}
	return ctx, span
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
