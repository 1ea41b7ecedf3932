package graphqlworker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/toolbus/toolbus/bus"
	"github.com/toolbus/toolbus/catalog"
	toolbusv1 "github.com/toolbus/toolbus/gen/toolbus/v1"
	"github.com/toolbus/toolbus/gqlop"
	"github.com/toolbus/toolbus/toolerr"
	"github.com/toolbus/toolbus/upstream"
)

// acceptHeader asks for the GraphQL-over-HTTP media type, which lets a
// server use HTTP status codes for request errors, and takes plain JSON
// from servers that predate it.
const acceptHeader = "application/graphql-response+json, application/json;q=0.9"

// resultContentType labels results: the data object, not the envelope.
const resultContentType = "application/json"

// route is a GraphQL tool prepared for calling.
type route struct {
	tool     *catalog.Tool
	client   *upstream.Client
	endpoint string
	// query and opName are sent as they are; arguments go in variables.
	query, opName string
	mutation      bool
	// idempotencyHeader is set for mutations of upstreams that have one.
	idempotencyHeader string
	pagination        *catalog.Pagination
	payloadErrors     string
	userAgent         string
	retry             catalog.RetryPolicy
}

// handler performs calls for the graphql upstreams one process serves. It is
// immutable after construction and safe for concurrent use.
type handler struct {
	routes map[string]*route // by tool name
	// secrets are the catalog header values of served upstreams, removed
	// from every error message in case an upstream echoes a credential.
	secrets []string
}

func newHandler(cat *catalog.Catalog, upstreams []*catalog.Upstream, opts upstream.Options) (*handler, error) {
	h := &handler{routes: map[string]*route{}}
	for _, u := range upstreams {
		o := opts
		if o.ResponseHeaderTimeout <= 0 {
			o.ResponseHeaderTimeout = u.Timeout
			for _, t := range cat.Tools {
				if t.Upstream == u {
					o.ResponseHeaderTimeout = max(o.ResponseHeaderTimeout, t.CallTimeout())
				}
			}
		}
		c, err := upstream.New(u, o)
		if err != nil {
			return nil, err
		}
		for _, t := range cat.Tools {
			if t.Upstream != u {
				continue
			}
			if t.GraphQL == nil || t.GraphQL.Operation == nil {
				return nil, fmt.Errorf("tool %s: no GraphQL operation", t.Name)
			}
			op := t.GraphQL.Operation
			r := &route{
				tool:          t,
				client:        c,
				endpoint:      u.BaseURL.String(),
				query:         op.Text(),
				opName:        op.Name(),
				mutation:      op.Kind() == gqlop.KindMutation,
				pagination:    t.GraphQL.Pagination,
				payloadErrors: t.GraphQL.PayloadErrors,
				userAgent:     upstream.UserAgent(),
				retry:         t.RetryPolicy(),
			}
			if r.mutation {
				r.idempotencyHeader = u.IdempotencyHeader
			}
			h.routes[t.Name] = r
		}
		for _, hd := range u.Headers {
			if hd.Value.IsRef() {
				h.secrets = appendSecret(h.secrets, hd.Value.Reveal())
			}
		}
	}
	return h, nil
}

// appendSecret records a secret header value and each long word of it
// ("Bearer <token>"), since an upstream may echo just the token.
func appendSecret(list []string, v string) []string {
	if len(v) >= 4 {
		list = append(list, v)
	}
	for _, w := range strings.Fields(v) {
		if len(w) >= 8 && w != v {
			list = append(list, w)
		}
	}
	return list
}

func (h *handler) closeIdle() {
	seen := map[*upstream.Client]bool{}
	for _, r := range h.routes {
		if !seen[r.client] {
			seen[r.client] = true
			r.client.CloseIdleConnections()
		}
	}
}

// errInterrupted marks a call cut short by the worker's hard stop: it is
// handed back for redelivery rather than answered.
var errInterrupted = errors.New("interrupted")

// handle performs one call. Failures are results with Error set; an error
// return means the call was interrupted by shutdown and must be delivered
// again.
func (h *handler) handle(ctx context.Context, call *toolbusv1.ToolCall, _ bus.Delivery) (*toolbusv1.ToolResult, error) {
	start := time.Now()
	r, ok := h.routes[call.Tool]
	if !ok || r.tool.Upstream.Name != call.Upstream {
		return h.failed(toolerr.UnknownTool(call.Tool, call.Upstream), nil), nil
	}
	vars, err := decodeVariables(call.Arguments)
	if err != nil {
		return h.failed(toolerr.InvalidArgument(r.tool.Name, "arguments", err.Error()), nil), nil
	}
	// The caller reaches the upstream auth layer (forward, token_exchange).
	ctx = upstream.WithCaller(ctx, call.GetCaller())
	c := &exchange{h: h, r: r, key: call.IdempotencyKey, start: start}
	if dl, ok := ctx.Deadline(); ok {
		c.budget = dl.Sub(start)
	}
	var res *toolbusv1.ToolResult
	if r.pagination != nil && r.pagination.Mode == catalog.PaginateFollow {
		res, err = c.follow(ctx, vars)
	} else {
		res, err = c.single(ctx, vars)
	}
	if err != nil {
		return nil, fmt.Errorf("call %s to %s: %w", call.Id, call.Tool, err)
	}
	return res, nil
}

// decodeVariables reads the arguments object, keeping values as sent so
// numbers are passed on exactly.
func decodeVariables(args []byte) (map[string]json.RawMessage, error) {
	if len(bytes.TrimSpace(args)) == 0 {
		return map[string]json.RawMessage{}, nil
	}
	var vars map[string]json.RawMessage
	if err := json.Unmarshal(args, &vars); err != nil {
		return nil, fmt.Errorf("the arguments are not a JSON object: %v", err)
	}
	if vars == nil {
		vars = map[string]json.RawMessage{}
	}
	return vars, nil
}

// exchange accumulates what one call did upstream, over all its pages.
type exchange struct {
	h        *handler
	r        *route
	key      string
	start    time.Time
	budget   time.Duration
	attempts int32
	elapsed  time.Duration
	status   int
}

// page is one answered request: the parsed response, or the tool error
// that ends the call.
type page struct {
	resp gqlop.Response
	fail *toolerr.ToolError
}

// single performs a call of one request: unpaginated tools and cursor mode.
func (c *exchange) single(ctx context.Context, vars map[string]json.RawMessage) (*toolbusv1.ToolResult, error) {
	p, err := c.fetch(ctx, vars)
	if err != nil {
		return nil, err
	}
	if p.fail != nil {
		return c.result(nil, nil, p.fail), nil
	}
	var notes []string
	if p.resp.Outcome == gqlop.Partial {
		notes = append(notes, c.partialNote(p.resp.ErrorText()))
	}
	if c.r.payloadErrors != "" {
		if fe, _ := gqlop.PayloadErrors(p.resp.Data, c.r.payloadErrors); len(fe) > 0 {
			return c.result(nil, nil, toolerr.PayloadRejected(c.r.tool.Name, c.r.tool.Upstream.Name, c.status, fe.Error())), nil
		}
	}
	if pg := c.r.pagination; pg != nil { // cursor mode
		if cursor, more, err := gqlop.NextCursor(p.resp.Data, pg.Connection.Path); err == nil && more {
			notes = append(notes, fmt.Sprintf("MORE RESULTS: this is one page; call %s again with %s: %q for the next one.", c.r.tool.Name, pg.CursorVariable(), cursor))
		}
	}
	return c.result(p.resp.Data, notes, nil), nil
}

// follow requests pages along the tool's connection until there is no next
// page or a limit is reached, and merges them. A page that fails after the
// first ends the walk: the pages so far are returned with a note.
func (c *exchange) follow(ctx context.Context, vars map[string]json.RawMessage) (*toolbusv1.ToolResult, error) {
	pg := c.r.pagination
	cursorVar := pg.CursorVariable()
	var pages []json.RawMessage
	var gqlErrors []string
	var stop string // why the walk ended early, for the note
	items := 0
	cursor, more := "", false
	for {
		p, err := c.fetch(ctx, vars)
		if err != nil {
			return nil, err
		}
		if p.fail != nil {
			if len(pages) == 0 {
				return c.result(nil, nil, p.fail), nil
			}
			stop = fmt.Sprintf("page %d failed (%s)", len(pages)+1, p.fail.GetMessage())
			break
		}
		if p.resp.Outcome == gqlop.Partial {
			gqlErrors = append(gqlErrors, p.resp.ErrorText())
		}
		next, hasNext, err := gqlop.NextCursor(p.resp.Data, pg.Connection.Path)
		if err != nil {
			if len(pages) == 0 {
				// The connection itself is null (an error) or malformed:
				// nothing to walk, so answer with this page as it is.
				return c.onePage(p), nil
			}
			stop = fmt.Sprintf("page %d has no usable connection (%v)", len(pages)+1, err)
			break
		}
		pages = append(pages, p.resp.Data)
		items += countItems(p.resp.Data, pg.Connection.Path)
		cursor, more = next, hasNext
		if !more {
			break
		}
		if len(pages) >= pg.MaxPages {
			stop = fmt.Sprintf("the tool's limit of %d pages was reached", pg.MaxPages)
			break
		}
		if pg.MaxItems > 0 && items >= pg.MaxItems {
			stop = fmt.Sprintf("the tool's limit of %d items was reached", pg.MaxItems)
			break
		}
		b, _ := json.Marshal(cursor) // a string always encodes
		vars = withVar(vars, cursorVar, b)
	}
	data, err := gqlop.MergePages(pages, pg.Connection.Path)
	if err != nil {
		te := toolerr.BadResponse(c.r.tool.Name, c.r.tool.Upstream.Name, c.status, "pages that cannot be merged: "+err.Error())
		return c.result(nil, nil, te), nil
	}
	var notes []string
	if len(gqlErrors) > 0 {
		notes = append(notes, c.partialNote(strings.Join(gqlErrors, "; ")))
	}
	if stop != "" {
		note := fmt.Sprintf("INCOMPLETE: %d pages (%d items) returned; %s.", len(pages), items, stop)
		if more {
			note += fmt.Sprintf(" Call %s again with %s: %q to continue.", c.r.tool.Name, cursorVar, cursor)
		}
		notes = append(notes, note)
	}
	return c.result(data, notes, nil), nil
}

// onePage answers with a page that has no usable connection to follow.
func (c *exchange) onePage(p page) *toolbusv1.ToolResult {
	var notes []string
	if p.resp.Outcome == gqlop.Partial {
		notes = append(notes, c.partialNote(p.resp.ErrorText()))
	}
	return c.result(p.resp.Data, notes, nil)
}

// withVar returns vars with name set, leaving vars itself unchanged.
func withVar(vars map[string]json.RawMessage, name string, val json.RawMessage) map[string]json.RawMessage {
	out := make(map[string]json.RawMessage, len(vars)+1)
	for k, v := range vars {
		out[k] = v
	}
	out[name] = val
	return out
}

// countItems counts the edges (or else nodes) of the connection at path.
func countItems(data json.RawMessage, path string) int {
	cur := data
	for _, k := range strings.Split(path, ".") {
		var m map[string]json.RawMessage
		if json.Unmarshal(cur, &m) != nil {
			return 0
		}
		cur = m[k]
	}
	var conn struct {
		Edges []json.RawMessage `json:"edges"`
		Nodes []json.RawMessage `json:"nodes"`
	}
	if json.Unmarshal(cur, &conn) != nil {
		return 0
	}
	return max(len(conn.Edges), len(conn.Nodes))
}

func (c *exchange) partialNote(errs string) string {
	return fmt.Sprintf("PARTIAL RESULT: upstream %s answered with data and errors, so the fields named below are null or missing: %s",
		c.r.tool.Upstream.Name, c.h.redact(errs))
}

// fetch sends one request and classifies the answer. The error is
// errInterrupted (wrapped) when the worker's hard stop cancelled it.
func (c *exchange) fetch(ctx context.Context, vars map[string]json.RawMessage) (page, error) {
	r := c.r
	tool, up := r.tool.Name, r.tool.Upstream.Name
	// The retry layer repeats a POST only when told it is safe: a query
	// is, a mutation only with the upstream's idempotency header.
	ctx = upstream.WithRetryPolicy(ctx, r.retry)
	if !r.mutation {
		ctx = upstream.MarkIdempotent(ctx)
	}
	body, err := json.Marshal(request{Query: r.query, OperationName: r.opName, Variables: vars})
	if err != nil {
		return page{fail: toolerr.Internal(tool, "encoding the GraphQL request failed")}, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.endpoint, bytes.NewReader(body))
	if err != nil {
		return page{fail: toolerr.Internal(tool, "building the GraphQL request failed")}, nil
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", acceptHeader)
	req.Header.Set("User-Agent", r.userAgent)
	if r.idempotencyHeader != "" && c.key != "" {
		req.Header.Set(r.idempotencyHeader, c.key)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		if errors.Is(err, context.Canceled) && errors.Is(ctx.Err(), context.Canceled) {
			// Only the worker's hard stop cancels a call context: hand the
			// call back for another replica.
			return page{}, fmt.Errorf("%w: %w", errInterrupted, ctx.Err())
		}
		c.attempts += int32(upstream.Attempts(err))
		return page{fail: upstream.Classify(tool, up, c.budget, err)}, nil
	}
	c.attempts += int32(resp.Attempts)
	c.elapsed += resp.Elapsed
	c.status = resp.Status
	if resp.Status < 200 || resp.Status > 299 {
		// A GraphQL-over-HTTP server answers a request it refused to run
		// (syntax, validation, bad variables) with 4xx and GraphQL errors.
		if resp.Status == http.StatusBadRequest || resp.Status == http.StatusUnprocessableEntity {
			if g, perr := gqlop.ParseResponse(resp.Body); perr == nil && g.Outcome == gqlop.Failure {
				return page{fail: toolerr.GraphQLErrors(tool, up, resp.Status, g.ErrorText())}, nil
			}
		}
		return page{fail: toolerr.FromHTTP(tool, up, resp.Status, resp.Header, resp.Body)}, nil
	}
	g, err := gqlop.ParseResponse(resp.Body)
	if err != nil {
		return page{fail: toolerr.BadResponse(tool, up, resp.Status, "a body that is not a GraphQL response: "+strings.TrimPrefix(err.Error(), gqlop.ErrMalformedResponse.Error()+": "))}, nil
	}
	if g.Outcome == gqlop.Failure {
		return page{fail: toolerr.GraphQLErrors(tool, up, resp.Status, g.ErrorText())}, nil
	}
	return page{resp: g}, nil
}

// request is the GraphQL-over-HTTP request body.
type request struct {
	Query         string                     `json:"query"`
	OperationName string                     `json:"operationName,omitempty"`
	Variables     map[string]json.RawMessage `json:"variables,omitempty"`
}

// result builds the answer: data with notes, or a failure.
func (c *exchange) result(data json.RawMessage, notes []string, fail *toolerr.ToolError) *toolbusv1.ToolResult {
	res := &toolbusv1.ToolResult{Attempts: c.attempts, UpstreamStatus: int32(c.status)}
	if c.elapsed > 0 {
		res.UpstreamDuration = durationpb.New(c.elapsed)
	}
	if fail != nil {
		return c.h.failed(fail, res)
	}
	res.Json = data
	res.ContentType = resultContentType
	// A note travels as text next to the data: MCP clients show it as a
	// second content item, so the model sees both.
	res.Text = strings.Join(notes, "\n")
	return res
}

// failed sets te, redacted, on res (a fresh result when nil).
func (h *handler) failed(te *toolerr.ToolError, res *toolbusv1.ToolResult) *toolbusv1.ToolResult {
	if res == nil {
		res = &toolbusv1.ToolResult{}
	}
	te.Message = h.redact(te.Message)
	res.Error = te
	if te.UpstreamStatus != 0 {
		res.UpstreamStatus = te.UpstreamStatus
	}
	return res
}

// redact removes catalog secrets from a message.
func (h *handler) redact(msg string) string {
	for _, s := range h.secrets {
		if strings.Contains(msg, s) {
			msg = strings.ReplaceAll(msg, s, "[redacted]")
		}
	}
	return msg
}

var _ bus.CallHandler = (*handler)(nil).handle

// mutating reports whether the call runs a mutation, whose result is kept
// under its idempotency key.
func (h *handler) mutating(call *toolbusv1.ToolCall) bool {
	r, ok := h.routes[call.Tool]
	return ok && r.tool.Mutating()
}
