package restworker

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/toolbus/toolbus/bus"
	"github.com/toolbus/toolbus/catalog"
	toolbusv1 "github.com/toolbus/toolbus/gen/toolbus/v1"
	"github.com/toolbus/toolbus/toolerr"
	"github.com/toolbus/toolbus/upstream"
)

// pageToken is the opaque continuation a model passes back in cursor
// mode: where the next page starts, in the tool's style.
type pageToken struct {
	Cursor string `json:"c,omitempty"`
	Page   int    `json:"p,omitempty"`
	Offset int    `json:"o,omitempty"`
	URL    string `json:"u,omitempty"`
}

func (t pageToken) encode() string {
	b, _ := json.Marshal(t)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodePageToken(s string) (pageToken, bool) {
	var t pageToken
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || json.Unmarshal(b, &t) != nil {
		return t, false
	}
	return t, true
}

// handlePaged performs a call of a paginated tool: one page in cursor
// mode, pages up to the tool's limits in follow mode, merged into one
// answer whose list holds every item.
func (h *handler) handlePaged(ctx context.Context, call *toolbusv1.ToolCall, r *route, args map[string]any, start time.Time, budget time.Duration) (*toolbusv1.ToolResult, error) {
	pg := r.tool.Paging
	var tok pageToken
	if pg.Mode == catalog.PaginateCursor {
		if s, ok := args[pg.CursorArgument].(string); ok && s != "" {
			var valid bool
			if tok, valid = decodePageToken(s); !valid {
				return h.failed(toolerr.InvalidArgument(r.tool.Name, pg.CursorArgument, "not a token returned by this tool; leave it out for the first page"), 0, 0), nil
			}
		}
		delete(args, pg.CursorArgument)
	}
	ctx = upstream.WithRoute(ctx, call.Upstream, r.tool.Path)
	req, err := r.build(upstream.WithCaller(ctx, call.GetCaller()), args, call.IdempotencyKey)
	if err != nil {
		return h.failedErr(r, err, 0, 0), nil
	}
	if r.tool.Retry != nil {
		req = req.WithContext(upstream.WithRetryPolicy(req.Context(), *r.tool.Retry))
	}
	page := 1
	if v, err := strconv.Atoi(req.URL.Query().Get(pg.PageParam)); err == nil && v > 0 && pg.Style == catalog.StylePage {
		page = v
	}
	offset := 0
	if v, err := strconv.Atoi(req.URL.Query().Get(pg.OffsetParam)); err == nil && v > 0 && pg.Style == catalog.StyleOffset {
		offset = v
	}
	switch {
	case tok.URL != "":
		if req, err = r.sameOrigin(req, tok.URL); err != nil {
			return h.failed(toolerr.InvalidArgument(r.tool.Name, pg.CursorArgument, "the token's link "+err.Error()), 0, 0), nil
		}
	case tok.Cursor != "":
		setQuery(req, pg.CursorParam, tok.Cursor)
	case tok.Page > 0:
		page = tok.Page
		setQuery(req, pg.PageParam, strconv.Itoa(page))
	case tok.Offset > 0:
		offset = tok.Offset
		setQuery(req, pg.OffsetParam, strconv.Itoa(offset))
	}

	maxPages := pg.MaxPages
	if pg.Mode == catalog.PaginateCursor {
		maxPages = 1
	}
	var (
		items    []any
		envelope any
		attempts int32
		elapsed  time.Duration
		last     *toolbusv1.ToolResult
		next     *pageToken
		stopNote string
		pages    int
	)
	for pages < maxPages {
		resp, err := r.client.Do(req)
		if err != nil {
			if errors.Is(err, context.Canceled) && errors.Is(ctx.Err(), context.Canceled) {
				return nil, fmt.Errorf("call %s to %s interrupted: %w", call.Id, call.Tool, ctx.Err())
			}
			te := upstream.Classify(r.tool.Name, r.tool.Upstream.Name, budget, err)
			if pages == 0 {
				return h.failed(te, int32(upstream.Attempts(err)), time.Since(start)), nil
			}
			stopNote = fmt.Sprintf("page %d failed (%s)", pages+1, h.redact(te.Message))
			break
		}
		markNoStore(ctx, resp.Header) // cache.go
		res := mapResponse(r, resp)
		attempts += res.Attempts
		elapsed += resp.Elapsed
		if res.Error != nil {
			res.Error.Message = h.redact(res.Error.Message)
			if pages == 0 {
				return res, nil
			}
			stopNote = fmt.Sprintf("page %d failed (%s)", pages+1, res.Error.Message)
			break
		}
		v, list, err := pageItems(res.Json, pg.ResultsPath)
		if err != nil {
			if pages == 0 {
				res.Error = toolerr.BadResponse(r.tool.Name, r.tool.Upstream.Name, int(res.UpstreamStatus), err.Error())
				res.Json = nil
				return res, nil
			}
			stopNote = fmt.Sprintf("page %d: %v", pages+1, err)
			break
		}
		pages++
		last, envelope = res, v
		items = append(items, list...)
		next = nil
		switch pg.Style {
		case catalog.StyleCursor:
			if c, ok := catalog.Lookup(v, pg.NextCursorPath); ok {
				if s, ok := c.(string); ok && s != "" {
					next = &pageToken{Cursor: s}
				}
			}
		case catalog.StylePage:
			if more(req, pg.PerPageParam, len(list)) {
				next = &pageToken{Page: page + 1}
			}
		case catalog.StyleOffset:
			if more(req, pg.LimitParam, len(list)) {
				next = &pageToken{Offset: offset + len(list)}
			}
		case catalog.StyleLink:
			if u := nextLink(resp.Header); u != "" {
				next = &pageToken{URL: u}
			}
		}
		if pg.Mode == catalog.PaginateFollow {
			h.progress(call, bus.Progress{Progress: float64(pages), Total: float64(maxPages),
				Message: fmt.Sprintf("%s: fetched page %d (%d items so far)", r.tool.Name, pages, len(items))})
		}
		if next == nil || (pg.MaxItems > 0 && len(items) >= pg.MaxItems) {
			break
		}
		switch {
		case next.URL != "":
			nreq, err := r.sameOrigin(req, next.URL)
			if err != nil {
				stopNote = "the next page's link " + err.Error()
				next = nil
			}
			req = nreq
		case next.Cursor != "":
			req = cloneRequest(req)
			setQuery(req, pg.CursorParam, next.Cursor)
		case next.Page > 0:
			page = next.Page
			req = cloneRequest(req)
			setQuery(req, pg.PageParam, strconv.Itoa(page))
		case next.Offset > 0:
			offset = next.Offset
			req = cloneRequest(req)
			setQuery(req, pg.OffsetParam, strconv.Itoa(offset))
		}
		if next == nil {
			break
		}
	}

	if items == nil {
		items = []any{}
	}
	merged := setItems(envelope, pg.ResultsPath, items)
	body, err := json.Marshal(merged)
	if err != nil {
		return h.failed(toolerr.Internal(r.tool.Name, "merging pages failed"), attempts, time.Since(start)), nil
	}
	out := &toolbusv1.ToolResult{
		Json:             body,
		UpstreamStatus:   last.UpstreamStatus,
		ContentType:      last.ContentType,
		Attempts:         attempts,
		UpstreamDuration: durationpb.New(elapsed),
	}
	switch {
	case pg.Mode == catalog.PaginateCursor && next != nil:
		out.Text = fmt.Sprintf("MORE RESULTS: this is one page (%d items). Call %s again with the same arguments and %q: %q for the next page.",
			len(items), r.tool.Name, pg.CursorArgument, next.encode())
	case stopNote != "":
		out.Text = fmt.Sprintf("INCOMPLETE: %d items from %d pages; %s. Narrow the request or try again.", len(items), pages, stopNote)
	case next != nil:
		out.Text = fmt.Sprintf("INCOMPLETE: stopped at the tool's limit after %d pages and %d items; more exist. Narrow the request (filters) to see the rest.", pages, len(items))
	}
	return out, nil
}

// progress publishes one progress message; a lost one only costs a
// notification, so errors are ignored.
func (h *handler) progress(call *toolbusv1.ToolCall, p bus.Progress) {
	if h.publish == nil || call.ReplySubject == "" {
		return
	}
	b, _ := json.Marshal(p)
	_ = h.publish(bus.ProgressSubject(call.ReplySubject), b)
}

// pageItems decodes a page and returns it with its list of items.
func pageItems(body []byte, path []string) (any, []any, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, nil, fmt.Errorf("a page that is not JSON: %v", err)
	}
	x, ok := catalog.Lookup(v, path)
	list, isList := x.([]any)
	switch {
	case !ok && len(path) > 0:
		return nil, nil, fmt.Errorf("a page without %s (the tool's pagination.results_path)", strings.Join(path, "."))
	case !isList && x != nil:
		return nil, nil, fmt.Errorf("a page whose %s is not a list", describePath(path))
	}
	return v, list, nil
}

func describePath(path []string) string {
	if len(path) == 0 {
		return "body"
	}
	return strings.Join(path, ".")
}

// setItems puts the merged list where the page's list was.
func setItems(v any, path []string, items []any) any {
	if len(path) == 0 {
		return items
	}
	m, ok := v.(map[string]any)
	if !ok {
		return v
	}
	m[path[0]] = setItems(m[path[0]], path[1:], items)
	return m
}

// more reports whether a page of n items may be followed by another: a
// page shorter than the requested size is the last; without a known size
// only an empty page ends the walk.
func more(req *http.Request, sizeParam string, n int) bool {
	if n == 0 {
		return false
	}
	size, err := strconv.Atoi(req.URL.Query().Get(sizeParam))
	return err != nil || size <= 0 || n >= size
}

func setQuery(req *http.Request, name, value string) {
	q := req.URL.Query()
	q.Set(name, value)
	req.URL.RawQuery = q.Encode()
}

// cloneRequest copies a GET request for the next page (no body to replay).
func cloneRequest(req *http.Request) *http.Request {
	return req.Clone(req.Context())
}

// sameOrigin returns a copy of req for the absolute URL raw, which must
// stay on the upstream's scheme, host and base path: a Link header (or a
// token a model passes back) must not send credentials elsewhere.
func (r *route) sameOrigin(req *http.Request, raw string) (*http.Request, error) {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() {
		return nil, errors.New("is not an absolute URL")
	}
	base := r.tool.Upstream.BaseURL
	if u.Scheme != r.scheme || u.Host != r.host || !strings.HasPrefix(u.Path, base.Path) || u.User != nil {
		return nil, fmt.Errorf("leaves the upstream's base URL %s", base.Redacted())
	}
	u.Fragment = ""
	out := req.Clone(req.Context())
	out.URL = u
	out.Host = u.Host
	return out, nil
}

// nextLink returns the rel="next" URL of RFC 8288 Link headers.
func nextLink(h http.Header) string {
	for _, v := range h.Values("Link") {
		for _, link := range strings.Split(v, ",") {
			target, params, ok := strings.Cut(link, ";")
			if !ok {
				continue
			}
			target = strings.TrimSpace(target)
			if !strings.HasPrefix(target, "<") || !strings.HasSuffix(target, ">") {
				continue
			}
			for _, p := range strings.Split(params, ";") {
				k, val, _ := strings.Cut(strings.TrimSpace(p), "=")
				if strings.EqualFold(k, "rel") {
					for _, rel := range strings.Fields(strings.Trim(val, `"`)) {
						if strings.EqualFold(rel, "next") {
							return target[1 : len(target)-1]
						}
					}
				}
			}
		}
	}
	return ""
}
