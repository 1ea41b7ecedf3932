package bus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	toolbusv1 "github.com/toolbus/toolbus/gen/toolbus/v1"
)

// cancelSubjectRoot carries cancellations: an empty core NATS message on
// toolbus.cancel.<call id> when the caller gave up on a call (MCP
// notifications/cancelled, a closed connection). Every worker listens with
// one wildcard subscription; cancels are rare, so the fan-out is cheap.
const cancelSubjectRoot = "toolbus.cancel"

// ErrCancelledByCaller is the cause of a handler context cancelled because
// the caller gave up on the call.
var ErrCancelledByCaller = errors.New("call cancelled by the caller")

// CancelSubject is where the cancellation of call id is published.
func CancelSubject(id string) string { return cancelSubjectRoot + "." + id }

// earlyCancelTTL is how long a cancel for a call not yet started is kept:
// the call may still be waiting in the stream.
const earlyCancelTTL = 2 * time.Minute

// maxEarlyCancels bounds the memory of early cancels.
const maxEarlyCancels = 10000

// cancelRegistry maps running calls to their cancel functions.
type cancelRegistry struct {
	once sync.Once
	sub  *nats.Subscription
	err  error

	mu      sync.Mutex
	running map[string]context.CancelCauseFunc
	early   map[string]time.Time
}

// listen subscribes once to every cancellation.
func (r *cancelRegistry) listen(nc *nats.Conn) error {
	r.once.Do(func() {
		r.mu.Lock()
		r.running = map[string]context.CancelCauseFunc{}
		r.early = map[string]time.Time{}
		r.mu.Unlock()
		r.sub, r.err = nc.Subscribe(cancelSubjectRoot+".*", r.onCancel)
		if r.err != nil {
			r.err = fmt.Errorf("subscribe to cancellations: %w", r.err)
		}
	})
	return r.err
}

func (r *cancelRegistry) stop() {
	if r.sub != nil {
		_ = r.sub.Unsubscribe()
	}
}

func (r *cancelRegistry) onCancel(m *nats.Msg) {
	id := m.Subject[strings.LastIndexByte(m.Subject, '.')+1:]
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if cancel, ok := r.running[id]; ok {
		cancel(ErrCancelledByCaller)
		return
	}
	if len(r.early) >= maxEarlyCancels {
		for k, at := range r.early {
			if now.Sub(at) > earlyCancelTTL {
				delete(r.early, k)
			}
		}
		if len(r.early) >= maxEarlyCancels {
			return
		}
	}
	r.early[id] = now
}

// track returns ctx cancelled when the caller cancels call id, and a
// release function to call when the call is done.
func (r *cancelRegistry) track(ctx context.Context, id string) (context.Context, func()) {
	r.mu.Lock()
	if r.running == nil {
		r.mu.Unlock()
		return ctx, func() {}
	}
	ctx, cancel := context.WithCancelCause(ctx)
	if at, ok := r.early[id]; ok {
		delete(r.early, id)
		if time.Since(at) <= earlyCancelTTL {
			cancel(ErrCancelledByCaller)
		}
	}
	r.running[id] = cancel
	r.mu.Unlock()
	return ctx, func() {
		r.mu.Lock()
		delete(r.running, id)
		r.mu.Unlock()
		cancel(nil)
	}
}

// cancelledByCaller reports whether ctx ended because the caller gave up.
func cancelledByCaller(ctx context.Context) bool {
	return errors.Is(context.Cause(ctx), ErrCancelledByCaller)
}

func cancelledResult(call *toolbusv1.ToolCall) *toolbusv1.ToolResult {
	return &toolbusv1.ToolResult{Error: &toolbusv1.ToolError{
		Class:     toolbusv1.ErrorClass_ERROR_CLASS_CANCELLED,
		Code:      "cancelled",
		Message:   fmt.Sprintf("the call to %s (upstream %s) was cancelled by the caller before it completed; call again if the result is still needed", call.Tool, call.Upstream),
		Retryable: true,
	}}
}

// publishCancel tells the worker running call id to stop. Best effort: a
// lost cancel only means the call runs to its deadline.
func publishCancel(nc *nats.Conn, id string) {
	_ = nc.Publish(CancelSubject(id), nil)
}

// permanentFailure reports whether a result is a failure Toolbus gave up
// on after trying the upstream, which is dead-lettered so an operator can
// replay it: the upstream failed (5xx), could not be reached, or did not
// answer in time, on every attempt the policy and deadline allowed.
// Answers the upstream gave on purpose (4xx, 429), quota and circuit
// refusals (never sent) and cancellations are not.
func permanentFailure(res *toolbusv1.ToolResult) (reason string, ok bool) {
	e := res.GetError()
	if e == nil || res.GetAttempts() == 0 || !e.Retryable {
		return "", false
	}
	switch e.Class {
	case toolbusv1.ErrorClass_ERROR_CLASS_UPSTREAM_FAILED,
		toolbusv1.ErrorClass_ERROR_CLASS_UPSTREAM_UNREACHABLE,
		toolbusv1.ErrorClass_ERROR_CLASS_TIMEOUT:
		return fmt.Sprintf("retries exhausted: %s after %d attempts", e.Code, res.Attempts), true
	}
	return "", false
}

// deadLetterFailed dead-letters a call whose result is a permanent failure
// (see permanentFailure); the caller still gets the result.
func (w *Worker) deadLetterFailed(ctx context.Context, msg jetstream.Msg, d Delivery, res *toolbusv1.ToolResult) {
	if cancelledByCaller(ctx) {
		return
	}
	if reason, ok := permanentFailure(res); ok {
		w.deadLetter(msg, d, reason, res.Error.Class, res.Error.Message, w.log)
	}
}
