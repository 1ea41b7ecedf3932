package mcpfront

import (
	"context"
	"net/http"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc/metadata"

	toolbusv1 "github.com/toolbus/toolbus/gen/toolbus/v1"
	"github.com/toolbus/toolbus/telemetry"
)

// tracerName is the instrumentation scope of mcp-front spans.
const tracerName = "github.com/toolbus/toolbus/services/mcp-front"

// mcpTraceContext returns ctx carrying the client's trace context, so that
// the call's trace continues the client's: from _meta (traceparent,
// tracestate, baggage, as the MCP trace-context proposal puts them), else
// from the HTTP request's headers.
func mcpTraceContext(ctx context.Context, req *mcp.CallToolRequest) context.Context {
	prop := otel.GetTextMapPropagator()
	if meta := req.Params.Meta; meta != nil {
		if tp, ok := meta["traceparent"].(string); ok && tp != "" {
			c := propagation.MapCarrier{"traceparent": tp}
			if ts, ok := meta["tracestate"].(string); ok {
				c["tracestate"] = ts
			}
			if b, ok := meta["baggage"].(string); ok {
				c["baggage"] = b
			}
			return prop.Extract(ctx, c)
		}
	}
	if req.Extra != nil && req.Extra.Header != nil && req.Extra.Header.Get("traceparent") != "" {
		return prop.Extract(ctx, propagation.HeaderCarrier(req.Extra.Header))
	}
	return ctx
}

// grpcTraceContext continues a trace context sent in gRPC metadata.
func grpcTraceContext(ctx context.Context) context.Context {
	md, ok := metadata.FromIncomingContext(ctx)
	if !ok || len(md.Get("traceparent")) == 0 {
		return ctx
	}
	h := http.Header{}
	for _, k := range []string{"traceparent", "tracestate", "baggage"} {
		if v := md.Get(k); len(v) > 0 {
			h.Set(k, v[0])
		}
	}
	return otel.GetTextMapPropagator().Extract(ctx, propagation.HeaderCarrier(h))
}

// noSpan is the non-recording span of a call when tracing is off.
var noSpan = trace.SpanFromContext(context.Background())

// startCallSpan starts the server span of one tools/call (MCP) or CallTool
// (gRPC).
func (s *Service) startCallSpan(ctx context.Context, req callRequest, callID string, sessionID string) (context.Context, trace.Span) {
	if _, off := s.tracer.(tracenoop.Tracer); off {
		// Tracing off: a no-op span would only cost a name and a context
		// per call; ctx keeps its parent's span context (trace_id in logs).
		return ctx, noSpan
	}
	name := "tools/call " + req.tool.name
	if req.via == "grpc" {
		name = "toolbus.v1.ToolService/CallTool"
	}
	ctx, span := s.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindServer))
	if !span.IsRecording() {
		return ctx, span
	}
	// One SetAttributes call (each allocates its argument slice); every
	// key once. The call's tool, upstream and caller are recorded here
	// only: the worker's process span, a child of this one, does not
	// repeat the caller.
	attrs := make([]attribute.KeyValue, 0, 12)
	attrs = append(attrs,
		telemetry.AttrTool.String(req.tool.name),
		telemetry.AttrUpstream.String(req.tool.upstream),
		telemetry.AttrCallID.String(callID),
		telemetry.AttrVia.String(req.via),
		telemetry.AttrGenAIToolName.String(req.tool.name),
		telemetry.AttrGenAIOperation.String("execute_tool"),
	)
	if req.caller != nil {
		// From the authenticated identity, so that calls refused before
		// publishing (arguments, limits) name their caller too. Never the
		// token.
		attrs = append(attrs, telemetry.CallerAttrs(req.caller.Proto(false))...)
	}
	if req.via == "grpc" {
		attrs = append(attrs,
			telemetry.AttrRPCSystem.String("grpc"),
			telemetry.AttrRPCService.String("toolbus.v1.ToolService"),
			telemetry.AttrRPCMethod.String("CallTool"),
		)
	} else {
		attrs = append(attrs, telemetry.AttrMCPMethod.String("tools/call"))
		if sessionID != "" {
			attrs = append(attrs, telemetry.AttrMCPSessionID.String(sessionID))
		}
	}
	span.SetAttributes(attrs...)
	return ctx, span
}

// endCallSpan records the call's outcome on its span.
func endCallSpan(span trace.Span, outcome string, res *toolbusv1.ToolResult) {
	if !span.IsRecording() {
		return
	}
	var attrs [5]attribute.KeyValue
	attrs[0] = telemetry.AttrOutcome.String(outcome)
	n := 1
	if res != nil {
		if res.Worker != "" {
			attrs[n] = telemetry.AttrWorker.String(res.Worker)
			n++
		}
		if res.Delivery > 0 {
			attrs[n] = telemetry.AttrDelivery.Int64(int64(res.Delivery))
			n++
		}
		if res.Attempts > 0 {
			attrs[n] = telemetry.AttrAttempt.Int(int(res.Attempts))
			n++
		}
	}
	// A tool error is still an answer, but operators look for failed calls:
	// any outcome other than ok marks the span as an error.
	if outcome != "ok" {
		attrs[n] = telemetry.AttrErrorType.String(outcome)
		n++
		span.SetStatus(codes.Error, outcome)
	}
	span.SetAttributes(attrs[:n]...)
}
