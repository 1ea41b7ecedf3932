package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"golang.org/x/oauth2"
)

// syncWriter collects serve's JSON logs.
type syncWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

type staticBearer string

func (s staticBearer) TokenSource(context.Context) (oauth2.TokenSource, error) {
	return oauth2.StaticTokenSource(&oauth2.Token{AccessToken: string(s)}), nil
}

func (s staticBearer) Authorize(_ context.Context, _ *http.Request, resp *http.Response) error {
	resp.Body.Close()
	return fmt.Errorf("refused with %d", resp.StatusCode)
}

// TestSecretsNeverLeak configures every kind of secret, makes calls that
// fail in the ways most likely to leak them (upstreams and a token
// endpoint that echo what they were sent), and searches the logs, the
// results, the errors and `toolbus catalog show` for the secret values.
func TestSecretsNeverLeak(t *testing.T) {
	secrets := map[string]string{
		"UP_API_KEY":    "leak-apikey-7f3a9c1e5b",
		"UP_HDR":        "leak-header-2d8e4f6a0c",
		"UP_BEARER":     "leak-bearer-9b1d3f5e7a",
		"CC_SECRET":     "leak-clientsecret-4c6e8a0b2d",
		"INTRO_SECRET":  "leak-introspect-1a3c5e7f9b",
		"MCP_KEY_VALUE": "leak-mcpkey-8e0a2c4d6f",
	}
	for k, v := range secrets {
		t.Setenv(k, v)
	}
	// Echoes every header and the query in a failing answer.
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var parts []string
		for k, v := range r.Header {
			parts = append(parts, k+"="+strings.Join(v, ","))
		}
		w.Header().Set("Content-Type", "application/json")
		status := http.StatusInternalServerError
		if r.Header.Get("Authorization") != "" {
			status = http.StatusUnauthorized
		}
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"message": "rejected " + r.URL.RawQuery + " " + strings.Join(parts, " ")}})
	}))
	t.Cleanup(echo.Close)
	// A token endpoint that refuses, quoting the secret it was sent.
	token := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, sec, _ := r.BasicAuth()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprintf(w, `{"error":"invalid_client","error_description":"secret %s is wrong"}`, sec)
	}))
	t.Cleanup(token.Close)

	sum := sha256.Sum256([]byte(secrets["MCP_KEY_VALUE"]))
	src := fmt.Sprintf(`version: 1
auth:
  resource: http://127.0.0.1:1/mcp
  oauth:
    issuer: http://127.0.0.1:1/
    introspection:
      url: http://127.0.0.1:1/introspect
      client_id: toolbus
      client_secret: ${env:INTRO_SECRET}
  api_keys:
    - {name: ci, sha256: %[2]s, scopes: ["*"]}
upstreams:
  query_key:
    base_url: %[1]s
    headers: {X-Extra-Token: "${env:UP_HDR}"}
    auth: {type: api_key, in: query, name: key, value: "${env:UP_API_KEY}"}
  bearer:
    base_url: %[1]s
    auth: {type: bearer, token: "${env:UP_BEARER}"}
  cc:
    base_url: %[1]s
    auth: {type: oauth2_client_credentials, token_url: "%[3]s/token", client_id: toolbus, client_secret: "${env:CC_SECRET}"}
tools:
  - {name: t_query, description: Q., upstream: query_key, method: GET, path: /q}
  - {name: t_bearer, description: B., upstream: bearer, method: POST, path: /b}
  - {name: t_cc, description: C., upstream: cc, method: GET, path: /c}
`, echo.URL, hex.EncodeToString(sum[:]), token.URL)
	path := filepath.Join(t.TempDir(), "catalog.yaml")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}

	logs := &syncWriter{}
	cfg := serveConfig{
		catalogPath: path, services: []string{svcMCPFront, svcRESTWork}, natsListen: "none", dataDir: t.TempDir(),
		httpAddr: "127.0.0.1:0", grpcAddr: "none", logLevel: "debug", logFormat: "json", grace: 5 * time.Second, instance: "redact",
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan addrs, 1)
	served := make(chan error, 1)
	go func() { served <- serve(ctx, cfg, nil, logs, logs, func(a addrs) { ready <- a }) }()
	var a addrs
	select {
	case a = <-ready:
	case err := <-served:
		t.Fatalf("serve: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("not ready")
	}

	var seen strings.Builder // results and errors
	tr := &http.Transport{}
	c := mcp.NewClient(&mcp.Implementation{Name: "redact", Version: "1"}, nil)
	cctx, ccancel := context.WithTimeout(context.Background(), 20*time.Second)
	s, err := c.Connect(cctx, &mcp.StreamableClientTransport{Endpoint: "http://" + a.http + "/mcp", HTTPClient: &http.Client{Transport: tr},
		OAuthHandler: staticBearer(secrets["MCP_KEY_VALUE"])}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tool := range []string{"t_query", "t_bearer", "t_cc"} {
		res, err := s.CallTool(cctx, &mcp.CallToolParams{Name: tool, Arguments: map[string]any{}})
		if err != nil {
			seen.WriteString(err.Error())
			continue
		}
		if !res.IsError {
			t.Errorf("%s succeeded; the test needs failing calls", tool)
		}
		b, _ := json.Marshal(res)
		seen.Write(b)
		seen.WriteByte('\n')
	}
	// A refused MCP credential that looks like one of the secrets.
	bad := mcp.NewClient(&mcp.Implementation{Name: "redact-bad", Version: "1"}, nil)
	if _, err := bad.Connect(cctx, &mcp.StreamableClientTransport{Endpoint: "http://" + a.http + "/mcp", HTTPClient: &http.Client{Transport: tr},
		OAuthHandler: staticBearer(secrets["UP_BEARER"])}, nil); err != nil {
		seen.WriteString(err.Error())
	} else {
		t.Error("connected with an unknown credential")
	}
	_ = s.Close()
	ccancel()
	tr.CloseIdleConnections()
	cancel()
	if err := <-served; err != nil {
		t.Fatalf("serve: %v", err)
	}

	var show, showErr bytes.Buffer
	if err := runCatalog(context.Background(), []string{"show", path}, &show, &showErr); err != nil {
		t.Fatalf("catalog show: %v\n%s", err, showErr.String())
	}
	for _, want := range []string{"${env:UP_API_KEY}", "${env:CC_SECRET}", "${env:INTRO_SECRET}", hex.EncodeToString(sum[:])} {
		if !strings.Contains(show.String(), want) {
			t.Errorf("catalog show lacks %s", want)
		}
	}

	// The calls really failed upstream (not before reaching it).
	if !strings.Contains(seen.String(), "upstream_unauthenticated") {
		t.Errorf("results: %s", seen.String())
	}
	for name, text := range map[string]string{"logs": logs.String(), "results and errors": seen.String(), "catalog show": show.String() + showErr.String()} {
		if text == "" {
			t.Errorf("%s: nothing captured", name)
		}
		for k, v := range secrets {
			if strings.Contains(text, v) {
				t.Errorf("%s contain the value of %s", name, k)
			}
		}
	}
}
