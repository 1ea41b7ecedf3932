package mcpfront

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// tools/call fast path over Streamable HTTP ("direct calls").
//
// Why: the go-sdk (v1.8.0) decodes a tools/call POST six times on its way
// to a tool handler (readBatch, DecodeMessage, the request's _meta, the
// params), each time through a new segmentio Decoder that allocates a
// 32 KB buffer: ~190 KB of garbage per call, 85 % of every byte the
// all-in-one allocated, which set the collector's pace, the peak memory
// and a fifth of the CPU per call (docs/performance.md). No SDK option
// changes that.
//
// What: for the one shape that is most of a gateway's traffic, a single
// tools/call request on an established, initialized stateful session,
// the wrapper decodes the body once, runs the same receiving middleware
// (scope checks) and the same tool handler the SDK would run, and writes
// the answer with the SDK's own JSON-RPC encoder in the SDK's SSE framing.
// The tests compare both paths byte for byte (directcall_test.go).
//
// Everything else goes to the SDK unchanged, and so does any request the
// fast path is not sure it would answer exactly as the SDK does:
//   - another method, a batch, a notification, a response, a body over
//     listPeekBytes or not valid JSON, unknown members in the request or
//     its params, an id that is not a plain integer (up to 15 digits) or a
//     plain string, arguments that are not an object;
//   - a _meta with a progressToken (progress notifications are routed by
//     the SDK to the request's own stream) or with protocol keys;
//   - a session the SDK has not told us is initialized (the first calls
//     right after notifications/initialized may take the SDK path), a
//     session of another user, a protocol version header other than
//     2025-03-26, 2025-06-18 or 2025-11-25, a Last-Event-ID header, an
//     Accept or Content-Type the SDK might judge differently, a Host the
//     SDK's DNS-rebinding check would refuse;
//   - a tool that is not a plain catalog tool of the current catalog;
//   - a session whose last request through the SDK is older than half the
//     SDK's idle timeout: the SDK closes sessions it has not served for
//     that long, so every such session sends one call its way.
//
// Cancellation works on both paths: a client that hangs up cancels the
// call (the request's context), and notifications/cancelled naming a call
// in flight on the fast path cancels it before the SDK sees the
// notification.
type directCalls struct {
	s         *Service
	stateless bool
	// keepAlive bounds how long a session may be served only here.
	keepAlive atomic.Int64 // nanoseconds
	// chain is the receiving middleware around the tool handler, composed
	// as the SDK composes AddReceivingMiddleware.
	chain mcp.MethodHandler

	// off makes every request take the SDK's own path (tests compare both).
	off atomic.Bool
	// served counts the calls taken here (duplicates refused excluded).
	served atomic.Int64

	mu       sync.RWMutex
	sessions map[string]*directSession
}

// directSession is a stateful session the SDK reported initialized.
type directSession struct {
	ss     *mcp.ServerSession
	userID string
	// lastSDK is when a request of this session last went to the SDK
	// (unix nanoseconds).
	lastSDK atomic.Int64

	mu       sync.Mutex
	inflight map[string]context.CancelFunc // request id (JSON) → cancel
}

// directVersions are the protocol versions whose tools/call answers the
// tests compare with the SDK's.
var directVersions = map[string]bool{"2025-03-26": true, "2025-06-18": true, "2025-11-25": true}

// directKeepAlive is keepAlive's default: half the SDK's idle timeout.
const directKeepAlive = sessionIdleTimeout / 2

func newDirectCalls(s *Service, stateless bool, mws []mcp.Middleware) *directCalls {
	d := &directCalls{s: s, stateless: stateless, sessions: make(map[string]*directSession)}
	d.keepAlive.Store(int64(directKeepAlive))
	var h mcp.MethodHandler = d.callTool
	for _, m := range mws {
		h = m(h)
	}
	d.chain = h
	return d
}

// track is a receiving middleware: once the SDK has handled a session's
// notifications/initialized, the session may take the fast path, until it
// closes. (A middleware rather than ServerOptions.InitializedHandler: only
// the middleware sees the request's token, whose user owns the session.)
func (d *directCalls) track(next mcp.MethodHandler) mcp.MethodHandler {
	return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
		res, err := next(ctx, method, req)
		if err == nil && method == "notifications/initialized" {
			if ir, ok := req.(*mcp.InitializedRequest); ok {
				d.initialized(ir)
			}
		}
		return res, err
	}
}

func (d *directCalls) initialized(req *mcp.InitializedRequest) {
	if d.stateless || req.Session == nil || req.Session.ID() == "" {
		return
	}
	ss := req.Session
	ds := &directSession{ss: ss, inflight: make(map[string]context.CancelFunc)}
	if req.Extra != nil && req.Extra.TokenInfo != nil {
		ds.userID = req.Extra.TokenInfo.UserID
	}
	ds.lastSDK.Store(time.Now().UnixNano())
	id := ss.ID()
	d.mu.Lock()
	d.sessions[id] = ds
	d.mu.Unlock()
	go func() {
		_ = ss.Wait()
		d.mu.Lock()
		if d.sessions[id] == ds {
			delete(d.sessions, id)
		}
		d.mu.Unlock()
	}()
}

func (d *directCalls) session(id string) *directSession {
	if id == "" {
		return nil
	}
	d.mu.RLock()
	ds := d.sessions[id]
	d.mu.RUnlock()
	return ds
}

// directRequest is a tools/call the fast path may answer.
type directRequest struct {
	id    jsonrpc.ID
	idKey string // the id's JSON text
	name  string
	args  json.RawMessage
	meta  map[string]any
}

// serve answers r if it is a tools/call the fast path takes and reports
// whether it did. body is r's whole body (already read). Otherwise it
// notes the SDK's activity for the session and, for notifications/cancelled,
// cancels the named fast-path call; the caller then hands r to the SDK.
func (d *directCalls) serve(w http.ResponseWriter, r *http.Request, body []byte) bool {
	if d == nil || d.stateless || d.off.Load() {
		return false
	}
	ds := d.session(r.Header.Get("Mcp-Session-Id"))
	if ds == nil || !d.admits(r, ds) {
		// The SDK refuses it (403); it must not cancel anything here either.
		return false
	}
	if !bytes.Contains(body, []byte(`"tools/call"`)) {
		d.toSDK(ds, body)
		return false
	}
	if time.Now().UnixNano()-ds.lastSDK.Load() > d.keepAlive.Load() || !d.headersOK(r) {
		d.toSDK(ds, body)
		return false
	}
	dr, ok := parseDirect(body)
	if !ok {
		d.toSDK(ds, body)
		return false
	}
	if _, ok := d.s.current().tools[dr.name]; !ok {
		d.toSDK(ds, body)
		return false
	}
	d.call(w, r, ds, dr)
	return true
}

// toSDK records that a request of ds goes to the SDK, and cancels the call
// a notifications/cancelled names, if it is in flight here.
func (d *directCalls) toSDK(ds *directSession, body []byte) {
	ds.lastSDK.Store(time.Now().UnixNano())
	if !bytes.Contains(body, []byte(`"notifications/cancelled"`)) {
		return
	}
	var n struct {
		Method string `json:"method"`
		Params struct {
			RequestID json.RawMessage `json:"requestId"`
		} `json:"params"`
	}
	if json.Unmarshal(body, &n) != nil || n.Method != "notifications/cancelled" {
		return
	}
	key, ok := idKey(n.Params.RequestID)
	if !ok {
		return
	}
	ds.mu.Lock()
	cancel := ds.inflight[key]
	ds.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

// admits reports whether the SDK would let r use session ds at all: the
// session's own user, and a Host its DNS-rebinding check accepts. A
// request it refuses must not reach the fast path's state either (a
// notifications/cancelled from another user cancels nothing).
func (d *directCalls) admits(r *http.Request, ds *directSession) bool {
	// DNS-rebinding protection: the SDK refuses a non-loopback Host on a
	// loopback listener.
	if la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok && la != nil {
		if loopback(la.String()) && !loopback(r.Host) {
			return false
		}
	}
	if ds.userID != "" {
		ti := auth.TokenInfoFromContext(r.Context())
		if ti == nil || ti.UserID != ds.userID {
			return false
		}
	}
	return true
}

// headersOK reports whether the SDK would accept r's headers for a
// tools/call on an admitted session, by its own rules (and stricter).
func (d *directCalls) headersOK(r *http.Request) bool {
	if r.Method != http.MethodPost || len(r.Header.Values("Last-Event-ID")) > 0 {
		return false
	}
	if !directVersions[r.Header.Get("Mcp-Protocol-Version")] {
		return false
	}
	return acceptsBoth(r.Header.Values("Accept"))
}

// acceptsBoth is the SDK's Accept rule restricted to plain media ranges:
// both application/json and text/event-stream must be named.
func acceptsBoth(values []string) bool {
	var jsonOK, streamOK bool
	for _, v := range values {
		for _, tok := range strings.Split(v, ",") {
			switch strings.ToLower(strings.TrimSpace(tok)) {
			case "application/json":
				jsonOK = true
			case "text/event-stream":
				streamOK = true
			case "":
			default:
				if strings.Contains(tok, ";") || strings.Contains(tok, "*") {
					return false
				}
			}
		}
	}
	return jsonOK && streamOK
}

func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = strings.Trim(addr, "[]")
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// parseDirect decodes body if it is exactly a tools/call request the fast
// path answers as the SDK would.
func parseDirect(body []byte) (directRequest, bool) {
	var dr directRequest
	var env map[string]json.RawMessage
	if json.Unmarshal(body, &env) != nil || len(env) != 4 {
		return dr, false
	}
	if string(env["jsonrpc"]) != `"2.0"` || string(env["method"]) != `"tools/call"` {
		return dr, false
	}
	rawID, rawParams := env["id"], env["params"]
	key, ok := idKey(rawID)
	if !ok || len(rawParams) == 0 || rawParams[0] != '{' {
		return dr, false
	}
	if rawID[0] == '"' {
		dr.id, _ = jsonrpc.MakeID(key[1 : len(key)-1])
	} else {
		n, err := strconv.ParseInt(key, 10, 64)
		if err != nil {
			return dr, false
		}
		dr.id, _ = jsonrpc.MakeID(float64(n))
	}
	dr.idKey = key
	var params map[string]json.RawMessage
	if json.Unmarshal(rawParams, &params) != nil {
		return dr, false
	}
	for k, v := range params {
		switch k {
		case "name":
			if !plainString(v) {
				return dr, false
			}
			dr.name = string(v[1 : len(v)-1])
		case "arguments":
			if len(v) == 0 || v[0] != '{' {
				return dr, false
			}
			dr.args = v
		case "_meta":
			if len(v) == 0 || v[0] != '{' || json.Unmarshal(v, &dr.meta) != nil {
				return dr, false
			}
			for mk := range dr.meta {
				if mk == "progressToken" || strings.HasPrefix(mk, "io.modelcontextprotocol/") {
					return dr, false
				}
			}
		default:
			return dr, false
		}
	}
	return dr, dr.name != ""
}

// idKey returns the JSON text of a request id the fast path takes: an
// integer of up to 15 digits (exact as the SDK's float64) or a plain string.
func idKey(raw json.RawMessage) (string, bool) {
	raw = bytes.TrimSpace(raw)
	if plainString(raw) {
		return string(raw), true
	}
	s := string(raw)
	digits := strings.TrimPrefix(s, "-")
	if len(digits) == 0 || len(digits) > 15 || (len(digits) > 1 && digits[0] == '0') {
		return "", false
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return "", false
		}
	}
	return s, true
}

// plainString reports whether raw is a JSON string with no escapes and no
// control characters, so its text between the quotes is its value.
func plainString(raw []byte) bool {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return false
	}
	for _, c := range raw[1 : len(raw)-1] {
		if c == '\\' || c == '"' || c < 0x20 {
			return false
		}
	}
	return true
}

// call runs dr through the receiving middleware and the tool handler, and
// writes the answer as the SDK would on this POST's stream.
func (d *directCalls) call(w http.ResponseWriter, r *http.Request, ds *directSession, dr directRequest) {
	ds.mu.Lock()
	if _, dup := ds.inflight[dr.idKey]; dup {
		ds.mu.Unlock()
		// The SDK refuses an id already in flight on the session.
		writeDirectError(w, http.StatusBadRequest, dr.id, &jsonrpc.Error{
			Code:    jsonrpc.CodeInvalidRequest,
			Message: fmt.Sprintf("duplicate in-flight request ID %v", dr.id.Raw()),
		})
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	ds.inflight[dr.idKey] = cancel
	ds.mu.Unlock()
	d.served.Add(1)
	defer func() {
		ds.mu.Lock()
		delete(ds.inflight, dr.idKey)
		ds.mu.Unlock()
		cancel()
	}()

	req := &mcp.CallToolRequest{
		Session: ds.ss,
		Params:  &mcp.CallToolParamsRaw{Name: dr.name, Arguments: dr.args, Meta: dr.meta},
		Extra:   &mcp.RequestExtra{TokenInfo: auth.TokenInfoFromContext(r.Context()), Header: r.Header},
	}
	res, err := d.chain(ctx, "tools/call", req)
	resp := &jsonrpc.Response{ID: dr.id}
	if err != nil {
		resp.Error = err
	} else if res != nil {
		raw, merr := marshalResult(res)
		if merr != nil {
			resp.Error = merr
		} else {
			resp.Result = raw
		}
	}
	data, err := jsonrpc.EncodeMessage(resp)
	if err != nil {
		d.s.log.ErrorContext(ctx, "encoding a tools/call answer", "tool", dr.name, "error", err)
		http.Error(w, "encoding the answer failed", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Cache-Control", "no-cache, no-transform")
	h.Set("Content-Type", "text/event-stream")
	h.Set("Connection", "keep-alive")
	buf := make([]byte, 0, len(data)+len("event: message\ndata: \n\n"))
	buf = append(buf, "event: message\ndata: "...)
	buf = append(buf, data...)
	buf = append(buf, "\n\n"...)
	_, _ = w.Write(buf)
	_ = http.NewResponseController(w).Flush()
}

// callTool is the end of the middleware chain: the SDK's callTool for a
// catalog tool.
func (d *directCalls) callTool(ctx context.Context, _ string, req mcp.Request) (mcp.Result, error) {
	ct := req.(*mcp.CallToolRequest)
	ft, ok := d.s.current().tools[ct.Params.Name]
	if !ok {
		return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: fmt.Sprintf("unknown tool %q", ct.Params.Name)}
	}
	res, err := d.s.mcpToolHandler(ft)(ctx, ct)
	if err != nil {
		return nil, err
	}
	if res == nil {
		return res, nil // the SDK encodes a nil result as null
	}
	if res.Content == nil {
		r2 := *res
		r2.Content = []mcp.Content{} // as the SDK does: never "null"
		res = &r2
	}
	return res, nil
}

// marshalResult encodes a result as the SDK's JSON-RPC layer does: without
// HTML escaping.
func marshalResult(res mcp.Result) (json.RawMessage, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(res); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// writeDirectError is the SDK's writeJSONRPCError.
func writeDirectError(w http.ResponseWriter, status int, id jsonrpc.ID, jerr *jsonrpc.Error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if data, err := jsonrpc.EncodeMessage(&jsonrpc.Response{ID: id, Error: jerr}); err == nil {
		_, _ = w.Write(data)
	}
}
