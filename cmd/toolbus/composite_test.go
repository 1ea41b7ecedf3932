package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/toolbus/toolbus/bus"
	"github.com/toolbus/toolbus/bus/bustest"
	"github.com/toolbus/toolbus/catalog"
	mcpfront "github.com/toolbus/toolbus/services/mcp-front"
	restworker "github.com/toolbus/toolbus/services/rest-worker"
	"github.com/toolbus/toolbus/telemetry"
)

// gauge tracks requests in flight on a group of paths and the most seen
// at once.
type gauge struct {
	now, peak atomic.Int64
	total     atomic.Int64
}

func (g *gauge) enter() {
	g.total.Add(1)
	n := g.now.Add(1)
	for {
		p := g.peak.Load()
		if n <= p || g.peak.CompareAndSwap(p, n) {
			return
		}
	}
}

func (g *gauge) leave() { g.now.Add(-1) }

// compositeUpstream is an httptest API whose handlers record what the
// composite and batch tools make of them.
type compositeUpstream struct {
	// parallel counts /profile and /stats requests in flight: the two
	// independent steps of the dashboard. Each waits (up to 5s) for the
	// other to arrive, so a peak of 2 proves they overlapped.
	parallel gauge
	arrived  chan struct{}
	single   gauge // /customers/{id}
	bulk     gauge // /customers?ids=
	mu       sync.Mutex
	events   []string
	bulkIDs  []int
}

func (u *compositeUpstream) log(e string) {
	u.mu.Lock()
	u.events = append(u.events, e)
	u.mu.Unlock()
}

func (u *compositeUpstream) handler() http.Handler {
	mux := http.NewServeMux()
	meet := func(w http.ResponseWriter, r *http.Request, body string) {
		u.parallel.enter()
		defer u.parallel.leave()
		u.log("start " + r.URL.Path)
		select {
		case u.arrived <- struct{}{}: // the other one is waiting
		case <-u.arrived: // the other one arrived first
		case <-r.Context().Done(): // the step was cancelled: do not linger for a later call to meet
			return
		case <-time.After(5 * time.Second):
		}
		w.Header().Set("Content-Type", "application/json")
		u.log("end " + r.URL.Path)
		fmt.Fprint(w, body)
	}
	mux.HandleFunc("GET /profile/{id}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("id") == "missing" {
			http.Error(w, `{"error":{"message":"customer missing not found"}}`, http.StatusNotFound)
			return
		}
		meet(w, r, fmt.Sprintf(`{"id":%q,"name":"Ada Lovelace","segment":"gold"}`, r.PathValue("id")))
	})
	mux.HandleFunc("GET /stats/{id}", func(w http.ResponseWriter, r *http.Request) {
		meet(w, r, `{"orders":3,"lifetime_value":1250.5}`)
	})
	mux.HandleFunc("GET /orders", func(w http.ResponseWriter, r *http.Request) {
		u.log("orders for " + r.URL.Query().Get("customer_name") + " in " + r.URL.Query().Get("segment"))
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"items":[{"id":"o1"}],"customer_name":%q}`, r.URL.Query().Get("customer_name"))
	})
	mux.HandleFunc("GET /invoices", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"error":{"message":"invoices are not enabled for this account"}}`, http.StatusForbidden)
	})
	mux.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	})
	mux.HandleFunc("GET /customers/{id}", func(w http.ResponseWriter, r *http.Request) {
		u.single.enter()
		defer u.single.leave()
		time.Sleep(5 * time.Millisecond) // long enough for calls to pile up
		id, _ := strconv.Atoi(r.PathValue("id"))
		if id%7 == 0 {
			http.Error(w, fmt.Sprintf(`{"error":{"message":"customer %d not found"}}`, id), http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":%d,"name":"customer %d"}`, id, id)
	})
	mux.HandleFunc("GET /customers", func(w http.ResponseWriter, r *http.Request) {
		u.bulk.enter()
		defer u.bulk.leave()
		var items []string
		for _, s := range strings.Split(r.URL.Query().Get("ids"), ",") {
			id, err := strconv.Atoi(s)
			if err != nil {
				http.Error(w, `{"error":{"message":"bad id"}}`, http.StatusBadRequest)
				return
			}
			u.mu.Lock()
			u.bulkIDs = append(u.bulkIDs, id)
			u.mu.Unlock()
			if id%10 == 0 {
				continue // unknown ids are left out, as batch endpoints do
			}
			items = append(items, fmt.Sprintf(`{"id":%d,"name":"customer %d"}`, id, id))
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"items":[%s]}`, strings.Join(items, ","))
	})
	return mux
}

const compositeCatalog = `version: 1
upstreams:
  crm:
    base_url: %s
    timeout: 5s
    concurrency: 64
    retry: {max_attempts: 1}
tools:
  - {name: get_profile, description: d, upstream: crm, method: GET, path: "/profile/{id}",
     input_schema: {type: object, properties: {id: {type: string}}, required: [id]}}
  - {name: get_stats, description: d, upstream: crm, method: GET, path: "/stats/{id}",
     input_schema: {type: object, properties: {id: {type: string}}, required: [id]}}
  - {name: list_orders, description: d, upstream: crm, method: GET, path: /orders,
     input_schema: {type: object, properties: {customer_name: {type: string}, segment: {type: string}}, required: [customer_name]}}
  - {name: list_invoices, description: d, upstream: crm, method: GET, path: /invoices,
     input_schema: {type: object, properties: {customer: {type: string}}}}
  - {name: slow, description: d, upstream: crm, method: GET, path: /slow}
  - {name: get_customer, description: d, upstream: crm, method: GET, path: "/customers/{id}",
     input_schema: {type: object, properties: {id: {type: integer}}, required: [id]}}
  - {name: lookup_customers, description: d, upstream: crm, method: GET, path: /customers,
     input_schema: {type: object, properties: {ids: {type: string}}, required: [ids]}}

  - name: dashboard
    description: A customer's profile, statistics, orders and invoices.
    input_schema: {type: object, properties: {id: {type: string}}, required: [id]}
    steps:
      - {name: profile, tool: get_profile, args: {id: "{{ .input.id }}"}}
      - {name: stats, tool: get_stats, args: {id: "{{ .input.id }}"}}
      - name: orders
        tool: list_orders
        args_jq: '{customer_name: .steps.profile.name, segment: .steps.profile.segment}'
      - {name: invoices, tool: list_invoices, optional: true, args: {customer: "{{ .input.id }}"}}
    merge: {customer: profile, stats: stats, orders: orders, invoices: invoices}
  - name: slow_dashboard
    description: A dashboard with a step that never answers in time.
    timeout: 2s
    input_schema: {type: object, properties: {id: {type: string}}, required: [id]}
    steps:
      # Not get_stats: its upstream handler waits (up to 5 s) for a
      # parallel get_profile to prove the dashboard's steps overlap, and
      # here none comes (it passed only when a leftover from an earlier
      # subtest happened to be waiting).
      - {name: stats, tool: list_orders, args: {customer_name: "{{ .input.id }}"}}
      - {name: slow, tool: slow, after: [stats]}
      - {name: orders, tool: list_orders, args: {customer_name: x}, after: [slow]}
  - name: get_customers
    description: Many customers, one call each.
    batch: {tool: get_customer, argument: id, mode: parallel, max_parallel: 8}
  - name: get_customers_bulk
    description: Many customers in few calls.
    batch: {tool: lookup_customers, argument: ids, mode: upstream, join: ",", max_batch: 40, results: items, id_field: id}
`

type compositeRig struct {
	up  *compositeUpstream
	tel *telemetry.Telemetry
	exp *tracetest.InMemoryExporter
	s   *mcp.ClientSession
}

func newCompositeRig(t *testing.T) *compositeRig {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tel, err := telemetry.Setup(context.Background(), telemetry.Options{
		Components: []string{svcMCPFront, svcRESTWork}, Instance: "test", SpanExporter: exp,
		SpanProcessorOptions: []sdktrace.BatchSpanProcessorOption{sdktrace.WithBatchTimeout(50 * time.Millisecond)},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	up := &compositeUpstream{arrived: make(chan struct{})}
	upSrv := httptest.NewServer(up.handler())
	t.Cleanup(upSrv.Close)
	cat, err := catalog.Parse("composite.yaml", []byte(fmt.Sprintf(compositeCatalog, upSrv.URL)))
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
	worker, err := restworker.New(restworker.Options{Catalog: cat, NC: nc, JS: js, Instance: "w1", Logger: log,
		TracerProvider: tel.TracerProvider(svcRESTWork)})
	if err != nil {
		t.Fatal(err)
	}
	front, err := mcpfront.New(mcpfront.Options{Catalog: cat, NC: nc, JS: js, Instance: "f1", Logger: log, Stateless: true,
		TracerProvider: tel.TracerProvider(svcMCPFront)})
	if err != nil {
		t.Fatal(err)
	}
	startServices(t, ctx, worker, front)
	srv := httptest.NewServer(front.MCPHandler())
	t.Cleanup(srv.Close)
	return &compositeRig{up: up, tel: tel, exp: exp, s: mcpSession(t, srv.URL)}
}

func structuredOf(t *testing.T, res *mcp.CallToolResult) map[string]any {
	t.Helper()
	if res.IsError {
		t.Fatalf("tool error: %s", textOf(res))
	}
	m, ok := asJSON(t, res.StructuredContent).(map[string]any)
	if !ok {
		t.Fatalf("structured content %v is not an object", res.StructuredContent)
	}
	return m
}

func textOf(res *mcp.CallToolResult) string {
	var parts []string
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			parts = append(parts, tc.Text)
		}
	}
	return strings.Join(parts, "\n")
}

// TestCompositeTool runs a four-step composite: two independent steps
// that must overlap at the upstream, a step that uses the first one's
// answer, and an optional step that fails. Then a required step that
// fails, and a composite whose deadline passes mid-way. All of it in one
// trace per call.
func TestCompositeTool(t *testing.T) {
	rig := newCompositeRig(t)

	t.Run("parallel, dependent and optional steps", func(t *testing.T) {
		traceID, _ := trace.TraceIDFromHex("5bf92f3577b34da6a3ce929d0e0e4736")
		res := callToolWithTrace(t, rig, "dashboard", map[string]any{"id": "42"}, "00-5bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
		got := structuredOf(t, res)
		want := map[string]any{
			"customer": map[string]any{"id": "42", "name": "Ada Lovelace", "segment": "gold"},
			"stats":    map[string]any{"orders": 3.0, "lifetime_value": 1250.5},
			"orders":   map[string]any{"items": []any{map[string]any{"id": "o1"}}, "customer_name": "Ada Lovelace"},
			"invoices": nil,
		}
		missing, _ := got["_missing"].([]any)
		delete(got, "_missing")
		if diff := cmpDiff(want, got); diff != "" {
			t.Errorf("merged result (-want +got):\n%s", diff)
		}
		if len(missing) != 1 || missing[0].(map[string]any)["step"] != "invoices" ||
			missing[0].(map[string]any)["code"] != "upstream_permission_denied" {
			t.Errorf("_missing = %v, want the invoices step with upstream_permission_denied", missing)
		}
		if !strings.Contains(textOf(res), "PARTIAL RESULT") || !strings.Contains(textOf(res), "invoices are not enabled") {
			t.Errorf("text %q does not report the missing optional step", textOf(res))
		}
		if p := rig.up.parallel.peak.Load(); p != 2 {
			t.Errorf("profile and stats requests in flight at once: %d, want 2 (independent steps run in parallel)", p)
		}
		// The dependent step started only after profile answered, and saw its output.
		rig.up.mu.Lock()
		events := append([]string(nil), rig.up.events...)
		rig.up.mu.Unlock()
		endProfile, orders := -1, -1
		for i, e := range events {
			switch {
			case e == "end /profile/42":
				endProfile = i
			case strings.HasPrefix(e, "orders for"):
				orders = i
				if e != "orders for Ada Lovelace in gold" {
					t.Errorf("orders step called with %q, want the profile's name and segment", e)
				}
			}
		}
		if endProfile < 0 || orders < endProfile {
			t.Errorf("events %q: orders must come after the profile's answer", events)
		}

		// One trace: the call span, one span per step under it, and the
		// workers' spans in the same trace.
		var callSpan sdktrace.ReadOnlySpan
		steps := map[string]sdktrace.ReadOnlySpan{}
		workerTools := map[string]bool{}
		// Spans arrive in batches: wait until every worker's span is in.
		var spans []sdktrace.ReadOnlySpan
		for deadline := time.Now().Add(10 * time.Second); ; {
			spans = waitSpans(t, rig.tel, rig.exp, traceID, 12)
			tools := map[string]bool{}
			for _, sp := range spans {
				if v, ok := attrOf(sp, telemetry.AttrTool); ok && strings.Contains(serviceOf(sp), svcRESTWork) {
					tools[v.AsString()] = true
				}
			}
			if len(tools) >= 4 || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		for _, sp := range spans {
			switch {
			case sp.Name() == "tools/call dashboard":
				callSpan = sp
			case strings.HasPrefix(sp.Name(), "composite.step "):
				steps[strings.TrimPrefix(sp.Name(), "composite.step ")] = sp
			case serviceOf(sp) == "toolbus-"+svcRESTWork || strings.Contains(serviceOf(sp), svcRESTWork):
				if v, ok := attrOf(sp, telemetry.AttrTool); ok {
					workerTools[v.AsString()] = true
				}
			}
		}
		if callSpan == nil {
			t.Fatalf("no tools/call span in trace %s (spans: %d)", traceID, len(spans))
		}
		for _, name := range []string{"profile", "stats", "orders", "invoices"} {
			sp, ok := steps[name]
			if !ok {
				t.Errorf("no span for step %s", name)
				continue
			}
			if sp.Parent().SpanID() != callSpan.SpanContext().SpanID() {
				t.Errorf("step %s span's parent is %s, want the call span %s", name, sp.Parent().SpanID(), callSpan.SpanContext().SpanID())
			}
		}
		for _, tool := range []string{"get_profile", "get_stats", "list_orders", "list_invoices"} {
			if !workerTools[tool] {
				t.Errorf("no worker span for %s in the composite's trace (worker tools seen: %v)", tool, workerTools)
			}
		}
	})

	t.Run("required step fails", func(t *testing.T) {
		res := callTool(t, rig.s, "dashboard", map[string]any{"id": "missing"})
		if !res.IsError {
			t.Fatalf("want a tool error, got %v", res.StructuredContent)
		}
		msg := textOf(res)
		if !strings.Contains(msg, "failed at step profile (get_profile)") || !strings.Contains(msg, "customer missing not found") {
			t.Errorf("error %q must name the failed step and carry its reason", msg)
		}
	})

	t.Run("deadline expires mid-composite", func(t *testing.T) {
		res := callTool(t, rig.s, "slow_dashboard", map[string]any{"id": "7"})
		if !res.IsError {
			t.Fatalf("want a timeout, got %v", res.StructuredContent)
		}
		msg := textOf(res)
		for _, want := range []string{"composite slow_dashboard ran out of time", "during step slow", "completed: stats", "not started: orders"} {
			if !strings.Contains(msg, want) {
				t.Errorf("error %q does not contain %q", msg, want)
			}
		}
		meta, _ := asJSON(t, res.Meta).(map[string]any)
		if e, _ := meta["toolbus/error"].(map[string]any); e["code"] != "timeout" || e["retryable"] != true {
			t.Errorf("_meta error = %v, want a retryable timeout", meta["toolbus/error"])
		}
	})
}

// callToolWithTrace calls a tool in a session whose HTTP requests carry
// traceparent.
func callToolWithTrace(t *testing.T, rig *compositeRig, name string, args map[string]any, traceparent string) *mcp.CallToolResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := rig.s.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: args, Meta: mcp.Meta{"traceparent": traceparent}})
	if err != nil {
		t.Fatalf("call %s: %v", name, err)
	}
	return res
}

// TestBatchTools looks up 100 ids through a batch-capable endpoint (in
// chunks of 40) and through single calls (at most 8 at once), with some
// ids failing: every id gets its own result or error.
func TestBatchTools(t *testing.T) {
	rig := newCompositeRig(t)
	ids := make([]any, 100)
	for i := range ids {
		ids[i] = i + 1
	}

	t.Run("upstream batches", func(t *testing.T) {
		got := structuredOf(t, callTool(t, rig.s, "get_customers_bulk", map[string]any{"ids": ids}))
		results := got["results"].([]any)
		if len(results) != 100 || got["succeeded"] != 90.0 || got["failed"] != 10.0 {
			t.Fatalf("%d results, %v succeeded, %v failed; want 100, 90, 10", len(results), got["succeeded"], got["failed"])
		}
		for i, r := range results {
			r := r.(map[string]any)
			id := i + 1
			if r["id"] != float64(id) {
				t.Fatalf("results[%d].id = %v, want %d (input order)", i, r["id"], id)
			}
			if id%10 == 0 {
				if e, _ := r["error"].(map[string]any); r["ok"] != false || e["code"] != "upstream_not_found" {
					t.Errorf("id %d: %v, want a not-found error", id, r)
				}
				continue
			}
			if want := map[string]any{"id": float64(id), "name": fmt.Sprintf("customer %d", id)}; r["ok"] != true || cmpDiff(want, r["result"]) != "" {
				t.Errorf("id %d: %v, want ok with %v", id, r, want)
			}
		}
		if n := rig.up.bulk.total.Load(); n != 3 {
			t.Errorf("upstream batch calls = %d, want 3 (100 ids in chunks of 40)", n)
		}
		rig.up.mu.Lock()
		sent := len(rig.up.bulkIDs)
		rig.up.mu.Unlock()
		if sent != 100 {
			t.Errorf("ids sent upstream = %d, want 100", sent)
		}
	})

	t.Run("parallel single calls", func(t *testing.T) {
		got := structuredOf(t, callTool(t, rig.s, "get_customers", map[string]any{"ids": ids}))
		results := got["results"].([]any)
		if len(results) != 100 || got["succeeded"] != 86.0 || got["failed"] != 14.0 {
			t.Fatalf("%d results, %v succeeded, %v failed; want 100, 86, 14", len(results), got["succeeded"], got["failed"])
		}
		for i, r := range results {
			r := r.(map[string]any)
			id := i + 1
			if id%7 == 0 {
				e, _ := r["error"].(map[string]any)
				if r["ok"] != false || e["code"] != "upstream_not_found" || !strings.Contains(e["message"].(string), fmt.Sprintf("customer %d not found", id)) {
					t.Errorf("id %d: %v, want the upstream's not-found error", id, r)
				}
				continue
			}
			if want := map[string]any{"id": float64(id), "name": fmt.Sprintf("customer %d", id)}; r["ok"] != true || cmpDiff(want, r["result"]) != "" {
				t.Errorf("id %d: %v, want ok with %v", id, r, want)
			}
		}
		if n := rig.up.single.total.Load(); n != 100 {
			t.Errorf("single calls = %d, want 100", n)
		}
		if p := rig.up.single.peak.Load(); p > 8 {
			t.Errorf("single calls in flight at once: %d, more than max_parallel 8", p)
		}
	})
}

func cmpDiff(want, got any) string {
	w, _ := json.Marshal(want)
	g, _ := json.Marshal(got)
	if string(w) == string(g) {
		return ""
	}
	return "- " + string(w) + "\n+ " + string(g)
}
