package restworker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/toolbus/toolbus/catalog"
	"github.com/toolbus/toolbus/toolerr"
	"github.com/toolbus/toolbus/upstream"
)

// acceptHeader prefers JSON but takes anything: a text answer is still
// passed to the model.
const acceptHeader = "application/json, */*;q=0.5"

// maxHeaderValue bounds one header built from an argument; upstreams
// commonly refuse request headers over 8 KB in total.
const maxHeaderValue = 4 << 10

// route is a tool compiled for request building: the path template split
// into literal and placeholder parts, and its parameters by location.
type route struct {
	tool   *catalog.Tool
	client *upstream.Client
	// scheme and host come from the base URL and from nowhere else.
	scheme, host string
	// parts alternate literal text and placeholders; literals are kept in
	// both encoded (raw) and decoded form so Path and RawPath are built
	// side by side without re-parsing.
	parts  []pathPart
	query  []catalog.Param
	header []catalog.Param
	body   []catalog.Param
	// segments is the number of '/'-separated segments of the full path.
	segments int
	// idempotencyHeader is set for mutating tools of upstreams that have one.
	idempotencyHeader string
	userAgent         string
	// soap is set for tools on soap upstreams (soap.go).
	soap *soapRoute
}

type pathPart struct {
	raw, decoded string
	// param is the placeholder's argument name; empty for literal parts.
	param string
}

// compileRoute prepares t for request building. The catalog loader has
// already validated the template; this re-checks what request building
// relies on, so a hand-built Tool cannot break the guarantees.
func compileRoute(t *catalog.Tool, c *upstream.Client) (*route, error) {
	if t.SOAP != nil {
		return compileSOAPRoute(t, c)
	}
	base := t.Upstream.BaseURL
	if base == nil || base.Host == "" || (base.Scheme != "http" && base.Scheme != "https") {
		return nil, fmt.Errorf("tool %s: upstream %s has no absolute http(s) base URL", t.Name, t.Upstream.Name)
	}
	if !strings.HasPrefix(t.Path, "/") || strings.ContainsAny(t.Path, "?#") {
		return nil, fmt.Errorf("tool %s: path template must start with '/' and hold no '?' or '#'", t.Name)
	}
	r := &route{
		tool:      t,
		client:    c,
		scheme:    base.Scheme,
		host:      base.Host,
		userAgent: upstream.UserAgent(),
	}
	baseRaw := strings.TrimRight(base.EscapedPath(), "/")
	baseDecoded, err := url.PathUnescape(baseRaw)
	if err != nil {
		return nil, fmt.Errorf("tool %s: base path: %w", t.Name, err)
	}
	lit := pathPart{raw: baseRaw, decoded: baseDecoded}
	rest := t.Path
	for rest != "" {
		open := strings.IndexByte(rest, '{')
		if open < 0 {
			lit.raw += rest
			break
		}
		end := strings.IndexByte(rest[open:], '}')
		if end < 0 {
			return nil, fmt.Errorf("tool %s: unclosed '{' in path template", t.Name)
		}
		lit.raw += rest[:open]
		r.parts = append(r.parts, lit)
		r.parts = append(r.parts, pathPart{param: rest[open+1 : open+end]})
		lit = pathPart{}
		rest = rest[open+end+1:]
	}
	if lit.raw != "" {
		r.parts = append(r.parts, lit)
	}
	for i := range r.parts {
		p := &r.parts[i]
		if p.param != "" {
			continue
		}
		if p.decoded, err = url.PathUnescape(p.raw); err != nil {
			return nil, fmt.Errorf("tool %s: path template: %w", t.Name, err)
		}
		for _, seg := range strings.Split(p.decoded, "/") {
			if seg == "." || seg == ".." {
				return nil, fmt.Errorf("tool %s: path template has a dot segment", t.Name)
			}
		}
	}
	r.segments = strings.Count(baseRaw, "/") + strings.Count(t.Path, "/")

	for _, p := range t.Params {
		switch p.In {
		case catalog.InQuery:
			r.query = append(r.query, p)
		case catalog.InHeader:
			if forbiddenArgHeader(p.WireName) {
				return nil, fmt.Errorf("tool %s: argument %s cannot be sent as header %s", t.Name, p.Name, p.WireName)
			}
			r.header = append(r.header, p)
		case catalog.InBody:
			r.body = append(r.body, p)
		}
	}
	if h := t.Upstream.IdempotencyHeader; h != "" && t.Mutating() {
		r.idempotencyHeader = h
	}
	return r, nil
}

// forbiddenArgHeader lists headers an argument must never set: the ones the
// HTTP client manages, and the ones that route or authenticate through
// proxies.
func forbiddenArgHeader(name string) bool {
	switch strings.ToLower(name) {
	case "host", "content-length", "content-type", "connection", "keep-alive", "proxy-connection",
		"te", "trailer", "transfer-encoding", "upgrade", "proxy-authenticate", "proxy-authorization":
		return true
	}
	return false
}

// invalid is the error for an argument that cannot go into the request.
func (r *route) invalid(field, problem string) error {
	return toolerr.Err(toolerr.InvalidArgument(r.tool.Name, field, problem))
}

// build makes the upstream request for one call. The URL's scheme, host
// and port are the base URL's; its path is the base path followed by the
// template, each placeholder replaced by exactly one escaped segment.
// Arguments that do not fit give a toolerr error (INVALID_ARGUMENT).
func (r *route) build(ctx context.Context, args map[string]any, idempotencyKey string) (*http.Request, error) {
	if r.soap != nil {
		return r.soap.build(ctx, r, args, idempotencyKey)
	}
	args = r.withFixed(args) // hidden arguments (form.go)
	u := &url.URL{Scheme: r.scheme, Host: r.host}
	if err := r.buildPath(u, args); err != nil {
		return nil, err
	}
	q, err := r.buildQuery(args)
	if err != nil {
		return nil, err
	}
	u.RawQuery = q

	h := make(http.Header, 4+len(r.header))
	h.Set("User-Agent", r.userAgent)
	h.Set("Accept", acceptHeader)
	if c, err := r.cookieHeader(args); err != nil || c != "" { // form.go
		if err != nil {
			return nil, err
		}
		h.Set("Cookie", c)
	}
	for _, p := range r.header {
		v, ok := args[p.Name]
		if !ok || v == nil {
			continue
		}
		s, err := r.headerValue(p.Name, v)
		if err != nil {
			return nil, err
		}
		h.Set(p.WireName, s)
	}
	if r.idempotencyHeader != "" && idempotencyKey != "" {
		if !validHeaderValue(idempotencyKey) {
			return nil, toolerr.Err(toolerr.Internal(r.tool.Name, "the call's idempotency key is not a valid header value"))
		}
		h.Set(r.idempotencyHeader, idempotencyKey)
	}

	req := &http.Request{
		Method:     r.tool.Method,
		URL:        u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     h,
		Host:       u.Host,
	}
	body, err := r.buildBody(args)
	if err != nil {
		return nil, err
	}
	if body != nil {
		h.Set("Content-Type", r.contentType())
		req.ContentLength = int64(len(body))
		req.Body = io.NopCloser(bytes.NewReader(body))
		// GetBody lets redirects (307/308) and, later, retries replay it.
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	return req.WithContext(ctx), nil
}

func (r *route) buildPath(u *url.URL, args map[string]any) error {
	var raw, decoded strings.Builder
	for _, p := range r.parts {
		if p.param == "" {
			raw.WriteString(p.raw)
			decoded.WriteString(p.decoded)
			continue
		}
		v, ok := args[p.param]
		if !ok || v == nil {
			return r.invalid(p.param, "is required (it is part of the URL path)")
		}
		s, err := r.scalar(p.param, v)
		if err != nil {
			return err
		}
		if err := checkSegment(s); err != "" {
			return r.invalid(p.param, err)
		}
		raw.WriteString(escapeSegment(s))
		decoded.WriteString(s)
	}
	u.Path = decoded.String()
	// RawPath only when it differs from the default encoding of Path, which
	// is what url.URL expects; EscapedPath then returns exactly raw.
	if rp := raw.String(); rp != u.EscapedPath() {
		u.RawPath = rp
	}
	return nil
}

// checkSegment refuses values that would change the path's shape or meaning
// even when escaped: empty or dot segments (which servers and proxies
// resolve) and control characters.
func checkSegment(s string) string {
	switch s {
	case "":
		return "must not be empty (it is part of the URL path)"
	case ".", "..":
		return fmt.Sprintf("must not be %q (it is part of the URL path)", s)
	}
	if !utf8.ValidString(s) {
		return "must be valid UTF-8"
	}
	for _, c := range s {
		if c < 0x20 || (c >= 0x7f && c <= 0x9f) {
			return "must not contain control characters"
		}
	}
	return ""
}

// escapeSegment escapes s as one path segment: url.PathEscape escapes '/',
// '?', '#', '%', ';' and ',', so a value can never add segments, a query
// or a fragment.
func escapeSegment(s string) string {
	return url.PathEscape(s)
}

func (r *route) buildQuery(args map[string]any) (string, error) {
	if len(r.query) == 0 {
		return "", nil
	}
	var b strings.Builder
	add := func(k, v string) {
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(url.QueryEscape(k))
		b.WriteByte('=')
		b.WriteString(url.QueryEscape(v))
	}
	// Parameters go out in declaration order, which upstreams that sign
	// or cache on the query string can rely on.
	for _, p := range r.query {
		v, ok := args[p.Name]
		if !ok || v == nil {
			continue
		}
		if p.Deep { // deepObject: name[key]=v (form.go)
			if err := r.appendDeepQuery(&b, p, v); err != nil {
				return "", err
			}
			continue
		}
		if list, ok := v.([]any); ok {
			for _, item := range list {
				s, err := r.queryValue(p.Name, item)
				if err != nil {
					return "", err
				}
				add(p.WireName, s)
			}
			continue
		}
		s, err := r.queryValue(p.Name, v)
		if err != nil {
			return "", err
		}
		add(p.WireName, s)
	}
	return b.String(), nil
}

// queryValue renders scalars as text and objects (or nested arrays) as
// JSON text.
func (r *route) queryValue(name string, v any) (string, error) {
	switch v.(type) {
	case map[string]any, []any:
		b, err := marshalJSON(v)
		if err != nil {
			return "", r.invalid(name, "cannot be encoded as JSON")
		}
		return string(b), nil
	case nil:
		return "", nil
	}
	return r.scalar(name, v)
}

func (r *route) headerValue(name string, v any) (string, error) {
	var s string
	if list, ok := v.([]any); ok {
		parts := make([]string, 0, len(list))
		for _, item := range list {
			p, err := r.scalar(name, item)
			if err != nil {
				return "", err
			}
			parts = append(parts, p)
		}
		s = strings.Join(parts, ", ")
	} else {
		var err error
		if s, err = r.scalar(name, v); err != nil {
			return "", err
		}
	}
	switch {
	case !validHeaderValue(s):
		return "", r.invalid(name, "must not contain line breaks, NUL or other control characters (it is sent as a header)")
	case len(s) > maxHeaderValue:
		return "", r.invalid(name, fmt.Sprintf("is %d bytes, more than the %d allowed in a header", len(s), maxHeaderValue))
	}
	return s, nil
}

// scalar renders a string, number or boolean argument as text. Anything
// else is refused: mcp-front validated the arguments, but the worker never
// trusts what arrives on the bus.
func (r *route) scalar(name string, v any) (string, error) {
	switch v := v.(type) {
	case string:
		return v, nil
	case bool:
		return strconv.FormatBool(v), nil
	case json.Number:
		s, err := formatNumber(v)
		if err != nil {
			return "", r.invalid(name, err.Error())
		}
		return s, nil
	case float64: // arguments decoded without UseNumber
		if math.IsInf(v, 0) || math.IsNaN(v) {
			return "", r.invalid(name, "must be a finite number")
		}
		return r.scalar(name, json.Number(strconv.FormatFloat(v, 'g', -1, 64)))
	case nil:
		return "", r.invalid(name, "must not be null")
	case []any:
		return "", r.invalid(name, "must be a string, number or boolean, not an array")
	case map[string]any:
		return "", r.invalid(name, "must be a string, number or boolean, not an object")
	}
	return "", r.invalid(name, fmt.Sprintf("has an unsupported type %T", v))
}

// formatNumber renders a JSON number for a URL or header: integers in
// plain digits (1e3 → 1000, 2.0 → 2), other numbers as written, or in
// plain decimal notation when written with an exponent.
func formatNumber(n json.Number) (string, error) {
	s := string(n)
	if !isJSONNumber(s) {
		return "", errors.New("is not a valid number")
	}
	if !strings.ContainsAny(s, ".eE") {
		return s, nil // an integer literal keeps all its digits
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return "", errors.New("is out of range")
	}
	if f == math.Trunc(f) {
		if math.Abs(f) < 1<<53 {
			return strconv.FormatInt(int64(f), 10), nil
		}
		// Large integral values: exact digits of the literal. The float
		// parse above bounds the exponent, so this stays short.
		bf, _, err := big.ParseFloat(s, 10, 1100, big.ToNearestEven)
		if err != nil {
			return "", errors.New("is out of range")
		}
		return bf.Text('f', 0), nil
	}
	if !strings.ContainsAny(s, "eE") {
		return s, nil
	}
	return strconv.FormatFloat(f, 'f', -1, 64), nil
}

// isJSONNumber reports whether s is a JSON number literal, so a
// json.Number built by hand cannot smuggle other text.
func isJSONNumber(s string) bool {
	if s == "" {
		return false
	}
	i := 0
	if s[i] == '-' {
		i++
	}
	digits := func() int {
		start := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		return i - start
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case digits() == 0:
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(s)
}

// buildBody collects body arguments into one JSON object, in declaration
// order. A body is sent when the tool declares body parameters and either
// the method carries a body (POST, PUT, PATCH: then possibly {}) or some
// body argument is present; otherwise there is no body at all.
func (r *route) buildBody(args map[string]any) ([]byte, error) {
	if len(r.body) == 0 {
		return nil, nil
	}
	if r.tool.BodyEncoding == catalog.BodyForm {
		return r.buildFormBody(args)
	}
	var buf bytes.Buffer
	buf.WriteByte('{')
	n := 0
	for _, p := range r.body {
		v, ok := args[p.Name]
		if !ok {
			continue
		}
		if n > 0 {
			buf.WriteByte(',')
		}
		n++
		k, _ := marshalJSON(p.WireName)
		buf.Write(k)
		buf.WriteByte(':')
		b, err := marshalJSON(v)
		if err != nil {
			return nil, r.invalid(p.Name, "cannot be encoded as JSON")
		}
		buf.Write(b)
	}
	buf.WriteByte('}')
	switch r.tool.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch:
	default:
		if n == 0 {
			return nil, nil
		}
	}
	return buf.Bytes(), nil
}

// marshalJSON encodes v without HTML escaping: the upstream should receive
// "<" as the model wrote it, not "\u003c".
func marshalJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// validHeaderValue refuses CR, LF, NUL and other control characters
// except tab.
func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// decodeArguments decodes a call's arguments: a JSON object (empty or null
// means {}), numbers as json.Number so large integers keep their digits.
func decodeArguments(tool string, raw []byte) (map[string]any, error) {
	if len(raw) > catalog.MaxArgumentBytes {
		return nil, toolerr.Err(toolerr.InvalidArgument(tool, "arguments", fmt.Sprintf("are %d bytes, more than the %d allowed", len(raw), catalog.MaxArgumentBytes)))
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return map[string]any{}, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var args map[string]any
	if err := dec.Decode(&args); err != nil || args == nil {
		return nil, toolerr.Err(toolerr.InvalidArgument(tool, "arguments", "must be one JSON object"))
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, toolerr.Err(toolerr.InvalidArgument(tool, "arguments", "must be one JSON object, with nothing after it"))
	}
	return args, nil
}
