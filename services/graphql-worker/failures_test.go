package graphqlworker

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/toolbus/toolbus/bus"
	"github.com/toolbus/toolbus/catalog"
	toolbusv1 "github.com/toolbus/toolbus/gen/toolbus/v1"
	"github.com/toolbus/toolbus/upstream"
)

// scriptCatalog has a query and a mutation on an upstream at endpoint.
func scriptCatalog(tb testing.TB, endpoint string) *catalog.Catalog {
	tb.Helper()
	src := `version: 1
upstreams:
  crm:
    kind: graphql
    endpoint: ` + endpoint + `
    schema: {file: ../../../examples/crmgraphql/schema.graphql}
tools:
  - name: get_customer
    description: Get a customer.
    upstream: crm
    operation: 'query Get($id: ID!) { customer(id: $id) { id name } }'
  - name: create_customer
    description: Create a customer.
    upstream: crm
    operation: 'mutation Create($input: CustomerInput!) { createCustomer(input: $input) { customer { id } } }'
`
	cat, err := catalog.Parse("testdata/script.yaml", []byte(src))
	if err != nil {
		tb.Fatal(err)
	}
	return cat
}

// scripted is an upstream that answers request n (from 1) with script(n).
func scripted(tb testing.TB, script func(n int64, w http.ResponseWriter, r *http.Request)) (*httptest.Server, *atomic.Int64) {
	var n atomic.Int64
	// stop ends requests still held when the test ends, so closing the
	// server does not wait for them.
	stop, cancel := context.WithCancel(context.Background())
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, done := context.WithCancel(r.Context())
		defer done()
		go func() {
			select {
			case <-stop.Done():
				done()
			case <-ctx.Done():
			}
		}()
		script(n.Add(1), w, r.WithContext(ctx))
	}))
	tb.Cleanup(srv.Close)
	tb.Cleanup(cancel)
	return srv, &n
}

func newTestHandler(tb testing.TB, cat *catalog.Catalog) *handler {
	tb.Helper()
	// The reliability layers as a process installs them: retries with
	// back-off by the upstream's policy.
	opts := upstream.Options{Reliability: upstream.NewReliability(upstream.ReliabilityOptions{})}
	h, err := newHandler(cat, []*catalog.Upstream{cat.Upstreams["crm"]}, opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(h.closeIdle)
	return h
}

func TestUpstreamFailures(t *testing.T) {
	tests := []struct {
		name    string
		script  func(n int64, w http.ResponseWriter, r *http.Request)
		tool    string
		args    string
		timeout time.Duration
		// want is compared without durations; wantRequests is what the
		// upstream received.
		want         *toolbusv1.ToolResult
		wantRequests int64
	}{
		{
			name: "500 then success is retried",
			script: func(n int64, w http.ResponseWriter, _ *http.Request) {
				if n == 1 {
					http.Error(w, "database unavailable", http.StatusInternalServerError)
					return
				}
				w.Header().Set("Content-Type", "application/json")
				fmt.Fprint(w, `{"data":{"customer":{"id":"c1","name":"Ada"}}}`)
			},
			tool: "get_customer", args: `{"id":"c1"}`,
			want:         &toolbusv1.ToolResult{Json: []byte(`{"customer":{"id":"c1","name":"Ada"}}`), ContentType: "application/json", UpstreamStatus: 200, Attempts: 2},
			wantRequests: 2,
		},
		{
			name: "500 on a mutation without an idempotency header is not retried",
			script: func(n int64, w http.ResponseWriter, _ *http.Request) {
				http.Error(w, "database unavailable", http.StatusInternalServerError)
			},
			tool: "create_customer", args: `{"input":{"name":"Bob","email":"bob@example.com"}}`,
			want: &toolbusv1.ToolResult{UpstreamStatus: 500, Attempts: 1, Error: &toolbusv1.ToolError{
				Class: toolbusv1.ErrorClass_ERROR_CLASS_UPSTREAM_FAILED, Code: "upstream_failed", Retryable: true, UpstreamStatus: 500,
				Message: `upstream crm failed with 500 Internal Server Error (create_customer): "database unavailable"; retrying later may help`,
			}},
			wantRequests: 1,
		},
		{
			name: "400 with GraphQL errors is not retried",
			script: func(n int64, w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/graphql-response+json")
				w.WriteHeader(http.StatusBadRequest)
				fmt.Fprint(w, `{"errors":[{"message":"Variable \"$id\" got invalid value","locations":[{"line":1,"column":11}]},{"message":"quota exceeded for field","path":["customer","name"],"extensions":{"code":"LIMIT"}}]}`)
			},
			tool: "get_customer", args: `{"id":"c1"}`,
			want: &toolbusv1.ToolResult{UpstreamStatus: 400, Attempts: 1, Error: &toolbusv1.ToolError{
				Class: toolbusv1.ErrorClass_ERROR_CLASS_UPSTREAM_REJECTED, Code: "upstream_graphql_errors", UpstreamStatus: 400,
				Message: `upstream crm answered get_customer with no data: 2 GraphQL errors: GraphQL error: Variable "$id" got invalid value; ` +
					`GraphQL error at customer.name: quota exceeded for field (code: LIMIT); fix the arguments if they are at fault, retrying the same call will not help`,
			}},
			wantRequests: 1,
		},
		{
			name: "timeout",
			script: func(_ int64, _ http.ResponseWriter, r *http.Request) {
				select {
				case <-r.Context().Done():
				case <-time.After(10 * time.Second):
				}
			},
			tool: "get_customer", args: `{"id":"c1"}`, timeout: 300 * time.Millisecond,
			want: &toolbusv1.ToolResult{Attempts: 1, Error: &toolbusv1.ToolError{
				Class: toolbusv1.ErrorClass_ERROR_CLASS_TIMEOUT, Code: "timeout", Retryable: true,
				Message: "upstream crm did not answer within 300ms (get_customer); retrying later may help",
			}},
			wantRequests: 1,
		},
		{
			name: "a body that is not JSON",
			script: func(_ int64, w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				fmt.Fprint(w, "<html><body>Welcome to the proxy</body></html>")
			},
			tool: "get_customer", args: `{"id":"c1"}`,
			want: &toolbusv1.ToolResult{UpstreamStatus: 200, Attempts: 1, Error: &toolbusv1.ToolError{
				Class: toolbusv1.ErrorClass_ERROR_CLASS_BAD_UPSTREAM_RESPONSE, Code: "bad_upstream_response", Retryable: true, UpstreamStatus: 200,
				Message: `upstream crm answered 200 to get_customer with a body that is not a GraphQL response: invalid character '<' looking for beginning of value ` +
					`(body starts "<html><body>Welcome to the proxy</body></html>"); retrying later may help`,
			}},
			wantRequests: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, requests := scripted(t, tt.script)
			h := newTestHandler(t, scriptCatalog(t, srv.URL+"/graphql"))
			timeout := tt.timeout
			if timeout == 0 {
				timeout = 10 * time.Second
			}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			call := &toolbusv1.ToolCall{Id: "call-1", Tool: tt.tool, Upstream: "crm", Kind: "graphql", Arguments: []byte(tt.args), IdempotencyKey: "call-1"}
			got, err := h.handle(ctx, call, bus.Delivery{Number: 1})
			if err != nil {
				t.Fatalf("handle: %v", err)
			}
			if diff := cmp.Diff(tt.want, got, protocmp.Transform(), protocmp.IgnoreFields(&toolbusv1.ToolResult{}, "upstream_duration")); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
			if n := requests.Load(); n != tt.wantRequests {
				t.Errorf("upstream got %d requests, want %d", n, tt.wantRequests)
			}
		})
	}
}

// The request is the catalog's operation with the arguments as variables,
// JSON over POST, with the idempotency key on mutations only.
func TestRequestShape(t *testing.T) {
	var got []string
	srv, _ := scripted(t, func(_ int64, w http.ResponseWriter, r *http.Request) {
		var b strings.Builder
		fmt.Fprintf(&b, "%s %s ct=%s key=%q ", r.Method, r.URL.Path, r.Header.Get("Content-Type"), r.Header.Get("Idempotency-Key"))
		buf := make([]byte, 4096)
		n, _ := r.Body.Read(buf)
		b.Write(buf[:n])
		got = append(got, b.String())
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"data":{}}`)
	})
	cat := scriptCatalog(t, srv.URL+"/graphql")
	cat.Upstreams["crm"].IdempotencyHeader = "Idempotency-Key"
	h := newTestHandler(t, cat)
	for _, c := range []struct{ tool, args string }{
		{"get_customer", `{"id":"c1"}`},
		{"create_customer", `{"input":{"name":"Bob","email":"bob@example.com","tags":[1e2]}}`},
	} {
		call := &toolbusv1.ToolCall{Id: "call-1", Tool: c.tool, Upstream: "crm", Arguments: []byte(c.args), IdempotencyKey: "key-7"}
		if _, err := h.handle(context.Background(), call, bus.Delivery{Number: 1}); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{
		`POST /graphql ct=application/json key="" {"query":"query Get ($id: ID!) {\n  customer(id: $id) {\n    id\n    name\n  }\n}\n","operationName":"Get","variables":{"id":"c1"}}`,
		`POST /graphql ct=application/json key="key-7" {"query":"mutation Create ($input: CustomerInput!) {\n  createCustomer(input: $input) {\n    customer {\n      id\n    }\n  }\n}\n","operationName":"Create","variables":{"input":{"name":"Bob","email":"bob@example.com","tags":[1e2]}}}`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}
