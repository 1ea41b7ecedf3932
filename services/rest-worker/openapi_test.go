package restworker

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/google/go-cmp/cmp"

	"github.com/toolbus/toolbus/bus"
	"github.com/toolbus/toolbus/bus/bustest"
	"github.com/toolbus/toolbus/catalog"
	toolbusv1 "github.com/toolbus/toolbus/gen/toolbus/v1"
)

// largeSpec is a real OpenAPI document fetched by `make openapi-specs`.
func largeSpec(t *testing.T, file string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "..", "openapi", "testdata", ".cache", file))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%v: the large OpenAPI documents are fetched by `make openapi-specs` (openapi/testdata/fetch.sh); run it first", err)
	}
	return p
}

// mockAPI implements an API from its own OpenAPI document: kin-openapi's
// router finds the operation, openapi3filter validates the request
// (parameters, form or JSON body) against the document, and the answer is
// the response's example or a minimal value of its schema. A request the
// document does not allow is answered 400 and fails the test.
type mockAPI struct {
	t      *testing.T
	srv    *httptest.Server
	router routers.Router

	mu   sync.Mutex
	seen []mockRequest
	// rejected counts requests refused by validation when refusals are
	// expected (allowRejects); otherwise a refusal fails the test.
	allowRejects bool
	rejected     int
}

type mockRequest struct {
	Method string
	URL    *url.URL
	Header http.Header
	Body   string
}

func newMockAPI(t *testing.T, specPath string) *mockAPI {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile(specPath)
	if err != nil {
		t.Fatal(err)
	}
	adaptForValidator(doc)
	m := &mockAPI{t: t}
	m.srv = httptest.NewServer(http.HandlerFunc(m.serve))
	t.Cleanup(m.srv.Close)
	doc.Servers = openapi3.Servers{{URL: m.srv.URL}}
	if m.router, err = gorillamux.NewRouter(doc); err != nil {
		t.Fatal(err)
	}
	return m
}

// adaptForValidator works around one openapi3filter limitation: it refuses
// to validate any request of an operation that declares an array query
// parameter with style deepObject (which Stripe uses for expand), even when
// the request does not send it. Such parameters are declared form style,
// so the other parameters of those operations are validated.
func adaptForValidator(doc *openapi3.T) {
	for _, item := range doc.Paths.Map() {
		for _, op := range item.Operations() {
			for _, p := range op.Parameters {
				if v := p.Value; v != nil && v.In == "query" && v.Style == "deepObject" && v.Schema != nil && v.Schema.Value != nil && v.Schema.Value.Type.Is("array") {
					v.Style = "form"
				}
			}
		}
	}
}

func (m *mockAPI) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	m.mu.Lock()
	// A copy: the validator adds defaults to the request it validates.
	u := *r.URL
	m.seen = append(m.seen, mockRequest{Method: r.Method, URL: &u, Header: r.Header.Clone(), Body: string(body)})
	m.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	route, pathParams, err := m.router.FindRoute(r)
	if err != nil {
		m.t.Errorf("mock: %s %s: %v", r.Method, r.URL, err)
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintf(w, `{"error":{"message":%q}}`, err.Error())
		return
	}
	in := &openapi3filter.RequestValidationInput{Request: r, PathParams: pathParams, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true}}
	if err := openapi3filter.ValidateRequest(r.Context(), in); err != nil {
		m.mu.Lock()
		allow := m.allowRejects
		m.rejected++
		m.mu.Unlock()
		if allow {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"error":{"message":%q}}`, err.Error())
			return
		}
		m.t.Errorf("mock: %s %s does not match the document: %v", r.Method, r.URL, err)
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"error":{"message":%q}}`, err.Error())
		return
	}
	status, answer := 200, any(map[string]any{})
	for _, code := range []int{200, 201, 202} {
		resp := route.Operation.Responses.Status(code)
		if resp == nil || resp.Value == nil {
			continue
		}
		status = code
		if mt := resp.Value.Content.Get("application/json"); mt != nil {
			if mt.Example != nil {
				answer = mt.Example
			} else {
				answer = minimalValue(mt.Schema, 0)
			}
		}
		break
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(answer)
}

func (m *mockAPI) last(t *testing.T) mockRequest {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.seen) == 0 {
		t.Fatal("the mock API received no request")
	}
	return m.seen[len(m.seen)-1]
}

// minimalValue is the smallest value a schema describes: its example, its
// first enum value, required properties only, empty arrays.
func minimalValue(s *openapi3.SchemaRef, depth int) any {
	if s == nil || s.Value == nil || depth > 8 {
		return nil
	}
	v := s.Value
	switch {
	case v.Example != nil:
		return v.Example
	case len(v.Enum) > 0:
		return v.Enum[0]
	case len(v.AllOf) > 0:
		out := map[string]any{}
		for _, part := range v.AllOf {
			if m, ok := minimalValue(part, depth+1).(map[string]any); ok {
				for k, x := range m {
					out[k] = x
				}
			}
		}
		return out
	case len(v.AnyOf) > 0:
		return minimalValue(v.AnyOf[0], depth+1)
	case len(v.OneOf) > 0:
		return minimalValue(v.OneOf[0], depth+1)
	case v.Type.Is("object") || len(v.Properties) > 0:
		out := map[string]any{}
		for _, name := range v.Required {
			out[name] = minimalValue(v.Properties[name], depth+1)
		}
		return out
	case v.Type.Is("array"):
		return []any{}
	case v.Type.Is("string"):
		if v.Format == "date-time" {
			return "2026-01-01T00:00:00Z"
		}
		return "x"
	case v.Type.Is("integer"), v.Type.Is("number"):
		if v.Min != nil {
			return *v.Min
		}
		return 0
	case v.Type.Is("boolean"):
		return false
	}
	return nil
}

// TestStripeCallsAgainstMockAPI imports Stripe's real document into a
// catalog, runs the REST worker over embedded JetStream, and calls tools
// through the bus against a mock Stripe built from the same document: a
// GET with query parameters, a POST with a nested form body, and calls
// with a path parameter. The mock refuses anything the document does not
// allow, so a pass means the requests are what Stripe documents.
func TestStripeCallsAgainstMockAPI(t *testing.T) {
	spec := largeSpec(t, "stripe-spec3.json")
	mock := newMockAPI(t, spec)

	dir := t.TempDir()
	src := fmt.Sprintf(`version: 1
upstreams:
  stripe:
    base_url: ${env:MOCK_URL}
    idempotency_header: Idempotency-Key
    timeout: 20s
    openapi:
      file: %s
      select:
        operation_ids: [GetCustomers, PostCoupons, GetCustomersCustomer, PostCustomersCustomer]
`, spec)
	file := filepath.Join(dir, "catalog.yaml")
	if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	cat, err := catalog.Load(file, catalog.WithLookupEnv(func(k string) (string, bool) {
		return mock.srv.URL, k == "MOCK_URL"
	}))
	if err != nil {
		t.Fatal(err)
	}
	r := newOpenAPIRig(t, cat)

	tests := []struct {
		name, tool, args string
		wantMethod       string
		wantPath         string
		wantQuery        string
		wantForm         map[string]string
		wantObject       string
	}{
		{
			name: "GET with query", tool: "GetCustomers", args: `{"limit":3,"email":"ada@example.com","created":{"gte":1700000000}}`,
			wantMethod: "GET", wantPath: "/v1/customers", wantQuery: "created%5Bgte%5D=1700000000&email=ada%40example.com&limit=3", wantObject: "list",
		},
		{
			name: "POST with a nested form body", tool: "PostCoupons",
			args:       `{"name":"Launch","percent_off":25.5,"duration":"repeating","duration_in_months":3,"metadata":{"campaign":"spring"},"applies_to":{"products":["prod_1","prod_2"]}}`,
			wantMethod: "POST", wantPath: "/v1/coupons", wantObject: "coupon",
			wantForm: map[string]string{"name": "Launch", "percent_off": "25.5", "duration": "repeating", "duration_in_months": "3",
				"metadata[campaign]": "spring", "applies_to[products][0]": "prod_1", "applies_to[products][1]": "prod_2"},
		},
		{
			name: "GET with a path parameter", tool: "GetCustomersCustomer", args: `{"customer":"cus_123"}`,
			wantMethod: "GET", wantPath: "/v1/customers/cus_123",
		},
		{
			name: "POST with a path parameter and a form body", tool: "PostCustomersCustomer", args: `{"customer":"cus_123","description":"VIP","metadata":{"tier":"gold"}}`,
			wantMethod: "POST", wantPath: "/v1/customers/cus_123", wantObject: "customer",
			wantForm: map[string]string{"description": "VIP", "metadata[tier]": "gold"},
		},
	}
	t.Run("the mock refuses what the document does not allow", func(t *testing.T) {
		mock.mu.Lock()
		mock.allowRejects = true
		mock.mu.Unlock()
		defer func() {
			mock.mu.Lock()
			mock.allowRejects = false
			mock.mu.Unlock()
		}()
		// The worker sends what it is given (mcp-front validates first).
		res := r.call(t, "stripe", "PostCoupons", `{"duration":"sometimes"}`)
		mock.mu.Lock()
		rejected := mock.rejected
		mock.mu.Unlock()
		if res.Error == nil || res.Error.UpstreamStatus != http.StatusBadRequest || rejected != 1 {
			t.Fatalf("result = %v, rejected = %d; want a 400 from the mock", res, rejected)
		}
	})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := r.call(t, "stripe", tt.tool, tt.args)
			if res.Error != nil {
				t.Fatalf("tool error: %v", res.Error)
			}
			req := mock.last(t)
			if req.Method != tt.wantMethod || req.URL.Path != tt.wantPath {
				t.Errorf("request = %s %s, want %s %s", req.Method, req.URL.Path, tt.wantMethod, tt.wantPath)
			}
			if tt.wantQuery != "" && req.URL.RawQuery != tt.wantQuery {
				t.Errorf("query = %s, want %s", req.URL.RawQuery, tt.wantQuery)
			}
			if tt.wantForm != nil {
				if ct := req.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
					t.Errorf("content type = %q", ct)
				}
				form, err := url.ParseQuery(req.Body)
				if err != nil {
					t.Fatalf("body %q: %v", req.Body, err)
				}
				got := map[string]string{}
				for k, v := range form {
					got[k] = v[0]
				}
				for k, want := range tt.wantForm {
					if got[k] != want {
						t.Errorf("form %s = %q, want %q (form: %v)", k, got[k], want, got)
					}
				}
				if req.Header.Get("Idempotency-Key") == "" {
					t.Error("mutating call without Idempotency-Key")
				}
			}
			var out map[string]any
			if err := json.Unmarshal(res.Json, &out); err != nil {
				t.Fatalf("result is not a JSON object: %v: %s", err, res.Json)
			}
			if tt.wantObject != "" && out["object"] != tt.wantObject {
				t.Errorf("result object = %v, want %s", out["object"], tt.wantObject)
			}
		})
	}
}

// openAPIRig runs the REST worker for a catalog over embedded JetStream.
type openAPIRig struct{ caller *bus.Caller }

func newOpenAPIRig(t *testing.T, cat *catalog.Catalog) *openAPIRig {
	t.Helper()
	ns := bustest.Server(t)
	nc, js := bustest.Connect(t, ns)
	svc, err := New(Options{Catalog: cat, NC: nc, JS: js, Instance: "rest-openapi", Logger: bustest.Logger(), AckWait: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = svc.Shutdown(ctx)
	})
	c, err := bus.NewCaller(nc, js, bus.CallerOptions{Instance: "front-openapi", Logger: bustest.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &openAPIRig{caller: c}
}

func (r *openAPIRig) call(t *testing.T, upstreamName, tool, args string) *toolbusv1.ToolResult {
	t.Helper()
	res, _ := (&rig{caller: r.caller}).call(t, upstreamName, tool, args, 20*time.Second)
	return res
}

// TestGitHubCallsAgainstMockAPI does the same with GitHub's document:
// path parameters, a query and a JSON body, validated by the mock.
func TestGitHubCallsAgainstMockAPI(t *testing.T) {
	spec := largeSpec(t, "github-api.json")
	mock := newMockAPI(t, spec)
	file := filepath.Join(t.TempDir(), "catalog.yaml")
	src := fmt.Sprintf(`version: 1
upstreams:
  github:
    base_url: ${env:MOCK_URL}
    timeout: 20s
    openapi:
      file: %s
      select: {operation_ids: [repos/get, issues/list-for-repo, issues/create]}
`, spec)
	if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	cat, err := catalog.Load(file, catalog.WithLookupEnv(func(k string) (string, bool) { return mock.srv.URL, k == "MOCK_URL" }))
	if err != nil {
		t.Fatal(err)
	}
	r := newOpenAPIRig(t, cat)
	tests := []struct {
		name, tool, args       string
		wantMethod, wantTarget string
		wantBody               map[string]any
	}{
		{name: "GET with path parameters", tool: "repos_get", args: `{"owner":"octo cat","repo":"hello-world"}`,
			wantMethod: "GET", wantTarget: "/repos/octo%20cat/hello-world"},
		{name: "GET with query", tool: "issues_list-for-repo", args: `{"owner":"o","repo":"r","state":"closed","labels":"bug,ui","per_page":5}`,
			wantMethod: "GET", wantTarget: "/repos/o/r/issues?state=closed&labels=bug%2Cui&per_page=5"},
		{name: "POST with a JSON body", tool: "issues_create", args: `{"owner":"o","repo":"r","title":"Broken","body":"Steps…","labels":["bug"]}`,
			wantMethod: "POST", wantTarget: "/repos/o/r/issues",
			wantBody: map[string]any{"title": "Broken", "body": "Steps…", "labels": []any{"bug"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := r.call(t, "github", tt.tool, tt.args)
			if res.Error != nil {
				t.Fatalf("tool error: %v", res.Error)
			}
			req := mock.last(t)
			if got := req.URL.RequestURI(); req.Method != tt.wantMethod || got != tt.wantTarget {
				t.Errorf("request = %s %s, want %s %s", req.Method, got, tt.wantMethod, tt.wantTarget)
			}
			if tt.wantBody != nil {
				var got map[string]any
				if err := json.Unmarshal([]byte(req.Body), &got); err != nil || req.Header.Get("Content-Type") != "application/json" {
					t.Fatalf("body %q (%s): %v", req.Body, req.Header.Get("Content-Type"), err)
				}
				if diff := cmp.Diff(tt.wantBody, got); diff != "" {
					t.Errorf("body (-want +got):\n%s", diff)
				}
			}
			if !json.Valid(res.Json) {
				t.Errorf("result is not JSON: %s", res.Json)
			}
		})
	}
}
