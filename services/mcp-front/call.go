package mcpfront

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nuid"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/toolbus/toolbus/bus"
	"github.com/toolbus/toolbus/catalog"
	toolbusv1 "github.com/toolbus/toolbus/gen/toolbus/v1"
	"github.com/toolbus/toolbus/mcpauth"
)

// MetaIdempotencyKey is the tools/call _meta key (and the gRPC
// CallToolRequest field) with which a client chooses the call's idempotency
// key, so that a retried call is performed once.
const MetaIdempotencyKey = "toolbus/idempotencyKey"

// MaxIdempotencyKeyLen bounds a client-chosen idempotency key.
const MaxIdempotencyKeyLen = 200

// busRetryAfter is the hint given when the bus cannot take a call: NATS
// reconnects every few hundred milliseconds.
const busRetryAfter = time.Second

// Protocol faults of the shared call path. Transports map them: MCP keeps
// invalid arguments as a tool error (the model can fix them); gRPC uses
// status codes.
var (
	errUnknownTool = errors.New("unknown tool")
	// errBadIdempotencyKey is a client programming fault, not the model's.
	errBadIdempotencyKey = errors.New("invalid idempotency key")
)

// callRequest is one call as received from any transport.
type callRequest struct {
	tool *frontTool
	// args is the raw JSON object of arguments (empty means {}).
	args []byte
	// idempotencyKey is empty when the client chose none.
	idempotencyKey string
	via            string
	// sessionID is the MCP session, if any (a span attribute).
	sessionID string
	// caller is the authenticated caller; nil without authentication.
	caller *mcpauth.Identity
	// progress, when set, receives the worker's progress reports (the
	// MCP client sent a progress token).
	progress func(context.Context, bus.Progress)
}

// call is the one path every tools/call takes, MCP or gRPC: validate,
// publish, wait, classify. A returned ToolResult may carry an Error (the
// call failed in a way a model can act on). A returned error is a protocol
// fault (*catalog.ArgumentError, errBadIdempotencyKey) or the caller's own
// cancellation (ctx's error); nothing was answered then.
func (s *Service) call(ctx context.Context, req callRequest) (*toolbusv1.ToolResult, error) {
	start := time.Now()
	t := req.tool
	tc := &toolbusv1.ToolCall{
		Id:            nuid.Next(),
		Tool:          t.name,
		Upstream:      t.upstream,
		Kind:          t.kind,
		CatalogDigest: s.current().cat.Digest,
	}
	ctx, span := s.startCallSpan(ctx, req, tc.Id, req.sessionID)
	defer span.End()
	res, cause, err := s.perform(ctx, start, req, tc)
	outcome := outcomeOf(res, err)
	endCallSpan(span, outcome, res)
	s.metrics.Record(ctx, t.name, t.upstream, outcome, req.via, time.Since(start))
	s.logCall(ctx, req, tc.Id, outcome, start, res, cause)
	s.publishCallEvent(ctx, req, tc.Id, outcome, start, res)
	return res, err
}

// perform runs the call. cause is the bus error behind a result that
// Toolbus made up itself, for the log line only: the model gets the
// classified message, operators get the reason.
func (s *Service) perform(ctx context.Context, start time.Time, req callRequest, tc *toolbusv1.ToolCall) (res *toolbusv1.ToolResult, cause, err error) {
	t := req.tool
	if err := checkIdempotencyKey(req.idempotencyKey); err != nil {
		return nil, nil, err
	}
	args, err := t.cat.ValidateArguments(req.args)
	if err != nil {
		return nil, nil, err
	}
	release, ok := s.perCaller.acquire(limitKey(req))
	if !ok {
		return tooManyCalls(t, s.perCaller.max), nil, nil
	}
	defer release()
	caller, err := s.admit()
	if err != nil {
		return shuttingDown(t), err, nil
	}
	defer s.inflight.Done()

	// The tool's timeout bounds the call unless the client's own deadline
	// is sooner; the worker gets the same absolute deadline.
	timeout := t.timeout
	deadline := start.Add(timeout)
	clientDeadline := false
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline, clientDeadline = d, true
	}
	cctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	if t.cat.IsVirtual() {
		return s.runVirtual(cctx, caller, req, tc, args) // composite.go
	}

	tc.Arguments = req.args
	if len(tc.Arguments) == 0 {
		tc.Arguments = []byte("{}")
	}
	tc.IdempotencyKey = req.idempotencyKey
	if req.caller != nil {
		// The token travels only to upstreams that forward or exchange it.
		tc.Caller = req.caller.Proto(t.cat.Upstream.Auth.NeedsCallerToken())
	}
	tc.Deadline = timestamppb.New(deadline)
	tc.AcceptedAt = timestamppb.New(start)

	publish := func() (*toolbusv1.ToolResult, error, error) {
		return s.publish(ctx, cctx, caller, req, tc, timeout, start, deadline, clientDeadline)
	}
	if res, cause, err, ok := s.cached(cctx, req, tc.CatalogDigest, publish); ok { // cache.go
		return res, cause, err
	}
	return publish()
}

// publish sends the call on the bus and waits for its answer.
func (s *Service) publish(ctx, cctx context.Context, caller *bus.Caller, req callRequest, tc *toolbusv1.ToolCall, timeout time.Duration, start, deadline time.Time, clientDeadline bool) (res *toolbusv1.ToolResult, cause, err error) {
	t := req.tool
	if req.progress != nil { // progress.go
		stop := s.forwardProgress(ctx, caller.ReplySubject(tc.Id), req.progress)
		defer stop()
	}
	res, err = caller.Call(cctx, t.subject, tc)
	switch {
	case err == nil:
		return res, nil, nil
	case ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded):
		// The client cancelled: nobody is left to read an answer.
		return nil, nil, ctx.Err()
	case cctx.Err() != nil:
		// Checked before bus errors: a publish cut short by the deadline
		// is a timeout, not an unavailable bus.
		budget := timeout
		what := "the tool's timeout"
		if clientDeadline {
			budget = deadline.Sub(start)
			what = "the client's deadline"
		}
		return &toolbusv1.ToolResult{Error: &toolbusv1.ToolError{
			Class: toolbusv1.ErrorClass_ERROR_CLASS_TIMEOUT,
			Code:  "timeout",
			Message: fmt.Sprintf("tool %s got no answer from upstream %s within %s (%s); the upstream may be slow or overloaded, retrying later may help",
				t.name, t.upstream, budget.Round(time.Millisecond), what),
			Retryable: true,
		}}, err, nil
	case errors.Is(err, bus.ErrBusUnavailable):
		return &toolbusv1.ToolResult{Error: &toolbusv1.ToolError{
			Class:      toolbusv1.ErrorClass_ERROR_CLASS_BUS_UNAVAILABLE,
			Code:       "bus_unavailable",
			Message:    "Toolbus could not queue the call: the message bus is unavailable; retry shortly",
			Retryable:  true,
			RetryAfter: durationpb.New(busRetryAfter),
		}}, err, nil
	case errors.Is(err, bus.ErrShuttingDown):
		return shuttingDown(t), err, nil
	}
	// Anything else is a Toolbus fault; the model still gets an answer.
	return &toolbusv1.ToolResult{Error: &toolbusv1.ToolError{
		Class:   toolbusv1.ErrorClass_ERROR_CLASS_INTERNAL,
		Code:    "internal",
		Message: fmt.Sprintf("tool %s could not be called because of a fault inside Toolbus (%v); retrying may help", t.name, err),
	}}, err, nil
}

func shuttingDown(t *frontTool) *toolbusv1.ToolResult {
	return &toolbusv1.ToolResult{Error: &toolbusv1.ToolError{
		Class:      toolbusv1.ErrorClass_ERROR_CLASS_BUS_UNAVAILABLE,
		Code:       "shutting_down",
		Message:    fmt.Sprintf("tool %s was not called: this Toolbus instance is shutting down; retry shortly", t.name),
		Retryable:  true,
		RetryAfter: durationpb.New(busRetryAfter),
	}}
}

// checkIdempotencyKey accepts 1 to 200 visible ASCII characters: the key is
// sent to upstreams as an HTTP header value, where anything else is mangled.
func checkIdempotencyKey(k string) error {
	if k == "" {
		return nil
	}
	if len(k) > MaxIdempotencyKeyLen {
		return fmt.Errorf("%w: %d characters long, the limit is %d", errBadIdempotencyKey, len(k), MaxIdempotencyKeyLen)
	}
	for i := 0; i < len(k); i++ {
		if c := k[i]; c < 0x21 || c > 0x7e {
			return fmt.Errorf("%w: character %d is not visible ASCII", errBadIdempotencyKey, i+1)
		}
	}
	return nil
}

// idempotencyKeyFromMeta reads the client's key from a request's _meta.
func idempotencyKeyFromMeta(meta map[string]any) (string, error) {
	v, ok := meta[MetaIdempotencyKey]
	if !ok || v == nil {
		return "", nil
	}
	k, ok := v.(string)
	if !ok || k == "" {
		return "", fmt.Errorf("%w: _meta %q must be a non-empty string", errBadIdempotencyKey, MetaIdempotencyKey)
	}
	return k, nil
}

// outcomeOf names the outcome of a call for logs: "ok", a ToolError code,
// "invalid_arguments" or "cancelled".
func outcomeOf(res *toolbusv1.ToolResult, err error) string {
	if err == nil && res.GetError() == nil {
		// The common case, without errors.As's target escaping to the heap.
		return "ok"
	}
	var argErr *catalog.ArgumentError
	switch {
	case errors.As(err, &argErr):
		return "invalid_arguments"
	case errors.Is(err, errBadIdempotencyKey):
		return "invalid_idempotency_key"
	case errors.Is(err, context.Canceled):
		return "cancelled"
	case err != nil:
		return "internal"
	case res.GetError() != nil:
		if c := res.GetError().GetCode(); c != "" {
			return c
		}
		return className(res.GetError().GetClass())
	}
	return "ok"
}

// logCall writes the one info line of a call. The logger's handler adds
// trace_id and span_id (telemetry.LogHandler) from ctx, which carries the
// call's span.
func (s *Service) logCall(ctx context.Context, req callRequest, id, outcome string, start time.Time, res *toolbusv1.ToolResult, cause error) {
	if !s.log.Enabled(ctx, slog.LevelInfo) {
		return
	}
	attrs := make([]slog.Attr, 0, 8)
	attrs = append(attrs,
		slog.String("tool", req.tool.name),
		slog.String("upstream", req.tool.upstream),
		slog.String("call_id", id),
		slog.String("outcome", outcome),
		slog.Duration("duration", time.Since(start)),
		slog.String("via", req.via),
	)
	if req.caller != nil {
		attrs = append(attrs, slog.Any("caller", req.caller))
	}
	if cause != nil {
		attrs = append(attrs, slog.String("error", cause.Error()))
	}
	if res != nil && res.Worker != "" {
		attrs = append(attrs, slog.String("worker", res.Worker))
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "tool call", attrs...)
}

// className is the stable lower-case name of an error class, e.g.
// "rate_limited", as exposed in the result's _meta.
func className(c toolbusv1.ErrorClass) string {
	n, ok := toolbusv1.ErrorClass_name[int32(c)]
	if !ok {
		return "unspecified"
	}
	return strings.ToLower(strings.TrimPrefix(n, "ERROR_CLASS_"))
}

// errorMeta is the _meta "toolbus/error" object of a failed call.
type errorMeta struct {
	Class             string  `json:"class"`
	Code              string  `json:"code"`
	Retryable         bool    `json:"retryable"`
	RetryAfterSeconds float64 `json:"retryAfterSeconds"`
	UpstreamStatus    int32   `json:"upstreamStatus"`
}

func newErrorMeta(e *toolbusv1.ToolError) errorMeta {
	return errorMeta{
		Class:             className(e.GetClass()),
		Code:              e.GetCode(),
		Retryable:         e.GetRetryable(),
		RetryAfterSeconds: e.GetRetryAfter().AsDuration().Seconds(),
		UpstreamStatus:    e.GetUpstreamStatus(),
	}
}

// structured returns the structuredContent for a JSON result: the object
// itself, or {"result": value} for an array or scalar, since MCP clients
// expect structured content to be an object. ok is false for text that is
// not valid JSON, which is then shown as text only.
func structured(body []byte) (v json.RawMessage, ok bool) {
	if !json.Valid(body) {
		return nil, false
	}
	for _, c := range body {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		case '{':
			return body, true
		}
		break
	}
	out := make([]byte, 0, len(body)+len(`{"result":}`))
	out = append(out, `{"result":`...)
	out = append(out, body...)
	out = append(out, '}')
	return out, true
}
