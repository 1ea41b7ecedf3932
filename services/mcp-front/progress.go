package mcpfront

import (
	"context"
	"encoding/json"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/nats-io/nats.go"

	"github.com/toolbus/toolbus/bus"
)

// forwardProgress subscribes to the progress subject of the call answered
// on reply and hands each report to fn until stop is called.
func (s *Service) forwardProgress(ctx context.Context, reply string, fn func(context.Context, bus.Progress)) (stop func()) {
	sub, err := s.nc.Subscribe(bus.ProgressSubject(reply), func(m *nats.Msg) {
		var p bus.Progress
		if json.Unmarshal(m.Data, &p) == nil {
			fn(ctx, p)
		}
	})
	if err != nil {
		s.log.WarnContext(ctx, "progress subscription failed", "error", err)
		return func() {}
	}
	return func() {
		// The worker sent its last report before the answer, on the same
		// connection, so it is already queued here: drain delivers it
		// (before the answer goes out) instead of dropping it.
		if err := sub.Drain(); err != nil {
			_ = sub.Unsubscribe()
			return
		}
		for deadline := time.Now().Add(drainWait); sub.IsValid() && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
	}
}

// drainWait bounds how long an answer waits for queued progress reports.
const drainWait = 200 * time.Millisecond

// mcpProgress returns the progress forwarder for an MCP request that
// carries a progress token, or nil.
func mcpProgress(req *mcp.CallToolRequest) func(context.Context, bus.Progress) {
	if req.Session == nil || req.Params == nil {
		return nil
	}
	tok := req.Params.GetProgressToken()
	if tok == nil {
		return nil
	}
	return func(ctx context.Context, p bus.Progress) {
		_ = req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{
			ProgressToken: tok, Progress: p.Progress, Total: p.Total, Message: p.Message,
		})
	}
}
