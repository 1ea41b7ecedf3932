package restworker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/toolbus/toolbus/bus"
	"github.com/toolbus/toolbus/catalog"
	toolbusv1 "github.com/toolbus/toolbus/gen/toolbus/v1"
	"github.com/toolbus/toolbus/toolerr"
	"github.com/toolbus/toolbus/upstream"
)

// emptyJSON answers a successful call whose upstream sent no body (204, or
// 200 with nothing): an empty object is valid structured content for MCP,
// so "it worked, nothing to show" needs no special case downstream.
var emptyJSON = []byte("{}")

// handler performs calls for the REST upstreams one process serves. It is
// immutable after construction and safe for concurrent use.
type handler struct {
	routes map[string]*route // by tool name
	// secrets are the catalog header values of served upstreams, removed
	// from every error message in case an upstream echoes a credential.
	secrets []string
	// publish sends progress messages (paginate.go); nil in tests that
	// need none.
	publish func(subject string, data []byte) error
}

// newHandler compiles the tools of the given upstreams and builds one HTTP
// client per upstream.
func newHandler(cat *catalog.Catalog, upstreams []*catalog.Upstream, opts upstream.Options) (*handler, error) {
	h := &handler{routes: map[string]*route{}}
	for _, u := range upstreams {
		o := opts
		if o.ResponseHeaderTimeout <= 0 {
			// The upstream's timeout, or a tool's longer one: the header
			// wait must never be shorter than the slowest tool's budget.
			o.ResponseHeaderTimeout = u.Timeout
			for _, t := range cat.Tools {
				if t.Upstream == u {
					o.ResponseHeaderTimeout = max(o.ResponseHeaderTimeout, t.CallTimeout())
				}
			}
		}
		if u.Kind == catalog.KindSOAP {
			auth := o.Layers.Auth
			if auth == nil {
				var err error
				if auth, err = upstream.NewAuth(u, upstream.AuthOptions{}); err != nil {
					return nil, err
				}
			}
			o.Layers.Auth = soapFaults(auth) // soap.go
			if sec := u.SOAP.Security; sec != nil {
				h.secrets = appendSecret(h.secrets, sec.Password)
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
			r, err := compileRoute(t, c)
			if err != nil {
				return nil, err
			}
			h.routes[t.Name] = r
		}
		for _, hd := range u.Headers {
			h.secrets = appendSecret(h.secrets, hd.Value)
		}
		for _, sec := range u.Auth.Secrets() {
			h.secrets = appendSecret(h.secrets, sec)
		}
	}
	return h, nil
}

// appendSecret records a referenced header value and, for values such as
// "Bearer <token>", each long word of it, since an upstream may echo just
// the token.
func appendSecret(list []string, s catalog.Secret) []string {
	if !s.IsRef() {
		return list
	}
	v := s.Reveal()
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

// mutating reports calls whose results are kept by idempotency key.
func (h *handler) mutating(call *toolbusv1.ToolCall) bool {
	r, ok := h.routes[call.Tool]
	return ok && r.tool.Mutating()
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

// handle performs one call. Failures are results with Error set; an error
// return means the call was interrupted by shutdown and must be delivered
// again.
func (h *handler) handle(ctx context.Context, call *toolbusv1.ToolCall, _ bus.Delivery) (*toolbusv1.ToolResult, error) {
	start := time.Now()
	budget := time.Duration(0)
	if dl, ok := ctx.Deadline(); ok {
		budget = dl.Sub(start)
	}
	r, ok := h.routes[call.Tool]
	if !ok || r.tool.Upstream.Name != call.Upstream {
		return h.failed(toolerr.UnknownTool(call.Tool, call.Upstream), 0, 0), nil
	}
	args, err := decodeArguments(call.Tool, call.Arguments)
	if err != nil {
		return h.failedErr(r, err, 0, 0), nil
	}
	if r.tool.Paging != nil {
		return h.handlePaged(ctx, call, r, args, start, budget) // paginate.go
	}
	// The caller travels to the auth layer, which forwards or exchanges
	// its token when the upstream's auth says so.
	ctx = upstream.WithRoute(ctx, call.Upstream, r.tool.Path)
	req, err := r.build(upstream.WithCaller(ctx, call.GetCaller()), args, call.IdempotencyKey)
	if err != nil {
		return h.failedErr(r, err, 0, 0), nil
	}
	if r.tool.Retry != nil {
		req = req.WithContext(upstream.WithRetryPolicy(req.Context(), *r.tool.Retry))
	}
	resp, err := r.client.Do(req)
	if err != nil {
		if errors.Is(err, context.Canceled) && errors.Is(ctx.Err(), context.Canceled) {
			// Only the worker's hard stop cancels a call context: hand the
			// call back for another replica (the idempotency key makes a
			// repeat of a mutating call safe).
			return nil, fmt.Errorf("call %s to %s interrupted: %w", call.Id, call.Tool, ctx.Err())
		}
		te := upstream.Classify(r.tool.Name, r.tool.Upstream.Name, budget, err)
		return h.failed(te, int32(upstream.Attempts(err)), time.Since(start)), nil
	}
	markNoStore(ctx, resp.Header) // cache.go
	res := mapResponse(r, resp)
	if res.Error != nil {
		res.Error.Message = h.redact(res.Error.Message)
	}
	return res, nil
}

func (h *handler) failedErr(r *route, err error, attempts int32, d time.Duration) *toolbusv1.ToolResult {
	te, ok := toolerr.As(err)
	if !ok {
		te = toolerr.Internal(r.tool.Name, "building the upstream request failed")
	}
	return h.failed(te, attempts, d)
}

func (h *handler) failed(te *toolerr.ToolError, attempts int32, d time.Duration) *toolbusv1.ToolResult {
	te.Message = h.redact(te.Message)
	res := &toolbusv1.ToolResult{Error: te, Attempts: attempts, UpstreamStatus: te.UpstreamStatus}
	if d > 0 {
		res.UpstreamDuration = durationpb.New(d)
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

// mapResponse turns an upstream answer into a result: JSON bodies as Json,
// text as Text, failures as Error.
func mapResponse(r *route, resp *upstream.Response) *toolbusv1.ToolResult {
	if r.soap != nil {
		return r.soap.mapResponse(r, resp)
	}
	tool, up := r.tool.Name, r.tool.Upstream.Name
	ct := resp.Header.Get("Content-Type")
	res := &toolbusv1.ToolResult{
		UpstreamStatus:   int32(resp.Status),
		Attempts:         int32(resp.Attempts),
		UpstreamDuration: durationpb.New(resp.Elapsed),
		ContentType:      ct,
	}
	if !statusOK(resp.Status) {
		res.Error = toolerr.FromHTTP(tool, up, resp.Status, resp.Header, resp.Body)
		return res
	}
	if len(resp.Body) == 0 {
		res.Json = emptyJSON
		return res
	}
	mt := mediaType(ct)
	switch {
	case isJSONType(mt):
		if !json.Valid(resp.Body) {
			res.Error = toolerr.BadResponse(tool, up, resp.Status, "a body that is not valid JSON although its Content-Type is "+mt)
			return res
		}
		res.Json = resp.Body
	case mt == "" && json.Valid(resp.Body):
		res.Json = resp.Body
	case isTextType(mt) || (utf8.Valid(resp.Body) && bytes.IndexByte(resp.Body, 0) < 0):
		res.Text = strings.ToValidUTF8(string(resp.Body), "\uFFFD")
		if ct == "" {
			res.ContentType = "text/plain; charset=utf-8"
		}
	default:
		res.Error = toolerr.UnsupportedContent(tool, up, resp.Status, ct, len(resp.Body))
	}
	return res
}

// mediaType is the lower-case type/subtype of a Content-Type, without
// parameters; cheaper than mime.ParseMediaType, which builds a map per call.
func mediaType(ct string) string {
	mt, _, _ := strings.Cut(ct, ";")
	return strings.ToLower(strings.TrimSpace(mt))
}

func isJSONType(mt string) bool {
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}

func isTextType(mt string) bool {
	switch {
	case strings.HasPrefix(mt, "text/"), strings.HasSuffix(mt, "+xml"):
		return true
	}
	switch mt {
	case "application/xml", "application/javascript", "application/x-ndjson", "application/yaml",
		"application/x-yaml", "application/x-www-form-urlencoded", "application/csv":
		return true
	}
	return false
}

var _ bus.CallHandler = (*handler)(nil).handle

// statusOK reports a 2xx status.
func statusOK(code int) bool { return code >= http.StatusOK && code < http.StatusMultipleChoices }
