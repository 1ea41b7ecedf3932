package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"

	toolbusv1 "github.com/toolbus/toolbus/gen/toolbus/v1"
	"github.com/toolbus/toolbus/telemetry"
)

// Delivery describes one delivery of a call by JetStream.
type Delivery struct {
	// Number is 1 for the first delivery, 2 after one redelivery, and so on.
	Number uint64
	// Last is true when JetStream will not deliver the call again.
	Last           bool
	StreamSequence uint64
	Subject        string
}

// CallHandler performs one call. It returns the result to send to the caller
// (failures included, as a result with Error set). A non-nil error means the
// call was not performed to an answer (for example the worker is stopping)
// and should be delivered again, to this or another replica.
type CallHandler func(ctx context.Context, call *toolbusv1.ToolCall, d Delivery) (*toolbusv1.ToolResult, error)

// WorkerOptions configures a Worker.
type WorkerOptions struct {
	// Name identifies the worker instance in results and logs.
	Name   string
	Logger *slog.Logger
	// DefaultCallTimeout applies to calls that carry no deadline.
	DefaultCallTimeout time.Duration
	// RedeliveryDelay is how long a call handed back (by a stopping worker or
	// after an unanswered attempt) waits before JetStream redelivers it.
	RedeliveryDelay time.Duration
	// TracerProvider records a consumer span per delivery (the reply sent
	// is an attribute of it); MeterProvider the worker metrics. No-op when
	// nil.
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
}

// Worker consumes tool calls from durable consumers, runs them through a
// handler, publishes each result on the call's reply subject and only then
// acknowledges the call.
type Worker struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	log     *slog.Logger
	opts    WorkerOptions
	tracer  trace.Tracer
	metrics *telemetry.WorkerMetrics

	// base is the parent of every handler context; cancelled at hard stop.
	base     context.Context
	hardStop context.CancelFunc
	stopping atomic.Bool
	inflight sync.WaitGroup

	mu       sync.Mutex
	consumes []jetstream.ConsumeContext
	// cancels stops calls their callers gave up on (cancel.go).
	cancels cancelRegistry
}

// NewWorker returns a worker that has not started consuming.
func NewWorker(nc *nats.Conn, js jetstream.JetStream, opts WorkerOptions) *Worker {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.DefaultCallTimeout <= 0 {
		opts.DefaultCallTimeout = 30 * time.Second
	}
	if opts.RedeliveryDelay <= 0 {
		opts.RedeliveryDelay = 200 * time.Millisecond
	}
	var wm *telemetry.WorkerMetrics
	if opts.MeterProvider != nil {
		var err error
		if wm, err = telemetry.NewWorkerMetrics(opts.MeterProvider); err != nil {
			opts.Logger.Warn("worker metrics", "error", err)
		}
	}
	base, cancel := context.WithCancel(context.Background())
	return &Worker{nc: nc, js: js, log: opts.Logger, opts: opts, tracer: tracerFrom(opts.TracerProvider), metrics: wm, base: base, hardStop: cancel}
}

// ServeCalls creates or updates the upstream's durable consumer and starts
// consuming it. It returns once consumption has started.
func (w *Worker) ServeCalls(ctx context.Context, cc CallConsumer, h CallHandler) error {
	if w.stopping.Load() {
		return ErrShuttingDown
	}
	if err := w.cancels.listen(w.nc); err != nil {
		return err
	}
	cfg := cc.Config()
	var cons jetstream.Consumer
	err := Declare(ctx, func(ctx context.Context) (err error) {
		cons, err = w.js.CreateOrUpdateConsumer(ctx, StreamCalls, cfg)
		return err
	})
	if err != nil {
		return fmt.Errorf("consumer %s: %w", cfg.Durable, err)
	}
	log := w.log.With("consumer", cfg.Durable)
	heartbeat := cfg.AckWait / 3
	buffer := min(cfg.MaxAckPending, 256)
	cctx, err := cons.Consume(func(msg jetstream.Msg) {
		if w.stopping.Load() {
			// Draining: hand the call straight back so another replica takes it.
			_ = msg.Nak()
			return
		}
		w.inflight.Add(1)
		go w.handle(msg, cfg.Durable, cfg.MaxDeliver, heartbeat, h, log)
	},
		jetstream.PullMaxMessages(buffer),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			if !errors.Is(err, jetstream.ErrNoHeartbeat) || w.nc.IsConnected() {
				log.Warn("consume", "error", err)
			}
		}),
	)
	if err != nil {
		return fmt.Errorf("consume %s: %w", cfg.Durable, err)
	}
	w.mu.Lock()
	w.consumes = append(w.consumes, cctx)
	w.mu.Unlock()
	return nil
}

func (w *Worker) handle(msg jetstream.Msg, consumer string, maxDeliver int, heartbeat time.Duration, h CallHandler, log *slog.Logger) {
	defer w.inflight.Done()
	d := Delivery{Subject: msg.Subject()}
	if meta, err := msg.Metadata(); err == nil {
		d.Number = meta.NumDelivered
		d.StreamSequence = meta.Sequence.Stream
		d.Last = maxDeliver > 0 && meta.NumDelivered >= uint64(maxDeliver)
	}
	// The call's trace continues here: the caller's span (mcp-front's
	// tools/call) is the parent.
	tctx, span := startProcessSpan(ExtractTrace(w.base, msg.Headers()), w.tracer, consumer, d, len(msg.Data()))
	defer span.End()

	call := &toolbusv1.ToolCall{}
	if err := proto.Unmarshal(msg.Data(), call); err != nil {
		// Poison: it can never succeed; keep it for inspection and move on.
		w.deadLetter(msg, d, "undecodable tool call", toolbusv1.ErrorClass_ERROR_CLASS_INTERNAL, err.Error(), log)
		_ = msg.TermWithReason("undecodable")
		endProcessSpan(span, nil, "term", 0, err)
		return
	}
	var queueWait time.Duration
	if call.AcceptedAt != nil {
		queueWait = time.Since(call.AcceptedAt.AsTime())
	}
	annotateProcessSpan(span, call, queueWait)
	w.metrics.Received(tctx, call.Tool, call.Upstream, queueWait, d.Number)

	deadline := time.Now().Add(w.opts.DefaultCallTimeout)
	if call.Deadline != nil {
		deadline = call.Deadline.AsTime()
	}
	if !time.Now().Before(deadline) {
		w.answer(tctx, msg, call, d, &toolbusv1.ToolResult{Error: &toolbusv1.ToolError{
			Class:   toolbusv1.ErrorClass_ERROR_CLASS_TIMEOUT,
			Code:    "deadline_exceeded_in_queue",
			Message: fmt.Sprintf("tool %s was not started: its deadline passed while it waited in the queue; the upstream %s may be overloaded, retrying later may help", call.Tool, call.Upstream),
		}}, log)
		return
	}

	ctx, cancel := context.WithDeadline(tctx, deadline)
	defer cancel()
	ctx, release := w.cancels.track(ctx, call.Id)
	defer release()

	stopBeat := w.keepAlive(msg, heartbeat)
	res, err := w.run(ctx, h, call, d)
	stopBeat()
	if err != nil && cancelledByCaller(ctx) {
		// Nobody waits for this call any more: answer (to no one) and ack
		// rather than hand it to another replica.
		res, err = cancelledResult(call), nil
	}

	if err != nil {
		if d.Last {
			w.deadLetter(msg, d, "deliveries exhausted", toolbusv1.ErrorClass_ERROR_CLASS_INTERNAL, err.Error(), log)
			w.answer(tctx, msg, call, d, &toolbusv1.ToolResult{Error: &toolbusv1.ToolError{
				Class:   toolbusv1.ErrorClass_ERROR_CLASS_INTERNAL,
				Code:    "deliveries_exhausted",
				Message: fmt.Sprintf("tool %s could not be completed after %d attempts by Toolbus workers (%v); retrying later may help", call.Tool, d.Number, err),
			}}, log)
			return
		}
		log.Info("call handed back for redelivery", "call_id", call.Id, "tool", call.Tool, "delivery", d.Number, "error", err)
		_ = msg.NakWithDelay(w.opts.RedeliveryDelay)
		endProcessSpan(span, nil, "nak", 0, err)
		return
	}
	w.deadLetterFailed(ctx, msg, d, res)
	w.answer(tctx, msg, call, d, res, log)
}

// run calls h, turning a panic into an internal-error result.
func (w *Worker) run(ctx context.Context, h CallHandler, call *toolbusv1.ToolCall, d Delivery) (res *toolbusv1.ToolResult, err error) {
	defer func() {
		if p := recover(); p != nil {
			w.log.Error("panic in call handler", "tool", call.Tool, "call_id", call.Id, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			res, err = &toolbusv1.ToolResult{Error: &toolbusv1.ToolError{
				Class:   toolbusv1.ErrorClass_ERROR_CLASS_INTERNAL,
				Code:    "internal",
				Message: fmt.Sprintf("tool %s failed inside Toolbus (an internal fault was logged); retrying will not help until it is fixed", call.Tool),
			}}, nil
		}
	}()
	return h(ctx, call, d)
}

// keepAlive tells JetStream the call is still being worked on, so a long
// call is not redelivered to another replica while this one is healthy.
// It arms one runtime timer, which fires only for calls that outlive
// every (a third of AckWait): most calls stop it before it ever runs, so
// a call costs no goroutine, ticker or channel. Once stop returns no
// further heartbeat is sent.
func (w *Worker) keepAlive(msg jetstream.Msg, every time.Duration) (stop func()) {
	if every <= 0 {
		return func() {}
	}
	b := &heartbeat{msg: msg, every: every}
	b.mu.Lock()
	b.t = time.AfterFunc(every, b.beat)
	b.mu.Unlock()
	return b.stop
}

// heartbeat is one call's keepAlive timer.
type heartbeat struct {
	mu      sync.Mutex
	msg     jetstream.Msg
	every   time.Duration
	t       *time.Timer
	stopped bool
}

func (b *heartbeat) beat() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.stopped {
		return
	}
	_ = b.msg.InProgress()
	b.t.Reset(b.every)
}

func (b *heartbeat) stop() {
	b.mu.Lock()
	b.stopped = true
	b.t.Stop()
	b.mu.Unlock()
}

// answer publishes the result on the call's reply subject, then acks. ctx
// carries the delivery's span.
func (w *Worker) answer(ctx context.Context, msg jetstream.Msg, call *toolbusv1.ToolCall, d Delivery, res *toolbusv1.ToolResult, log *slog.Logger) {
	if res == nil {
		res = &toolbusv1.ToolResult{}
	}
	res.CallId = call.Id
	res.Delivery = d.Number
	res.Worker = w.opts.Name
	span := trace.SpanFromContext(ctx)
	replySize := 0
	if call.ReplySubject != "" {
		data, err := proto.Marshal(res)
		if err == nil {
			// No trace headers: nothing continues the trace from a reply
			// (the Caller reads only the body), and every traceparent costs
			// the NATS server and the caller a header parse.
			err = w.nc.Publish(call.ReplySubject, data)
			replySize = len(data)
		}
		if err != nil {
			// The caller cannot hear us now; let JetStream deliver the call
			// again (idempotency keys make a repeat safe).
			log.Warn("reply not sent, call handed back", "call_id", call.Id, "error", err)
			_ = msg.NakWithDelay(w.opts.RedeliveryDelay)
			endProcessSpan(span, res, "nak", 0, err)
			span.SetStatus(codes.Error, "reply not sent")
			return
		}
	}
	if err := msg.Ack(); err != nil {
		log.Warn("ack", "call_id", call.Id, "error", err)
	}
	var upstreamTime time.Duration
	if res.UpstreamDuration != nil {
		upstreamTime = res.UpstreamDuration.AsDuration()
	}
	w.metrics.Answered(ctx, call.Tool, call.Upstream, ResultOutcome(res), upstreamTime, res.Attempts)
	endProcessSpan(span, res, "ack", replySize, nil)
}

func (w *Worker) deadLetter(msg jetstream.Msg, d Delivery, reason string, class toolbusv1.ErrorClass, lastErr string, log *slog.Logger) {
	dl := &toolbusv1.DeadLetter{
		Kind:           "call",
		Subject:        msg.Subject(),
		Payload:        withoutCallerToken(msg.Data()), // calltoken.go
		Reason:         reason,
		Class:          class,
		Deliveries:     d.Number,
		LastError:      lastErr,
		Stream:         StreamCalls,
		StreamSequence: d.StreamSequence,
		Handler:        w.opts.Name,
	}
	dl.Headers = flattenHeaders(msg.Headers())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := PublishDeadLetter(ctx, w.js, dl, upstreamOf(msg.Subject())); err != nil {
		log.Error("dead letter not stored", "subject", msg.Subject(), "reason", reason, "error", err)
	}
}

// Shutdown stops the worker in two phases: it stops fetching and hands
// undispatched calls back, then waits for in-flight calls until ctx ends; at
// that point it cancels them (they are handed back for redelivery) and waits
// for their handlers to return.
func (w *Worker) Shutdown(ctx context.Context) error {
	if !w.stopping.CompareAndSwap(false, true) {
		return nil
	}
	w.mu.Lock()
	consumes := w.consumes
	w.consumes = nil
	w.mu.Unlock()
	w.cancels.stop()
	for _, c := range consumes {
		c.Drain()
	}
	for _, c := range consumes {
		select {
		case <-c.Closed():
		case <-ctx.Done():
		}
	}
	done := make(chan struct{})
	go func() { w.inflight.Wait(); close(done) }()
	select {
	case <-done:
		w.hardStop()
		return nil
	case <-ctx.Done():
		w.hardStop()
		<-done
		return fmt.Errorf("worker %s: in-flight calls cancelled at shutdown: %w", w.opts.Name, ctx.Err())
	}
}

func flattenHeaders(h nats.Header) map[string]string {
	if len(h) == 0 {
		return nil
	}
	m := make(map[string]string, len(h))
	for k, v := range h {
		if len(v) > 0 {
			m[k] = v[0]
		}
	}
	return m
}

// upstreamOf extracts <upstream> from toolbus.call.<kind>.<upstream>.<tool>.
func upstreamOf(subject string) string {
	parts := 0
	start := 0
	for i := 0; i < len(subject); i++ {
		if subject[i] == '.' {
			parts++
			if parts == 3 {
				start = i + 1
			} else if parts == 4 {
				return subject[start:i]
			}
		}
	}
	return "unknown"
}
