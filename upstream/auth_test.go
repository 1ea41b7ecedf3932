package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/toolbus/toolbus/catalog"
	toolbusv1 "github.com/toolbus/toolbus/gen/toolbus/v1"
	"github.com/toolbus/toolbus/toolerr"
)

// Credentials of the auth tests. Every one is long and unique so a leak
// is found by a plain substring search.
var authEnv = map[string]string{
	"API_KEY":       "ak_live_0123456789abcdef",
	"BEARER":        "bt_live_fedcba9876543210",
	"BASIC_USER":    "svc-toolbus",
	"BASIC_PASS":    "pw_live_correcthorsebattery",
	"CLIENT_ID":     "toolbus-client",
	"CLIENT_SECRET": "cs_live_9f8e7d6c5b4a",
	"REFRESH":       "rt_live_a1b2c3d4e5f6",
}

// tokenEndpoint is an RFC 6749 token endpoint (client credentials,
// refresh token) with RFC 8693 token exchange, counting its requests.
type tokenEndpoint struct {
	srv       *httptest.Server
	requests  atomic.Int32
	issued    atomic.Int32
	expiresIn atomic.Int32
	delay     time.Duration
	mu        sync.Mutex
	forms     []url.Values
}

func newTokenEndpoint(t *testing.T) *tokenEndpoint {
	t.Helper()
	te := &tokenEndpoint{}
	te.expiresIn.Store(3600)
	te.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		te.requests.Add(1)
		if te.delay > 0 {
			time.Sleep(te.delay)
		}
		if err := r.ParseForm(); err != nil || r.Method != http.MethodPost {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		te.mu.Lock()
		te.forms = append(te.forms, r.PostForm)
		te.mu.Unlock()
		id, sec, ok := r.BasicAuth()
		if !ok {
			id, sec = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
		}
		w.Header().Set("Content-Type", "application/json")
		if id != authEnv["CLIENT_ID"] || sec != authEnv["CLIENT_SECRET"] {
			w.WriteHeader(http.StatusUnauthorized)
			// A careless server echoes what it got.
			fmt.Fprintf(w, `{"error":"invalid_client","error_description":"bad secret %s"}`, sec)
			return
		}
		resp := map[string]any{"token_type": "bearer", "expires_in": te.expiresIn.Load()}
		n := te.issued.Add(1)
		switch g := r.PostForm.Get("grant_type"); g {
		case "client_credentials":
			resp["access_token"] = fmt.Sprintf("cc-%d", n)
		case "refresh_token":
			if r.PostForm.Get("refresh_token") == "" {
				w.WriteHeader(http.StatusBadRequest)
				fmt.Fprint(w, `{"error":"invalid_grant"}`)
				return
			}
			resp["access_token"] = fmt.Sprintf("rt-%d", n)
			resp["refresh_token"] = fmt.Sprintf("rotated-%d", n)
		case grantTokenExchange:
			resp["access_token"] = "xc-" + r.PostForm.Get("subject_token") + fmt.Sprintf("-%d", n)
			resp["issued_token_type"] = catalog.TokenTypeAccessToken
		default:
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"error":"unsupported_grant_type"}`)
			return
		}
		_ = json.NewEncoder(w).Encode(resp)
	}))
	t.Cleanup(te.srv.Close)
	return te
}

func (te *tokenEndpoint) form(i int) url.Values {
	te.mu.Lock()
	defer te.mu.Unlock()
	return te.forms[i]
}

// authUpstream parses a one-upstream catalog whose upstream has the given
// auth section, against base.
func authUpstream(t *testing.T, base, auth string) *catalog.Upstream {
	t.Helper()
	src := fmt.Sprintf("version: 1\nupstreams:\n  crm:\n    base_url: %s\n    auth: %s\n", base, auth)
	cat, err := catalog.Parse("c.yaml", []byte(src), catalog.WithLookupEnv(func(k string) (string, bool) {
		v, ok := authEnv[k]
		return v, ok
	}))
	if err != nil {
		t.Fatal(err)
	}
	return cat.Upstreams["crm"]
}

// seen is what an upstream request carried.
type seen struct {
	Authorization string
	Query         string
	APIKeyHeader  string
}

func recordingUpstream(t *testing.T) (*httptest.Server, func() []seen) {
	t.Helper()
	var mu sync.Mutex
	var got []seen
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, seen{Authorization: r.Header.Get("Authorization"), Query: r.URL.RawQuery, APIKeyHeader: r.Header.Get("X-Api-Key")})
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{}`)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []seen { mu.Lock(); defer mu.Unlock(); return append([]seen(nil), got...) }
}

func doAuth(t *testing.T, c *Client, ctx context.Context, rawURL string) (*Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c.Do(req)
}

func TestAuthSchemesSendExactlyTheirCredential(t *testing.T) {
	te := newTokenEndpoint(t)
	caller := &toolbusv1.Caller{Subject: "alice", Token: "caller-token-alice"}
	basic := "Basic " + "c3ZjLXRvb2xidXM6cHdfbGl2ZV9jb3JyZWN0aG9yc2ViYXR0ZXJ5" // svc-toolbus:pw_live_correcthorsebattery
	tests := []struct {
		name string
		give string
		want seen
	}{
		{"none", `none`, seen{Query: "q=1"}},
		{"api key in header", `{type: api_key, name: X-Api-Key, value: "${env:API_KEY}"}`, seen{APIKeyHeader: authEnv["API_KEY"], Query: "q=1"}},
		{"api key in query", `{type: api_key, in: query, name: api_key, value: "${env:API_KEY}"}`, seen{Query: "api_key=" + authEnv["API_KEY"] + "&q=1"}},
		{"bearer", `{type: bearer, token: "${env:BEARER}"}`, seen{Authorization: "Bearer " + authEnv["BEARER"], Query: "q=1"}},
		{"basic", `{type: basic, username: "${env:BASIC_USER}", password: "${env:BASIC_PASS}"}`, seen{Authorization: basic, Query: "q=1"}},
		{"client credentials", `{type: oauth2_client_credentials, token_url: "` + te.srv.URL + `/token", client_id: "${env:CLIENT_ID}", client_secret: "${env:CLIENT_SECRET}", scopes: [crm.read]}`,
			seen{Authorization: "Bearer cc-1", Query: "q=1"}},
		{"refresh token", `{type: oauth2_refresh_token, token_url: "` + te.srv.URL + `/token", client_id: "${env:CLIENT_ID}", client_secret: "${env:CLIENT_SECRET}", refresh_token: "${env:REFRESH}"}`,
			seen{Authorization: "Bearer rt-2", Query: "q=1"}},
		{"forward", `{type: forward}`, seen{Authorization: "Bearer caller-token-alice", Query: "q=1"}},
		{"token exchange", `{type: token_exchange, token_url: "` + te.srv.URL + `/token", client_id: "${env:CLIENT_ID}", client_secret: "${env:CLIENT_SECRET}", audience: crm-api}`,
			seen{Authorization: "Bearer xc-caller-token-alice-3", Query: "q=1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, got := recordingUpstream(t)
			c := newClient(t, authUpstream(t, srv.URL, tt.give), Options{})
			resp, err := doAuth(t, c, WithCaller(context.Background(), caller), srv.URL+"/x?q=1")
			if err != nil {
				t.Fatal(err)
			}
			if resp.Status != 200 {
				t.Fatalf("status %d", resp.Status)
			}
			if diff := cmp.Diff([]seen{tt.want}, got()); diff != "" {
				t.Errorf("upstream saw (-want +got):\n%s", diff)
			}
		})
	}
	// What the token endpoint was sent, grant by grant.
	wantForms := []url.Values{
		{"grant_type": {"client_credentials"}, "scope": {"crm.read"}},
		{"grant_type": {"refresh_token"}, "refresh_token": {authEnv["REFRESH"]}},
		{"grant_type": {grantTokenExchange}, "subject_token": {"caller-token-alice"}, "subject_token_type": {catalog.TokenTypeAccessToken},
			"requested_token_type": {catalog.TokenTypeAccessToken}, "audience": {"crm-api"}},
	}
	for i, want := range wantForms {
		if diff := cmp.Diff(want, te.form(i)); diff != "" {
			t.Errorf("token request %d (-want +got):\n%s", i, diff)
		}
	}
}

// ccUpstream accepts only the token the test says is current.
func ccUpstream(t *testing.T, valid func(string) bool) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if !valid(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")) {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		fmt.Fprint(w, "ok")
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

func ccAuth(te *tokenEndpoint) string {
	return `{type: oauth2_client_credentials, token_url: "` + te.srv.URL + `/token", client_id: "${env:CLIENT_ID}", client_secret: "${env:CLIENT_SECRET}"}`
}

func TestClientCredentialsOneTokenRequestFor100ConcurrentCalls(t *testing.T) {
	te := newTokenEndpoint(t)
	te.delay = 50 * time.Millisecond // every call arrives while the token is being fetched
	srv, calls := ccUpstream(t, func(tok string) bool { return tok == "cc-1" })
	c := newClient(t, authUpstream(t, srv.URL, ccAuth(te)), Options{})
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for range 100 {
		wg.Go(func() {
			resp, err := doAuth(t, c, context.Background(), srv.URL+"/x")
			if err == nil && resp.Status != 200 {
				err = fmt.Errorf("status %d", resp.Status)
			}
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := te.requests.Load(); n != 1 {
		t.Errorf("token requests = %d, want 1", n)
	}
	if n := calls.Load(); n != 100 {
		t.Errorf("upstream calls = %d, want 100", n)
	}
}

func TestClientCredentialsRefreshBeforeExpiry(t *testing.T) {
	te := newTokenEndpoint(t)
	te.expiresIn.Store(600)
	srv, _ := ccUpstream(t, func(tok string) bool { return strings.HasPrefix(tok, "cc-") })
	var offset atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	u := authUpstream(t, srv.URL, ccAuth(te))
	mw, err := NewAuth(u, AuthOptions{Now: now, RefreshBefore: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, u, Options{Layers: Layers{Auth: mw}})
	call := func() {
		t.Helper()
		if resp, err := doAuth(t, c, context.Background(), srv.URL+"/x"); err != nil || resp.Status != 200 {
			t.Fatalf("call: %v %v", resp, err)
		}
	}
	call()
	call()
	if n := te.requests.Load(); n != 1 {
		t.Fatalf("token requests = %d, want 1 while the token is fresh", n)
	}
	// 8m30s later the 10-minute token is within RefreshBefore (1m) of its
	// expiry... not yet; at 9m01s it is.
	offset.Store(int64(8*time.Minute + 30*time.Second))
	call()
	if n := te.requests.Load(); n != 1 {
		t.Fatalf("token requests = %d, want 1 before the refresh point", n)
	}
	offset.Store(int64(9*time.Minute + time.Second))
	call()
	if n := te.requests.Load(); n != 2 {
		t.Fatalf("token requests = %d, want 2 after the refresh point", n)
	}
}

func TestClientCredentials401RefreshesOnceAndRetriesOnce(t *testing.T) {
	te := newTokenEndpoint(t)
	// The first token is revoked upstream; later ones are good.
	srv, calls := ccUpstream(t, func(tok string) bool { return tok != "cc-1" && strings.HasPrefix(tok, "cc-") })
	c := newClient(t, authUpstream(t, srv.URL, ccAuth(te)), Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/x", strings.NewReader(`{"a":1}`))
	resp, err := c.Do(req)
	if err != nil || resp.Status != 200 {
		t.Fatalf("call: %v %v", resp, err)
	}
	if n := te.requests.Load(); n != 2 {
		t.Errorf("token requests = %d, want 2 (first token, one refresh)", n)
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("upstream calls = %d, want 2 (the 401, one retry)", n)
	}

	// An upstream that refuses every token: still one refresh, one retry,
	// and the 401 is the answer.
	te2 := newTokenEndpoint(t)
	srv2, calls2 := ccUpstream(t, func(string) bool { return false })
	c2 := newClient(t, authUpstream(t, srv2.URL, ccAuth(te2)), Options{})
	resp, err = doAuth(t, c2, context.Background(), srv2.URL+"/x")
	if err != nil || resp.Status != http.StatusUnauthorized {
		t.Fatalf("call: %v %v", resp, err)
	}
	if n, m := te2.requests.Load(), calls2.Load(); n != 2 || m != 2 {
		t.Errorf("token requests = %d, upstream calls = %d; want 2 and 2", n, m)
	}
}

func TestTokenExchangeCachedPerCaller(t *testing.T) {
	te := newTokenEndpoint(t)
	srv, got := recordingUpstream(t)
	c := newClient(t, authUpstream(t, srv.URL, `{type: token_exchange, token_url: "`+te.srv.URL+`/token", client_id: "${env:CLIENT_ID}", client_secret: "${env:CLIENT_SECRET}"}`), Options{})
	for _, who := range []string{"alice", "bob", "alice", "bob", "alice"} {
		ctx := WithCaller(context.Background(), &toolbusv1.Caller{Subject: who, Token: "tok-" + who})
		if _, err := doAuth(t, c, ctx, srv.URL+"/x"); err != nil {
			t.Fatal(err)
		}
	}
	if n := te.requests.Load(); n != 2 {
		t.Errorf("token requests = %d, want one per caller (2)", n)
	}
	var auths []string
	for _, s := range got() {
		auths = append(auths, s.Authorization)
	}
	want := []string{"Bearer xc-tok-alice-1", "Bearer xc-tok-bob-2", "Bearer xc-tok-alice-1", "Bearer xc-tok-bob-2", "Bearer xc-tok-alice-1"}
	if diff := cmp.Diff(want, auths); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestCallerTokenMissing(t *testing.T) {
	for _, auth := range []string{`{type: forward}`, `{type: token_exchange, token_url: "https://127.0.0.1:1/token"}`} {
		srv, got := recordingUpstream(t)
		c := newClient(t, authUpstream(t, srv.URL, auth), Options{})
		_, err := doAuth(t, c, context.Background(), srv.URL+"/x")
		te := Classify("get", "crm", time.Second, err)
		if te.GetCode() != toolerr.CodeUnauthenticated || te.GetRetryable() {
			t.Errorf("%s: got %v, want a permanent %s tool error", auth, te, toolerr.CodeUnauthenticated)
		}
		if len(got()) != 0 {
			t.Errorf("%s: the upstream was called without credentials", auth)
		}
	}
}

func TestTokenEndpointErrorsDoNotLeakSecrets(t *testing.T) {
	te := newTokenEndpoint(t)
	srv, got := recordingUpstream(t)
	// A wrong secret: the endpoint echoes it in its error description.
	env := map[string]string{"CLIENT_ID": authEnv["CLIENT_ID"], "CLIENT_SECRET": "cs_wrong_but_still_secret_42"}
	src := "version: 1\nupstreams:\n  crm:\n    base_url: " + srv.URL + "\n    auth: " + ccAuth(te) + "\n"
	cat, err := catalog.Parse("c.yaml", []byte(src), catalog.WithLookupEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }))
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, cat.Upstreams["crm"], Options{})
	_, err = doAuth(t, c, context.Background(), srv.URL+"/x")
	if err == nil {
		t.Fatal("call succeeded with a wrong client secret")
	}
	tool := Classify("get", "crm", time.Second, err)
	want := "the token endpoint of upstream crm refused Toolbus's credentials (HTTP 401 invalid_client); retrying will not help until the upstream credentials in the catalog are fixed"
	if tool.GetMessage() != want || tool.GetCode() != toolerr.CodeUnauthenticated {
		t.Errorf("tool error = %q (%s), want %q", tool.GetMessage(), tool.GetCode(), want)
	}
	for _, text := range []string{err.Error(), fmt.Sprintf("%+v", err), tool.String()} {
		if strings.Contains(text, "cs_wrong_but_still_secret_42") {
			t.Errorf("secret leaked: %s", text)
		}
	}
	if len(got()) != 0 {
		t.Error("the upstream was called without a token")
	}
	var tErr *toolerr.Error
	if !errors.As(err, &tErr) {
		t.Errorf("error %T does not carry a tool error", err)
	}
}
