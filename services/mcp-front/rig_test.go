package mcpfront_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/toolbus/toolbus/bus"
	"github.com/toolbus/toolbus/bus/bustest"
	"github.com/toolbus/toolbus/catalog"
	toolbusv1 "github.com/toolbus/toolbus/gen/toolbus/v1"
	mcpfront "github.com/toolbus/toolbus/services/mcp-front"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testCatalog declares one upstream served by the rig's httptest server.
const testCatalog = `
version: 1
upstreams:
  crm:
    base_url: http://${env:CRM_HOST}/
    timeout: 5s
    concurrency: 256
    idempotency_header: Idempotency-Key
tools:
  - name: get_customer
    title: Get customer
    description: Fetch one customer by id.
    upstream: crm
    method: GET
    path: /customers/{id}
    input_schema:
      type: object
      properties:
        id: {type: string, description: Customer id}
      required: [id]
    output_schema:
      type: object
      properties:
        id: {type: string}
        name: {type: string}
    meta:
      openai/outputTemplate: ui://widget/customer.html
      toolbus/rank: 3
  - name: list_orders
    description: List orders.
    upstream: crm
    method: GET
    path: /orders
  - name: count_orders
    description: Count orders.
    upstream: crm
    method: GET
    path: /orders/count
  - name: ping
    title: Ping
    description: Check the CRM is up.
    upstream: crm
    method: GET
    path: /ping
    annotations: {open_world: false}
  - name: echo
    description: Echo a tag.
    upstream: crm
    method: GET
    path: /echo
    input_schema:
      type: object
      properties:
        tag: {type: string}
      required: [tag]
  - name: create_customer
    description: Create a customer.
    upstream: crm
    method: POST
    path: /customers
    input_schema:
      type: object
      properties:
        name: {type: string, minLength: 1}
        tier: {type: string, enum: [free, pro]}
        age: {type: integer, minimum: 0}
      required: [name]
      additionalProperties: false
  - name: limited
    description: Always rate limited.
    upstream: crm
    method: GET
    path: /limited
  - name: hang
    description: A worker that never answers.
    upstream: crm
    method: GET
    path: /hang
    timeout: 300ms
`

// crmConsumer is the test worker's consumer; Concurrency lets the 64-client
// tests and benchmarks run without queueing at the worker.
var crmConsumer = bus.CallConsumer{Kind: "rest", Upstream: "crm", Concurrency: 256, AckWait: 5 * time.Second, MaxDeliver: 3}

type rigOptions struct {
	stateless bool
	// storeDir, when set, keeps JetStream on this directory so the test
	// can stop and restart NATS.
	storeDir string
	catalog  string
	// logTo receives the service's JSON logs; nil keeps them in the rig.
	logTo io.Writer
}

// rig is a whole call path: embedded NATS, an httptest upstream, a worker
// that calls it over plain net/http, and the service behind an httptest
// server.
type rig struct {
	ns       *server.Server
	nc       *nats.Conn
	js       jetstream.JetStream
	cat      *catalog.Catalog
	svc      *mcpfront.Service
	url      string
	upstream *httptest.Server
	// workerCalls counts calls the worker received.
	workerCalls atomic.Int64
	logs        *syncBuffer
}

func newRig(tb testing.TB, o rigOptions) *rig {
	tb.Helper()
	r := &rig{logs: &syncBuffer{}}
	if o.storeDir != "" {
		r.ns = bustest.ServerAt(tb, o.storeDir, -1)
	} else {
		r.ns = bustest.Server(tb)
	}
	r.nc, r.js = bustest.Connect(tb, r.ns)

	r.upstream = httptest.NewServer(upstreamHandler())
	tb.Cleanup(r.upstream.Close)

	src := o.catalog
	if src == "" {
		src = testCatalog
	}
	host := strings.TrimPrefix(r.upstream.URL, "http://")
	cat, err := catalog.Parse("test.yaml", []byte(src), catalog.WithLookupEnv(func(name string) (string, bool) {
		return host, name == "CRM_HOST"
	}))
	if err != nil {
		tb.Fatalf("catalog: %v", err)
	}
	r.cat = cat

	r.startWorker(tb)

	var logTo io.Writer = r.logs
	if o.logTo != nil {
		logTo = o.logTo
	}
	svc, err := mcpfront.New(mcpfront.Options{
		Catalog:   cat,
		NC:        r.nc,
		JS:        r.js,
		Instance:  "front-test",
		Logger:    slog.New(slog.NewJSONHandler(logTo, nil)),
		Stateless: o.stateless,
		Version:   "test",
	})
	if err != nil {
		tb.Fatal(err)
	}
	if err := svc.Start(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := svc.Shutdown(ctx); err != nil {
			tb.Errorf("shutdown: %v", err)
		}
	})
	r.svc = svc
	hs := httptest.NewServer(svc.MCPHandler())
	tb.Cleanup(hs.Close)
	r.url = hs.URL
	return r
}

// startWorker serves the crm consumer with a handler that performs the
// call as a plain HTTP request, the way a REST worker would.
func (r *rig) startWorker(tb testing.TB) {
	tb.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: 512}
	tb.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr}
	w := bus.NewWorker(r.nc, r.js, bus.WorkerOptions{Name: "test-worker", RedeliveryDelay: 10 * time.Millisecond, Logger: bustest.Logger()})
	h := func(ctx context.Context, call *toolbusv1.ToolCall, d bus.Delivery) (*toolbusv1.ToolResult, error) {
		r.workerCalls.Add(1)
		t, ok := r.cat.Tool(call.Tool)
		if !ok {
			return &toolbusv1.ToolResult{Error: &toolbusv1.ToolError{Class: toolbusv1.ErrorClass_ERROR_CLASS_INTERNAL, Code: "unknown_tool", Message: "unknown tool " + call.Tool}}, nil
		}
		if call.Tool == "hang" {
			<-ctx.Done()
			return nil, ctx.Err()
		}
		return doHTTP(ctx, client, t, call)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.ServeCalls(ctx, crmConsumer, h); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = w.Shutdown(ctx)
	})
}

// doHTTP fills the path template, sends other arguments as the query (GET)
// or a JSON body, and maps the status to a ToolResult.
func doHTTP(ctx context.Context, client *http.Client, t *catalog.Tool, call *toolbusv1.ToolCall) (*toolbusv1.ToolResult, error) {
	var args map[string]any
	if err := json.Unmarshal(call.Arguments, &args); err != nil {
		return nil, err
	}
	path := t.Path
	query := url.Values{}
	body := map[string]any{}
	for _, p := range t.Params {
		v, ok := args[p.Name]
		if !ok {
			continue
		}
		s := fmt.Sprint(v)
		switch p.In {
		case catalog.InPath:
			path = strings.ReplaceAll(path, "{"+p.Name+"}", url.PathEscape(s))
		case catalog.InQuery:
			query.Set(p.WireName, s)
		default:
			body[p.WireName] = v
		}
	}
	u := t.Upstream.BaseURL.JoinPath(path)
	u.RawQuery = query.Encode()
	var rd io.Reader
	if t.Method != http.MethodGet {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, t.Method, u.String(), rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set(t.Upstream.IdempotencyHeader, call.IdempotencyKey)
	resp, err := client.Do(req)
	if err != nil {
		return &toolbusv1.ToolResult{Error: &toolbusv1.ToolError{Class: toolbusv1.ErrorClass_ERROR_CLASS_UPSTREAM_UNREACHABLE, Code: "upstream_unreachable", Message: err.Error()}}, nil
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	status := int32(resp.StatusCode)
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		after, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		return &toolbusv1.ToolResult{UpstreamStatus: status, Error: &toolbusv1.ToolError{
			Class: toolbusv1.ErrorClass_ERROR_CLASS_RATE_LIMITED, Code: "upstream_rate_limited",
			Message:   fmt.Sprintf("rate limited by %s, retry after %ds", t.Upstream.Name, after),
			Retryable: true, RetryAfter: durationpb.New(time.Duration(after) * time.Second), UpstreamStatus: status,
		}}, nil
	case resp.StatusCode >= 300:
		return &toolbusv1.ToolResult{UpstreamStatus: status, Error: &toolbusv1.ToolError{
			Class: toolbusv1.ErrorClass_ERROR_CLASS_UPSTREAM_FAILED, Code: "upstream_failed",
			Message: fmt.Sprintf("%s answered %d", t.Upstream.Name, resp.StatusCode), UpstreamStatus: status,
		}}, nil
	case strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json"):
		return &toolbusv1.ToolResult{Json: b, UpstreamStatus: status, ContentType: resp.Header.Get("Content-Type")}, nil
	}
	return &toolbusv1.ToolResult{Text: string(b), UpstreamStatus: status, ContentType: resp.Header.Get("Content-Type")}, nil
}

func upstreamHandler() http.Handler {
	mux := http.NewServeMux()
	writeJSON := func(w http.ResponseWriter, status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	mux.HandleFunc("GET /customers/{id}", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"id": r.PathValue("id"), "name": "Ada"})
	})
	mux.HandleFunc("POST /customers", func(w http.ResponseWriter, r *http.Request) {
		var v map[string]any
		_ = json.NewDecoder(r.Body).Decode(&v)
		v["id"] = "c-1"
		writeJSON(w, http.StatusCreated, v)
	})
	mux.HandleFunc("GET /orders", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, []any{map[string]any{"id": 1}, map[string]any{"id": 2}})
	})
	mux.HandleFunc("GET /orders/count", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, 7)
	})
	mux.HandleFunc("GET /ping", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "pong")
	})
	mux.HandleFunc("GET /echo", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"tag": r.URL.Query().Get("tag"), "idempotencyKey": r.Header.Get("Idempotency-Key")})
	})
	mux.HandleFunc("GET /limited", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "30")
		writeJSON(w, http.StatusTooManyRequests, map[string]any{"error": "slow down"})
	})
	return mux
}

// connect opens a go-sdk client session over Streamable HTTP, closed when
// the test ends.
func (r *rig) connect(tb testing.TB) *mcp.ClientSession {
	tb.Helper()
	return connectTransport(tb, &mcp.StreamableClientTransport{Endpoint: r.url})
}

func connectTransport(tb testing.TB, t mcp.Transport) *mcp.ClientSession {
	tb.Helper()
	c := mcp.NewClient(&mcp.Implementation{Name: "test-client", Version: "v0"}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cs, err := c.Connect(ctx, t, nil)
	if err != nil {
		tb.Fatalf("connect: %v", err)
	}
	tb.Cleanup(func() { _ = cs.Close() })
	return cs
}

// callsStored is how many messages the CALLS stream ever stored.
func (r *rig) callsStored(tb testing.TB) uint64 {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := r.js.Stream(ctx, bus.StreamCalls)
	if err != nil {
		tb.Fatal(err)
	}
	return st.CachedInfo().State.LastSeq
}

func (r *rig) port() int { return r.ns.Addr().(*net.TCPAddr).Port }

// callLogs returns the service's "tool call" log lines.
func (r *rig) callLogs(tb testing.TB) []map[string]any {
	tb.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(r.logs.Bytes()))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			tb.Fatalf("log line %q is not JSON: %v", sc.Text(), err)
		}
		if m["msg"] == "tool call" {
			out = append(out, m)
		}
	}
	return out
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.b.Bytes())
}

// outcome is the part of a CallToolResult the tests compare.
type outcome struct {
	IsError    bool
	Text       []string
	Structured any
	ErrorMeta  any
}

func outcomeOf(res *mcp.CallToolResult) outcome {
	o := outcome{IsError: res.IsError, Structured: res.StructuredContent, ErrorMeta: res.Meta["toolbus/error"]}
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			o.Text = append(o.Text, tc.Text)
		} else {
			o.Text = append(o.Text, fmt.Sprintf("non-text content %T", c))
		}
	}
	return o
}

func ctxTimeout(tb testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	tb.Cleanup(cancel)
	return ctx
}

var errNotYet = errors.New("not yet")

// Reset forgets what was written so far.
func (s *syncBuffer) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.Reset()
}
