package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"google.golang.org/protobuf/proto"

	toolbusv1 "github.com/toolbus/toolbus/gen/toolbus/v1"
)

// Caller publishes tool calls on the CALLS stream and routes each result,
// published by a worker on a reply subject owned by this instance, back to
// the goroutine waiting for it. One Caller serves any number of concurrent
// calls over one subscription.
type Caller struct {
	nc       *nats.Conn
	js       jetstream.JetStream
	log      *slog.Logger
	prefix   string // "toolbus.reply.<instance>."
	sub      *nats.Subscription
	publishT time.Duration

	mu      sync.Mutex
	pending map[string]chan *toolbusv1.ToolResult
	closed  bool
}

// CallerOptions configures a Caller.
type CallerOptions struct {
	// Instance uniquely names this caller's reply subjects; random if empty.
	Instance string
	// PublishTimeout bounds waiting for JetStream to store a call (default 2s).
	PublishTimeout time.Duration
	Logger         *slog.Logger
}

// NewCaller subscribes to this instance's reply subjects.
func NewCaller(nc *nats.Conn, js jetstream.JetStream, opts CallerOptions) (*Caller, error) {
	inst := opts.Instance
	if inst == "" {
		inst = nuid.Next()
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	pt := opts.PublishTimeout
	if pt <= 0 {
		// A healthy JetStream stores a call in well under a millisecond; a
		// bus that takes seconds is unavailable, and the caller should hear so.
		pt = 2 * time.Second
	}
	c := &Caller{
		nc:       nc,
		js:       js,
		log:      log,
		prefix:   replySubjectRoot + "." + subjectToken(inst) + ".",
		publishT: pt,
		pending:  make(map[string]chan *toolbusv1.ToolResult),
	}
	sub, err := nc.Subscribe(c.prefix+"*", c.onReply)
	if err != nil {
		return nil, fmt.Errorf("subscribe to replies: %w", err)
	}
	// Results must never be dropped for lack of buffer space.
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("reply subscription limits: %w", err)
	}
	c.sub = sub
	return c, nil
}

// ReplySubject is the subject on which the result of call id is expected.
func (c *Caller) ReplySubject(id string) string { return c.prefix + id }

// Call publishes call on subject and waits for its result until ctx ends.
// It fills call.Id (if empty), call.ReplySubject and call.IdempotencyKey (if
// empty). The result arrives exactly once: duplicates from redelivered calls
// are dropped. An error means no result: ErrBusUnavailable, ErrShuttingDown,
// or ctx's error.
func (c *Caller) Call(ctx context.Context, subject string, call *toolbusv1.ToolCall) (*toolbusv1.ToolResult, error) {
	if call.Id == "" {
		call.Id = nuid.Next()
	}
	if call.IdempotencyKey == "" {
		call.IdempotencyKey = call.Id
	}
	call.ReplySubject = c.ReplySubject(call.Id)
	data, err := proto.Marshal(call)
	if err != nil {
		return nil, fmt.Errorf("encode call: %w", err)
	}

	ch := make(chan *toolbusv1.ToolResult, 1)
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrShuttingDown
	}
	c.pending[call.Id] = ch
	c.mu.Unlock()
	defer c.forget(call.Id)

	if !c.nc.IsConnected() {
		return nil, fmt.Errorf("%w: not connected to NATS (%s)", ErrBusUnavailable, c.nc.Status())
	}
	msg := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{}}
	msg.Header.Set(HeaderMsgID, call.Id)
	// No span of its own: the worker's process span continues the caller's
	// current span (telemetry.go).
	InjectTrace(ctx, msg.Header)
	pctx, cancel := context.WithTimeout(ctx, c.publishT)
	_, err = c.js.PublishMsg(pctx, msg)
	cancel()
	if err != nil {
		if errors.Is(ctx.Err(), context.Canceled) {
			// The call may be stored (and even running) although its PubAck
			// never reached us: delivery can beat the ack under load.
			publishCancel(c.nc, call.Id)
			return nil, ctx.Err()
		}
		// Not stored: the call was never started, so the caller may retry.
		return nil, fmt.Errorf("%w: JetStream did not store the call on %s: %v", ErrBusUnavailable, subject, err)
	}

	select {
	case res := <-ch:
		if res == nil {
			return nil, ErrShuttingDown
		}
		return res, nil
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.Canceled) {
			// The caller gave up: stop the worker's work too (cancel.go).
			publishCancel(c.nc, call.Id)
		}
		return nil, ctx.Err()
	}
}

func (c *Caller) forget(id string) {
	c.mu.Lock()
	delete(c.pending, id)
	c.mu.Unlock()
}

func (c *Caller) onReply(m *nats.Msg) {
	id := m.Subject[strings.LastIndexByte(m.Subject, '.')+1:]
	c.mu.Lock()
	ch, ok := c.pending[id]
	if ok {
		delete(c.pending, id)
	}
	c.mu.Unlock()
	if !ok {
		// The caller gave up, or a redelivered call answered twice.
		return
	}
	res := &toolbusv1.ToolResult{}
	if err := proto.Unmarshal(m.Data, res); err != nil {
		c.log.Error("undecodable tool result", "subject", m.Subject, "error", err)
		res = &toolbusv1.ToolResult{CallId: id, Error: &toolbusv1.ToolError{
			Class:   toolbusv1.ErrorClass_ERROR_CLASS_INTERNAL,
			Code:    "bad_result",
			Message: "the worker's answer could not be decoded; this is a Toolbus fault, retrying may help",
		}}
	}
	ch <- res
}

// Close stops routing results: calls still waiting return ErrShuttingDown.
func (c *Caller) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	for id, ch := range c.pending {
		close(ch)
		delete(c.pending, id)
	}
	c.mu.Unlock()
	if err := c.sub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		return fmt.Errorf("unsubscribe replies: %w", err)
	}
	return nil
}
