package mcpfront_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/toolbus/toolbus/events"
)

// TestEveryCallIsSummarisedOnTheEventFeed: the operator console's live
// view depends on one summary per answered call, failures included.
func TestEveryCallIsSummarisedOnTheEventFeed(t *testing.T) {
	r := newRig(t, rigOptions{})
	sub, err := r.nc.SubscribeSync(events.SubjectCall)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	cs := r.connect(t)
	ctx := ctxTimeout(t, 10*time.Second)
	if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "get_customer", Arguments: map[string]any{"id": "42"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "get_customer", Arguments: map[string]any{"id": 5}}); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		wantOutcome string
		wantWorker  bool
	}{
		{wantOutcome: "ok", wantWorker: true},
		{wantOutcome: "invalid_arguments"},
	}
	for _, tt := range tests {
		msg, err := sub.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatalf("no %s call event: %v", tt.wantOutcome, err)
		}
		var ev events.Call
		if err := json.Unmarshal(msg.Data, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Tool != "get_customer" || ev.Upstream != "crm" || ev.Via != "mcp" || ev.Outcome != tt.wantOutcome || ev.ID == "" ||
			ev.Instance != "front-test" || ev.DurationMS <= 0 || time.Since(ev.Time) > time.Minute {
			t.Errorf("event = %+v, want outcome %s", ev, tt.wantOutcome)
		}
		if got := ev.Worker != "" && ev.Attempts >= 0; got != tt.wantWorker {
			t.Errorf("event %s: worker %q, want answered by a worker: %v", ev.Outcome, ev.Worker, tt.wantWorker)
		}
	}
}
