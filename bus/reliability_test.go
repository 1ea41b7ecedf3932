package bus_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/toolbus/toolbus/bus"
	toolbusv1 "github.com/toolbus/toolbus/gen/toolbus/v1"
)

// TestCallerCancelStopsTheWorker: a caller that gives up cancels the
// handler's context; the call is acked, not handed to another replica.
func TestCallerCancelStopsTheWorker(t *testing.T) {
	r := newRig(t)
	started := make(chan struct{}, 1)
	var runs atomic.Int32
	cause := make(chan error, 1)
	r.serve(t, "w", crm, func(ctx context.Context, c *toolbusv1.ToolCall, d bus.Delivery) (*toolbusv1.ToolResult, error) {
		runs.Add(1)
		started <- struct{}{}
		<-ctx.Done()
		cause <- context.Cause(ctx)
		return nil, ctx.Err()
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := r.caller.Call(ctx, bus.CallSubject("rest", "crm", "slow"), call("slow", `{}`))
		done <- err
	}()
	<-started
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Call returned %v, want context.Canceled", err)
	}
	select {
	case err := <-cause:
		if !errors.Is(err, bus.ErrCancelledByCaller) {
			t.Errorf("handler context ended by %v, want ErrCancelledByCaller", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the worker kept working after the caller cancelled (its deadline is 10s)")
	}
	// Acked: not delivered again, and the stream drains.
	time.Sleep(300 * time.Millisecond)
	if n := runs.Load(); n != 1 {
		t.Errorf("handler ran %d times, want 1", n)
	}
	n, err := bus.CallsOutstanding(ctxTimeout(t, 5*time.Second), r.js)
	if err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d calls outstanding after a cancelled call, want 0", n)
	}
}

// TestPermanentFailuresAreDeadLettered: results Toolbus gave up on after
// trying the upstream are dead-lettered; answers the upstream gave on
// purpose are not.
func TestPermanentFailuresAreDeadLettered(t *testing.T) {
	r := newRig(t)
	results := map[string]*toolbusv1.ToolResult{
		"failed": {Attempts: 3, UpstreamStatus: 503, Error: &toolbusv1.ToolError{
			Class: toolbusv1.ErrorClass_ERROR_CLASS_UPSTREAM_FAILED, Code: "upstream_failed", Message: "upstream crm failed with 503", Retryable: true}},
		"rejected": {Attempts: 1, UpstreamStatus: 400, Error: &toolbusv1.ToolError{
			Class: toolbusv1.ErrorClass_ERROR_CLASS_UPSTREAM_REJECTED, Code: "upstream_rejected", Message: "rejected"}},
		"ratelimited": {Attempts: 1, UpstreamStatus: 429, Error: &toolbusv1.ToolError{
			Class: toolbusv1.ErrorClass_ERROR_CLASS_RATE_LIMITED, Code: "upstream_rate_limited", Message: "429", Retryable: true}},
		"circuit": {Attempts: 1, Error: &toolbusv1.ToolError{
			Class: toolbusv1.ErrorClass_ERROR_CLASS_CIRCUIT_OPEN, Code: "circuit_open", Message: "open", Retryable: true}},
		"ok": {Attempts: 1, UpstreamStatus: 200, Json: []byte(`{}`)},
	}
	r.serve(t, "w", crm, func(ctx context.Context, c *toolbusv1.ToolCall, d bus.Delivery) (*toolbusv1.ToolResult, error) {
		return proto.Clone(results[c.Tool]).(*toolbusv1.ToolResult), nil
	})
	for _, tool := range []string{"rejected", "ratelimited", "circuit", "ok", "failed"} {
		res, err := r.caller.Call(ctxTimeout(t, 5*time.Second), bus.CallSubject("rest", "crm", tool), call(tool, `{}`))
		if err != nil {
			t.Fatal(err)
		}
		if got, want := res.GetError().GetCode(), results[tool].GetError().GetCode(); got != want {
			t.Errorf("%s: caller got %q, want %q", tool, got, want)
		}
	}
	dls := deadLetters(t, r.js)
	if len(dls) != 1 {
		t.Fatalf("%d dead letters, want 1 (only the call that failed on every attempt): %v", len(dls), dls)
	}
	c := &toolbusv1.ToolCall{}
	if err := proto.Unmarshal(dls[0].Payload, c); err != nil {
		t.Fatal(err)
	}
	if c.Tool != "failed" || dls[0].Reason != "retries exhausted: upstream_failed after 3 attempts" ||
		dls[0].LastError != "upstream crm failed with 503" || dls[0].Class != toolbusv1.ErrorClass_ERROR_CLASS_UPSTREAM_FAILED {
		t.Errorf("dead letter = %v", dls[0])
	}
}

// TestResultStoreAnswersRepeatedKeys: a mutating call repeated with the
// same idempotency key gets the stored result without running again; a
// retryable failure is not stored.
func TestResultStoreAnswersRepeatedKeys(t *testing.T) {
	r := newRig(t)
	store, err := bus.OpenResultStore(ctxTimeout(t, 5*time.Second), r.js)
	if err != nil {
		t.Fatal(err)
	}
	var runs atomic.Int32
	fail := atomic.Bool{}
	h := store.Remember(func(ctx context.Context, c *toolbusv1.ToolCall, d bus.Delivery) (*toolbusv1.ToolResult, error) {
		n := runs.Add(1)
		if fail.Load() {
			return &toolbusv1.ToolResult{Attempts: 1, UpstreamStatus: 503, Error: &toolbusv1.ToolError{Code: "upstream_failed", Retryable: true}}, nil
		}
		return &toolbusv1.ToolResult{Attempts: 1, UpstreamStatus: 201, Json: []byte(`{"run":` + string(rune('0'+n)) + `}`)}, nil
	}, func(c *toolbusv1.ToolCall) bool { return c.Tool == "create" })
	r.serve(t, "w", crm, h)

	do := func(tool, key string) *toolbusv1.ToolResult {
		t.Helper()
		c := call(tool, `{}`)
		c.IdempotencyKey = key
		res, err := r.caller.Call(ctxTimeout(t, 5*time.Second), bus.CallSubject("rest", "crm", tool), c)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	first := do("create", "key-1")
	again := do("create", "key-1")
	if string(again.Json) != string(first.Json) || runs.Load() != 1 || again.Attempts != 0 {
		t.Errorf("repeat: %s (attempts %d) after %s, handler ran %d times; want the stored result, one run", again.Json, again.Attempts, first.Json, runs.Load())
	}
	do("read", "key-1")
	do("read", "key-1")
	if n := runs.Load(); n != 3 {
		t.Errorf("non-mutating calls ran %d times in total, want 3: they are never answered from the store", n)
	}
	fail.Store(true)
	do("create", "key-2")
	fail.Store(false)
	if res := do("create", "key-2"); res.Error != nil || runs.Load() != 5 {
		t.Errorf("after a retryable failure the repeat must run: %v, runs %d", res, runs.Load())
	}
}
