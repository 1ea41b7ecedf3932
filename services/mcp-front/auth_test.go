package mcpfront_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"golang.org/x/oauth2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/toolbus/toolbus/bus"
	"github.com/toolbus/toolbus/bus/bustest"
	"github.com/toolbus/toolbus/catalog"
	toolbusv1 "github.com/toolbus/toolbus/gen/toolbus/v1"
	"github.com/toolbus/toolbus/mcpauth"
	"github.com/toolbus/toolbus/mcpauth/mcpauthtest"
	mcpfront "github.com/toolbus/toolbus/services/mcp-front"
)

// authRig is mcp-front with OAuth against a real OpenID provider, over
// embedded NATS, with a worker that records the calls it gets.
type authRig struct {
	op       *mcpauthtest.OIDC
	url      string // the MCP endpoint
	resource string
	svc      *mcpfront.Service
	grpc     toolbusv1.ToolServiceClient

	mu    sync.Mutex
	calls []*toolbusv1.ToolCall
}

func newAuthRig(t *testing.T) *authRig {
	t.Helper()
	return newAuthRigWith(t, "")
}

// newAuthRigWith is newAuthRig with extra catalog sections appended.
func newAuthRigWith(t *testing.T, extra string) *authRig {
	t.Helper()
	r := &authRig{op: mcpauthtest.Start(t)}
	ns := bustest.Server(t)
	nc, js := bustest.Connect(t, ns)
	if err := bus.DefaultTopology().Ensure(ctxTimeout(t, 10*time.Second), js); err != nil {
		t.Fatal(err)
	}

	hs := httptest.NewUnstartedServer(nil)
	r.url = "http://" + hs.Listener.Addr().String() + "/mcp"
	r.resource = r.url
	src := fmt.Sprintf(`version: 1
auth:
  resource: %s
  oauth:
    issuer: %s
    tenant_claim: org
upstreams:
  crm: {base_url: "http://127.0.0.1:9"}
  hr:
    base_url: "http://127.0.0.1:9"
    auth: {type: forward}
tools:
  - {name: get_customer, description: Get one., upstream: crm, method: GET, path: /c}
  - {name: delete_customer, description: Delete one., upstream: crm, method: DELETE, path: /c}
  - {name: get_employee, description: Get one., upstream: hr, method: GET, path: /e}
`, r.resource, r.op.Issuer()) + extra
	cat, err := catalog.Parse("auth.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}

	w := bus.NewWorker(nc, js, bus.WorkerOptions{Name: "auth-worker", Logger: bustest.Logger()})
	for _, up := range []string{"crm", "hr"} {
		err := w.ServeCalls(ctxTimeout(t, 10*time.Second), bus.CallConsumer{Kind: "rest", Upstream: up, Concurrency: 8, AckWait: 5 * time.Second, MaxDeliver: 3},
			func(ctx context.Context, call *toolbusv1.ToolCall, _ bus.Delivery) (*toolbusv1.ToolResult, error) {
				r.mu.Lock()
				r.calls = append(r.calls, call)
				r.mu.Unlock()
				if strings.Contains(string(call.Arguments), `"hold"`) {
					// A call that takes a while, for cancellation tests.
					select {
					case <-ctx.Done():
					case <-time.After(500 * time.Millisecond):
					}
				}
				return &toolbusv1.ToolResult{Json: []byte(`{"ok":true}`)}, nil
			})
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _ = w.Shutdown(ctxTimeout(t, 5*time.Second)) })

	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	log := slog.New(slog.DiscardHandler)
	authn, err := mcpauth.New(cat, mcpauth.Options{Logger: log, HTTPClient: &http.Client{Transport: tr}})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := mcpfront.New(mcpfront.Options{Catalog: cat, NC: nc, JS: js, Instance: "front-auth", Logger: log, Version: "test", Auth: authn})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Shutdown(ctxTimeout(t, 5*time.Second)) })
	r.svc = svc

	mux := http.NewServeMux()
	authn.Mount(mux)
	mux.Handle("/mcp", svc.MCPHandler())
	hs.Config.Handler = mux
	hs.Start()
	t.Cleanup(hs.Close)

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer(grpc.ChainUnaryInterceptor(authn.UnaryServerInterceptor()))
	svc.RegisterGRPC(g)
	served := make(chan error, 1)
	go func() { served <- g.Serve(lis) }()
	t.Cleanup(func() { g.Stop(); <-served })
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	r.grpc = toolbusv1.NewToolServiceClient(cc)
	return r
}

func (r *authRig) token(t *testing.T, subject string, scopes ...string) string {
	c := r.op.Claims(r.resource, subject, scopes...)
	c["org"] = "acme"
	return r.op.Sign(t, c)
}

func (r *authRig) callCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.calls)
}

func (r *authRig) lastCall() *toolbusv1.ToolCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.calls) == 0 {
		return nil
	}
	return r.calls[len(r.calls)-1]
}

// bearerHandler is the client side: a fixed token, and no interactive
// authorization when the server challenges.
type bearerHandler struct{ token string }

func (b bearerHandler) TokenSource(context.Context) (oauth2.TokenSource, error) {
	return oauth2.StaticTokenSource(&oauth2.Token{AccessToken: b.token, TokenType: "Bearer"}), nil
}

func (b bearerHandler) Authorize(_ context.Context, _ *http.Request, resp *http.Response) error {
	defer resp.Body.Close()
	return fmt.Errorf("server challenged with %d: %s", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
}

func (r *authRig) connect(t *testing.T, token string) (*mcp.ClientSession, error) {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	transport := &mcp.StreamableClientTransport{Endpoint: r.url, HTTPClient: &http.Client{Transport: tr}, DisableStandaloneSSE: true}
	if token != "" {
		transport.OAuthHandler = bearerHandler{token: token}
	}
	client := mcp.NewClient(&mcp.Implementation{Name: "auth-test", Version: "1"}, nil)
	cs, err := client.Connect(ctxTimeout(t, 10*time.Second), transport, nil)
	if err == nil {
		t.Cleanup(func() { _ = cs.Close() })
	}
	return cs, err
}

func TestSDKClientWithTokenEndToEnd(t *testing.T) {
	r := newAuthRig(t)
	tok := r.token(t, "alice", "tools.read")
	cs, err := r.connect(t, tok)
	if err != nil {
		t.Fatalf("connect with a valid token: %v", err)
	}

	// tools/list shows what alice may call: the read-only tools.
	lt, err := cs.ListTools(ctxTimeout(t, 5*time.Second), nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tl := range lt.Tools {
		names = append(names, tl.Name)
	}
	slices.Sort(names)
	if diff := cmp.Diff([]string{"get_customer", "get_employee"}, names); diff != "" {
		t.Errorf("tools/list (-want +got):\n%s", diff)
	}

	// A call reaches the worker with the caller, and without the token
	// because crm does not forward it.
	res, err := cs.CallTool(ctxTimeout(t, 5*time.Second), &mcp.CallToolParams{Name: "get_customer", Arguments: map[string]any{}})
	if err != nil || res.IsError {
		t.Fatalf("call: %v %+v", err, res)
	}
	want := &toolbusv1.Caller{Subject: "alice", Tenant: "acme", Scopes: []string{"tools.read"}}
	if got := r.lastCall().GetCaller(); !proto.Equal(got, want) {
		t.Errorf("caller on the bus = %v, want %v", got, want)
	}

	// hr forwards the caller's token: only its calls carry it.
	if _, err := cs.CallTool(ctxTimeout(t, 5*time.Second), &mcp.CallToolParams{Name: "get_employee", Arguments: map[string]any{}}); err != nil {
		t.Fatal(err)
	}
	want.Token = tok
	if got := r.lastCall().GetCaller(); !proto.Equal(got, want) {
		t.Errorf("caller on the bus for a forwarding upstream = %v, want it with the token", got)
	}

	// A tool beyond alice's scopes: refused with 403 before the bus.
	before := r.lastCall()
	_, err = cs.CallTool(ctxTimeout(t, 5*time.Second), &mcp.CallToolParams{Name: "delete_customer", Arguments: map[string]any{}})
	if err == nil || !strings.Contains(err.Error(), `403: Bearer error="insufficient_scope", scope="tools.write"`) {
		t.Errorf("call beyond scope: err = %v, want the 403 insufficient_scope challenge", err)
	}
	if r.lastCall() != before {
		t.Error("a refused call reached the worker")
	}
}

func TestSDKClientWithoutTokenGets401(t *testing.T) {
	r := newAuthRig(t)
	if _, err := r.connect(t, ""); err == nil {
		t.Fatal("connected without a token")
	}
	req, _ := http.NewRequest(http.MethodPost, r.url, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	http.DefaultClient.CloseIdleConnections()
	wantHeader := `Bearer resource_metadata="` + strings.Replace(r.url, "/mcp", "/.well-known/oauth-protected-resource/mcp", 1) + `"`
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != wantHeader {
		t.Errorf("got %d %q, want 401 %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), wantHeader)
	}
	// A token for another resource is refused too.
	if _, err := r.connect(t, r.op.Sign(t, r.op.Claims("https://other.example.com/mcp", "alice", "tools.read"))); err == nil {
		t.Error("connected with a token for another audience")
	}
}

func TestGRPCRefusesCallsWithoutCredentials(t *testing.T) {
	r := newAuthRig(t)
	withToken := func(tok string) context.Context {
		return metadata.AppendToOutgoingContext(ctxTimeout(t, 5*time.Second), "authorization", "Bearer "+tok)
	}
	tests := []struct {
		name string
		ctx  context.Context
		tool string
		want codes.Code
	}{
		{"no credentials", ctxTimeout(t, 5*time.Second), "get_customer", codes.Unauthenticated},
		{"bad token", withToken("not-a-token"), "get_customer", codes.Unauthenticated},
		{"insufficient scope", withToken(r.token(t, "alice", "tools.read")), "delete_customer", codes.PermissionDenied},
		{"allowed", withToken(r.token(t, "alice", "tools.read")), "get_customer", codes.OK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := r.grpc.CallTool(tt.ctx, &toolbusv1.CallToolRequest{Name: tt.tool})
			if got := status.Code(err); got != tt.want {
				t.Errorf("code = %s (%v), want %s", got, err, tt.want)
			}
		})
	}
	if _, err := r.grpc.ListTools(ctxTimeout(t, 5*time.Second), &toolbusv1.ListToolsRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("ListTools without credentials: %v", err)
	}
	lt, err := r.grpc.ListTools(withToken(r.token(t, "alice", "tools.read")), &toolbusv1.ListToolsRequest{})
	if err != nil || len(lt.GetTools()) != 2 {
		t.Errorf("ListTools for a reader: %v, %d tools, want 2", err, len(lt.GetTools()))
	}
	if got := r.lastCall().GetCaller().GetSubject(); got != "alice" {
		t.Errorf("caller of the gRPC call on the bus = %q, want alice", got)
	}
}

// The tools/call fast path (directcall.go) checks scopes as the SDK path
// does, and leaves a session used with another caller's token to the SDK,
// which refuses it.
func TestDirectCallScopesAndSessionOwner(t *testing.T) {
	r := newAuthRig(t)
	alice := &rawClient{url: r.url, token: r.token(t, "alice", "tools.read"), version: "2025-11-25"}
	alice.initialize(t)
	waitDirect(t, r.svc, alice.session)

	call := func(id int, tool string) string {
		return fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":%q,"arguments":{}}}`, id, tool)
	}
	if d := compareDirect(t, r.svc, alice, nil, call(1, "get_customer"), true); !strings.Contains(d, `"structuredContent":{"ok":true}`) {
		t.Errorf("allowed call: %s", d)
	}
	// The HTTP layer refuses a call without its scope before MCP sees it
	// (step-up: 403 with WWW-Authenticate), on either path.
	if d := compareDirect(t, r.svc, alice, nil, call(2, "delete_customer"), false); !strings.HasPrefix(d, "403") || !strings.Contains(d, `error=\"insufficient_scope\"`) {
		t.Errorf("call without its scope: %s", d)
	}
	// The token travels to the worker only for upstreams that forward it.
	if d := compareDirect(t, r.svc, alice, nil, call(3, "get_employee"), true); !strings.Contains(d, `"ok":true`) {
		t.Errorf("forwarding upstream: %s", d)
	}
	if got := r.lastCall().GetCaller(); got.GetSubject() != "alice" || got.GetToken() == "" {
		t.Errorf("caller on the bus: subject %q, token set %v", got.GetSubject(), got.GetToken() != "")
	}
	bob := &rawClient{url: r.url, token: r.token(t, "bob", "tools.read", "tools.write"), version: alice.version, session: alice.session}
	if d := compareDirect(t, r.svc, bob, nil, call(4, "get_customer"), false); !strings.HasPrefix(d, "403") {
		t.Errorf("another caller's session: %s", d)
	}
	// Another user cannot cancel alice's call in flight on the fast path by
	// naming its id on her session: the SDK refuses the notification (403)
	// and the call completes.
	held := r.callCount()
	done := make(chan string, 1)
	go func() {
		done <- alice.post(t, nil, `{"jsonrpc":"2.0","id":60,"method":"tools/call","params":{"name":"get_customer","arguments":{"hold":true}}}`)
	}()
	for deadline := time.Now().Add(10 * time.Second); r.callCount() == held; time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the held call never reached the worker")
		}
	}
	if d := bob.post(t, nil, `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":60}}`); !strings.HasPrefix(d, "403") {
		t.Errorf("another user's cancellation: %s", d)
	}
	if d := <-done; !strings.Contains(d, `"structuredContent":{"ok":true}`) {
		t.Errorf("alice's call after another user's cancellation: %s", d)
	}
	anon := &rawClient{url: r.url, version: alice.version, session: alice.session}
	if d := compareDirect(t, r.svc, anon, nil, call(5, "get_customer"), false); !strings.HasPrefix(d, "401") {
		t.Errorf("no token: %s", d)
	}
}

// TestProjectionScopes: a projection's tools, resources and subscriptions
// need its scopes (declared, or the read-only default), on every path:
// tools/list filtering, tools/call (403 at the HTTP layer), resources/read
// and resources/subscribe.
func TestProjectionScopes(t *testing.T) {
	t.Setenv("AUTH_STRIPE_SECRET", "whsec_auth_test")
	r := newAuthRigWith(t, `sources:
  stripe: {scheme: stripe, secrets: ["${env:AUTH_STRIPE_SECRET}"]}
projections:
  payments: {sources: [stripe], key: data.object.customer, scopes: [payments.read]}
  refunds: {sources: [stripe], key: data.object.customer}
`)
	ctx := ctxTimeout(t, 20*time.Second)
	alice, err := r.connect(t, r.token(t, "alice", "tools.read"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := alice.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tl := range res.Tools {
		names = append(names, tl.Name)
	}
	slices.Sort(names)
	if want := []string{"get_customer", "get_employee", "get_refunds", "list_refunds"}; !slices.Equal(names, want) {
		t.Errorf("alice's tools = %v, want %v (payments needs payments.read)", names, want)
	}
	// Nor are its resources listed to her.
	resources, err := alice.ListResources(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var uris []string
	for _, r := range resources.Resources {
		uris = append(uris, r.URI)
	}
	if want := []string{"toolbus://state/refunds"}; !slices.Equal(uris, want) {
		t.Errorf("alice's resources = %v, want %v", uris, want)
	}
	templates, err := alice.ListResourceTemplates(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	uris = nil
	for _, r := range templates.ResourceTemplates {
		uris = append(uris, r.URITemplate)
	}
	if want := []string{"toolbus://state/refunds/{key}"}; !slices.Equal(uris, want) {
		t.Errorf("alice's resource templates = %v, want %v", uris, want)
	}
	for _, uri := range []string{"toolbus://state/payments/cus_1", "toolbus://state/payments"} {
		_, err := alice.ReadResource(ctx, &mcp.ReadResourceParams{URI: uri})
		if err == nil || !strings.Contains(err.Error(), "insufficient scope: projection payments requires scopes payments.read") {
			t.Errorf("alice reading %s: %v, want insufficient scope", uri, err)
		}
	}
	if err := alice.Subscribe(ctx, &mcp.SubscribeParams{URI: "toolbus://state/payments/cus_1"}); err == nil || !strings.Contains(err.Error(), "insufficient scope") {
		t.Errorf("alice subscribing to payments: %v, want insufficient scope", err)
	}
	// refunds needs the read-only default, which alice has: not found, not
	// refused.
	if _, err := alice.ReadResource(ctx, &mcp.ReadResourceParams{URI: "toolbus://state/refunds/cus_1"}); err == nil || strings.Contains(err.Error(), "scope") {
		t.Errorf("alice reading a missing refund: %v, want resource not found", err)
	}
	if err := alice.Subscribe(ctx, &mcp.SubscribeParams{URI: "toolbus://state/refunds/cus_1"}); err != nil {
		t.Errorf("alice subscribing to refunds: %v", err)
	}
	if _, err := alice.CallTool(ctx, &mcp.CallToolParams{Name: "get_payments", Arguments: map[string]any{"key": "cus_1"}}); err == nil || !strings.Contains(err.Error(), `403: Bearer error="insufficient_scope", scope="payments.read"`) {
		t.Errorf("alice calling get_payments: %v, want 403 insufficient_scope for payments.read", err)
	}

	bob, err := r.connect(t, r.token(t, "bob", "tools.read", "payments.read"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := bob.CallTool(ctx, &mcp.CallToolParams{Name: "get_payments", Arguments: map[string]any{"key": "cus_1"}})
	if err != nil {
		t.Fatalf("bob calling get_payments: %v", err)
	}
	if !got.IsError || !strings.Contains(got.Content[0].(*mcp.TextContent).Text, "not found") {
		t.Errorf("bob's get_payments of a missing entity: %+v, want a not-found tool error", got.Content)
	}
	if _, err := bob.ReadResource(ctx, &mcp.ReadResourceParams{URI: "toolbus://state/payments"}); err != nil {
		t.Errorf("bob listing payments: %v", err)
	}
	if res, err := bob.ListResources(ctx, nil); err != nil || len(res.Resources) != 2 {
		t.Errorf("bob's resources: %v %v, want payments and refunds", res, err)
	}
}
