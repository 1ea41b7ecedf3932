package bus_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/toolbus/toolbus/bus"
	toolbusv1 "github.com/toolbus/toolbus/gen/toolbus/v1"
)

// A call that runs for several AckWaits is kept alive by the worker's
// heartbeat timer, so JetStream never hands it to anyone else.
func TestLongCallIsNotRedelivered(t *testing.T) {
	r := newRig(t)
	var deliveries atomic.Int64
	cc := bus.CallConsumer{Kind: "rest", Upstream: "slow", Concurrency: 2, AckWait: 300 * time.Millisecond, MaxDeliver: 5}
	r.serve(t, "w1", cc, func(ctx context.Context, call *toolbusv1.ToolCall, d bus.Delivery) (*toolbusv1.ToolResult, error) {
		deliveries.Add(1)
		select {
		case <-time.After(1200 * time.Millisecond): // four AckWaits
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return &toolbusv1.ToolResult{Text: "done"}, nil
	})
	res, err := r.caller.Call(ctxTimeout(t, 10*time.Second), bus.CallSubject("rest", "slow", "wait"), call("wait", `{}`))
	if err != nil {
		t.Fatal(err)
	}
	if res.GetText() != "done" || res.GetDelivery() != 1 {
		t.Errorf("result %q from delivery %d, want done from delivery 1", res.GetText(), res.GetDelivery())
	}
	time.Sleep(400 * time.Millisecond) // a redelivery would show by now
	if n := deliveries.Load(); n != 1 {
		t.Errorf("call delivered %d times, want 1", n)
	}
}
