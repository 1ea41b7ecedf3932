package bus_test

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/toolbus/toolbus/bus"
	"github.com/toolbus/toolbus/bus/bustest"
	toolbusv1 "github.com/toolbus/toolbus/gen/toolbus/v1"
)

func TestMain(m *testing.M) {
	otel.SetTextMapPropagator(propagation.TraceContext{})
	goleak.VerifyTestMain(m)
}

// rig is one embedded server with a caller and a worker serving upstream "crm".
type rig struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	caller *bus.Caller
}

func newRig(t *testing.T) *rig {
	t.Helper()
	ns := bustest.Server(t)
	nc, js := bustest.Connect(t, ns)
	c, err := bus.NewCaller(nc, js, bus.CallerOptions{Instance: "front-1", Logger: bustest.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &rig{nc: nc, js: js, caller: c}
}

func (r *rig) serve(t *testing.T, name string, cc bus.CallConsumer, h bus.CallHandler) *bus.Worker {
	t.Helper()
	w := bus.NewWorker(r.nc, r.js, bus.WorkerOptions{Name: name, RedeliveryDelay: 10 * time.Millisecond, Logger: bustest.Logger()})
	if err := w.ServeCalls(context.Background(), cc, h); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = w.Shutdown(ctx)
	})
	return w
}

var crm = bus.CallConsumer{Kind: "rest", Upstream: "crm", Concurrency: 8, AckWait: time.Second, MaxDeliver: 3}

func call(tool string, args string) *toolbusv1.ToolCall {
	return &toolbusv1.ToolCall{
		Tool: tool, Upstream: "crm", Kind: "rest", Arguments: []byte(args),
		Deadline: timestamppb.New(time.Now().Add(10 * time.Second)),
	}
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestCallRoundTripCarriesArgumentsAndTrace(t *testing.T) {
	r := newRig(t)
	traceID := trace.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	var seenTrace trace.TraceID
	r.serve(t, "worker-a", crm, func(ctx context.Context, c *toolbusv1.ToolCall, d bus.Delivery) (*toolbusv1.ToolResult, error) {
		seenTrace = trace.SpanContextFromContext(ctx).TraceID()
		if _, ok := ctx.Deadline(); !ok {
			return nil, errors.New("handler context has no deadline")
		}
		return &toolbusv1.ToolResult{Json: c.Arguments, UpstreamStatus: 200}, nil
	})

	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: traceID, SpanID: trace.SpanID{1}, TraceFlags: trace.FlagsSampled})
	ctx := trace.ContextWithSpanContext(ctxTimeout(t, 5*time.Second), sc)
	c := call("get_customer", `{"id":"42"}`)
	res, err := r.caller.Call(ctx, bus.CallSubject("rest", "crm", "get_customer"), c)
	if err != nil {
		t.Fatal(err)
	}
	want := &toolbusv1.ToolResult{CallId: c.Id, Json: []byte(`{"id":"42"}`), UpstreamStatus: 200, Delivery: 1, Worker: "worker-a"}
	if !proto.Equal(res, want) {
		t.Errorf("result = %v, want %v", res, want)
	}
	if seenTrace != traceID {
		t.Errorf("worker saw trace %v, want %v", seenTrace, traceID)
	}
	if c.IdempotencyKey != c.Id {
		t.Errorf("idempotency key = %q, want the call id %q", c.IdempotencyKey, c.Id)
	}
	// Acked after the reply (asynchronously): nothing stays outstanding.
	var n uint64
	for range 100 {
		var err error
		if n, err = bus.CallsOutstanding(ctx, r.js); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n != 0 {
		t.Errorf("%d calls still outstanding 2s after the answer, want 0 (call not acked)", n)
	}
}

func TestConcurrentCallsGetTheirOwnResults(t *testing.T) {
	r := newRig(t)
	r.serve(t, "w", crm, func(ctx context.Context, c *toolbusv1.ToolCall, d bus.Delivery) (*toolbusv1.ToolResult, error) {
		return &toolbusv1.ToolResult{Json: c.Arguments}, nil
	})
	const n = 200
	errs := make(chan error, n)
	for i := range n {
		go func() {
			args := `{"n":` + string(rune('0'+i%10)) + `,"i":"` + time.Now().String() + `"}`
			c := call("echo", args)
			// A bound for "eventually", not a timing target: 200 calls
			// through 8 worker slots on a loaded CI runner.
			res, err := r.caller.Call(ctxTimeout(t, 30*time.Second), bus.CallSubject("rest", "crm", "echo"), c)
			if err == nil && (string(res.Json) != args || res.CallId != c.Id) {
				err = errors.New("result of another call: " + string(res.Json) + " for " + args)
			}
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

func TestDuplicateCallIDIsStoredOnce(t *testing.T) {
	r := newRig(t)
	ctx := ctxTimeout(t, 5*time.Second)
	data, _ := proto.Marshal(call("echo", `{}`))
	var dups []bool
	for range 2 {
		m := &nats.Msg{Subject: bus.CallSubject("rest", "crm", "echo"), Data: data, Header: nats.Header{}}
		m.Header.Set(bus.HeaderMsgID, "call-1")
		ack, err := r.js.PublishMsg(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		dups = append(dups, ack.Duplicate)
	}
	if diff := cmp.Diff([]bool{false, true}, dups); diff != "" {
		t.Errorf("duplicate flags (-want +got):\n%s", diff)
	}
}

func TestHandedBackCallIsDeliveredAgain(t *testing.T) {
	r := newRig(t)
	r.serve(t, "w", crm, func(ctx context.Context, c *toolbusv1.ToolCall, d bus.Delivery) (*toolbusv1.ToolResult, error) {
		if d.Number == 1 {
			return nil, errors.New("not now")
		}
		return &toolbusv1.ToolResult{Text: "ok"}, nil
	})
	res, err := r.caller.Call(ctxTimeout(t, 5*time.Second), bus.CallSubject("rest", "crm", "x"), call("x", `{}`))
	if err != nil {
		t.Fatal(err)
	}
	if res.Delivery != 2 || res.Text != "ok" {
		t.Errorf("got delivery %d text %q, want delivery 2 text ok", res.Delivery, res.Text)
	}
}

func deadLetters(t *testing.T, js jetstream.JetStream) []*toolbusv1.DeadLetter {
	t.Helper()
	ctx := ctxTimeout(t, 5*time.Second)
	cons, err := js.OrderedConsumer(ctx, bus.StreamDeadLetters, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var out []*toolbusv1.DeadLetter
	for {
		msg, err := cons.Next(jetstream.FetchMaxWait(300 * time.Millisecond))
		if err != nil {
			return out
		}
		dl := &toolbusv1.DeadLetter{}
		if err := proto.Unmarshal(msg.Data(), dl); err != nil {
			t.Fatal(err)
		}
		out = append(out, dl)
	}
}

func TestExhaustedDeliveriesAnswerAndDeadLetter(t *testing.T) {
	r := newRig(t)
	var calls atomic.Int32
	r.serve(t, "w", crm, func(ctx context.Context, c *toolbusv1.ToolCall, d bus.Delivery) (*toolbusv1.ToolResult, error) {
		calls.Add(1)
		return nil, errors.New("worker cannot finish")
	})
	c := call("x", `{"a":1}`)
	res, err := r.caller.Call(ctxTimeout(t, 5*time.Second), bus.CallSubject("rest", "crm", "x"), c)
	if err != nil {
		t.Fatal(err)
	}
	if got := res.GetError().GetCode(); got != "deliveries_exhausted" {
		t.Errorf("error code = %q, want deliveries_exhausted", got)
	}
	if n := calls.Load(); n != int32(crm.MaxDeliver) {
		t.Errorf("handler ran %d times, want MaxDeliver=%d", n, crm.MaxDeliver)
	}
	dls := deadLetters(t, r.js)
	if len(dls) != 1 {
		t.Fatalf("%d dead letters, want 1", len(dls))
	}
	got := &toolbusv1.ToolCall{}
	if err := proto.Unmarshal(dls[0].Payload, got); err != nil {
		t.Fatal(err)
	}
	if dls[0].Reason != "deliveries exhausted" || dls[0].LastError != "worker cannot finish" || got.Id != c.Id || dls[0].Deliveries != 3 {
		t.Errorf("dead letter = %v", dls[0])
	}
}

func TestPoisonCallIsDeadLetteredAndOthersContinue(t *testing.T) {
	r := newRig(t)
	r.serve(t, "w", crm, func(ctx context.Context, c *toolbusv1.ToolCall, d bus.Delivery) (*toolbusv1.ToolResult, error) {
		return &toolbusv1.ToolResult{Text: "fine"}, nil
	})
	ctx := ctxTimeout(t, 5*time.Second)
	if _, err := r.js.Publish(ctx, bus.CallSubject("rest", "crm", "x"), []byte{0xff, 0xff, 0xff}); err != nil {
		t.Fatal(err)
	}
	res, err := r.caller.Call(ctx, bus.CallSubject("rest", "crm", "x"), call("x", `{}`))
	if err != nil || res.Text != "fine" {
		t.Fatalf("call after poison: %v %v", res, err)
	}
	var dls []*toolbusv1.DeadLetter
	for range 20 {
		if dls = deadLetters(t, r.js); len(dls) > 0 {
			break
		}
	}
	if len(dls) != 1 || dls[0].Reason != "undecodable tool call" {
		t.Fatalf("dead letters = %v", dls)
	}
}

func TestExpiredCallIsNotStarted(t *testing.T) {
	r := newRig(t)
	var calls atomic.Int32
	r.serve(t, "w", crm, func(ctx context.Context, c *toolbusv1.ToolCall, d bus.Delivery) (*toolbusv1.ToolResult, error) {
		calls.Add(1)
		return &toolbusv1.ToolResult{}, nil
	})
	c := call("x", `{}`)
	c.Deadline = timestamppb.New(time.Now().Add(-time.Second))
	res, err := r.caller.Call(ctxTimeout(t, 5*time.Second), bus.CallSubject("rest", "crm", "x"), c)
	if err != nil {
		t.Fatal(err)
	}
	if res.GetError().GetClass() != toolbusv1.ErrorClass_ERROR_CLASS_TIMEOUT || calls.Load() != 0 {
		t.Errorf("got %v with %d handler runs, want a timeout and none", res, calls.Load())
	}
}

func TestShutdownFinishesInFlightCalls(t *testing.T) {
	r := newRig(t)
	started := make(chan struct{})
	release := make(chan struct{})
	w := r.serve(t, "w", crm, func(ctx context.Context, c *toolbusv1.ToolCall, d bus.Delivery) (*toolbusv1.ToolResult, error) {
		close(started)
		<-release
		return &toolbusv1.ToolResult{Text: "done"}, nil
	})
	got := make(chan *toolbusv1.ToolResult, 1)
	go func() {
		res, _ := r.caller.Call(ctxTimeout(t, 10*time.Second), bus.CallSubject("rest", "crm", "x"), call("x", `{}`))
		got <- res
	}()
	<-started
	stopped := make(chan error, 1)
	go func() { stopped <- w.Shutdown(ctxTimeout(t, 5*time.Second)) }()
	select {
	case err := <-stopped:
		t.Fatalf("shutdown returned (%v) while a call was in flight", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if err := <-stopped; err != nil {
		t.Errorf("shutdown: %v", err)
	}
	if res := <-got; res.GetText() != "done" {
		t.Errorf("in-flight call answered %v, want done", res)
	}
}

func TestShutdownPastGraceHandsCallToAnotherReplica(t *testing.T) {
	r := newRig(t)
	started := make(chan struct{}, 1)
	slow := r.serve(t, "slow", crm, func(ctx context.Context, c *toolbusv1.ToolCall, d bus.Delivery) (*toolbusv1.ToolResult, error) {
		started <- struct{}{}
		<-ctx.Done()
		return nil, ctx.Err()
	})
	got := make(chan *toolbusv1.ToolResult, 1)
	go func() {
		res, err := r.caller.Call(ctxTimeout(t, 10*time.Second), bus.CallSubject("rest", "crm", "x"), call("x", `{}`))
		if err != nil {
			t.Error(err)
		}
		got <- res
	}()
	<-started
	grace, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := slow.Shutdown(grace); err == nil {
		t.Error("shutdown past grace returned nil, want an error saying calls were cancelled")
	}
	r.serve(t, "fast", crm, func(ctx context.Context, c *toolbusv1.ToolCall, d bus.Delivery) (*toolbusv1.ToolResult, error) {
		return &toolbusv1.ToolResult{Text: "rescued"}, nil
	})
	res := <-got
	if res.GetText() != "rescued" || res.GetWorker() != "fast" || res.GetDelivery() != 2 {
		t.Errorf("got %v, want the second replica's answer on delivery 2", res)
	}
}

func TestBusLossFailsFastAndRecovers(t *testing.T) {
	dir := t.TempDir()
	ns := bustest.ServerAt(t, dir, -1)
	port := ns.Addr().(*net.TCPAddr).Port
	nc, js := bustest.Connect(t, ns)
	c, err := bus.NewCaller(nc, js, bus.CallerOptions{Logger: bustest.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	w := bus.NewWorker(nc, js, bus.WorkerOptions{Name: "w", Logger: bustest.Logger()})
	defer w.Shutdown(ctxTimeout(t, 2*time.Second))
	if err := w.ServeCalls(context.Background(), crm, func(ctx context.Context, c *toolbusv1.ToolCall, d bus.Delivery) (*toolbusv1.ToolResult, error) {
		return &toolbusv1.ToolResult{Text: "up"}, nil
	}); err != nil {
		t.Fatal(err)
	}

	ns.Shutdown()
	ns.WaitForShutdown()
	_, err = c.Call(ctxTimeout(t, 5*time.Second), bus.CallSubject("rest", "crm", "x"), call("x", `{}`))
	if !errors.Is(err, bus.ErrBusUnavailable) {
		t.Fatalf("call with NATS down: err = %v, want ErrBusUnavailable", err)
	}

	bustest.ServerAt(t, dir, port)
	deadline := time.Now().Add(10 * time.Second)
	for {
		res, err := c.Call(ctxTimeout(t, 2*time.Second), bus.CallSubject("rest", "crm", "x"), call("x", `{}`))
		if err == nil && res.GetText() == "up" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no recovery after NATS restart: %v %v", res, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
