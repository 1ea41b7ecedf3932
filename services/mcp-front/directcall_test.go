package mcpfront_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	mcpfront "github.com/toolbus/toolbus/services/mcp-front"
)

// The tools/call fast path (directcall.go) answers byte for byte as the
// SDK does, and leaves to the SDK every request it cannot answer exactly
// so. Each case is sent with the fast path on, then off; the answers must
// be identical, and only the cases marked fast may be counted as served
// by it (so a fast path that never engages fails too).

// waitDirect waits until the fast path knows c's session: the SDK tells it
// once notifications/initialized has been handled.
func waitDirect(t *testing.T, svc *mcpfront.Service, session string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !svc.DirectSessionKnown(session); {
		if time.Now().After(deadline) {
			t.Fatalf("the fast path never learned of session %q", session)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func compareDirect(t *testing.T, svc *mcpfront.Service, c *rawClient, hdr map[string]string, body string, wantFast bool) string {
	t.Helper()
	return compareOnOff(t, c, hdr, body, svc.DirectCallsServed, svc.SetDirectCalls, wantFast)
}

func TestDirectCallBytesLikeSDK(t *testing.T) {
	r := newRig(t, rigOptions{})
	cases := []struct {
		name string
		hdr  map[string]string
		body string
		fast bool
		want string // a part of the answer, to be sure it is the right one
	}{
		{"json result", nil, `{"jsonrpc":"2.0","id":11,"method":"tools/call","params":{"name":"get_customer","arguments":{"id":"42"}}}`, true, `"structuredContent":{"id":"42","name":"Ada"}`},
		{"string id, spaces", nil, " {\"method\": \"tools/call\", \"id\": \"a-1\",\n \"params\": {\"arguments\": {\"id\": \"7\"}, \"name\": \"get_customer\"}, \"jsonrpc\": \"2.0\"}\n", true, `"id":"a-1"`},
		{"negative id", nil, `{"jsonrpc":"2.0","id":-5,"method":"tools/call","params":{"name":"ping","arguments":{}}}`, true, `"text":"pong"`},
		{"no arguments", nil, `{"jsonrpc":"2.0","id":12,"method":"tools/call","params":{"name":"ping"}}`, true, `"text":"pong"`},
		{"array result", nil, `{"jsonrpc":"2.0","id":13,"method":"tools/call","params":{"name":"list_orders","arguments":{}}}`, true, `"result":[`},
		{"html characters", nil, `{"jsonrpc":"2.0","id":14,"method":"tools/call","params":{"name":"echo","arguments":{"tag":"<b>&amp;</b>"},"_meta":{"toolbus/idempotencyKey":"key-14"}}}`, true, `\u003cb\u003e\u0026amp;`},
		{"idempotency key in _meta", nil, `{"jsonrpc":"2.0","id":15,"method":"tools/call","params":{"name":"echo","arguments":{"tag":"k"},"_meta":{"toolbus/idempotencyKey":"key-15"}}}`, true, `key-15`},
		{"invalid idempotency key", nil, `{"jsonrpc":"2.0","id":16,"method":"tools/call","params":{"name":"echo","arguments":{},"_meta":{"toolbus/idempotencyKey":7}}}`, true, `"error":{"code":-32602`},
		{"invalid arguments", nil, `{"jsonrpc":"2.0","id":17,"method":"tools/call","params":{"name":"create_customer","arguments":{"tier":"gold","age":-1}}}`, true, `"isError":true`},
		{"upstream error", nil, `{"jsonrpc":"2.0","id":18,"method":"tools/call","params":{"name":"limited","arguments":{}}}`, true, `"isError":true`},
		{"protocol 2025-06-18", map[string]string{"Mcp-Protocol-Version": "2025-06-18"}, `{"jsonrpc":"2.0","id":19,"method":"tools/call","params":{"name":"ping","arguments":{}}}`, true, `pong`},
		{"protocol 2025-03-26", map[string]string{"Mcp-Protocol-Version": "2025-03-26"}, `{"jsonrpc":"2.0","id":20,"method":"tools/call","params":{"name":"ping","arguments":{}}}`, true, `pong`},
		{"accept with wildcard", map[string]string{"Accept": "*/*"}, `{"jsonrpc":"2.0","id":21,"method":"tools/call","params":{"name":"ping","arguments":{}}}`, false, `pong`},

		// The SDK's own answers.
		{"unknown tool", nil, `{"jsonrpc":"2.0","id":30,"method":"tools/call","params":{"name":"nope","arguments":{}}}`, false, `unknown tool`},
		{"progress token", nil, `{"jsonrpc":"2.0","id":31,"method":"tools/call","params":{"name":"ping","arguments":{},"_meta":{"progressToken":"p"}}}`, false, `pong`},
		{"batch", nil, `[{"jsonrpc":"2.0","id":32,"method":"tools/call","params":{"name":"ping","arguments":{}}}]`, false, `400`},
		{"notification", nil, `{"jsonrpc":"2.0","method":"tools/call","params":{"name":"ping","arguments":{}}}`, false, ``},
		{"id too long for exact float", nil, `{"jsonrpc":"2.0","id":1234567890123456,"method":"tools/call","params":{"name":"ping","arguments":{}}}`, false, `pong`},
		{"fractional id", nil, `{"jsonrpc":"2.0","id":1.5,"method":"tools/call","params":{"name":"ping","arguments":{}}}`, false, ``},
		{"escaped tool name", nil, `{"jsonrpc":"2.0","id":33,"method":"tools/call","params":{"name":"p\u0069ng","arguments":{}}}`, false, `pong`},
		{"unknown params member", nil, `{"jsonrpc":"2.0","id":34,"method":"tools/call","params":{"name":"ping","arguments":{},"task":{}}}`, false, ``},
		{"unknown envelope member", nil, `{"jsonrpc":"2.0","id":35,"method":"tools/call","params":{"name":"ping"},"x":1}`, false, ``},
		{"arguments not an object", nil, `{"jsonrpc":"2.0","id":36,"method":"tools/call","params":{"name":"ping","arguments":[]}}`, false, ``},
		{"wrong jsonrpc version", nil, `{"jsonrpc":"1.0","id":37,"method":"tools/call","params":{"name":"ping","arguments":{}}}`, false, `400`},
		{"case-folded member", nil, `{"jsonrpc":"2.0","id":38,"method":"tools/call","params":{"Name":"ping","arguments":{}}}`, false, ``},
		{"not JSON", nil, `{"jsonrpc":"2.0","id":39,"method":"tools/call","params":{"name":"ping"`, false, `400`},
		{"older protocol header", map[string]string{"Mcp-Protocol-Version": "2024-11-05"}, `{"jsonrpc":"2.0","id":40,"method":"tools/call","params":{"name":"ping","arguments":{}}}`, false, `pong`},
		{"unsupported protocol header", map[string]string{"Mcp-Protocol-Version": "2023-01-01"}, `{"jsonrpc":"2.0","id":43,"method":"tools/call","params":{"name":"ping","arguments":{}}}`, false, `400`},
		{"new protocol header", map[string]string{"Mcp-Protocol-Version": "2026-07-28"}, `{"jsonrpc":"2.0","id":44,"method":"tools/call","params":{"name":"ping","arguments":{}}}`, false, ``},
		{"Last-Event-ID", map[string]string{"Last-Event-ID": "x"}, `{"jsonrpc":"2.0","id":41,"method":"tools/call","params":{"name":"ping","arguments":{}}}`, false, `400`},
		{"other method", nil, `{"jsonrpc":"2.0","id":42,"method":"ping"}`, false, `"result":{}`},
	}
	c := &rawClient{url: r.url, version: "2025-11-25"}
	c.initialize(t)
	waitDirect(t, r.svc, c.session)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := compareDirect(t, r.svc, c, tc.hdr, tc.body, tc.fast)
			if !strings.Contains(got, tc.want) {
				t.Errorf("answer lacks %q:\n%s", tc.want, got)
			}
		})
	}

	// Sessions the fast path must not serve: unknown, and never initialized.
	stale := &rawClient{url: r.url, version: c.version, session: "expired-or-unknown"}
	if d := compareDirect(t, r.svc, stale, nil, cases[0].body, false); !strings.HasPrefix(d, "404") {
		t.Errorf("unknown session: %s", d)
	}
	fresh := &rawClient{url: r.url, version: c.version}
	fresh.post(t, nil, `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`)
	if fresh.session == "" || r.svc.DirectSessionKnown(fresh.session) {
		t.Fatalf("a session that never sent notifications/initialized is known to the fast path")
	}
	compareDirect(t, r.svc, fresh, nil, cases[0].body, false)

	// A closed session leaves the fast path too.
	del := c.session
	req, _ := http.NewRequest(http.MethodDelete, r.url, nil)
	req.Header.Set("Mcp-Session-Id", del)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE: %s", resp.Status)
	}
	for deadline := time.Now().Add(10 * time.Second); r.svc.DirectSessionKnown(del); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("a deleted session is still known to the fast path")
		}
	}
	if d := compareDirect(t, r.svc, c, nil, cases[0].body, false); !strings.HasPrefix(d, "404") {
		t.Errorf("deleted session: %s", d)
	}
}

// The official go-sdk client takes the fast path and gets its results, many
// sessions at once, each its own answers.
func TestDirectCallGoSDKClient(t *testing.T) {
	r := newRig(t, rigOptions{})
	const sessions, calls = 8, 25
	before := r.svc.DirectCallsServed()
	var wg sync.WaitGroup
	errs := make(chan string, sessions*calls)
	for s := range sessions {
		cs := r.connect(t)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range calls {
				id := strings.Repeat("x", s) + "-" + string(rune('a'+i%26))
				res, err := cs.CallTool(ctxTimeout(t, 10*time.Second), &mcp.CallToolParams{Name: "get_customer", Arguments: map[string]any{"id": id}})
				switch {
				case err != nil:
					errs <- err.Error()
				case res.IsError:
					errs <- "tool error"
				default:
					if m, _ := res.StructuredContent.(map[string]any); m["id"] != id {
						errs <- "answer for another call: " + id
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	// The first call of a session may reach the server before the SDK has
	// handled notifications/initialized; the rest are the fast path's.
	if got := r.svc.DirectCallsServed() - before; got < sessions*(calls-1) {
		t.Errorf("fast path served %d of %d calls", got, sessions*calls)
	}
}

// notifications/cancelled stops a call in flight on the fast path; an id
// already in flight is refused as the SDK refuses it.
func TestDirectCallCancelAndDuplicate(t *testing.T) {
	r := newRig(t, rigOptions{})
	c := &rawClient{url: r.url, version: "2025-11-25"}
	c.initialize(t)
	waitDirect(t, r.svc, c.session)
	hang := `{"jsonrpc":"2.0","id":77,"method":"tools/call","params":{"name":"hang","arguments":{}}}`

	for _, fast := range []bool{true, false} {
		r.svc.SetDirectCalls(fast)
		r.logs.Reset()
		received := r.workerCalls.Load()
		done := make(chan string, 1)
		go func() { done <- c.post(t, nil, hang) }()
		// Wait until the worker has the call (it never answers it).
		deadline := time.Now().Add(10 * time.Second)
		for r.workerCalls.Load() == received {
			select {
			case d := <-done:
				t.Fatalf("fast=%v: the hang call was answered before the worker had it:\n%s", fast, d)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("fast=%v: the hang call never started", fast)
			}
			time.Sleep(2 * time.Millisecond)
		}
		dup := c.post(t, nil, hang)
		if !strings.HasPrefix(dup, "400") || !strings.Contains(dup, "duplicate in-flight request ID 77") {
			t.Errorf("fast=%v: a duplicate id in flight: %s", fast, dup)
		}
		if d := c.post(t, nil, `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":77,"reason":"test"}}`); !strings.HasPrefix(d, "202") {
			t.Errorf("fast=%v: notifications/cancelled: %s", fast, d)
		}
		<-done
		logs := r.callLogs(t)
		if len(logs) != 1 || logs[0]["outcome"] != "cancelled" {
			t.Errorf("fast=%v: call log %v, want one call with outcome cancelled (not its 300ms timeout)", fast, logs)
		}
	}
	r.svc.SetDirectCalls(true)
}

// A client that hangs up cancels a fast-path call.
func TestDirectCallClientHangUp(t *testing.T) {
	r := newRig(t, rigOptions{})
	cs := r.connect(t)
	if _, err := cs.CallTool(ctxTimeout(t, 5*time.Second), &mcp.CallToolParams{Name: "ping", Arguments: map[string]any{}}); err != nil {
		t.Fatal(err)
	}
	waitDirect(t, r.svc, cs.ID())
	r.logs.Reset()
	before := r.svc.DirectCallsServed()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "hang", Arguments: map[string]any{}}); err == nil {
		t.Fatal("a call whose client gave up returned no error")
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(r.callLogs(t)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the abandoned call was never logged")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if logs := r.callLogs(t); logs[0]["outcome"] != "cancelled" {
		t.Errorf("outcome %v, want cancelled", logs[0]["outcome"])
	}
	if r.svc.DirectCallsServed()-before != 1 {
		t.Errorf("the abandoned call did not take the fast path")
	}
}

// A session served only by the fast path sends one call to the SDK once
// half the SDK's idle timeout has passed, so the SDK does not close it.
func TestDirectCallKeepsSDKSessionAlive(t *testing.T) {
	r := newRig(t, rigOptions{})
	c := &rawClient{url: r.url, version: "2025-11-25"}
	c.initialize(t)
	waitDirect(t, r.svc, c.session)
	r.svc.SetDirectKeepAlive(100 * time.Millisecond)
	ping := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"ping","arguments":{}}}`
	served := func() int64 {
		before := r.svc.DirectCallsServed()
		if d := c.post(t, nil, ping); !strings.Contains(d, "pong") {
			t.Fatalf("call: %s", d)
		}
		return r.svc.DirectCallsServed() - before
	}
	time.Sleep(150 * time.Millisecond)
	if n := served(); n != 0 {
		t.Errorf("the first call after the keep-alive interval took the fast path")
	}
	if n := served(); n != 1 {
		t.Errorf("the call right after an SDK call did not take the fast path")
	}
}

// fuzzCatalog has only tools whose answers depend on the request alone, so
// that the two paths' answers can be compared byte for byte.
const fuzzCatalog = `
version: 1
upstreams:
  crm:
    base_url: http://${env:CRM_HOST}/
tools:
  - name: get_customer
    description: Fetch one customer.
    upstream: crm
    method: GET
    path: /customers/{id}
    input_schema:
      type: object
      properties:
        id: {type: string, minLength: 1}
      required: [id]
  - name: ping
    description: Check the CRM is up.
    upstream: crm
    method: GET
    path: /ping
  - name: count_orders
    description: Count orders.
    upstream: crm
    method: GET
    path: /orders/count
`

// FuzzDirectCallLikeSDK sends any POST body on an initialized session with
// the fast path on and then off: the two answers must be identical,
// whatever the fast path decided.
func FuzzDirectCallLikeSDK(f *testing.F) {
	for _, seed := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_customer","arguments":{"id":"42"}}}`,
		`{"jsonrpc":"2.0","id":"x","method":"tools/call","params":{"name":"ping"}}`,
		`{"jsonrpc":"2.0","id":-3,"method":"tools/call","params":{"name":"count_orders","arguments":{},"_meta":{"toolbus/idempotencyKey":"k"}}}`,
		`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"get_customer","arguments":{"id":""}}}`,
		`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"get_customer","arguments":{"id":7}}}`,
		`{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"nope"}}`,
		`{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"ping","_meta":{"progressToken":1}}}`,
		`{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"ping","_meta":{"toolbus/idempotencyKey":7}}}`,
		`{"jsonrpc":"2.0","id":7,"method":"ping"}`,
		`[{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"ping"}}]`,
		`{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"ping","arguments":null}}`,
	} {
		f.Add(seed)
	}
	r := newRig(f, rigOptions{catalog: fuzzCatalog, logTo: io.Discard})
	c := &rawClient{url: r.url, version: "2025-11-25"}
	c.initialize(f)
	for deadline := time.Now().Add(10 * time.Second); !r.svc.DirectSessionKnown(c.session); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			f.Fatal("the fast path never learned of the session")
		}
	}
	f.Fuzz(func(t *testing.T, body string) {
		if strings.Contains(body, "initialize") {
			t.Skip("initialize and notifications/initialized change the session's state")
		}
		fast := c.post(t, nil, body)
		r.svc.SetDirectCalls(false)
		sdk := c.post(t, nil, body)
		r.svc.SetDirectCalls(true)
		if fast != sdk {
			t.Errorf("%q\nfast path answered\n%s\nthe SDK answered\n%s", body, fast, sdk)
		}
	})
}
