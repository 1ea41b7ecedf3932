package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/toolbus/toolbus/console"
	"github.com/toolbus/toolbus/examples/crm"
	toolbusv1 "github.com/toolbus/toolbus/gen/toolbus/v1"
)

// serveInProcessWith is serveInProcess with the services, gRPC listener
// and a fresh embedded NATS chosen by the test.
func serveInProcessWith(t *testing.T, catalogPath string, grpcAddr string, tweak ...func(*serveConfig)) addrs {
	t.Helper()
	cfg := serveConfig{
		catalogPath: catalogPath,
		services:    []string{svcMCPFront, svcRESTWork},
		natsListen:  "none",
		dataDir:     t.TempDir(),
		httpAddr:    "127.0.0.1:0",
		grpcAddr:    grpcAddr,
		logLevel:    "warn",
		logFormat:   "json",
		grace:       5 * time.Second,
		instance:    "hostile",
		replicas:    1,
		console:     consoleConfig{adminScope: console.DefaultAdminScope},
	}
	for _, f := range tweak {
		f(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan addrs, 1)
	served := make(chan error, 1)
	go func() { served <- serve(ctx, cfg, nil, io.Discard, io.Discard, func(a addrs) { ready <- a }) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-served:
		case <-time.After(15 * time.Second):
			t.Error("serve did not stop")
		}
	})
	select {
	case a := <-ready:
		return a
	case err := <-served:
		t.Fatalf("serve returned before ready: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("not ready after 20s")
	}
	return addrs{}
}

func writeCatalog(t *testing.T, src string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "catalog.yaml")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestSlowLorisIsCutOff: a client that sends its request headers a byte at
// a time is disconnected once ReadHeaderTimeout (10s) has passed, however
// steadily it keeps sending.
func TestSlowLorisIsCutOff(t *testing.T) {
	if testing.Short() {
		t.Skip("takes the 10s header timeout")
	}
	_, upURL := startCRM(t)
	a := serveInProcessWith(t, testCatalog(t, upURL), "none")
	conn, err := net.Dial("tcp", a.http)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	head := "POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + strings.Repeat("X-Pad: y\r\n", 200)
	start := time.Now()
	closed := make(chan time.Duration, 1)
	go func() {
		buf := make([]byte, 512)
		for {
			if _, err := conn.Read(buf); err != nil {
				closed <- time.Since(start)
				return
			}
		}
	}()
	sent := 0
	for ; sent < len(head); sent++ {
		select {
		case d := <-closed:
			t.Logf("cut off after %v having sent %d of %d header bytes", d.Round(time.Millisecond), sent, len(head))
			if d < 9*time.Second {
				t.Errorf("cut off after %v, before the 10s header timeout: something else closed it", d)
			}
			return
		case <-time.After(100 * time.Millisecond):
		}
		if _, err := conn.Write([]byte{head[sent]}); err != nil {
			d := time.Since(start)
			t.Logf("write refused after %v having sent %d header bytes", d.Round(time.Millisecond), sent)
			if d < 9*time.Second || d > 15*time.Second {
				t.Errorf("connection closed after %v, want about the 10s header timeout", d)
			}
			return
		}
		if time.Since(start) > 15*time.Second {
			t.Fatalf("a client sending headers byte by byte is still connected after 15s (%d bytes sent)", sent)
		}
	}
	t.Fatal("the whole header was sent without the server closing the connection")
}

// TestMCPBodyLimit: /mcp refuses request bodies over 4 MiB with 413 before
// decoding them (the go-sdk's MaxRequestBodyBytes default, which
// mcp-front keeps), while a large body under the limit is decoded.
func TestMCPBodyLimit(t *testing.T) {
	_, upURL := startCRM(t)
	a := serveInProcessWith(t, testCatalog(t, upURL), "none")
	post := func(n int) int {
		// A valid JSON-RPC request padded with whitespace to n bytes.
		msg := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}`
		body := msg + strings.Repeat(" ", n-len(msg))
		req, _ := http.NewRequest(http.MethodPost, "http://"+a.http+"/mcp", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode
	}
	if got := post(4<<20 + 1); got != http.StatusRequestEntityTooLarge {
		t.Errorf("4 MiB + 1 byte: status %d, want 413", got)
	}
	if got := post(3 << 20); got != http.StatusOK {
		t.Errorf("3 MiB: status %d, want 200 (under the limit)", got)
	}
}

// TestArgumentsCannotRedirectTheUpstream drives hostile arguments and
// hostile upstream redirects through MCP, the bus and the REST worker:
// every request the upstream sees is on its own host and inside the tool's
// path template, redirects to a metadata address or to another loopback
// port are refused, and no CRLF reaches a header.
func TestArgumentsCannotRedirectTheUpstream(t *testing.T) {
	var mu sync.Mutex
	var seen []*http.Request
	otherHits := 0
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		otherHits++
		mu.Unlock()
		fmt.Fprint(w, `{"stolen":true}`)
	}))
	defer other.Close()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Clone(context.Background()))
		mu.Unlock()
		switch r.URL.Path {
		case "/api/v1/go/metadata":
			http.Redirect(w, r, "http://169.254.169.254/latest/meta-data/iam/security-credentials/", http.StatusFound)
		case "/api/v1/go/other-port":
			http.Redirect(w, r, other.URL+"/api/v1/items/1", http.StatusTemporaryRedirect)
		case "/api/v1/go/ipv6-metadata":
			http.Redirect(w, r, "http://[fd00:ec2::254]/latest/", http.StatusFound)
		default:
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"path":%q}`, r.URL.EscapedPath())
		}
	}))
	defer up.Close()
	cat := writeCatalog(t, fmt.Sprintf(`version: 1
upstreams:
  api:
    base_url: %s/api/v1
    timeout: 5s
tools:
  - name: get_item
    description: Fetch an item.
    upstream: api
    method: GET
    path: /items/{id}
    input_schema:
      type: object
      properties:
        id: {type: string}
        trace: {type: string}
      required: [id]
    params:
      trace: {in: header, name: X-Trace}
  - name: go
    description: Follow a redirect.
    upstream: api
    method: GET
    path: /go/{where}
    input_schema:
      type: object
      properties:
        where: {type: string}
      required: [where]
`, up.URL))
	a := serveInProcessWith(t, cat, "none")
	s := mcpSession(t, "http://"+a.http+"/mcp")

	for _, id := range []string{
		"../../admin", "..", "%2e%2e%2fadmin", "a/../../b", "%2F..%2Fadmin", "@evil.example", "//evil.example/x",
		"http://evil.example:81/", "evil.example:81", "?admin=1", "#frag", "a\\..\\b", "\u2025/admin", "%00",
	} {
		res := callTool(t, s, "get_item", map[string]any{"id": id})
		t.Logf("id %q: error=%v", id, res.IsError)
	}
	mu.Lock()
	for _, r := range seen {
		if r.Host != strings.TrimPrefix(up.URL, "http://") {
			t.Errorf("request reached host %q", r.Host)
		}
		p := r.URL.EscapedPath()
		rest, ok := strings.CutPrefix(p, "/api/v1/items/")
		if !ok || rest == "" || strings.Contains(rest, "/") || rest == ".." || rest == "." || r.URL.RawQuery != "" {
			t.Errorf("request escaped the path template: %s %q (query %q)", r.Method, p, r.URL.RawQuery)
		}
	}
	n := len(seen)
	seen = nil
	mu.Unlock()
	if n == 0 {
		t.Fatal("no hostile id reached the upstream: the check above saw nothing")
	}

	res := callTool(t, s, "get_item", map[string]any{"id": "1", "trace": "x\r\nX-Admin: 1"})
	if !res.IsError {
		t.Error("a CRLF in a header argument was accepted")
	}
	mu.Lock()
	for _, r := range seen {
		if r.Header.Get("X-Admin") != "" || strings.ContainsAny(r.Header.Get("X-Trace"), "\r\n") {
			t.Errorf("header injected: %v", r.Header)
		}
	}
	mu.Unlock()

	for _, where := range []string{"metadata", "other-port", "ipv6-metadata"} {
		res := callTool(t, s, "go", map[string]any{"where": where})
		text := ""
		if len(res.Content) > 0 {
			if tc, ok := res.Content[0].(*mcp.TextContent); ok {
				text = tc.Text
			}
		}
		if !res.IsError || !strings.Contains(text, "redirect") {
			t.Errorf("redirect to %s: error=%v %q, want a refused redirect", where, res.IsError, text)
		}
		if strings.Contains(text, "stolen") || strings.Contains(text, "security-credentials") {
			t.Errorf("redirect to %s leaked the target: %q", where, text)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if otherHits != 0 {
		t.Errorf("the other loopback port was called %d times", otherHits)
	}
}

// TestAuthBypassAttempts: with authentication on, no path spelling,
// method, header trick or missing/empty credential reaches /mcp, the
// console API or gRPC; the right credential does (so each refusal is
// the check, not a broken endpoint).
func TestAuthBypassAttempts(t *testing.T) {
	appKey, opsKey := "app-key-0123456789abcdef", "ops-key-0123456789abcdef"
	sum := func(k string) string { h := sha256.Sum256([]byte(k)); return hex.EncodeToString(h[:]) }
	_, upURL := startCRM(t)
	cat := writeCatalog(t, fmt.Sprintf(`version: 1
auth:
  resource: http://127.0.0.1/mcp
  api_keys:
    - {name: app, sha256: %s, scopes: [tools.read, tools.write]}
    - {name: ops, sha256: %s, scopes: [toolbus.admin]}
upstreams:
  crm:
    base_url: %s/api/v1
tools:
  - name: get_customer
    description: Fetch one customer by id.
    upstream: crm
    method: GET
    path: /customers/{id}
    input_schema:
      type: object
      properties:
        id: {type: integer}
      required: [id]
`, sum(appKey), sum(opsKey), upURL))
	a := serveInProcessWith(t, cat, "127.0.0.1:0")
	base := "http://" + a.http
	initBody := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}`
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Timeout: 10 * time.Second}
	do := func(method, rawPath string, hdr http.Header, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, base+"/", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		// Opaque keeps the path exactly as written (//mcp, %6dcp, /./mcp).
		req.URL.Opaque = rawPath
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		for k, vs := range hdr {
			req.Header[k] = vs
		}
		res, err := noRedirect.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, rawPath, err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
		return res.StatusCode, string(b)
	}
	bearer := func(v string) http.Header { return http.Header{"Authorization": {v}} }
	tests := []struct {
		name   string
		method string
		path   string
		hdr    http.Header
	}{
		{"no credential", "POST", "/mcp", nil},
		{"empty bearer", "POST", "/mcp", bearer("Bearer ")},
		{"bearer without a space", "POST", "/mcp", bearer("Bearer")},
		{"wrong key", "POST", "/mcp", bearer("Bearer wrong")},
		{"key of another scheme", "POST", "/mcp", bearer("Basic " + appKey)},
		{"key with trailing junk", "POST", "/mcp", bearer("Bearer " + appKey + "x")},
		{"key prefix", "POST", "/mcp", bearer("Bearer " + appKey[:10])},
		{"key in the query", "POST", "/mcp?access_token=" + appKey, nil},
		{"key in another header", "POST", "/mcp", http.Header{"X-Api-Key": {appKey}, "Api-Key": {appKey}}},
		{"wrong key first, good key second", "POST", "/mcp", http.Header{"Authorization": {"Bearer wrong", "Bearer " + appKey}}},
		{"trailing slash", "POST", "/mcp/", nil},
		{"double slash", "POST", "//mcp", nil},
		{"dot segment", "POST", "/./mcp", nil},
		{"encoded letter", "POST", "/%6dcp", nil},
		{"upper case", "POST", "/MCP", nil},
		{"semicolon", "POST", "/mcp;x=1", nil},
		{"GET stream", "GET", "/mcp", nil},
		{"DELETE session", "DELETE", "/mcp", nil},
		{"PUT", "PUT", "/mcp", nil},
		{"PATCH", "PATCH", "/mcp", nil},
		{"method override header", "GET", "/mcp", http.Header{"X-Http-Method-Override": {"POST"}}},
		{"console API, no credential", "GET", "/console/api/stats", nil},
		{"console API, empty bearer", "GET", "/console/api/stats", bearer("Bearer ")},
		{"console API, tool caller's key", "GET", "/console/api/stats", bearer("Bearer " + appKey)},
		{"console API, double slash", "GET", "/console//api/stats", nil},
		{"console API, dot-dot from static", "GET", "/console/static/../api/stats", nil},
		{"console API, encoded slash", "GET", "/console/api%2Fstats", nil},
		{"console replay, no credential", "POST", "/console/api/dlq/x/replay", nil},
		{"console replay, tool caller's key", "POST", "/console/api/dlq/x/replay", bearer("Bearer " + appKey)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := do(tt.method, tt.path, tt.hdr, initBody)
			if code/100 == 2 || strings.Contains(body, `"result"`) || strings.Contains(body, "serverInfo") {
				t.Errorf("%s %s got %d: %.200s", tt.method, tt.path, code, body)
			}
		})
	}
	// Positive controls: the same requests with the right credential work.
	if code, body := do("POST", "/mcp", bearer("Bearer "+appKey), initBody); code != http.StatusOK || !strings.Contains(body, "serverInfo") {
		t.Errorf("initialize with the app key: %d %.200s", code, body)
	}
	if code, _ := do("GET", "/console/api/stats", bearer("Bearer "+opsKey), ""); code != http.StatusOK {
		t.Errorf("console API with the admin key: %d", code)
	}

	conn, err := grpc.NewClient(a.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := toolbusv1.NewToolServiceClient(conn)
	for _, md := range []metadata.MD{
		nil,
		metadata.Pairs("authorization", ""),
		metadata.Pairs("authorization", "Bearer "),
		metadata.Pairs("authorization", "Bearer wrong"),
		metadata.Pairs("authorization", "Basic "+appKey),
		metadata.Pairs("x-api-key", appKey),
		metadata.Pairs("authorization", "Bearer wrong", "authorization", "Bearer "+appKey),
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if md != nil {
			ctx = metadata.NewOutgoingContext(ctx, md)
		}
		_, lerr := client.ListTools(ctx, &toolbusv1.ListToolsRequest{})
		_, cerr := client.CallTool(ctx, &toolbusv1.CallToolRequest{Name: "get_customer", Arguments: &structpb.Struct{Fields: map[string]*structpb.Value{"id": structpb.NewNumberValue(1)}}})
		cancel()
		for _, err := range []error{lerr, cerr} {
			if status.Code(err) != codes.Unauthenticated {
				t.Errorf("gRPC with metadata %v: %v, want Unauthenticated", md, err)
			}
		}
	}
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+appKey)
	if _, err := client.ListTools(ctx, &toolbusv1.ListToolsRequest{}); err != nil {
		t.Errorf("gRPC ListTools with the app key: %v", err)
	}
}

// TestPerCallerConcurrencyLimit: a caller with --max-calls-per-caller
// calls in progress gets a rate_limited tool error for the next one, at
// once and without reaching the upstream, while another caller is served.
func TestPerCallerConcurrencyLimit(t *testing.T) {
	keyA, keyB := "caller-a-key-0123456789", "caller-b-key-0123456789"
	sum := func(k string) string { h := sha256.Sum256([]byte(k)); return hex.EncodeToString(h[:]) }
	up, upURL := startCRM(t)
	hang, err := up.AddFault(crm.Fault{Method: "GET", Path: "/api/v1/customers/7", Action: crm.FaultHang})
	if err != nil {
		t.Fatal(err)
	}
	cat := writeCatalog(t, fmt.Sprintf(`version: 1
auth:
  resource: http://127.0.0.1/mcp
  api_keys:
    - {name: a, sha256: %s, scopes: [tools.read]}
    - {name: b, sha256: %s, scopes: [tools.read]}
upstreams:
  crm:
    base_url: %s/api/v1
    timeout: 20s
tools:
  - name: get_customer
    description: Fetch one customer by id.
    upstream: crm
    method: GET
    path: /customers/{id}
    input_schema:
      type: object
      properties:
        id: {type: integer}
      required: [id]
`, sum(keyA), sum(keyB), upURL))
	const limit = 2
	a := serveInProcessWith(t, cat, "127.0.0.1:0", func(c *serveConfig) { c.rel.maxCallsPerCaller = limit })
	conn, err := grpc.NewClient(a.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := toolbusv1.NewToolServiceClient(conn)
	call := func(ctx context.Context, key string, id float64) (*toolbusv1.CallToolResponse, error) {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+key)
		return client.CallTool(ctx, &toolbusv1.CallToolRequest{Name: "get_customer", Arguments: &structpb.Struct{Fields: map[string]*structpb.Value{"id": structpb.NewNumberValue(id)}}})
	}
	held, stopHeld := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range limit {
		wg.Go(func() { _, _ = call(held, keyA, 7) })
	}
	defer func() { stopHeld(); up.RemoveFault(hang); wg.Wait() }()
	waitUntil(t, "caller A's calls reaching the upstream", 10*time.Second, func() bool { return up.Stats().InFlight == limit })

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	res, err := call(ctx, keyA, 1)
	if err != nil {
		t.Fatal(err)
	}
	if res.Error == nil || res.Error.Code != "caller_concurrency_exceeded" || res.Error.Class != toolbusv1.ErrorClass_ERROR_CLASS_RATE_LIMITED || !res.Error.Retryable {
		t.Errorf("caller A's call over the limit: %v, want a retryable caller_concurrency_exceeded", res)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("the refusal took %v: it must not wait", d)
	}
	if n := up.Stats().Routes["GET /api/v1/customers/{id}"]; n != limit {
		t.Errorf("upstream saw %d requests, want %d: the refused call must not reach it", n, limit)
	}
	res, err = call(ctx, keyB, 1)
	if err != nil || res.Error != nil {
		t.Errorf("caller B while A is at its limit: %v %v", res, err)
	}
	// A's slots come back when its calls end.
	stopHeld()
	up.RemoveFault(hang)
	wg.Wait()
	waitUntil(t, "caller A's slots being released", 10*time.Second, func() bool {
		res, err := call(ctx, keyA, 1)
		return err == nil && res.Error == nil
	})
}
