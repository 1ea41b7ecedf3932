package mcpfront

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/toolbus/toolbus/events"
	toolbusv1 "github.com/toolbus/toolbus/gen/toolbus/v1"
)

// publishCallEvent sends the call's summary on the operational event feed
// (package events) for the operator console. It runs after the answer is
// decided and only appends to the connection's write buffer: no
// acknowledgement is awaited and a failure is ignored, so the feed can
// never slow down or fail a call.
func (s *Service) publishCallEvent(ctx context.Context, req callRequest, id, outcome string, start time.Time, res *toolbusv1.ToolResult) {
	ev := events.Call{
		Time:           start,
		ID:             id,
		Tool:           req.tool.name,
		Upstream:       req.tool.upstream,
		Via:            req.via,
		Outcome:        outcome,
		DurationMS:     float64(time.Since(start).Microseconds()) / 1000,
		Attempts:       res.GetAttempts(),
		Delivery:       res.GetDelivery(),
		UpstreamStatus: res.GetUpstreamStatus(),
		Worker:         res.GetWorker(),
		Instance:       s.inst,
	}
	if req.caller != nil {
		ev.Caller = req.caller.String()
	}
	if e := res.GetError(); e != nil {
		ev.Message = events.Shorten(e.GetMessage(), events.MaxMessageLen)
	}
	if sc := trace.SpanContextFromContext(ctx); sc.HasTraceID() {
		ev.TraceID = sc.TraceID().String()
	}
	_ = events.Publish(s.nc, events.SubjectCall, &ev)
}
