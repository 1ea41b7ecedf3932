package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/oauth2"

	"github.com/toolbus/toolbus/telemetry"
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
// endpoint that echo what they were sent), with tracing on, and searches
// the logs, the results, the errors, every span and `toolbus catalog show`
// for the secret values: the upstream credentials, the caller's bearer
// token (an MCP API key, also forwarded and exchanged upstream) and the
// token the exchange returned. It also checks that the spans name the
// caller (subject, tenant, scopes).
func TestSecretsNeverLeak(t *testing.T) {
	secrets := map[string]string{
		"UP_API_KEY":    "leak-apikey-7f3a9c1e5b",
		"UP_HDR":        "leak-header-2d8e4f6a0c",
		"UP_BEARER":     "leak-bearer-9b1d3f5e7a",
		"CC_SECRET":     "leak-clientsecret-4c6e8a0b2d",
		"TX_SECRET":     "leak-txsecret-5d7f9b1c3e",
		"INTRO_SECRET":  "leak-introspect-1a3c5e7f9b",
		"MCP_KEY_VALUE": "leak-mcpkey-8e0a2c4d6f",
	}
	for k, v := range secrets {
		t.Setenv(k, v)
	}
	// Not configured anywhere: the token the exchange endpoint issues.
	const exchanged = "leak-exchanged-6a8c0e2f4b"
	secrets["exchanged token"] = exchanged
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
	// An RFC 8693 endpoint that exchanges the caller's token; the upstream
	// then refuses (and echoes) the exchanged one.
	var subjectTokens sync.Map
	exchange := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		subjectTokens.Store(r.PostForm.Get("subject_token"), true)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":%q,"token_type":"Bearer","expires_in":3600,"issued_token_type":"urn:ietf:params:oauth:token-type:access_token"}`, exchanged)
	}))
	t.Cleanup(exchange.Close)

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
    - {name: ci, sha256: %[2]s, tenant: acme, scopes: [tools.read, tools.write]}
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
  fwd:
    base_url: %[1]s
    auth: {type: forward}
  tx:
    base_url: %[1]s
    auth: {type: token_exchange, token_url: "%[4]s/token", client_id: toolbus, client_secret: "${env:TX_SECRET}"}
tools:
  - {name: t_query, description: Q., upstream: query_key, method: GET, path: /q}
  - {name: t_bearer, description: B., upstream: bearer, method: POST, path: /b}
  - {name: t_cc, description: C., upstream: cc, method: GET, path: /c}
  - {name: t_fwd, description: F., upstream: fwd, method: GET, path: /f}
  - {name: t_tx, description: X., upstream: tx, method: GET, path: /x}
`, echo.URL, hex.EncodeToString(sum[:]), token.URL, exchange.URL)
	path := filepath.Join(t.TempDir(), "catalog.yaml")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}

	logs := &syncWriter{}
	spans := keptSpans{tracetest.NewInMemoryExporter()}
	cfg := serveConfig{
		spanExporter: spans,
		catalogPath:  path, services: []string{svcMCPFront, svcRESTWork}, natsListen: "none", dataDir: t.TempDir(),
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
	tools := []string{"t_query", "t_bearer", "t_cc", "t_fwd", "t_tx"}
	for _, tool := range tools {
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
	if _, ok := subjectTokens.Load(secrets["MCP_KEY_VALUE"]); !ok {
		t.Error("the token exchange was not asked with the caller's token")
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

	// The traces: every span the failing calls produced, in full.
	got := spans.GetSpans().Snapshots()
	for _, leak := range spanLeaks(got, secrets) {
		t.Errorf("trace leak: %s", leak)
	}
	checkRedactionSpans(t, got, tools)
}

// keptSpans is an in-memory exporter that keeps its spans when serve
// shuts telemetry down (tracetest's clears them).
type keptSpans struct{ *tracetest.InMemoryExporter }

func (keptSpans) Shutdown(context.Context) error { return nil }

// spanText is everything a span exports as text: its name, scope,
// attributes, events (exception and retry events included) with their
// attributes, links' attributes, status description and resource.
func spanText(s sdktrace.ReadOnlySpan) string {
	var b strings.Builder
	kv := func(attrs []attribute.KeyValue) {
		for _, a := range attrs {
			b.WriteString(string(a.Key) + "=" + a.Value.Emit() + "\n")
		}
	}
	b.WriteString(s.Name() + "\n" + s.InstrumentationScope().Name + "\n" + s.Status().Description + "\n")
	kv(s.Attributes())
	for _, e := range s.Events() {
		b.WriteString(e.Name + "\n")
		kv(e.Attributes)
	}
	for _, l := range s.Links() {
		kv(l.Attributes)
	}
	if r := s.Resource(); r != nil {
		kv(r.Attributes())
	}
	return b.String()
}

// spanLeaks names each secret (by key) found in a span.
func spanLeaks(spans []sdktrace.ReadOnlySpan, secrets map[string]string) []string {
	var out []string
	for _, s := range spans {
		text := spanText(s)
		for k, v := range secrets {
			if strings.Contains(text, v) {
				out = append(out, fmt.Sprintf("span %q holds the value of %s", s.Name(), k))
			}
		}
	}
	return out
}

// checkRedactionSpans checks that the traces of TestSecretsNeverLeak are
// the real ones, so that finding no secret in them means something: a
// server span naming the caller and a worker span under it per tool, and
// upstream attempts whose URL had its query (the API key) redacted.
func checkRedactionSpans(t *testing.T, spans []sdktrace.ReadOnlySpan, tools []string) {
	t.Helper()
	byName := map[string][]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		byName[s.Name()] = append(byName[s.Name()], s)
	}
	attr := func(s sdktrace.ReadOnlySpan, k attribute.Key) attribute.Value {
		for _, a := range s.Attributes() {
			if a.Key == k {
				return a.Value
			}
		}
		return attribute.Value{}
	}
	caller := func(s sdktrace.ReadOnlySpan) {
		t.Helper()
		if got := attr(s, telemetry.AttrCallerSubject).AsString(); got != "apikey:ci" {
			t.Errorf("%s: %s = %q", s.Name(), telemetry.AttrCallerSubject, got)
		}
		if got := attr(s, telemetry.AttrCallerTenant).AsString(); got != "acme" {
			t.Errorf("%s: %s = %q", s.Name(), telemetry.AttrCallerTenant, got)
		}
		if got := attr(s, telemetry.AttrCallerScopes).AsStringSlice(); !slices.Equal(got, []string{"tools.read", "tools.write"}) {
			t.Errorf("%s: %s = %q", s.Name(), telemetry.AttrCallerScopes, got)
		}
	}
	for _, tool := range tools {
		server := byName["tools/call "+tool]
		if len(server) != 1 {
			t.Errorf("%d spans named tools/call %s", len(server), tool)
			continue
		}
		caller(server[0])
		if s := server[0].Status(); s.Code != codes.Error {
			t.Errorf("tools/call %s: status %v, want an error", tool, s)
		}
		// The worker's spans continue the server span, which names the
		// caller for them.
		var process int
		for name, ss := range byName {
			if strings.HasPrefix(name, "process ") && strings.HasSuffix(name, "."+tool) {
				for _, s := range ss {
					process++
					if s.Parent().SpanID() != server[0].SpanContext().SpanID() {
						t.Errorf("%s: parent %s, want tools/call %s's span %s", s.Name(), s.Parent().SpanID(), tool, server[0].SpanContext().SpanID())
					}
				}
			}
		}
		if process == 0 {
			t.Errorf("no process span for %s", tool)
		}
	}
	clients := map[string]int{} // upstream attempts by upstream
	var retries int
	for _, s := range spans {
		if s.SpanKind() == trace.SpanKindClient && attr(s, telemetry.AttrURLFull).AsString() != "" {
			clients[attr(s, telemetry.AttrUpstream).AsString()]++
		}
		for _, e := range s.Events() {
			if e.Name == "retry" {
				retries++
			}
		}
	}
	for _, up := range []string{"query_key", "bearer", "fwd", "tx"} {
		if clients[up] == 0 {
			t.Errorf("no upstream attempt span for %s (have %v)", up, clients)
		}
	}
	if retries == 0 {
		t.Error("no retry event: the failing calls were not retried as expected")
	}
}

// TestSpanLeaksFindsPlantedSecrets proves the trace search of
// TestSecretsNeverLeak finds a secret wherever a span may carry one.
func TestSpanLeaksFindsPlantedSecrets(t *testing.T) {
	const secret = "planted-9c7e5a3b1d"
	secrets := map[string]string{"PLANTED": secret}
	for _, tc := range []struct {
		name string
		res  *resource.Resource
		span func(trace.Tracer)
	}{
		{name: "span name", span: func(tr trace.Tracer) { _, s := tr.Start(context.Background(), "GET /x?key="+secret); s.End() }},
		{name: "attribute", span: func(tr trace.Tracer) {
			_, s := tr.Start(context.Background(), "s", trace.WithAttributes(attribute.String("url.full", "http://h/?key="+secret)))
			s.End()
		}},
		{name: "string slice attribute", span: func(tr trace.Tracer) {
			_, s := tr.Start(context.Background(), "s", trace.WithAttributes(attribute.StringSlice("x", []string{"a", secret})))
			s.End()
		}},
		{name: "event name", span: func(tr trace.Tracer) {
			_, s := tr.Start(context.Background(), "s")
			s.AddEvent("token " + secret)
			s.End()
		}},
		{name: "retry event attribute", span: func(tr trace.Tracer) {
			_, s := tr.Start(context.Background(), "s")
			s.AddEvent("retry", trace.WithAttributes(telemetry.AttrRetryReason.String("transport error: "+secret)))
			s.End()
		}},
		{name: "exception event", span: func(tr trace.Tracer) {
			_, s := tr.Start(context.Background(), "s")
			s.RecordError(errors.New("refused " + secret))
			s.End()
		}},
		{name: "status description", span: func(tr trace.Tracer) {
			_, s := tr.Start(context.Background(), "s")
			s.SetStatus(codes.Error, "bad secret "+secret)
			s.End()
		}},
		{name: "link attribute", span: func(tr trace.Tracer) {
			sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{1}})
			_, s := tr.Start(context.Background(), "s", trace.WithLinks(trace.Link{SpanContext: sc, Attributes: []attribute.KeyValue{attribute.String("k", secret)}}))
			s.End()
		}},
		{name: "resource", res: resource.NewSchemaless(attribute.String("service.name", "svc-"+secret)), span: func(tr trace.Tracer) {
			_, s := tr.Start(context.Background(), "s")
			s.End()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			exp := tracetest.NewInMemoryExporter()
			opts := []sdktrace.TracerProviderOption{sdktrace.WithSyncer(exp)}
			if tc.res != nil {
				opts = append(opts, sdktrace.WithResource(tc.res))
			}
			tp := sdktrace.NewTracerProvider(opts...)
			defer func() { _ = tp.Shutdown(context.Background()) }()
			tc.span(tp.Tracer("redaction-test"))
			got := exp.GetSpans().Snapshots()
			if len(got) != 1 {
				t.Fatalf("%d spans", len(got))
			}
			if leaks := spanLeaks(got, secrets); len(leaks) != 1 {
				t.Errorf("search found %q, want the planted value once", leaks)
			}
			// And a clean span of the same shape is not flagged.
			if leaks := spanLeaks(got, map[string]string{"OTHER": "not-there-0000"}); len(leaks) != 0 {
				t.Errorf("false positive: %q", leaks)
			}
		})
	}
}
