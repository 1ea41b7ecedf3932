package bus_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/toolbus/toolbus/bus"
	"github.com/toolbus/toolbus/bus/bustest"
	toolbusv1 "github.com/toolbus/toolbus/gen/toolbus/v1"
	"github.com/toolbus/toolbus/telemetry"
)

// TestCallSpans checks the bus's spans of one call that is handed back
// once and answered on its second delivery: no publish or reply span, one
// process span per delivery, each a direct child of the caller's span, with
// the call's attributes but not the caller's identity (on the caller's
// span only), and the reply's size on the delivery that answered.
func TestCallSpans(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })

	ns := bustest.Server(t)
	nc, js := bustest.Connect(t, ns)
	// The caller records no span of its own (it has no tracer).
	c, err := bus.NewCaller(nc, js, bus.CallerOptions{Instance: "front-1", Logger: bustest.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	w := bus.NewWorker(nc, js, bus.WorkerOptions{Name: "w", RedeliveryDelay: 10 * time.Millisecond, Logger: bustest.Logger(), TracerProvider: tp})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = w.Shutdown(ctx)
	})
	var deliveries atomic.Int32
	if err := w.ServeCalls(context.Background(), crm, func(ctx context.Context, c *toolbusv1.ToolCall, d bus.Delivery) (*toolbusv1.ToolResult, error) {
		if deliveries.Add(1) == 1 {
			return nil, errors.New("worker lost its upstream connection")
		}
		return &toolbusv1.ToolResult{Json: []byte(`{"ok":true}`), Attempts: 1}, nil
	}); err != nil {
		t.Fatal(err)
	}
	// The reply carries no trace headers (nothing reads them).
	replies := make(chan *nats.Msg, 4)
	sub, err := nc.ChanSubscribe("toolbus.reply.front-1.*", replies)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })

	ctx, front := tp.Tracer("test-front").Start(ctxTimeout(t, 10*time.Second), "tools/call get_customer", trace.WithSpanKind(trace.SpanKindServer))
	tc := call("get_customer", `{"id":"42"}`)
	tc.AcceptedAt = timestamppb.Now()
	tc.Caller = &toolbusv1.Caller{Subject: "apikey:ci", Tenant: "acme", Scopes: []string{"tools.read"}}
	if _, err := c.Call(ctx, bus.CallSubject("rest", "crm", "get_customer"), tc); err != nil {
		t.Fatal(err)
	}
	front.End()
	select {
	case m := <-replies:
		if len(m.Header) != 0 {
			t.Errorf("reply headers %v, want none", m.Header)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no reply seen")
	}

	// The process span ends after the reply and the ack.
	var spans []sdktrace.ReadOnlySpan
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		spans = exp.GetSpans().Snapshots()
		if len(spans) >= 3 || time.Now().After(deadline) {
			break
		}
	}
	var procs []sdktrace.ReadOnlySpan
	for _, s := range spans {
		switch {
		case s.Name() == "tools/call get_customer":
		case s.Name() == "process toolbus.call.rest.crm.get_customer":
			procs = append(procs, s)
		default:
			t.Errorf("unexpected span %q (%s)", s.Name(), s.SpanKind())
		}
	}
	if len(procs) != 2 {
		t.Fatalf("%d process spans, want one per delivery (2)", len(procs))
	}
	if procs[0].StartTime().After(procs[1].StartTime()) {
		procs[0], procs[1] = procs[1], procs[0]
	}
	attr := func(s sdktrace.ReadOnlySpan, k attribute.Key) (attribute.Value, bool) {
		for _, kv := range s.Attributes() {
			if kv.Key == k {
				return kv.Value, true
			}
		}
		return attribute.Value{}, false
	}
	for i, s := range procs {
		if s.Parent().SpanID() != front.SpanContext().SpanID() || s.SpanContext().TraceID() != front.SpanContext().TraceID() {
			t.Errorf("delivery %d: parent %s in trace %s, want the caller's span %s", i+1, s.Parent().SpanID(), s.SpanContext().TraceID(), front.SpanContext().SpanID())
		}
		if s.SpanKind() != trace.SpanKindConsumer {
			t.Errorf("delivery %d: kind %s", i+1, s.SpanKind())
		}
		for k, want := range map[attribute.Key]attribute.Value{
			telemetry.AttrCallID:                 attribute.StringValue(tc.Id),
			telemetry.AttrTool:                   attribute.StringValue("get_customer"),
			telemetry.AttrUpstream:               attribute.StringValue("crm"),
			telemetry.AttrMessagingDestination:   attribute.StringValue("toolbus.call.rest.crm.get_customer"),
			telemetry.AttrMessagingDeliveryCount: attribute.Int64Value(int64(i + 1)),
			telemetry.AttrDisposition:            attribute.StringValue([]string{"nak", "ack"}[i]),
		} {
			if got, ok := attr(s, k); !ok || got != want {
				t.Errorf("delivery %d: %s = %s (present %v), want %s", i+1, k, got.Emit(), ok, want.Emit())
			}
		}
		if _, ok := attr(s, telemetry.AttrQueueWait); !ok {
			t.Errorf("delivery %d: no %s", i+1, telemetry.AttrQueueWait)
		}
		// Not repeated from the caller's span.
		for _, kv := range s.Attributes() {
			if strings.HasPrefix(string(kv.Key), "toolbus.caller.") {
				t.Errorf("delivery %d: %s = %s, the caller's attributes belong on the caller's span", i+1, kv.Key, kv.Value.Emit())
			}
		}
	}
	if _, ok := attr(procs[0], attribute.Key("toolbus.reply.body_size")); ok {
		t.Error("the handed-back delivery sent no reply, but has a reply size")
	}
	if v, ok := attr(procs[1], attribute.Key("toolbus.reply.body_size")); !ok || v.AsInt64() <= 0 {
		t.Errorf("answering delivery: toolbus.reply.body_size = %s (present %v)", v.Emit(), ok)
	}
	if v, _ := attr(procs[1], telemetry.AttrOutcome); v.AsString() != "ok" {
		t.Errorf("answering delivery: outcome %q", v.AsString())
	}
}
