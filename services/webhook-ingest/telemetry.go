package webhookingest

import (
	"context"
	"net/http"
	"strconv"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/toolbus/toolbus/events"
	"github.com/toolbus/toolbus/telemetry"
)

// tracerName is the instrumentation scope of webhook-ingest spans.
const tracerName = "github.com/toolbus/toolbus/services/webhook-ingest"

// route is the http.route of every delivery, and its span name's path: the
// source is an attribute, so unknown sources cannot multiply span names.
const route = "/webhooks/{source}"

// noSpan stands for every span when tracing is off: starting a span of
// the no-op provider still cost its name, options and a context per span.
var noSpan = trace.SpanFromContext(context.Background())

func tracerFrom(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		tp = tracenoop.NewTracerProvider()
	}
	return tp.Tracer(tracerName)
}

// startServerSpan starts the server span of one delivery, continuing the
// provider's trace context when its request carries one.
func (s *Service) startServerSpan(r *http.Request) (context.Context, trace.Span) {
	ctx := r.Context()
	if r.Header.Get("traceparent") != "" {
		ctx = otel.GetTextMapPropagator().Extract(ctx, propagation.HeaderCarrier(r.Header))
	}
	if !s.tracing {
		// The provider's trace context, if any, still reaches the event.
		return ctx, noSpan
	}
	ctx, span := s.tracer.Start(ctx, r.Method+" "+route, trace.WithSpanKind(trace.SpanKindServer))
	if span.IsRecording() {
		span.SetAttributes(
			telemetry.AttrHTTPMethod.String(r.Method),
			telemetry.AttrHTTPRoute.String(route),
		)
	}
	return ctx, span
}

// endServerSpan records how the delivery ended and ends the span; it also
// counts the delivery (known sources only, so a prober cannot grow the
// metric's label set).
func (s *Service) endServerSpan(ctx context.Context, span trace.Span, d *delivery, known bool) {
	if known && d.ev.Outcome != "" {
		s.metrics.Received(ctx, d.ev.Source, d.ev.Outcome)
		if d.ev.Outcome == events.WebhookDuplicate {
			s.metrics.DedupHit(ctx, d.ev.Source)
		}
	}
	if !span.IsRecording() {
		span.End()
		return
	}
	status := d.ev.Status
	if !known {
		status = http.StatusNotFound
	}
	span.SetAttributes(telemetry.AttrHTTPStatus.Int(status))
	if known {
		span.SetAttributes(telemetry.AttrSource.String(d.ev.Source))
	}
	if d.ev.Outcome != "" {
		span.SetAttributes(telemetry.AttrOutcome.String(d.ev.Outcome))
	}
	if d.ev.Type != "" {
		span.SetAttributes(telemetry.AttrEventType.String(d.ev.Type))
	}
	if d.ev.EventID != "" {
		span.SetAttributes(telemetry.AttrEventID.String(d.ev.EventID))
	}
	// HTTP server convention: only 5xx is an error of the server.
	if status >= 500 {
		span.SetAttributes(telemetry.AttrErrorType.String(strconv.Itoa(status)))
		span.SetStatus(codes.Error, d.ev.Outcome)
	}
	span.End()
}

// startVerifySpan starts the span of the signature check.
func (s *Service) startVerifySpan(ctx context.Context, src *source) (context.Context, trace.Span) {
	if !s.tracing {
		return ctx, noSpan
	}
	ctx, span := s.tracer.Start(ctx, "verify "+src.cfg.Scheme, trace.WithSpanKind(trace.SpanKindInternal))
	if span.IsRecording() {
		span.SetAttributes(telemetry.AttrScheme.String(src.cfg.Scheme), telemetry.AttrSource.String(src.cfg.Name))
	}
	return ctx, span
}

// endVerifySpan records the verification outcome: ok, handshake, or the
// rejection reason (never the signature or the secret).
func endVerifySpan(span trace.Span, outcome string, rejected bool) {
	if span.IsRecording() {
		span.SetAttributes(telemetry.AttrOutcome.String(outcome))
		if rejected {
			span.SetAttributes(telemetry.AttrErrorType.String(outcome))
			span.SetStatus(codes.Error, outcome)
		}
	}
	span.End()
}

// startPublishSpan starts the producer span of an event stored on subject.
func (s *Service) startPublishSpan(ctx context.Context, subject, source, eventType, id string, size int) (context.Context, trace.Span) {
	if !s.tracing {
		return ctx, noSpan
	}
	ctx, span := s.tracer.Start(ctx, "publish "+subject, trace.WithSpanKind(trace.SpanKindProducer))
	if span.IsRecording() {
		span.SetAttributes(
			telemetry.AttrMessagingSystem.String(telemetry.MessagingSystemNATS),
			telemetry.AttrMessagingOperationName.String("publish"),
			telemetry.AttrMessagingOperationType.String("send"),
			telemetry.AttrMessagingDestination.String(subject),
			telemetry.AttrMessagingMessageID.String(id),
			telemetry.AttrMessagingBodySize.Int(size),
			telemetry.AttrSource.String(source),
			telemetry.AttrEventType.String(eventType),
			telemetry.AttrEventID.String(id),
		)
	}
	return ctx, span
}

// endPublishSpan records the JetStream answer: the stream sequence and
// whether it was a duplicate, or the failure.
func endPublishSpan(span trace.Span, seq uint64, duplicate bool, err error) {
	if span.IsRecording() {
		switch {
		case err != nil:
			span.SetAttributes(telemetry.AttrErrorType.String("bus_unavailable"))
			span.SetStatus(codes.Error, "bus_unavailable")
		case duplicate:
			span.SetAttributes(telemetry.AttrMessagingStreamSeq.Int64(int64(seq)), telemetry.AttrOutcome.String(events.WebhookDuplicate))
		default:
			span.SetAttributes(telemetry.AttrMessagingStreamSeq.Int64(int64(seq)), telemetry.AttrOutcome.String(events.WebhookStored))
		}
	}
	span.End()
}
