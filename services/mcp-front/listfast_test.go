package mcpfront_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/toolbus/toolbus/bus/bustest"
	"github.com/toolbus/toolbus/catalog"
	"github.com/toolbus/toolbus/mcpauth"
	mcpfront "github.com/toolbus/toolbus/services/mcp-front"
)

// The tools/list fast path (listfast.go) is checked byte for byte against
// the bare SDK in listfast_internal_test.go; these tests run it through the
// whole service: the go-sdk client, auth and per-caller filtering,
// reloads, stdio.

// rawClient speaks Streamable HTTP by hand and returns whole answers
// (status, headers but Date and Mcp-Session-Id, body) as text.
type rawClient struct {
	url     string
	token   string // bearer, if any
	version string
	session string
}

func (c *rawClient) post(t testing.TB, hdr map[string]string, body string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, c.url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if c.version != "" {
		req.Header.Set("Mcp-Protocol-Version", c.version)
	}
	if c.session != "" {
		req.Header.Set("Mcp-Session-Id", c.session)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if sid := resp.Header.Get("Mcp-Session-Id"); sid != "" && c.session == "" {
		c.session = sid
	}
	return mcpfront.DumpResponse(t, resp)
}

// initialize opens a stateful session.
func (c *rawClient) initialize(t testing.TB) {
	t.Helper()
	c.post(t, nil, `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"`+c.version+`","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`)
	if c.session == "" {
		t.Fatal("initialize opened no session")
	}
	if d := c.post(t, nil, `{"jsonrpc":"2.0","method":"notifications/initialized"}`); !strings.HasPrefix(d, "202") {
		t.Fatalf("notifications/initialized: %s", d)
	}
}

const rawList = `{"jsonrpc":"2.0","id":3,"method":"tools/list","params":{}}`

// compareFastAndSDK sends body with the fast path on, then off, and fails
// unless both answers are identical and only the first was spliced.
func compareFastAndSDK(t *testing.T, svc *mcpfront.Service, c *rawClient, hdr map[string]string, body string, wantSpliced bool) string {
	t.Helper()
	return compareOnOff(t, c, hdr, body, svc.ListsSpliced, svc.SetListFastPath, wantSpliced)
}

// compareOnOff sends body with a fast path on, then off (set), and fails
// unless both answers are identical and count (what the fast path served)
// grew by one on the first exactly when wantFast, and not on the second.
func compareOnOff(t *testing.T, c *rawClient, hdr map[string]string, body string, count func() int64, set func(bool), wantFast bool) string {
	t.Helper()
	before := count()
	fast := c.post(t, hdr, body)
	if got, want := count()-before, map[bool]int64{false: 0, true: 1}[wantFast]; got != want {
		t.Errorf("fast path answered %d times, want %d: %s\n%.400s", got, want, body, fast)
	}
	set(false)
	defer set(true)
	before = count()
	sdk := c.post(t, hdr, body)
	if got := count() - before; got != 0 {
		t.Errorf("fast path answered %d times while off", got)
	}
	if fast != sdk {
		t.Errorf("%s\nfast path answered\n%s\nthe SDK answered\n%s", body, fast, sdk)
	}
	return fast
}

func TestListFastPathThroughService(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			r := newRig(t, rigOptions{stateless: m.stateless})
			cs := r.connect(t)
			for range 2 {
				before := r.svc.ListsSpliced()
				res, err := cs.ListTools(ctxTimeout(t, 5*time.Second), nil)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(wantTools(t, r.cat), res.Tools); diff != "" {
					t.Errorf("tools (-want +got):\n%s", diff)
				}
				if got := r.svc.ListsSpliced() - before; got != 1 {
					t.Errorf("go-sdk client: fast path answered %d lists, want 1", got)
				}
			}

			c := &rawClient{url: r.url, version: "2025-11-25"}
			if !m.stateless {
				c.initialize(t)
			}
			d := compareFastAndSDK(t, r.svc, c, nil, rawList, true)
			if !strings.Contains(d, `"get_customer"`) {
				t.Errorf("the list does not list the catalog: %.300s", d)
			}
			compareFastAndSDK(t, r.svc, c, nil, "["+rawList+"]", false) // a batch
			compareFastAndSDK(t, r.svc, c, nil, `{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"ping","arguments":{}}}`, false)
			if !m.stateless {
				stale := &rawClient{url: r.url, version: c.version, session: "expired-or-unknown"}
				if d := compareFastAndSDK(t, r.svc, stale, nil, rawList, false); !strings.HasPrefix(d, "404") {
					t.Errorf("unknown session: %s", d)
				}
				// No session: the SDK opens one that never initialized.
				compareFastAndSDK(t, r.svc, &rawClient{url: r.url, version: c.version}, nil, rawList, false)
			}
		})
	}
}

// A reload (AddTool, RemoveTools) shows at once through the fast path.
func TestListFastPathAfterReload(t *testing.T) {
	r := newRig(t, rigOptions{})
	cs := r.connect(t)
	c := &rawClient{url: r.url, version: "2025-11-25"}
	c.initialize(t)
	compareFastAndSDK(t, r.svc, c, nil, rawList, true)

	host := strings.TrimPrefix(r.upstream.URL, "http://")
	src := strings.Replace(testCatalog, "Fetch one customer", "Fetch one customer (reloaded)", 1)
	// Drop the ping tool.
	i := strings.Index(src, "  - name: ping\n")
	j := strings.Index(src, "  - name: echo\n")
	if src == testCatalog || i < 0 || j < i {
		t.Fatal("test catalog changed: update the edits")
	}
	src = src[:i] + src[j:]
	cat, err := catalog.Parse("test.yaml", []byte(src), catalog.WithLookupEnv(func(name string) (string, bool) {
		return host, name == "CRM_HOST"
	}))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.svc.Reload(cat); err != nil {
		t.Fatal(err)
	}
	before := r.svc.ListsSpliced()
	res, err := cs.ListTools(ctxTimeout(t, 5*time.Second), nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantTools(t, cat), res.Tools); diff != "" {
		t.Errorf("tools after reload (-want +got):\n%s", diff)
	}
	if r.svc.ListsSpliced()-before != 1 {
		t.Errorf("the list after reload did not take the fast path")
	}
	d := compareFastAndSDK(t, r.svc, c, nil, rawList, true)
	if !strings.Contains(d, "(reloaded)") || strings.Contains(d, `"ping"`) {
		t.Errorf("raw tools/list after reload shows the old tools: %.500s", d)
	}
}

// Stdio and in-memory sessions never take the HTTP fast path.
func TestListFastPathNotForOtherTransports(t *testing.T) {
	r := newRig(t, rigOptions{})
	ct, st := mcp.NewInMemoryTransports()
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- r.svc.ServeTransport(ctx, st) }()
	t.Cleanup(func() { cancel(); <-served })
	cs := connectTransport(t, ct)
	res, err := cs.ListTools(ctxTimeout(t, 5*time.Second), nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantTools(t, r.cat), res.Tools); diff != "" {
		t.Errorf("tools (-want +got):\n%s", diff)
	}
	if n := r.svc.ListsSpliced(); n != 0 {
		t.Errorf("in-memory session: fast path answered %d lists", n)
	}
	_ = cs.Close()
}

// Each caller gets its own filtered list through the fast path, never
// another caller's.
func TestListFastPathPerCaller(t *testing.T) {
	sum := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
	ns := bustest.Server(t)
	nc, js := bustest.Connect(t, ns)
	hs := httptest.NewUnstartedServer(nil)
	url := "http://" + hs.Listener.Addr().String() + "/mcp"
	src := fmt.Sprintf(`version: 1
auth:
  resource: %s
  api_keys:
    - {name: reader, sha256: %s, subject: reader, scopes: [tools.read]}
    - {name: writer, sha256: %s, subject: writer, scopes: [tools.read, tools.write]}
    - {name: nobody, sha256: %s, subject: nobody, scopes: [other]}
upstreams:
  crm: {base_url: "http://127.0.0.1:9"}
tools:
  - {name: get_customer, description: Get one., upstream: crm, method: GET, path: /c}
  - {name: list_customers, description: List them., upstream: crm, method: GET, path: /cs}
  - {name: delete_customer, description: Delete one., upstream: crm, method: DELETE, path: /c}
`, url, sum("reader-key"), sum("writer-key"), sum("nobody-key"))
	cat, err := catalog.Parse("auth.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	authn, err := mcpauth.New(cat, mcpauth.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := mcpfront.New(mcpfront.Options{Catalog: cat, NC: nc, JS: js, Instance: "front-lists", Logger: log, Version: "test", Auth: authn})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Shutdown(ctxTimeout(t, 5*time.Second)) })
	mux := http.NewServeMux()
	mux.Handle("/mcp", svc.MCPHandler())
	hs.Config.Handler = mux
	hs.Start()
	t.Cleanup(hs.Close)

	connect := func(key string) *mcp.ClientSession {
		tr := &http.Transport{}
		t.Cleanup(tr.CloseIdleConnections)
		hc := &http.Client{Transport: headerTransport{base: tr, auth: "Bearer " + key}}
		return connectTransport(t, &mcp.StreamableClientTransport{Endpoint: url, HTTPClient: hc, DisableStandaloneSSE: true})
	}
	names := func(cs *mcp.ClientSession) []string {
		t.Helper()
		before := svc.ListsSpliced()
		res, err := cs.ListTools(ctxTimeout(t, 5*time.Second), nil)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, tl := range res.Tools {
			out = append(out, tl.Name)
		}
		if svc.ListsSpliced()-before != 1 {
			t.Errorf("list %v did not take the fast path", out)
		}
		return out
	}
	reader, writer, nobody := connect("reader-key"), connect("writer-key"), connect("nobody-key")
	wantReader := []string{"get_customer", "list_customers"}
	wantWriter := []string{"delete_customer", "get_customer", "list_customers"}
	for range 3 { // interleaved, so each list is served from a warm cache
		if got := names(reader); !slices.Equal(got, wantReader) {
			t.Errorf("reader lists %v, want %v", got, wantReader)
		}
		if got := names(writer); !slices.Equal(got, wantWriter) {
			t.Errorf("writer lists %v, want %v", got, wantWriter)
		}
		before := svc.ListsSpliced()
		res, err := nobody.ListTools(ctxTimeout(t, 5*time.Second), nil)
		if err != nil || len(res.Tools) != 0 {
			t.Errorf("a caller without scopes lists %v, %v", res, err)
		}
		if svc.ListsSpliced() != before {
			t.Errorf("an empty list took the fast path")
		}
	}

	// Raw: each caller's answer is the SDK's, and a session cannot be
	// used with another caller's credentials.
	for _, key := range []string{"reader-key", "writer-key"} {
		c := &rawClient{url: url, token: key, version: "2025-11-25"}
		c.initialize(t)
		d := compareFastAndSDK(t, svc, c, nil, rawList, true)
		if strings.Contains(d, "delete_customer") != (key == "writer-key") {
			t.Errorf("%s sees the wrong list: %.400s", key, d)
		}
		other := *c
		other.token = map[string]string{"reader-key": "writer-key", "writer-key": "reader-key"}[key]
		if d := compareFastAndSDK(t, svc, &other, nil, rawList, false); !strings.HasPrefix(d, "403") {
			t.Errorf("another caller's session: %s", d)
		}
		noAuth := *c
		noAuth.token = ""
		if d := compareFastAndSDK(t, svc, &noAuth, nil, rawList, false); !strings.HasPrefix(d, "401") {
			t.Errorf("no credentials: %s", d)
		}
	}
}

// headerTransport adds an Authorization header to every request.
type headerTransport struct {
	base http.RoundTripper
	auth string
}

func (h headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", h.auth)
	return h.base.RoundTrip(r)
}
