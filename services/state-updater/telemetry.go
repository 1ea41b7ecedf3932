package stateupdater

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/toolbus/toolbus/projection"
	"github.com/toolbus/toolbus/telemetry"
)

// tracerName is the instrumentation scope of state-updater spans.
const tracerName = "github.com/toolbus/toolbus/services/state-updater"

// Outcomes of one event for one projection, on spans and in the
// toolbus.projection.events metric.
const (
	outcomeApplied   = "applied"
	outcomeDeleted   = "deleted"
	outcomeOlder     = "older"
	outcomeDuplicate = "duplicate"
	outcomeIgnored   = "ignored"
	outcomePoison    = "poison"
	outcomeRetry     = "retry"
)

func tracerFrom(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		tp = tracenoop.NewTracerProvider()
	}
	return tp.Tracer(tracerName)
}

// outcomeOf names what Apply did.
func outcomeOf(r projection.Result, err error) string {
	switch {
	case errors.Is(err, projection.ErrPoison):
		return outcomePoison
	case err != nil:
		return outcomeRetry
	}
	switch r.Outcome {
	case projection.Applied:
		if r.Deleted {
			return outcomeDeleted
		}
		return outcomeApplied
	case projection.Superseded:
		return outcomeOlder
	case projection.Unchanged:
		if r.Duplicate {
			return outcomeDuplicate
		}
		return outcomeOlder
	}
	return outcomeIgnored
}

// keyHash identifies an entity on spans without its key, which may be
// personal data (an email, a customer number): the first 16 hex digits of
// its SHA-256.
func keyHash(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:8])
}

// startProcessSpan starts the consumer span of one delivery to the
// projection's consumer.
func (s *Service) startProcessSpan(ctx context.Context, consumer string, msg jetstream.Msg, md *jetstream.MsgMetadata) (context.Context, trace.Span) {
	ctx, span := s.tracer.Start(ctx, "process "+msg.Subject(), trace.WithSpanKind(trace.SpanKindConsumer))
	if span.IsRecording() {
		span.SetAttributes(
			telemetry.AttrMessagingSystem.String(telemetry.MessagingSystemNATS),
			telemetry.AttrMessagingOperationName.String("process"),
			telemetry.AttrMessagingOperationType.String("process"),
			telemetry.AttrMessagingDestination.String(msg.Subject()),
			telemetry.AttrMessagingConsumerGroup.String(consumer),
			telemetry.AttrMessagingBodySize.Int(len(msg.Data())),
			telemetry.AttrMessagingDeliveryCount.Int64(int64(md.NumDelivered)),
			telemetry.AttrMessagingStreamSeq.Int64(int64(md.Sequence.Stream)),
			telemetry.AttrDelivery.Int64(int64(md.NumDelivered)),
		)
		if id := msg.Headers().Get(jetstream.MsgIDHeader); id != "" {
			span.SetAttributes(telemetry.AttrMessagingMessageID.String(id))
		}
	}
	return ctx, span
}

// endProcessSpan records the disposition (ack, nak, dead_letter).
func endProcessSpan(span trace.Span, disposition string, failed bool) {
	if span.IsRecording() {
		span.SetAttributes(telemetry.AttrDisposition.String(disposition))
		if failed {
			span.SetStatus(codes.Error, disposition)
		}
	}
	span.End()
}

// endApplySpan records what Apply did.
func endApplySpan(span trace.Span, r projection.Result, outcome string, err error) {
	if span.IsRecording() {
		span.SetAttributes(telemetry.AttrOutcome.String(outcome))
		if r.Key != "" {
			span.SetAttributes(telemetry.AttrEntityKeyHash.String(keyHash(r.Key)))
		}
		if err != nil {
			span.SetAttributes(telemetry.AttrErrorType.String(outcome))
			span.SetStatus(codes.Error, outcome)
		}
	}
	span.End()
}
