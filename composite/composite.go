// Package composite provides the scheduler of the tools mcp-front runs
// itself: composite tools (a small DAG of other tools' calls, independent
// steps in parallel, dependent ones in sequence, results merged) and batch
// tools (a target tool over a list of ids, one upstream call per chunk or
// bounded parallel single calls, with per-id results and errors).
//
// Every call it makes is an ordinary tool call through the bus, with its
// own deadline, retries, quotas and an idempotency key derived from the
// composite call's key. It must not call upstreams itself and must not
// retry: workers own execution. Step spans are children of the caller's
// span, so one trace covers a composite and all its steps.
package composite

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nuid"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/toolbus/toolbus/bus"
	"github.com/toolbus/toolbus/catalog"
	toolbusv1 "github.com/toolbus/toolbus/gen/toolbus/v1"
	"github.com/toolbus/toolbus/telemetry"
)

// Caller performs one tool call through the bus; *bus.Caller is one.
type Caller interface {
	Call(ctx context.Context, subject string, call *toolbusv1.ToolCall) (*toolbusv1.ToolResult, error)
}

var _ Caller = (*bus.Caller)(nil)

// Runner runs composite and batch tools. Its fields are set once; it is
// safe for concurrent use.
type Runner struct {
	Bus Caller
	// Tracer records one span per step or target call (no-op when nil).
	Tracer trace.Tracer
	// CatalogDigest is stamped on every call.
	CatalogDigest string
	// CallerFor returns the identity sent with a call to tool t (nil when
	// unauthenticated); it includes the token only for upstreams that
	// forward it.
	CallerFor func(t *catalog.Tool) *toolbusv1.Caller
}

// Call is one call of a composite or batch tool.
type Call struct {
	Tool *catalog.Tool
	// Args are the validated arguments.
	Args map[string]any
	// IdempotencyKey is the composite call's key (the client's, or the
	// call id); each inner call's key is derived from it.
	IdempotencyKey string
}

// ErrNotVirtual is returned for a tool that is neither composite nor batch.
var ErrNotVirtual = errors.New("composite: not a composite or batch tool")

// Run performs c within ctx's deadline and returns its result: the merged
// result, or a ToolError a model can act on. An error means nobody is left
// to answer (the caller cancelled: ctx's error) or c is not runnable.
func (r *Runner) Run(ctx context.Context, c Call) (*toolbusv1.ToolResult, error) {
	switch {
	case c.Tool.Composite != nil:
		return r.runComposite(ctx, c)
	case c.Tool.Batch != nil:
		return r.runBatch(ctx, c)
	}
	return nil, ErrNotVirtual
}

func (r *Runner) tracer() trace.Tracer {
	if r.Tracer == nil {
		return tracenoop.NewTracerProvider().Tracer("")
	}
	return r.Tracer
}

// outcome is how one inner call ended.
type outcome struct {
	res *toolbusv1.ToolResult // nil when err or te is set
	te  *toolbusv1.ToolError  // the call's or Toolbus's error
	// interrupted is set when ctx ended before an answer: the deadline
	// (te is then a timeout) or the caller's cancellation.
	interrupted bool
}

func (o outcome) failed() bool { return o.te != nil }

// call performs one inner call of tool t with args under key, within ctx
// and t's own timeout. span names the span ("step customer", "batch 3").
func (r *Runner) call(ctx context.Context, spanName string, t *catalog.Tool, args map[string]any, key string, attrs ...attribute.KeyValue) outcome {
	ctx, span := r.tracer().Start(ctx, spanName, trace.WithSpanKind(trace.SpanKindInternal))
	defer span.End()
	span.SetAttributes(append(attrs, telemetry.AttrTool.String(t.Name), telemetry.AttrUpstream.String(t.Upstream.Name))...)
	o := r.callInSpan(ctx, t, args, key)
	switch {
	case o.te != nil:
		span.SetAttributes(telemetry.AttrOutcome.String(o.te.GetCode()))
		span.SetStatus(codes.Error, o.te.GetCode())
	case o.res.GetError() != nil:
		span.SetAttributes(telemetry.AttrOutcome.String(o.res.GetError().GetCode()))
		span.SetStatus(codes.Error, o.res.GetError().GetCode())
	default:
		span.SetAttributes(telemetry.AttrOutcome.String("ok"))
	}
	if o.res.GetError() != nil {
		o.te, o.res = o.res.GetError(), nil
	}
	return o
}

func (r *Runner) callInSpan(ctx context.Context, t *catalog.Tool, args map[string]any, key string) outcome {
	raw, err := json.Marshal(args)
	if err != nil {
		return outcome{te: &toolbusv1.ToolError{Class: toolbusv1.ErrorClass_ERROR_CLASS_INTERNAL, Code: "internal",
			Message: fmt.Sprintf("the arguments for %s could not be encoded: %v", t.Name, err)}}
	}
	if _, err := t.ValidateArguments(raw); err != nil {
		return outcome{te: &toolbusv1.ToolError{Class: toolbusv1.ErrorClass_ERROR_CLASS_INVALID_ARGUMENT, Code: "invalid_argument", Message: err.Error()}}
	}
	if err := ctx.Err(); err != nil {
		return r.interrupted(ctx, t, 0)
	}
	start := time.Now()
	deadline := start.Add(t.CallTimeout())
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	cctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	tc := &toolbusv1.ToolCall{
		Id:             nuid.Next(),
		Tool:           t.Name,
		Upstream:       t.Upstream.Name,
		Kind:           kindOf(t),
		Arguments:      raw,
		Deadline:       timestamppb.New(deadline),
		IdempotencyKey: key,
		CatalogDigest:  r.CatalogDigest,
		AcceptedAt:     timestamppb.New(start),
	}
	if r.CallerFor != nil {
		tc.Caller = r.CallerFor(t)
	}
	res, err := r.Bus.Call(cctx, bus.CallSubject(tc.Kind, tc.Upstream, tc.Tool), tc)
	switch {
	case err == nil:
		return outcome{res: res}
	case cctx.Err() != nil:
		return r.interrupted(cctx, t, deadline.Sub(start))
	case errors.Is(err, bus.ErrBusUnavailable):
		return outcome{te: &toolbusv1.ToolError{Class: toolbusv1.ErrorClass_ERROR_CLASS_BUS_UNAVAILABLE, Code: "bus_unavailable",
			Message: "Toolbus could not queue the call: the message bus is unavailable; retry shortly", Retryable: true,
			RetryAfter: durationpb.New(time.Second)}}
	case errors.Is(err, bus.ErrShuttingDown):
		return outcome{te: &toolbusv1.ToolError{Class: toolbusv1.ErrorClass_ERROR_CLASS_BUS_UNAVAILABLE, Code: "shutting_down",
			Message: "this Toolbus instance is shutting down; retry shortly", Retryable: true, RetryAfter: durationpb.New(time.Second)}}
	}
	return outcome{te: &toolbusv1.ToolError{Class: toolbusv1.ErrorClass_ERROR_CLASS_INTERNAL, Code: "internal",
		Message: fmt.Sprintf("tool %s could not be called because of a fault inside Toolbus (%v); retrying may help", t.Name, err)}}
}

func (r *Runner) interrupted(ctx context.Context, t *catalog.Tool, budget time.Duration) outcome {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return outcome{interrupted: true, te: &toolbusv1.ToolError{Class: toolbusv1.ErrorClass_ERROR_CLASS_TIMEOUT, Code: "timeout",
			Message: fmt.Sprintf("tool %s got no answer from upstream %s within %s; retrying later may help", t.Name, t.Upstream.Name,
				budget.Round(time.Millisecond)), Retryable: true}}
	}
	return outcome{interrupted: true, te: &toolbusv1.ToolError{Class: toolbusv1.ErrorClass_ERROR_CLASS_CANCELLED, Code: "cancelled",
		Message: fmt.Sprintf("the call of %s was cancelled", t.Name)}}
}

func kindOf(t *catalog.Tool) string {
	if t.Upstream.Kind == "" {
		return string(catalog.KindREST)
	}
	return string(t.Upstream.Kind)
}

// resultValue is a result's JSON (its body, or its text as a JSON string).
func resultValue(res *toolbusv1.ToolResult) json.RawMessage {
	if len(res.GetJson()) > 0 {
		return res.GetJson()
	}
	b, _ := json.Marshal(res.GetText())
	return b
}

// decode parses JSON for jq (numbers exact where they fit).
func decode(raw []byte) any {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil
	}
	return catalog.NormalizeJSON(v)
}

// stepState is the scheduler's view of one step.
type stepState struct {
	step    *catalog.Step
	started bool
	done    bool
	out     outcome
	value   json.RawMessage
	decoded any
	// skipped is set when the step did not run because a dependency failed.
	skipped string
	// cut is set when the step did not run because a dependency was cut
	// by the deadline: the composite ran out of time, nothing failed.
	cut bool
}

func (r *Runner) runComposite(ctx context.Context, c Call) (*toolbusv1.ToolResult, error) {
	comp := c.Tool.Composite
	start := time.Now()
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	states := make(map[string]*stepState, len(comp.Steps))
	for _, s := range comp.Steps {
		states[s.Name] = &stepState{step: s}
	}
	input := catalog.NormalizeJSON(cloneJSON(c.Args))
	type finished struct {
		name string
		out  outcome
	}
	results := make(chan finished, len(comp.Steps))
	var wg sync.WaitGroup
	defer wg.Wait()
	running := 0
	var failure *stepState // the required step that failed the composite

	for {
		// Launch every step whose dependencies are done; skip those whose
		// dependencies failed.
		progress := true
		for progress && failure == nil {
			progress = false
			for _, s := range comp.Steps {
				st := states[s.Name]
				if st.started || st.done {
					continue
				}
				ready, blocked := true, ""
				for _, d := range s.After {
					ds := states[d]
					if !ds.done {
						ready = false
						break
					}
					if ds.out.failed() || ds.skipped != "" {
						blocked = d
						st.cut = st.cut || ds.out.interrupted || ds.cut
					}
				}
				if !ready {
					continue
				}
				progress = true
				if blocked != "" {
					st.done, st.skipped = true, blocked
					if !s.Optional {
						failure = st
					}
					continue
				}
				args, err := s.Args.Eval(map[string]any{"input": input, "steps": depValues(states, s)})
				if err != nil {
					st.done = true
					st.out = outcome{te: &toolbusv1.ToolError{Class: toolbusv1.ErrorClass_ERROR_CLASS_INVALID_ARGUMENT, Code: "invalid_argument",
						Message: fmt.Sprintf("the arguments of step %s could not be computed: %v", s.Name, err)}}
					if !s.Optional {
						failure = st
					}
					continue
				}
				st.started = true
				running++
				wg.Add(1)
				go func() {
					defer wg.Done()
					out := r.call(ctx, "composite.step "+s.Name, s.Tool, args, stepKey(c.IdempotencyKey, s.Name),
						attribute.String("toolbus.composite", c.Tool.Name), attribute.String("toolbus.composite.step", s.Name))
					results <- finished{s.Name, out}
				}()
			}
		}
		if failure != nil {
			cancel() // stop the other steps: their answers can no longer be used
		}
		if running == 0 {
			break
		}
		f := <-results
		running--
		st := states[f.name]
		st.done, st.out = true, f.out
		if f.out.failed() {
			if !st.step.Optional && failure == nil && !f.out.interrupted {
				failure = st
			}
			continue
		}
		st.value = resultValue(f.out.res)
		st.decoded = decode(st.value)
	}

	if errors.Is(parent.Err(), context.Canceled) {
		return nil, parent.Err() // the caller is gone
	}
	if failure != nil && !failure.cut {
		return failedResult(c.Tool, failure), nil
	}
	for _, s := range comp.Steps {
		if st := states[s.Name]; !st.step.Optional && (st.out.interrupted || st.skipped != "") {
			// A required step was cut by the deadline (or could not run
			// because of one that was).
			return timeoutResult(c.Tool, start, comp, states), nil
		}
	}
	return mergedResult(comp, states), nil
}

// depValues is what a step's expressions see as .steps: the results of
// the steps it depends on, directly or not.
func depValues(states map[string]*stepState, s *catalog.Step) map[string]any {
	out := map[string]any{}
	var add func(names []string)
	add = func(names []string) {
		for _, d := range names {
			if _, seen := out[d]; seen {
				continue
			}
			st := states[d]
			out[d] = st.decoded
			add(st.step.After)
		}
	}
	add(s.After)
	return out
}

// stepKey derives a step's idempotency key: a retried composite call (same
// key) repeats none of its mutating steps.
func stepKey(key, step string) string {
	k := key + "/" + step
	if len(k) > 200 {
		k = k[len(k)-200:]
	}
	return k
}

func cloneJSON(m map[string]any) any {
	b, _ := json.Marshal(m)
	return decode(b)
}

func mergedResult(comp *catalog.Composite, states map[string]*stepState) *toolbusv1.ToolResult {
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, m := range comp.Merge {
		if i > 0 {
			buf.WriteByte(',')
		}
		k, _ := json.Marshal(m.Key)
		buf.Write(k)
		buf.WriteByte(':')
		if v := states[m.Step].value; v != nil {
			buf.Write(v)
		} else {
			buf.WriteString("null")
		}
	}
	type missing struct {
		Step      string `json:"step"`
		Tool      string `json:"tool"`
		Code      string `json:"code"`
		Message   string `json:"message"`
		Retryable bool   `json:"retryable"`
	}
	var miss []missing
	var notes []string
	for _, s := range comp.Steps {
		st := states[s.Name]
		switch {
		case st.skipped != "":
			msg := fmt.Sprintf("not run: it depends on step %s, which is missing", st.skipped)
			miss = append(miss, missing{Step: s.Name, Tool: s.Tool.Name, Code: "dependency_missing", Message: msg})
			notes = append(notes, fmt.Sprintf("step %s (%s) %s", s.Name, s.Tool.Name, msg))
		case st.out.failed():
			miss = append(miss, missing{Step: s.Name, Tool: s.Tool.Name, Code: st.out.te.GetCode(), Message: st.out.te.GetMessage(), Retryable: st.out.te.GetRetryable()})
			notes = append(notes, fmt.Sprintf("step %s (%s) failed: %s", s.Name, s.Tool.Name, st.out.te.GetMessage()))
		}
	}
	res := &toolbusv1.ToolResult{}
	if len(miss) > 0 {
		if len(comp.Merge) > 0 {
			buf.WriteByte(',')
		}
		buf.WriteString(`"_missing":`)
		b, _ := json.Marshal(miss)
		buf.Write(b)
		res.Text = "PARTIAL RESULT: optional steps are missing; " + strings.Join(notes, "; ")
	}
	buf.WriteByte('}')
	res.Json = buf.Bytes()
	return res
}

func failedResult(t *catalog.Tool, st *stepState) *toolbusv1.ToolResult {
	s := st.step
	if st.skipped != "" {
		return &toolbusv1.ToolResult{Error: &toolbusv1.ToolError{
			Class:   toolbusv1.ErrorClass_ERROR_CLASS_UPSTREAM_FAILED,
			Code:    "composite_step_failed",
			Message: fmt.Sprintf("composite %s failed: required step %s (%s) could not run because step %s, which it depends on, is missing", t.Name, s.Name, s.Tool.Name, st.skipped),
		}}
	}
	te := st.out.te
	return &toolbusv1.ToolResult{Error: &toolbusv1.ToolError{
		Class:          te.GetClass(),
		Code:           te.GetCode(),
		Message:        fmt.Sprintf("composite %s failed at step %s (%s): %s", t.Name, s.Name, s.Tool.Name, te.GetMessage()),
		Retryable:      te.GetRetryable(),
		RetryAfter:     te.GetRetryAfter(),
		UpstreamStatus: te.GetUpstreamStatus(),
	}}
}

func timeoutResult(t *catalog.Tool, start time.Time, comp *catalog.Composite, states map[string]*stepState) *toolbusv1.ToolResult {
	var done, cut, notStarted []string
	for _, s := range comp.Steps {
		st := states[s.Name]
		switch {
		case st.out.interrupted:
			cut = append(cut, s.Name)
		case st.done && !st.out.failed() && st.skipped == "":
			done = append(done, s.Name)
		case !st.started:
			notStarted = append(notStarted, s.Name)
		}
	}
	list := func(l []string) string {
		if len(l) == 0 {
			return "none"
		}
		return strings.Join(l, ", ")
	}
	return &toolbusv1.ToolResult{Error: &toolbusv1.ToolError{
		Class: toolbusv1.ErrorClass_ERROR_CLASS_TIMEOUT,
		Code:  "timeout",
		Message: fmt.Sprintf("composite %s ran out of time after %s during step %s (completed: %s; not started: %s); retrying later may help",
			t.Name, time.Since(start).Round(time.Millisecond), list(cut), list(done), list(notStarted)),
		Retryable: true,
	}}
}
