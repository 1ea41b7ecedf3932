package mcpauth_test

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/auth"
	"go.uber.org/goleak"

	"github.com/toolbus/toolbus/catalog"
	"github.com/toolbus/toolbus/mcpauth"
	"github.com/toolbus/toolbus/mcpauth/mcpauthtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const resource = "http://127.0.0.1:8080/mcp"

// apiKey is a service caller's key; the catalog holds only its hash.
const apiKey = "tbk_live_0123456789abcdefghij"

func testCatalog(t *testing.T, issuer string) *catalog.Catalog {
	t.Helper()
	sum := sha256.Sum256([]byte(apiKey))
	src := fmt.Sprintf(`version: 1
auth:
  resource: %s
  resource_name: Test CRM
  oauth:
    issuer: %s
    tenant_claim: org
  api_keys:
    - name: billing
      sha256: %s
      tenant: acme
      scopes: [tools.read]
  cors:
    allowed_origins: [https://app.example.com]
upstreams:
  crm: {base_url: "http://127.0.0.1:9"}
tools:
  - {name: get_customer, description: Get one., upstream: crm, method: GET, path: /c}
  - {name: delete_customer, description: Delete one., upstream: crm, method: DELETE, path: /c}
  - {name: export_all, description: Export., upstream: crm, method: GET, path: /e, scopes: [crm.export]}
`, resource, issuer, hex.EncodeToString(sum[:]))
	cat, err := catalog.Parse("c.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return cat
}

func newAuthenticator(t *testing.T, cat *catalog.Catalog) *mcpauth.Authenticator {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	a, err := mcpauth.New(cat, mcpauth.Options{Logger: slog.New(slog.DiscardHandler), HTTPClient: &http.Client{Transport: tr, Timeout: 5 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestVerifyAgainstRealProvider(t *testing.T) {
	op := mcpauthtest.Start(t)
	a := newAuthenticator(t, testCatalog(t, op.Issuer()))
	ctx := context.Background()

	valid := op.Claims(resource, "alice", "tools.read", "tools.write")
	valid["org"] = "acme"
	id, err := a.Verify(ctx, op.Sign(t, valid))
	if err != nil {
		t.Fatalf("valid token refused: %v", err)
	}
	want := fmt.Sprintf("%v %v %v %v", "alice", "acme", []string{"tools.read", "tools.write"}, mcpauth.MethodJWT)
	if got := fmt.Sprintf("%v %v %v %v", id.Subject, id.Tenant, id.Scopes, id.Method); got != want {
		t.Errorf("identity = %s, want %s", got, want)
	}

	with := func(k string, v any) jwt.MapClaims {
		c := op.Claims(resource, "alice", "tools.read")
		c[k] = v
		return c
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: must(x509.MarshalPKIXPublicKey(op.M.Keypair.PublicKey))})
	kid, _ := op.M.Keypair.KeyID()
	hmacWithPublicKey := jwt.NewWithClaims(jwt.SigningMethodHS256, op.Claims(resource, "mallory", "tools.write"))
	hmacWithPublicKey.Header["kid"] = kid
	good := op.Sign(t, op.Claims(resource, "alice", "tools.read"))
	parts := strings.Split(good, ".")
	tests := []struct {
		name string
		give string
		want string
	}{
		{"expired", op.Sign(t, with("exp", time.Now().Add(-2*time.Minute).Unix())), "token expired"},
		{"not yet valid", op.Sign(t, with("nbf", time.Now().Add(5*time.Minute).Unix())), "token not valid yet"},
		{"no expiry", op.Sign(t, with("exp", nil)), "token has no expiry"},
		{"wrong audience", op.Sign(t, with("aud", "https://other.example.com/mcp")), "token not issued for this resource (audience)"},
		{"wrong issuer", op.Sign(t, with("iss", "https://evil.example.com")), "token from another issuer"},
		{"bad signature", parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString([]byte(strings.Repeat("x", 256))), "bad signature"},
		{"claims swapped under a good signature", parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"mallory"}`)) + "." + parts[2], "bad signature"},
		{"alg none", unsigned(t, `{"alg":"none","typ":"JWT"}`, op.Claims(resource, "mallory", "tools.write")), "signature algorithm not allowed"},
		{"HS256 keyed with the public key", signHMAC(t, hmacWithPublicKey, pubPEM), "signature algorithm not allowed"},
		{"no subject", op.Sign(t, with("sub", "")), "token has no subject"},
		{"garbage", "a.b.c", "malformed token"},
		{"unknown API key", "tbk_live_wrong", "unknown credential"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := a.Verify(ctx, tt.give)
			if !errors.Is(err, auth.ErrInvalidToken) {
				t.Fatalf("err = %v, want an invalid token error", err)
			}
			if want := "invalid token: " + tt.want; err.Error() != want {
				t.Errorf("err = %q, want %q", err, want)
			}
		})
	}
	if n := op.JWKSHits(); n != 1 {
		t.Errorf("key set fetched %d times, want 1 (cached)", n)
	}
}

func TestUnknownKeyIDRefreshesOnce(t *testing.T) {
	op := mcpauthtest.Start(t)
	a := newAuthenticator(t, testCatalog(t, op.Issuer()))
	ctx := context.Background()
	if _, err := a.Verify(ctx, op.Sign(t, op.Claims(resource, "alice"))); err != nil {
		t.Fatal(err)
	}
	if n := op.JWKSHits(); n != 1 {
		t.Fatalf("key set fetched %d times, want 1", n)
	}
	rogue := mcpauthtest.NewKeypair(t)
	for range 5 {
		_, err := a.Verify(ctx, mcpauthtest.SignWith(t, rogue, op.Claims(resource, "mallory")))
		if err == nil || err.Error() != "invalid token: token signed with an unknown key" {
			t.Fatalf("err = %v, want unknown key", err)
		}
	}
	if n := op.JWKSHits(); n != 2 {
		t.Errorf("key set fetched %d times after 5 unknown-kid tokens, want 2 (one rate-limited refresh)", n)
	}

	// A provider that rotates: the new key is found by the refresh that an
	// unknown kid triggers (here on a fresh authenticator, so the rate
	// limit does not apply).
	b := newAuthenticator(t, testCatalog(t, op.Issuer()))
	if _, err := b.Verify(ctx, op.Sign(t, op.Claims(resource, "alice"))); err != nil {
		t.Fatal(err)
	}
	next := mcpauthtest.NewKeypair(t)
	op.Publish(next)
	before := op.JWKSHits()
	id, err := b.Verify(ctx, mcpauthtest.SignWith(t, next, op.Claims(resource, "bob")))
	if err != nil {
		t.Fatalf("token signed with the rotated key refused: %v", err)
	}
	if id.Subject != "bob" || op.JWKSHits() != before+1 {
		t.Errorf("subject %q, key set fetched %d more times; want bob and 1", id.Subject, op.JWKSHits()-before)
	}
}

func TestAPIKey(t *testing.T) {
	op := mcpauthtest.Start(t)
	a := newAuthenticator(t, testCatalog(t, op.Issuer()))
	id, err := a.Verify(context.Background(), apiKey)
	if err != nil {
		t.Fatal(err)
	}
	if id.Subject != "apikey:billing" || id.Tenant != "acme" || id.Method != mcpauth.MethodAPIKey {
		t.Errorf("identity = %#v", id)
	}
	if !a.Allowed(id, "get_customer") || a.Allowed(id, "delete_customer") {
		t.Error("a read-only key must call read-only tools only")
	}
	for _, s := range []string{fmt.Sprint(id), fmt.Sprintf("%#v", id), fmt.Sprintf("%+v", id)} {
		if strings.Contains(s, apiKey) {
			t.Errorf("identity prints its key: %s", s)
		}
	}
}

// mcpServer is the middleware around a handler that records the caller.
func mcpServer(t *testing.T, a *mcpauth.Authenticator) (*httptest.Server, *[]string) {
	t.Helper()
	var callers []string
	mux := http.NewServeMux()
	a.Mount(mux)
	mux.Handle("/mcp", a.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := mcpauth.FromContext(r.Context())
		callers = append(callers, id.Subject)
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Mcp-Session-Id", "s1")
		fmt.Fprintf(w, "ok %d", len(body))
	})))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, &callers
}

func post(t *testing.T, url, token, body string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func TestHTTPChallenges(t *testing.T) {
	defer http.DefaultClient.CloseIdleConnections()
	op := mcpauthtest.Start(t)
	a := newAuthenticator(t, testCatalog(t, op.Issuer()))
	srv, callers := mcpServer(t, a)
	meta := "http://127.0.0.1:8080/.well-known/oauth-protected-resource/mcp"
	reader := op.Sign(t, op.Claims(resource, "alice", "tools.read"))
	call := func(tool string) string {
		return `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"` + tool + `","arguments":{}}}`
	}
	tests := []struct {
		name       string
		token      string
		body       string
		wantStatus int
		wantHeader string
	}{
		{"no token", "", call("get_customer"), 401, `Bearer resource_metadata="` + meta + `"`},
		{"expired token", op.Sign(t, func() jwt.MapClaims {
			c := op.Claims(resource, "alice", "tools.read")
			c["exp"] = time.Now().Add(-time.Hour).Unix()
			return c
		}()), call("get_customer"), 401, `Bearer resource_metadata="` + meta + `"`},
		{"allowed tool", reader, call("get_customer"), 200, ""},
		{"other methods need no scope", reader, `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, 200, ""},
		{"missing scope", reader, call("delete_customer"), 403,
			`Bearer error="insufficient_scope", scope="tools.write", resource_metadata="` + meta + `", error_description="tool delete_customer requires more scopes"`},
		{"missing scope in a batch", reader, "[" + call("get_customer") + "," + call("export_all") + "]", 403,
			`Bearer error="insufficient_scope", scope="crm.export", resource_metadata="` + meta + `", error_description="tool export_all requires more scopes"`},
		{"api key within its scopes", apiKey, call("get_customer"), 200, ""},
		{"api key beyond its scopes", apiKey, call("delete_customer"), 403,
			`Bearer error="insufficient_scope", scope="tools.write", resource_metadata="` + meta + `", error_description="tool delete_customer requires more scopes"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := post(t, srv.URL+"/mcp", tt.token, tt.body)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if got := resp.Header.Get("WWW-Authenticate"); got != tt.wantHeader {
				t.Errorf("WWW-Authenticate = %s\nwant %s", got, tt.wantHeader)
			}
		})
	}
	if diff := cmp.Diff([]string{"alice", "alice", "apikey:billing"}, *callers); diff != "" {
		t.Errorf("callers that reached the handler (-want +got):\n%s", diff)
	}
}

func TestProtectedResourceMetadata(t *testing.T) {
	defer http.DefaultClient.CloseIdleConnections()
	op := mcpauthtest.Start(t)
	a := newAuthenticator(t, testCatalog(t, op.Issuer()))
	srv, _ := mcpServer(t, a)
	want := map[string]any{
		"resource":                 resource,
		"authorization_servers":    []any{op.Issuer()},
		"scopes_supported":         []any{"crm.export", "tools.read", "tools.write"},
		"bearer_methods_supported": []any{"header"},
		"resource_name":            "Test CRM",
	}
	for _, path := range []string{"/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		var got map[string]any
		err = json.NewDecoder(resp.Body).Decode(&got)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("%s: %d %s %v", path, resp.StatusCode, resp.Header.Get("Content-Type"), err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", path, diff)
		}
	}
}

func TestCORS(t *testing.T) {
	defer http.DefaultClient.CloseIdleConnections()
	op := mcpauthtest.Start(t)
	a := newAuthenticator(t, testCatalog(t, op.Issuer()))
	srv, _ := mcpServer(t, a)
	preflight := func(origin string) *http.Response {
		req, _ := http.NewRequest(http.MethodOptions, srv.URL+"/mcp", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "authorization, content-type, mcp-session-id")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	resp := preflight("https://app.example.com")
	if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" ||
		!strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "Mcp-Session-Id") {
		t.Errorf("allowed preflight: %d %v", resp.StatusCode, resp.Header)
	}
	if resp := preflight("https://evil.example.com"); resp.StatusCode != 403 || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("foreign preflight: %d %v", resp.StatusCode, resp.Header)
	}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/mcp", strings.NewReader(`{}`))
	req.Header.Set("Origin", "https://app.example.com")
	req.Header.Set("Authorization", "Bearer "+apiKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("Access-Control-Expose-Headers"); !strings.Contains(got, "Mcp-Session-Id") || !strings.Contains(got, "Mcp-Protocol-Version") {
		t.Errorf("exposed headers = %q", got)
	}
}

func TestAuthNoneLogsAWarning(t *testing.T) {
	cat, err := catalog.Parse("c.yaml", []byte("version: 1\nauth: none\n"))
	if err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	a, err := mcpauth.New(cat, mcpauth.Options{Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if a.Enabled() || !strings.Contains(logs.String(), `"level":"WARN"`) || !strings.Contains(logs.String(), "authentication is OFF") {
		t.Errorf("enabled=%v logs=%s", a.Enabled(), logs.String())
	}
	if a.MetadataPaths() != nil {
		t.Error("auth: none serves metadata")
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func unsigned(t *testing.T, header string, claims jwt.MapClaims) string {
	t.Helper()
	body, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + base64.RawURLEncoding.EncodeToString(body) + "."
}

func signHMAC(t *testing.T, tok *jwt.Token, key []byte) string {
	t.Helper()
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
