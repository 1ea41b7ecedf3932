package mcpfront_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/toolbus/toolbus/bus/bustest"
	"github.com/toolbus/toolbus/catalog"
)

var modes = []struct {
	name      string
	stateless bool
	protocol  string
}{
	{name: "stateful", stateless: false, protocol: "2025-11-25"},
	{name: "stateless", stateless: true, protocol: "2026-07-28"},
}

func TestHandshakeNegotiatesProtocol(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			r := newRig(t, rigOptions{stateless: m.stateless})
			cs := r.connect(t)
			init := cs.InitializeResult()
			got := []string{init.ProtocolVersion, init.ServerInfo.Name, init.ServerInfo.Version}
			if diff := cmp.Diff([]string{m.protocol, "toolbus", "test"}, got); diff != "" {
				t.Errorf("protocol, server name, version (-want +got):\n%s", diff)
			}
			if init.Capabilities == nil || init.Capabilities.Tools == nil {
				t.Errorf("capabilities %+v do not declare tools", init.Capabilities)
			}
		})
	}
}

// wantTools is the catalog as an MCP client should see it, built from the
// catalog's own fields.
func wantTools(t *testing.T, cat *catalog.Catalog) []*mcp.Tool {
	t.Helper()
	decode := func(b []byte) any {
		if len(b) == 0 {
			return nil
		}
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	var out []*mcp.Tool
	for _, ct := range cat.Tools {
		a := ct.Annotations
		mt := &mcp.Tool{
			Name:         ct.Name,
			Title:        ct.Title,
			Description:  ct.Description,
			InputSchema:  decode(ct.InputSchema),
			OutputSchema: decode(ct.OutputSchema),
			Annotations: &mcp.ToolAnnotations{
				Title: a.Title, ReadOnlyHint: *a.ReadOnly, DestructiveHint: a.Destructive,
				IdempotentHint: *a.Idempotent, OpenWorldHint: a.OpenWorld,
			},
		}
		if ct.Meta != nil {
			b, err := json.Marshal(ct.Meta)
			if err != nil {
				t.Fatal(err)
			}
			mt.Meta = mcp.Meta(decode(b).(map[string]any))
		}
		out = append(out, mt)
	}
	// The SDK lists tools in name order.
	slices.SortFunc(out, func(a, b *mcp.Tool) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func TestListToolsMatchesCatalog(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			r := newRig(t, rigOptions{stateless: m.stateless})
			cs := r.connect(t)
			res, err := cs.ListTools(ctxTimeout(t, 5*time.Second), nil)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(wantTools(t, r.cat), res.Tools); diff != "" {
				t.Errorf("tools (-want +got):\n%s", diff)
			}
		})
	}
	// The defaults the catalog fills from the method are what clients see:
	// this guards against both sides drifting together.
	r := newRig(t, rigOptions{})
	res, err := r.connect(t).ListTools(ctxTimeout(t, 5*time.Second), nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, tool := range res.Tools {
		a := tool.Annotations
		got[tool.Name] = fmt.Sprintf("ro=%v destructive=%v idempotent=%v open=%v", a.ReadOnlyHint, *a.DestructiveHint, a.IdempotentHint, *a.OpenWorldHint)
	}
	want := map[string]string{
		"get_customer":    "ro=true destructive=false idempotent=true open=true",
		"create_customer": "ro=false destructive=true idempotent=false open=true",
		"ping":            "ro=true destructive=false idempotent=true open=false",
	}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s annotations = %s, want %s", name, got[name], w)
		}
	}
}

func TestCallToolMapsResults(t *testing.T) {
	tests := []struct {
		name string
		give mcp.CallToolParams
		want outcome
	}{
		{
			name: "object is structured content",
			give: mcp.CallToolParams{Name: "get_customer", Arguments: map[string]any{"id": "42"}},
			want: outcome{
				Text:       []string{`{"id":"42","name":"Ada"}` + "\n"},
				Structured: map[string]any{"id": "42", "name": "Ada"},
			},
		},
		{
			name: "path argument is escaped",
			give: mcp.CallToolParams{Name: "get_customer", Arguments: map[string]any{"id": "../admin"}},
			want: outcome{
				Text:       []string{`{"id":"../admin","name":"Ada"}` + "\n"},
				Structured: map[string]any{"id": "../admin", "name": "Ada"},
			},
		},
		{
			name: "array is wrapped",
			give: mcp.CallToolParams{Name: "list_orders"},
			want: outcome{
				Text:       []string{`[{"id":1},{"id":2}]` + "\n"},
				Structured: map[string]any{"result": []any{map[string]any{"id": 1.0}, map[string]any{"id": 2.0}}},
			},
		},
		{
			name: "scalar is wrapped",
			give: mcp.CallToolParams{Name: "count_orders", Arguments: map[string]any{}},
			want: outcome{Text: []string{"7\n"}, Structured: map[string]any{"result": 7.0}},
		},
		{
			name: "text result",
			give: mcp.CallToolParams{Name: "ping"},
			want: outcome{Text: []string{"pong"}},
		},
		{
			name: "POST body",
			give: mcp.CallToolParams{Name: "create_customer", Arguments: map[string]any{"name": "Ada", "tier": "pro"}},
			want: outcome{
				Text:       []string{`{"id":"c-1","name":"Ada","tier":"pro"}` + "\n"},
				Structured: map[string]any{"id": "c-1", "name": "Ada", "tier": "pro"},
			},
		},
		{
			name: "worker error result",
			give: mcp.CallToolParams{Name: "limited"},
			want: outcome{
				IsError: true,
				Text:    []string{"rate limited by crm, retry after 30s"},
				ErrorMeta: map[string]any{
					"class": "rate_limited", "code": "upstream_rate_limited", "retryable": true,
					"retryAfterSeconds": 30.0, "upstreamStatus": 429.0,
				},
			},
		},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			r := newRig(t, rigOptions{stateless: m.stateless})
			cs := r.connect(t)
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					res, err := cs.CallTool(ctxTimeout(t, 5*time.Second), &tt.give)
					if err != nil {
						t.Fatal(err)
					}
					if diff := cmp.Diff(tt.want, outcomeOf(res)); diff != "" {
						t.Errorf("result (-want +got):\n%s", diff)
					}
				})
			}
			// One info line per call, with what an operator needs.
			logs := r.callLogs(t)
			if len(logs) != len(tests) {
				t.Fatalf("%d call log lines, want %d", len(logs), len(tests))
			}
			for _, l := range logs {
				for _, k := range []string{"tool", "upstream", "call_id", "outcome", "duration"} {
					if l[k] == nil || l[k] == "" {
						t.Errorf("log line %v has no %s", l, k)
					}
				}
				if l["level"] != "INFO" {
					t.Errorf("log line %v is not at info", l)
				}
			}
		})
	}
}

func TestInvalidArgumentsListEveryFieldAndPublishNothing(t *testing.T) {
	r := newRig(t, rigOptions{})
	cs := r.connect(t)
	res, err := cs.CallTool(ctxTimeout(t, 5*time.Second), &mcp.CallToolParams{
		Name:      "create_customer",
		Arguments: map[string]any{"tier": "gold", "age": -1, "nickname": "x"},
	})
	if err != nil {
		t.Fatal(err)
	}
	got := outcomeOf(res)
	want := outcome{
		IsError: true,
		Text: []string{"invalid arguments for tool create_customer: " +
			"age: minimum: got -1, want 0; name: missing required property; nickname: unknown property; tier: value must be one of 'free', 'pro'"},
		ErrorMeta: map[string]any{"class": "invalid_argument", "code": "invalid_arguments", "retryable": false, "retryAfterSeconds": 0.0, "upstreamStatus": 0.0},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
	if n := r.callsStored(t); n != 0 {
		t.Errorf("CALLS stored %d messages, want none", n)
	}
	if n := r.workerCalls.Load(); n != 0 {
		t.Errorf("worker called %d times, want 0", n)
	}
}

func TestUnknownToolIsProtocolError(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			r := newRig(t, rigOptions{stateless: m.stateless})
			_, err := r.connect(t).CallTool(ctxTimeout(t, 5*time.Second), &mcp.CallToolParams{Name: "nope"})
			var werr *jsonrpc.Error
			if !errors.As(err, &werr) || werr.Code != jsonrpc.CodeInvalidParams {
				t.Fatalf("err = %v, want a JSON-RPC invalid params error", err)
			}
			if n := r.callsStored(t); n != 0 {
				t.Errorf("CALLS stored %d messages, want none", n)
			}
		})
	}
}

func TestBadIdempotencyKeyIsProtocolError(t *testing.T) {
	r := newRig(t, rigOptions{})
	cs := r.connect(t)
	for _, give := range []any{"", strings.Repeat("k", 201), "has space", 42} {
		_, err := cs.CallTool(ctxTimeout(t, 5*time.Second), &mcp.CallToolParams{
			Name: "ping", Meta: mcp.Meta{"toolbus/idempotencyKey": give},
		})
		var werr *jsonrpc.Error
		if !errors.As(err, &werr) || werr.Code != jsonrpc.CodeInvalidParams {
			t.Errorf("key %q: err = %v, want a JSON-RPC invalid params error", give, err)
		}
	}
	if n := r.workerCalls.Load(); n != 0 {
		t.Errorf("worker called %d times, want 0", n)
	}
}

func TestWorkerThatNeverAnswersTimesOut(t *testing.T) {
	r := newRig(t, rigOptions{})
	cs := r.connect(t)
	start := time.Now()
	res, err := cs.CallTool(ctxTimeout(t, 5*time.Second), &mcp.CallToolParams{Name: "hang"})
	if err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	want := outcome{
		IsError: true,
		Text: []string{"tool hang got no answer from upstream crm within 300ms (the tool's timeout); " +
			"the upstream may be slow or overloaded, retrying later may help"},
		ErrorMeta: map[string]any{"class": "timeout", "code": "timeout", "retryable": true, "retryAfterSeconds": 0.0, "upstreamStatus": 0.0},
	}
	if diff := cmp.Diff(want, outcomeOf(res)); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
	// The upper bound only tells a call answered by its tool timeout from
	// one left to the 5 s client context; CI runners are slow and loaded.
	if elapsed < 300*time.Millisecond || elapsed > 4*time.Second {
		t.Errorf("answered after %v, want just after the 300ms tool timeout", elapsed)
	}
}

func TestClientCancellationStopsWaiting(t *testing.T) {
	r := newRig(t, rigOptions{})
	cs := r.connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "hang"}); err == nil {
		t.Fatal("cancelled call returned no error")
	}
	// The server hears notifications/cancelled and logs the call as
	// cancelled well before its 300ms timeout would have fired.
	deadline := time.Now().Add(2 * time.Second)
	for {
		logs := r.callLogs(t)
		if len(logs) == 1 {
			if got := logs[0]["outcome"]; got != "cancelled" {
				t.Errorf("outcome = %v, want cancelled", got)
			}
			if d := time.Duration(logs[0]["duration"].(float64)); d >= 300*time.Millisecond {
				t.Errorf("cancelled call took %v, want well under the 300ms timeout", d)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("call log lines = %v, want one", logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestBusDownGivesToolErrorAndRecovers(t *testing.T) {
	dir := t.TempDir()
	r := newRig(t, rigOptions{storeDir: dir})
	port := r.port()
	cs := r.connect(t)
	give := &mcp.CallToolParams{Name: "ping"}

	r.ns.Shutdown()
	r.ns.WaitForShutdown()
	res, err := cs.CallTool(ctxTimeout(t, 5*time.Second), give)
	if err != nil {
		t.Fatal(err)
	}
	want := outcome{
		IsError:   true,
		Text:      []string{"Toolbus could not queue the call: the message bus is unavailable; retry shortly"},
		ErrorMeta: map[string]any{"class": "bus_unavailable", "code": "bus_unavailable", "retryable": true, "retryAfterSeconds": 1.0, "upstreamStatus": 0.0},
	}
	if diff := cmp.Diff(want, outcomeOf(res)); diff != "" {
		t.Errorf("result with NATS down (-want +got):\n%s", diff)
	}

	bustest.ServerAt(t, dir, port)
	deadline := time.Now().Add(15 * time.Second)
	for {
		res, err := cs.CallTool(ctxTimeout(t, 5*time.Second), give)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(outcome{Text: []string{"pong"}}, outcomeOf(res)); diff == "" {
			return
		} else if time.Now().After(deadline) {
			t.Fatalf("no recovery after NATS restart (-want +got):\n%s", diff)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestStdio(t *testing.T) {
	r := newRig(t, rigOptions{})
	clientR, serverW := io.Pipe()
	serverR, clientW := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() {
		served <- r.svc.ServeTransport(ctx, &mcp.IOTransport{Reader: serverR, Writer: serverW})
	}()
	c := mcp.NewClient(&mcp.Implementation{Name: "desktop", Version: "v0"}, nil)
	cs, err := c.Connect(ctxTimeout(t, 5*time.Second), &mcp.IOTransport{Reader: clientR, Writer: clientW}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if v := cs.InitializeResult().ProtocolVersion; v == "" {
		t.Error("no protocol version negotiated over stdio")
	}
	lt, err := cs.ListTools(ctxTimeout(t, 5*time.Second), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(lt.Tools) != len(r.cat.Tools) {
		t.Errorf("listed %d tools, want %d", len(lt.Tools), len(r.cat.Tools))
	}
	res, err := cs.CallTool(ctxTimeout(t, 5*time.Second), &mcp.CallToolParams{Name: "get_customer", Arguments: map[string]any{"id": "7"}})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]any{"id": "7", "name": "Ada"}, res.StructuredContent); diff != "" {
		t.Errorf("structured content (-want +got):\n%s", diff)
	}
	if err := cs.Close(); err != nil {
		t.Errorf("close client: %v", err)
	}
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("ServeTransport: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ServeTransport did not return after the client closed")
	}
}

// TestConcurrentSessionsGetTheirOwnAnswers runs 64 client sessions of 20
// calls each; every answer must carry the tag and idempotency key of the
// call that asked for it.
func TestConcurrentSessionsGetTheirOwnAnswers(t *testing.T) {
	const sessions, calls = 64, 20
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			r := newRig(t, rigOptions{stateless: m.stateless})
			css := make([]*mcp.ClientSession, sessions)
			for i := range css {
				css[i] = r.connect(t)
			}
			errs := make(chan error, sessions)
			for i, cs := range css {
				go func() {
					errs <- func() error {
						for j := range calls {
							tag := fmt.Sprintf("s%02d-c%02d", i, j)
							res, err := cs.CallTool(ctxTimeout(t, 10*time.Second), &mcp.CallToolParams{
								Name: "echo", Arguments: map[string]any{"tag": tag},
								Meta: mcp.Meta{"toolbus/idempotencyKey": "key-" + tag},
							})
							if err != nil {
								return fmt.Errorf("%s: %w", tag, err)
							}
							want := outcome{
								Text:       []string{`{"idempotencyKey":"key-` + tag + `","tag":"` + tag + `"}` + "\n"},
								Structured: map[string]any{"tag": tag, "idempotencyKey": "key-" + tag},
							}
							if diff := cmp.Diff(want, outcomeOf(res)); diff != "" {
								return fmt.Errorf("%s answered with another call's data (-want +got):\n%s", tag, diff)
							}
						}
						return nil
					}()
				}()
			}
			for range sessions {
				if err := <-errs; err != nil {
					t.Error(err)
				}
			}
			if n := r.workerCalls.Load(); n != sessions*calls {
				t.Errorf("worker ran %d calls, want %d", n, sessions*calls)
			}
			if t.Failed() {
				for _, l := range r.callLogs(t) {
					if l["outcome"] != "ok" {
						t.Logf("log: %v", l)
					}
				}
			}
		})
	}
}

func TestShutdownLetsInFlightCallsFinish(t *testing.T) {
	tests := []struct {
		name     string
		grace    time.Duration
		wantText string
		wantErr  bool
	}{
		{
			name:     "within grace",
			grace:    5 * time.Second,
			wantText: "tool hang got no answer from upstream crm within 300ms (the tool's timeout); the upstream may be slow or overloaded, retrying later may help",
		},
		{
			name:     "past grace",
			grace:    50 * time.Millisecond,
			wantText: "tool hang was not called: this Toolbus instance is shutting down; retry shortly",
			wantErr:  true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, rigOptions{})
			cs := r.connect(t)
			answered := make(chan outcome, 1)
			go func() {
				res, err := cs.CallTool(ctxTimeout(t, 5*time.Second), &mcp.CallToolParams{Name: "hang"})
				if err != nil {
					t.Error(err)
					answered <- outcome{}
					return
				}
				answered <- outcomeOf(res)
			}()
			for r.workerCalls.Load() == 0 {
				time.Sleep(5 * time.Millisecond)
			}
			err := r.svc.Shutdown(ctxTimeout(t, tt.grace))
			if (err != nil) != tt.wantErr {
				t.Errorf("shutdown error = %v, want error: %v", err, tt.wantErr)
			}
			got := <-answered
			if diff := cmp.Diff([]string{tt.wantText}, got.Text); diff != "" {
				t.Errorf("in-flight call answer (-want +got):\n%s", diff)
			}
			resp, err := http.Post(r.url, "application/json", strings.NewReader(`{}`))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
				t.Errorf("request after shutdown: %s, Retry-After %q; want 503 with Retry-After", resp.Status, resp.Header.Get("Retry-After"))
			}
		})
	}
}
