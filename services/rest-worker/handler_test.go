package restworker

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/toolbus/toolbus/bus"
	"github.com/toolbus/toolbus/bus/bustest"
	"github.com/toolbus/toolbus/examples/crm"
	toolbusv1 "github.com/toolbus/toolbus/gen/toolbus/v1"
	"github.com/toolbus/toolbus/toolerr"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// seen is what the fake upstream received on its last request.
type seen struct {
	Method, RequestURI, Body string
	Header                   http.Header
}

// fakeCRM is an httptest upstream with scripted cases under
// /api/v1/cases/{case}.
type fakeCRM struct {
	srv   *httptest.Server
	other *httptest.Server
	mu    sync.Mutex
	last  seen
	// release unblocks the "hold" case; holding counts requests waiting.
	release chan struct{}
	holding atomic.Int32
}

func newFakeCRM(t *testing.T) *fakeCRM {
	f := &fakeCRM{release: make(chan struct{})}
	f.other = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("redirect to another host was followed: %s", r.URL)
	}))
	t.Cleanup(f.other.Close)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/customers/{id}", func(w http.ResponseWriter, r *http.Request) {
		f.record(r)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":%q}`, r.PathValue("id"))
	})
	mux.HandleFunc("POST /api/v1/customers", func(w http.ResponseWriter, r *http.Request) {
		f.record(r)
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprint(w, `{"id":"cus_1"}`)
	})
	mux.HandleFunc("DELETE /api/v1/customers/{id}", func(w http.ResponseWriter, r *http.Request) {
		f.record(r)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /api/v1/cases/{case}", func(w http.ResponseWriter, r *http.Request) {
		f.record(r)
		switch r.PathValue("case") {
		case "notfound":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"error":{"message":"customer 42 not found"}}`)
		case "boom":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprint(w, `{"message":"database unavailable"}`)
		case "ratelimit":
			w.Header().Set("Retry-After", "30")
			w.WriteHeader(http.StatusTooManyRequests)
		case "echokey":
			// A careless upstream that quotes the credential it refused.
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprintf(w, `{"error":"api key %s is not valid"}`, r.Header.Get("X-Api-Key"))
		case "slow":
			select {
			case <-time.After(5 * time.Second):
			case <-r.Context().Done():
			}
		case "hold":
			f.holding.Add(1)
			<-f.release
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"held":true}`)
		case "csv":
			w.Header().Set("Content-Type", "text/csv")
			fmt.Fprint(w, "id,name\n1,Ada\n")
		case "untyped":
			w.Header()["Content-Type"] = nil // no sniffing
			fmt.Fprint(w, `{"untyped":true}`)
		case "big", "bigstream":
			body := fmt.Sprintf(`{"data":%q}`, strings.Repeat("x", 100<<10))
			w.Header().Set("Content-Type", "application/json")
			if r.PathValue("case") == "big" {
				w.Header().Set("Content-Length", fmt.Sprint(len(body)))
			}
			fmt.Fprint(w, body)
		case "malformed":
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"id":`)
		case "binary":
			w.Header().Set("Content-Type", "image/png")
			w.Write([]byte{0x89, 'P', 'N', 'G', 0, 0, 0xff, 0xfe})
		case "away":
			http.Redirect(w, r, f.other.URL+"/steal", http.StatusFound)
		case "hop":
			http.Redirect(w, r, "/api/v1/cases/csv", http.StatusFound)
		default:
			http.NotFound(w, r)
		}
	})
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	t.Cleanup(f.releaseAll)
	return f
}

func (f *fakeCRM) releaseAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	select {
	case <-f.release:
	default:
		close(f.release)
	}
}

func (f *fakeCRM) record(r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.last = seen{Method: r.Method, RequestURI: r.RequestURI, Body: string(b), Header: r.Header.Clone()}
	f.mu.Unlock()
}

func (f *fakeCRM) lastSeen() seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last
}

// rig runs the Service against embedded NATS and the fake upstream.
type rig struct {
	crm    *fakeCRM
	svc    *Service
	caller *bus.Caller
}

func newRig(t *testing.T) *rig {
	t.Helper()
	f := newFakeCRM(t)
	demo := httptest.NewServer(crm.NewServer(crm.Options{APIKey: secret, Customers: -1, Orders: -1}))
	t.Cleanup(demo.Close)

	ns := bustest.Server(t)
	nc, js := bustest.Connect(t, ns)
	cat := loadCatalog(t, f.srv.URL, deadURL(t), demo.URL)
	svc, err := New(Options{Catalog: cat, NC: nc, JS: js, Instance: "rest-1", Logger: bustest.Logger(), AckWait: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = svc.Shutdown(ctx)
	})
	c, err := bus.NewCaller(nc, js, bus.CallerOptions{Instance: "front-1", Logger: bustest.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &rig{crm: f, svc: svc, caller: c}
}

// deadURL is a loopback address nobody listens on.
func deadURL(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

func (r *rig) call(t *testing.T, upstreamName, tool, args string, deadline time.Duration) (*toolbusv1.ToolResult, *toolbusv1.ToolCall) {
	t.Helper()
	c := &toolbusv1.ToolCall{
		Tool: tool, Upstream: upstreamName, Kind: "rest", Arguments: []byte(args),
		Deadline: timestamppb.New(time.Now().Add(deadline)),
	}
	ctx, cancel := context.WithTimeout(context.Background(), deadline+5*time.Second)
	defer cancel()
	res, err := r.caller.Call(ctx, bus.CallSubject("rest", upstreamName, tool), c)
	if err != nil {
		t.Fatalf("call %s: %v", tool, err)
	}
	return res, c
}

func TestCallsThroughTheBus(t *testing.T) {
	r := newRig(t)
	tests := []struct {
		name         string
		giveUpstream string
		giveTool     string
		giveArgs     string
		giveDeadline time.Duration
		wantStatus   int32
		wantJSON     string
		wantText     string
		wantCode     string // tool error code, "" for success
		wantClass    toolbusv1.ErrorClass
		wantMessage  string // substring of the error message
	}{
		{name: "get", giveTool: "get_customer", giveArgs: `{"id":"42"}`, wantStatus: 200, wantJSON: `{"id":"42"}`},
		{name: "delete answers 204", giveTool: "delete_customer", giveArgs: `{"id":7}`, wantStatus: 204, wantJSON: `{}`},
		{name: "404 quotes the upstream", giveTool: "fetch", giveArgs: `{"case":"notfound"}`, wantStatus: 404,
			wantCode: toolerr.CodeNotFound, wantClass: toolbusv1.ErrorClass_ERROR_CLASS_NOT_FOUND,
			wantMessage: "customer 42 not found (upstream crm answered 404 to fetch); retrying will not help"},
		{name: "500", giveTool: "fetch", giveArgs: `{"case":"boom"}`, wantStatus: 500,
			wantCode: toolerr.CodeUpstreamFailed, wantClass: toolbusv1.ErrorClass_ERROR_CLASS_UPSTREAM_FAILED,
			wantMessage: `upstream crm failed with 500 Internal Server Error (fetch): "database unavailable"; retrying later may help`},
		{name: "429", giveTool: "fetch", giveArgs: `{"case":"ratelimit"}`, wantStatus: 429,
			wantCode: toolerr.CodeRateLimited, wantClass: toolbusv1.ErrorClass_ERROR_CLASS_RATE_LIMITED,
			wantMessage: "upstream crm is rate limiting (429, fetch); retry after 30s"},
		{name: "upstream echoes the key", giveTool: "fetch", giveArgs: `{"case":"echokey"}`, wantStatus: 401,
			wantCode: toolerr.CodeUnauthenticated, wantClass: toolbusv1.ErrorClass_ERROR_CLASS_UNAUTHENTICATED,
			wantMessage: `"api key [redacted] is not valid"`},
		{name: "timeout", giveTool: "fetch", giveArgs: `{"case":"slow"}`, giveDeadline: 300 * time.Millisecond,
			wantCode: toolerr.CodeTimeout, wantClass: toolbusv1.ErrorClass_ERROR_CLASS_TIMEOUT,
			wantMessage: "upstream crm did not answer within"},
		{name: "csv is text", giveTool: "fetch", giveArgs: `{"case":"csv"}`, wantStatus: 200, wantText: "id,name\n1,Ada\n"},
		{name: "untyped JSON is JSON", giveTool: "fetch", giveArgs: `{"case":"untyped"}`, wantStatus: 200, wantJSON: `{"untyped":true}`},
		{name: "too large", giveTool: "fetch", giveArgs: `{"case":"big"}`,
			wantCode: toolerr.CodeResponseTooLarge, wantClass: toolbusv1.ErrorClass_ERROR_CLASS_RESPONSE_TOO_LARGE,
			wantMessage: "upstream crm answered 100 KB, more than the 64 KB limit for fetch; narrow the request (filters, page size)"},
		{name: "too large, streamed", giveTool: "fetch", giveArgs: `{"case":"bigstream"}`,
			wantCode: toolerr.CodeResponseTooLarge, wantClass: toolbusv1.ErrorClass_ERROR_CLASS_RESPONSE_TOO_LARGE,
			wantMessage: "upstream crm answered more than the 64 KB limit for fetch; narrow the request (filters, page size)"},
		{name: "malformed JSON", giveTool: "fetch", giveArgs: `{"case":"malformed"}`, wantStatus: 200,
			wantCode: toolerr.CodeBadResponse, wantClass: toolbusv1.ErrorClass_ERROR_CLASS_BAD_UPSTREAM_RESPONSE,
			wantMessage: "not valid JSON although its Content-Type is application/json"},
		{name: "binary", giveTool: "fetch", giveArgs: `{"case":"binary"}`, wantStatus: 200,
			wantCode: toolerr.CodeUnsupportedContent, wantClass: toolbusv1.ErrorClass_ERROR_CLASS_BAD_UPSTREAM_RESPONSE,
			wantMessage: "image/png"},
		{name: "redirect to another host refused", giveTool: "fetch", giveArgs: `{"case":"away"}`, wantStatus: 302,
			wantCode: toolerr.CodeRedirectRefused, wantClass: toolbusv1.ErrorClass_ERROR_CLASS_BAD_UPSTREAM_RESPONSE,
			wantMessage: "outside the upstream's scheme, host and port"},
		{name: "redirect on the same host followed", giveTool: "fetch", giveArgs: `{"case":"hop"}`, wantStatus: 200, wantText: "id,name\n1,Ada\n"},
		{name: "connection refused", giveUpstream: "dead", giveTool: "ping_dead", giveArgs: `{}`,
			wantCode: toolerr.CodeUnreachable, wantClass: toolbusv1.ErrorClass_ERROR_CLASS_UPSTREAM_UNREACHABLE,
			wantMessage: "(connection refused); the request for ping_dead never reached the upstream"},
		{name: "invalid argument", giveTool: "get_customer", giveArgs: `{"id":".."}`,
			wantCode: toolerr.CodeInvalidArgument, wantClass: toolbusv1.ErrorClass_ERROR_CLASS_INVALID_ARGUMENT,
			wantMessage: `invalid argument id for get_customer`},
		{name: "unknown tool", giveTool: "no_such_tool", giveArgs: `{}`,
			wantCode: toolerr.CodeUnknownTool, wantClass: toolbusv1.ErrorClass_ERROR_CLASS_INVALID_ARGUMENT,
			wantMessage: "tool no_such_tool of upstream crm is not in this worker's catalog"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := tt.giveUpstream
			if up == "" {
				up = "crm"
			}
			dl := tt.giveDeadline
			if dl == 0 {
				dl = 5 * time.Second
			}
			res, _ := r.call(t, up, tt.giveTool, tt.giveArgs, dl)
			if res.UpstreamStatus != tt.wantStatus {
				t.Errorf("upstream status = %d, want %d", res.UpstreamStatus, tt.wantStatus)
			}
			if tt.wantCode == "" {
				if res.Error != nil {
					t.Fatalf("unexpected error %v", res.Error)
				}
				if string(res.Json) != tt.wantJSON || res.Text != tt.wantText {
					t.Errorf("json %q text %q, want %q and %q", res.Json, res.Text, tt.wantJSON, tt.wantText)
				}
				if res.Attempts != 1 || res.UpstreamDuration.AsDuration() <= 0 {
					t.Errorf("attempts %d duration %v", res.Attempts, res.UpstreamDuration.AsDuration())
				}
				return
			}
			e := res.Error
			switch {
			case e == nil:
				t.Fatalf("no error; result %v", res)
			case e.Code != tt.wantCode || e.Class != tt.wantClass:
				t.Errorf("error %s/%v, want %s/%v: %s", e.Code, e.Class, tt.wantCode, tt.wantClass, e.Message)
			case !strings.Contains(e.Message, tt.wantMessage):
				t.Errorf("message %q does not contain %q", e.Message, tt.wantMessage)
			}
			if strings.Contains(e.GetMessage(), secret) || strings.ContainsAny(e.GetMessage(), "\r\n") {
				t.Errorf("message leaks the secret or spans lines: %q", e.GetMessage())
			}
		})
	}
}

func TestGetSendsPathQueryAndHeaders(t *testing.T) {
	r := newRig(t)
	res, _ := r.call(t, "crm", "get_customer", `{"id":"a/b c","expand":["orders","notes"],"limit":1e2,"active":false,"trace":"t-9"}`, 5*time.Second)
	if res.Error != nil {
		t.Fatal(res.Error)
	}
	got := r.crm.lastSeen()
	wantURI := "/api/v1/customers/a%2Fb%20c?expand%5B%5D=orders&expand%5B%5D=notes&limit=100&active=false"
	if got.RequestURI != wantURI {
		t.Errorf("request URI\n got %s\nwant %s", got.RequestURI, wantURI)
	}
	if string(res.Json) != `{"id":"a/b c"}` {
		t.Errorf("json = %s", res.Json)
	}
	for k, want := range map[string]string{"X-Api-Key": secret, "X-Trace": "t-9", "User-Agent": "toolbus/dev", "Accept": acceptHeader, "Idempotency-Key": ""} {
		if v := got.Header.Get(k); v != want {
			t.Errorf("header %s = %q, want %q", k, v, want)
		}
	}
}

func TestPostSendsExactJSONAndIdempotencyKey(t *testing.T) {
	r := newRig(t)
	res, c := r.call(t, "crm", "create_customer", `{"email":"ada@example.com","name":"Ada","tags":["a","b"],"age":36,"dry_run":true}`, 5*time.Second)
	if res.Error != nil || res.UpstreamStatus != 201 || string(res.Json) != `{"id":"cus_1"}` {
		t.Fatalf("result %v", res)
	}
	got := r.crm.lastSeen()
	if want := `{"name":"Ada","email":"ada@example.com","age":36,"tags":["a","b"]}`; got.Body != want {
		t.Errorf("body\n got %s\nwant %s", got.Body, want)
	}
	if got.RequestURI != "/api/v1/customers?dryRun=true" {
		t.Errorf("request URI %s", got.RequestURI)
	}
	for k, want := range map[string]string{"Idempotency-Key": c.IdempotencyKey, "Content-Type": "application/json", "X-Api-Key": secret} {
		if v := got.Header.Get(k); v != want || v == "" {
			t.Errorf("header %s = %q, want %q", k, v, want)
		}
	}
}

// TestEscapingEndToEndWithDemoCRM sends hostile path values to the demo
// CRM's echo endpoint, which reports the raw request target it received.
func TestEscapingEndToEndWithDemoCRM(t *testing.T) {
	r := newRig(t)
	tests := []struct {
		give    string
		wantURI string
	}{
		{give: "../admin", wantURI: "/api/v1/echo/..%2Fadmin"},
		{give: "a?b=c#frag", wantURI: "/api/v1/echo/a%3Fb=c%23frag"},
		{give: "%2e%2e", wantURI: "/api/v1/echo/%252e%252e"},
		{give: "café;x", wantURI: "/api/v1/echo/caf%C3%A9%3Bx"},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			args, _ := json.Marshal(map[string]string{"value": tt.give})
			res, _ := r.call(t, "demo", "demo_echo", string(args), 5*time.Second)
			if res.Error != nil {
				t.Fatal(res.Error)
			}
			var echo struct {
				RequestURI string `json:"request_uri"`
				Anything   string `json:"anything"`
			}
			if err := json.Unmarshal(res.Json, &echo); err != nil {
				t.Fatal(err)
			}
			if echo.RequestURI != tt.wantURI || echo.Anything != tt.give {
				t.Errorf("upstream saw %q (anything %q), want %q (%q)", echo.RequestURI, echo.Anything, tt.wantURI, tt.give)
			}
		})
	}
}

func TestShutdownCompletesInFlightCalls(t *testing.T) {
	r := newRig(t)
	const n = 4
	results := make(chan *toolbusv1.ToolResult, n)
	for range n {
		go func() {
			c := &toolbusv1.ToolCall{Tool: "fetch", Upstream: "crm", Kind: "rest", Arguments: []byte(`{"case":"hold"}`),
				Deadline: timestamppb.New(time.Now().Add(10 * time.Second))}
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			res, err := r.caller.Call(ctx, bus.CallSubject("rest", "crm", "fetch"), c)
			if err != nil {
				res = &toolbusv1.ToolResult{Error: toolerr.Internal("fetch", err.Error())}
			}
			results <- res
		}()
	}
	waitFor(t, func() bool { return r.crm.holding.Load() == n })

	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- r.svc.Shutdown(ctx)
	}()
	// Shutdown must wait for the calls in flight.
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned before in-flight calls finished: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	r.crm.releaseAll()
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	for range n {
		res := <-results
		if res.Error != nil || string(res.Json) != `{"held":true}` {
			t.Errorf("in-flight call got %v", res)
		}
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestNewRefusesUnknownUpstreams(t *testing.T) {
	cat := loadCatalog(t, "http://a.test", "http://b.test", "http://c.test")
	ns := bustest.Server(t)
	nc, js := bustest.Connect(t, ns)
	if _, err := New(Options{Catalog: cat, NC: nc, JS: js, Upstreams: []string{"nope"}}); err == nil {
		t.Error("New accepted an unknown upstream")
	}
	svc, err := New(Options{Catalog: cat, NC: nc, JS: js, Upstreams: []string{"crm"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := svc.h.routes["ping_dead"]; ok || len(svc.h.routes) != 5 {
		t.Errorf("routes %d; dead upstream served: %v", len(svc.h.routes), ok)
	}
}
