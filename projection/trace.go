package projection

import (
	"context"
	"crypto/sha256"
	"encoding/hex"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// w3c is the propagator of stored trace contexts: always W3C Trace
// Context, whatever the process's global propagator is.
var w3c propagation.TraceContext

// traceOf is the W3C trace context of ctx's span; nil when ctx carries no
// valid span context.
func traceOf(ctx context.Context) *TraceContext {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return nil
	}
	c := propagation.MapCarrier{}
	w3c.Inject(ctx, c)
	if c["traceparent"] == "" {
		return nil
	}
	return &TraceContext{Traceparent: c["traceparent"], Tracestate: c["tracestate"]}
}

// SpanContext is the remote span context tc names; invalid when tc is nil
// or malformed.
func (tc *TraceContext) SpanContext() trace.SpanContext {
	if tc == nil || tc.Traceparent == "" {
		return trace.SpanContext{}
	}
	c := propagation.MapCarrier{"traceparent": tc.Traceparent}
	if tc.Tracestate != "" {
		c["tracestate"] = tc.Tracestate
	}
	return trace.SpanContextFromContext(w3c.Extract(context.Background(), c))
}

// KeyHash identifies an entity on spans without its key, which may be
// personal data: the first 16 hex digits of its SHA-256 (as the
// state-updater's apply span has it).
func KeyHash(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:8])
}
