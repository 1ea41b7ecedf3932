package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/toolbus/toolbus/bus"
	"github.com/toolbus/toolbus/bus/bustest"
	"github.com/toolbus/toolbus/catalog"
	"github.com/toolbus/toolbus/examples/crm"
	"github.com/toolbus/toolbus/mcpauth"
	mcpfront "github.com/toolbus/toolbus/services/mcp-front"
	restworker "github.com/toolbus/toolbus/services/rest-worker"
)

// powerRig runs the demo CRM, an embedded NATS server, a REST worker and a
// stateful mcp-front for the catalog features of issue 7 (shaping,
// pagination, caching, widgets, reload).
type powerRig struct {
	crm    *crm.Server
	crmURL string
	dir    string
	url    string
	front  *mcpfront.Service
	worker *restworker.Service
	js     jetstream.JetStream
	cat    *catalog.Catalog
	path   string
}

type rigOptions struct {
	// files are written next to the catalog (widget templates).
	files map[string]string
	// auth authenticates MCP callers with the catalog's auth section.
	auth bool
}

// newPowerRig loads catalog src, in which %[1]s is the CRM's base URL and
// %[2]s an extra upstream's, if any.
func newPowerRig(t *testing.T, src string, extra string, o rigOptions) *powerRig {
	t.Helper()
	up := crm.NewServer(crm.Options{})
	upSrv := httptest.NewServer(up)
	t.Cleanup(func() { up.Close(); upSrv.Close() })
	dir := t.TempDir()
	for name, body := range o.files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "catalog.yaml")
	if err := os.WriteFile(path, []byte(fmt.Sprintf(src, upSrv.URL, extra)), 0o600); err != nil {
		t.Fatal(err)
	}
	cat, err := catalog.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	ns := bustest.Server(t)
	nc, js := bustest.Connect(t, ns)
	ctx := context.Background()
	if err := bus.DefaultTopology().Ensure(ctx, js); err != nil {
		t.Fatal(err)
	}
	log := bustest.Logger()
	worker, err := restworker.New(restworker.Options{Catalog: cat, NC: nc, JS: js, Instance: "w1", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	fo := mcpfront.Options{Catalog: cat, NC: nc, JS: js, Instance: "f1", Logger: log}
	if o.auth {
		if fo.Auth, err = mcpauth.New(cat, mcpauth.Options{Logger: log}); err != nil {
			t.Fatal(err)
		}
	}
	front, err := mcpfront.New(fo)
	if err != nil {
		t.Fatal(err)
	}
	startServices(t, ctx, worker, front)
	srv := httptest.NewServer(front.MCPHandler())
	t.Cleanup(srv.Close)
	return &powerRig{crm: up, crmURL: upSrv.URL, dir: dir, url: srv.URL, front: front, worker: worker, js: js, cat: cat, path: path}
}

// session connects a go-sdk client; bearer, when set, is sent on every
// request.
func (r *powerRig) session(t *testing.T, opts *mcp.ClientOptions, bearer string) *mcp.ClientSession {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tr := &mcp.StreamableClientTransport{Endpoint: r.url}
	if bearer != "" {
		tr.HTTPClient = &http.Client{Transport: bearerTransport{bearer}}
	}
	s, err := mcp.NewClient(&mcp.Implementation{Name: "power", Version: "test"}, opts).Connect(ctx, tr, nil)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

type bearerTransport struct{ token string }

func (b bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return http.DefaultTransport.RoundTrip(r)
}

func (r *powerRig) requests(route string) int64 {
	return r.crm.Stats().Routes[route]
}

const listRoute = "GET /api/v1/customers"

const shapingCatalog = `version: 1
upstreams:
  crm: {base_url: "%[1]s/api/v1", timeout: 5s}
tools:
  - name: shaped_customers
    description: Customers, id and email only.
    upstream: crm
    method: GET
    path: /customers
    input_schema: {type: object, properties: {limit: {type: integer}}}
    response:
      jq: '{customers: .data | map({id, email, name})}'
      drop: [customers.*.name]
  - name: raw_customers
    description: Customers as the API answers.
    upstream: crm
    method: GET
    path: /customers
    input_schema: {type: object, properties: {limit: {type: integer}}}
  - name: capped_customers
    description: Customers, capped.
    upstream: crm
    method: GET
    path: /customers
    input_schema: {type: object, properties: {limit: {type: integer}}}
    response: {max_bytes: 1000}
`

func TestResponseShapingJQAndDrop(t *testing.T) {
	rig := newPowerRig(t, shapingCatalog, "", rigOptions{})
	s := rig.session(t, nil, "")
	got := structuredOf(t, callTool(t, s, "shaped_customers", map[string]any{"limit": 3}))
	list, _ := got["customers"].([]any)
	if len(list) != 3 {
		t.Fatalf("customers = %v, want 3 items", got)
	}
	for _, c := range list {
		m := c.(map[string]any)
		var keys []string
		for k := range m {
			keys = append(keys, k)
		}
		if len(keys) != 2 || m["id"] == nil || m["email"] == nil {
			t.Errorf("item %v: want exactly id and email (jq kept name, drop removed it)", m)
		}
	}
}

var handleRE = regexp.MustCompile(`\{"continuation": "([^"]+)"\}`)

// TestResponseCapContinuation reads a capped answer part by part through
// the generated <tool>_continue tool and checks the parts add up to the
// uncapped answer.
func TestResponseCapContinuation(t *testing.T) {
	rig := newPowerRig(t, shapingCatalog, "", rigOptions{})
	s := rig.session(t, nil, "")
	want := textOf(callTool(t, s, "raw_customers", map[string]any{"limit": 30}))

	res := callTool(t, s, "capped_customers", map[string]any{"limit": 30})
	if res.IsError || res.StructuredContent != nil {
		t.Fatalf("capped answer: error %v, structured %v; want a text part", res.IsError, res.StructuredContent != nil)
	}
	var got strings.Builder
	for part := 0; ; part++ {
		text := textOf(res)
		body, note, ok := strings.Cut(text, "\n\n[")
		if !ok {
			t.Fatalf("part %d has no note: %q", part, text)
		}
		if len(body) > 1000 {
			t.Fatalf("part %d is %d bytes, over the cap of 1000", part, len(body))
		}
		got.WriteString(body)
		if strings.HasPrefix(note, "END OF RESULT") {
			break
		}
		if !strings.HasPrefix(note, "TRUNCATED") {
			t.Fatalf("part %d note = %q", part, note)
		}
		m := handleRE.FindStringSubmatch(note)
		if m == nil {
			t.Fatalf("no continuation handle in %q", note)
		}
		res = callTool(t, s, "capped_customers_continue", map[string]any{"continuation": m[1]})
		if res.IsError {
			t.Fatalf("continue: %s", textOf(res))
		}
		if part > 50 {
			t.Fatal("too many parts")
		}
	}
	if d := cmp.Diff(want, got.String()); d != "" {
		t.Errorf("parts joined differ from the whole answer (-want +got):\n%s", d)
	}
	bad := callTool(t, s, "capped_customers_continue", map[string]any{"continuation": "nosuchid:0"})
	if !bad.IsError || !strings.Contains(textOf(bad), "expired") {
		t.Errorf("unknown handle: %v %q, want an expired error", bad.IsError, textOf(bad))
	}
}

const paginationCatalog = `version: 1
upstreams:
  crm: {base_url: "%[1]s/api/v1", timeout: 5s}
tools:
  - name: cursor_follow
    description: All customers, cursor style.
    upstream: crm
    method: GET
    path: /customers
    input_schema: {type: object, properties: {limit: {type: integer}}}
    pagination: {style: cursor, results_path: data, next_cursor_path: next_cursor}
  - name: page_follow
    description: All customers, page style.
    upstream: crm
    method: GET
    path: /customers
    input_schema: {type: object, properties: {per_page: {type: integer}}}
    pagination: {style: page, results_path: data}
  - name: offset_follow
    description: All customers, offset style.
    upstream: crm
    method: GET
    path: /customers
    input_schema: {type: object, properties: {offset: {type: integer}, limit: {type: integer}}}
    pagination: {style: offset, results_path: data}
  - name: link_follow
    description: All customers, Link header.
    upstream: crm
    method: GET
    path: /customers
    input_schema: {type: object, properties: {per_page: {type: integer}}}
    pagination: {style: link, results_path: data}
  - name: limited_follow
    description: Two pages at most.
    upstream: crm
    method: GET
    path: /customers
    input_schema: {type: object, properties: {limit: {type: integer}}}
    pagination: {style: cursor, results_path: data, max_pages: 2}
  - name: cursor_pages
    description: One page per call, cursor style.
    upstream: crm
    method: GET
    path: /customers
    input_schema: {type: object, properties: {limit: {type: integer}}}
    pagination: {style: cursor, results_path: data, mode: cursor}
  - name: page_pages
    description: One page per call, page style.
    upstream: crm
    method: GET
    path: /customers
    input_schema: {type: object, properties: {per_page: {type: integer}}}
    pagination: {style: page, results_path: data, mode: cursor}
  - name: offset_pages
    description: One page per call, offset style.
    upstream: crm
    method: GET
    path: /customers
    input_schema: {type: object, properties: {limit: {type: integer}, offset: {type: integer}}}
    pagination: {style: offset, results_path: data, mode: cursor}
  - name: link_pages
    description: One page per call, Link header.
    upstream: crm
    method: GET
    path: /customers
    input_schema: {type: object, properties: {limit: {type: integer}}}
    pagination: {style: link, results_path: data, mode: cursor}
`

func customerIDs(t *testing.T, res *mcp.CallToolResult) []float64 {
	t.Helper()
	m := structuredOf(t, res)
	list, ok := m["data"].([]any)
	if !ok {
		t.Fatalf("no data list in %v", m)
	}
	var ids []float64
	for _, c := range list {
		ids = append(ids, c.(map[string]any)["id"].(float64))
	}
	return ids
}

func seq(from, to int) []float64 {
	var out []float64
	for i := from; i <= to; i++ {
		out = append(out, float64(i))
	}
	return out
}

// TestPaginationFollow walks the CRM's 50 customers 20 at a time in each
// style: three upstream requests merged into one answer, with a progress
// notification per page.
func TestPaginationFollow(t *testing.T) {
	rig := newPowerRig(t, paginationCatalog, "", rigOptions{})
	var mu sync.Mutex
	progress := map[any][]float64{}
	s := rig.session(t, &mcp.ClientOptions{ProgressNotificationHandler: func(_ context.Context, req *mcp.ProgressNotificationClientRequest) {
		mu.Lock()
		progress[req.Params.ProgressToken] = append(progress[req.Params.ProgressToken], req.Params.Progress)
		mu.Unlock()
	}}, "")
	tests := []struct {
		give string
		args map[string]any
	}{
		{give: "cursor_follow", args: map[string]any{"limit": 20}},
		{give: "page_follow", args: map[string]any{"per_page": 20}},
		{give: "offset_follow", args: map[string]any{"limit": 20, "offset": 0}},
		{give: "link_follow", args: map[string]any{"per_page": 20}},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			before := rig.requests(listRoute)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			params := &mcp.CallToolParams{Name: tt.give, Arguments: tt.args}
			params.SetProgressToken(tt.give)
			res, err := s.CallTool(ctx, params)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(seq(1, 50), customerIDs(t, res)); d != "" {
				t.Errorf("ids (-want +got):\n%s", d)
			}
			if n := rig.requests(listRoute) - before; n != 3 {
				t.Errorf("upstream requests = %d, want 3 pages", n)
			}
			if strings.Contains(textOf(res), "INCOMPLETE") {
				t.Errorf("complete walk says %q", textOf(res))
			}
			// Notifications may trail the answer by a moment.
			deadline := time.Now().Add(2 * time.Second)
			for {
				mu.Lock()
				got := append([]float64(nil), progress[tt.give]...)
				mu.Unlock()
				if len(got) == 3 || time.Now().After(deadline) {
					if d := cmp.Diff([]float64{1, 2, 3}, got); d != "" {
						t.Errorf("progress (-want +got):\n%s", d)
					}
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
	t.Run("max_pages", func(t *testing.T) {
		res := callTool(t, s, "limited_follow", map[string]any{"limit": 20})
		if d := cmp.Diff(seq(1, 40), customerIDs(t, res)); d != "" {
			t.Errorf("ids (-want +got):\n%s", d)
		}
		if !strings.Contains(textOf(res), "INCOMPLETE: stopped at the tool's limit after 2 pages") {
			t.Errorf("note = %q", textOf(res))
		}
	})
}

var moreRE = regexp.MustCompile(`"cursor": "([^"]+)"`)

// TestPaginationCursorMode pages through the customers one call at a
// time, passing back the token of each MORE RESULTS note.
func TestPaginationCursorMode(t *testing.T) {
	rig := newPowerRig(t, paginationCatalog, "", rigOptions{})
	s := rig.session(t, nil, "")
	tests := []struct {
		give string
		args map[string]any
	}{
		{give: "cursor_pages", args: map[string]any{"limit": 20}},
		{give: "page_pages", args: map[string]any{"per_page": 20}},
		{give: "offset_pages", args: map[string]any{"limit": 20}},
		{give: "link_pages", args: map[string]any{"limit": 20}},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			var all []float64
			var sizes []int
			args := tt.args
			for range 5 {
				res := callTool(t, s, tt.give, args)
				ids := customerIDs(t, res)
				all = append(all, ids...)
				sizes = append(sizes, len(ids))
				m := moreRE.FindStringSubmatch(textOf(res))
				if m == nil {
					break
				}
				args = map[string]any{"cursor": m[1]}
				for k, v := range tt.args {
					args[k] = v
				}
			}
			if d := cmp.Diff([]int{20, 20, 10}, sizes); d != "" {
				t.Errorf("page sizes (-want +got):\n%s", d)
			}
			if d := cmp.Diff(seq(1, 50), all); d != "" {
				t.Errorf("ids (-want +got):\n%s", d)
			}
		})
	}
	bad := callTool(t, s, "cursor_pages", map[string]any{"cursor": "not-a-token"})
	if !bad.IsError {
		t.Errorf("a forged token was accepted: %s", textOf(bad))
	}
}

const cacheCatalog = `version: 1
upstreams:
  crm: {base_url: "%[1]s/api/v1", timeout: 5s}
  nostore: {base_url: "%[2]s", timeout: 5s}
tools:
  - name: cached_customer
    description: One customer, cached briefly.
    upstream: crm
    method: GET
    path: /customers/{id}
    input_schema: {type: object, properties: {id: {type: integer}}, required: [id]}
    cache: {ttl: 1s}
  - name: per_caller_customer
    description: One customer, cached per caller.
    upstream: crm
    method: GET
    path: /customers/{id}
    input_schema: {type: object, properties: {id: {type: integer}}, required: [id]}
    cache: {ttl: 1m, per_caller: true}
    scopes: []
  - name: volatile
    description: Answers with Cache-Control no-store.
    upstream: nostore
    method: GET
    path: /volatile
    cache: {ttl: 1m}
`

const customerRoute = "GET /api/v1/customers/{id}"

// TestCacheHitMissExpiry counts upstream requests through the CRM's stats:
// the second identical call (with its arguments in another order) is a
// hit; other arguments miss; after the TTL the upstream is asked again.
func TestCacheHitMissExpiry(t *testing.T) {
	var volatile int
	var vmu sync.Mutex
	ns := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		vmu.Lock()
		volatile++
		vmu.Unlock()
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"now":"changes"}`)
	}))
	t.Cleanup(ns.Close)
	rig := newPowerRig(t, cacheCatalog, ns.URL, rigOptions{})
	s := rig.session(t, nil, "")

	first := callTool(t, s, "cached_customer", map[string]any{"id": 3})
	if first.Meta["toolbus/cache"] != nil {
		t.Errorf("first call marked %v, want a miss", first.Meta)
	}
	second := callTool(t, s, "cached_customer", map[string]any{"id": 3})
	if second.Meta["toolbus/cache"] != "hit" {
		t.Errorf("second call _meta = %v, want toolbus/cache: hit", second.Meta)
	}
	if d := cmp.Diff(structuredOf(t, first), structuredOf(t, second)); d != "" {
		t.Errorf("cached answer differs (-first +second):\n%s", d)
	}
	if n := rig.requests(customerRoute); n != 1 {
		t.Errorf("upstream requests after a hit = %d, want 1", n)
	}
	callTool(t, s, "cached_customer", map[string]any{"id": 4})
	if n := rig.requests(customerRoute); n != 2 {
		t.Errorf("upstream requests after other arguments = %d, want 2", n)
	}
	time.Sleep(1100 * time.Millisecond)
	if res := callTool(t, s, "cached_customer", map[string]any{"id": 3}); res.Meta["toolbus/cache"] != nil {
		t.Errorf("call after the TTL was a hit")
	}
	if n := rig.requests(customerRoute); n != 3 {
		t.Errorf("upstream requests after expiry = %d, want 3", n)
	}

	callTool(t, s, "volatile", nil)
	callTool(t, s, "volatile", nil)
	vmu.Lock()
	defer vmu.Unlock()
	if volatile != 2 {
		t.Errorf("no-store upstream asked %d times, want 2 (never cached)", volatile)
	}
}

// TestCacheCollapsesConcurrentCalls fires identical calls at once: the
// upstream sees one request.
func TestCacheCollapsesConcurrentCalls(t *testing.T) {
	rig := newPowerRig(t, cacheCatalog, "http://127.0.0.1:1", rigOptions{})
	s := rig.session(t, nil, "")
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if res := callTool(t, s, "cached_customer", map[string]any{"id": 9}); res.IsError {
				t.Errorf("call: %s", textOf(res))
			}
		})
	}
	wg.Wait()
	if n := rig.requests(customerRoute); n != 1 {
		t.Errorf("upstream requests for 8 concurrent identical calls = %d, want 1", n)
	}
}

const cacheAuthCatalog = cacheCatalog + `auth:
  resource: https://mcp.example.com/mcp
  api_keys:
    - {name: alice, sha256: %[3]s, scopes: ["*"]}
    - {name: bob, sha256: %[4]s, scopes: ["*"]}
`

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// TestCachePerCaller: with per_caller, one caller's answer is not served to
// another; each caller's repeat is a hit.
func TestCachePerCaller(t *testing.T) {
	src := strings.Replace(cacheAuthCatalog, "%[3]s", sha("alice-key-0123456789"), 1)
	src = strings.Replace(src, "%[4]s", sha("bob-key-0123456789"), 1)
	rig := newPowerRig(t, src, "http://127.0.0.1:1", rigOptions{auth: true})
	alice := rig.session(t, nil, "alice-key-0123456789")
	bob := rig.session(t, nil, "bob-key-0123456789")
	calls := []struct {
		s       *mcp.ClientSession
		wantHit bool
	}{{alice, false}, {alice, true}, {bob, false}, {bob, true}}
	for i, c := range calls {
		res := callTool(t, c.s, "per_caller_customer", map[string]any{"id": 5})
		if got := res.Meta["toolbus/cache"] == "hit"; got != c.wantHit {
			t.Errorf("call %d: hit = %v, want %v (%s)", i, got, c.wantHit, textOf(res))
		}
	}
	if n := rig.requests(customerRoute); n != 2 {
		t.Errorf("upstream requests = %d, want 2 (one per caller)", n)
	}
}

const widgetCatalog = `version: 1
upstreams:
  crm: {base_url: "%[1]s/api/v1", timeout: 5s}
widgets:
  customer: {file: customer.html, mime: text/html+skybridge}
tools:
  - name: get_customer
    description: One customer.
    upstream: crm
    method: GET
    path: /customers/{id}
    input_schema: {type: object, properties: {id: {type: integer}}, required: [id]}
    meta: {openai/outputTemplate: "ui://widget/customer.html", openai/toolInvocation/invoking: "Looking up"}
    result_meta: {openai/widgetDescription: "A customer card"}
`

// TestWidgetsAndResultMeta: the widget is served as a resource, the tool
// references it, and results carry result_meta.
func TestWidgetsAndResultMeta(t *testing.T) {
	const html = `<div id="customer"></div><script>/* card */</script>`
	rig := newPowerRig(t, widgetCatalog, "", rigOptions{files: map[string]string{"customer.html": html}})
	s := rig.session(t, nil, "")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rr, err := s.ReadResource(ctx, &mcp.ReadResourceParams{URI: "ui://widget/customer.html"})
	if err != nil {
		t.Fatal(err)
	}
	if len(rr.Contents) != 1 || rr.Contents[0].Text != html || rr.Contents[0].MIMEType != "text/html+skybridge" {
		t.Errorf("widget resource = %+v", rr.Contents)
	}
	tools, err := s.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := tools.Tools[0].Meta["openai/outputTemplate"]; got != "ui://widget/customer.html" {
		t.Errorf("tool _meta outputTemplate = %v", got)
	}
	res := callTool(t, s, "get_customer", map[string]any{"id": 1})
	if res.Meta["openai/widgetDescription"] != "A customer card" {
		t.Errorf("result _meta = %v, want result_meta", res.Meta)
	}
}
