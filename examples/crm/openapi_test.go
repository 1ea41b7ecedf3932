package crm

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/google/go-cmp/cmp"
)

// TestOpenAPIDocument loads the embedded document, validates it, and checks
// that every documented operation answers as documented: each request and
// response is validated against the document, and every operation must be
// exercised by at least one happy-path request.
func TestOpenAPIDocument(t *testing.T) {
	ctx := context.Background()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(ctx); err != nil {
		t.Fatalf("invalid document: %v", err)
	}
	if !doc.IsOpenAPI31OrLater() {
		t.Errorf("openapi = %q, want 3.1", doc.OpenAPI)
	}

	_, ts := newTestServer(t, Options{APIKey: "k", RateLimit: 1000})
	doc.Servers = openapi3.Servers{{URL: ts.URL + APIPrefix}}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	// Responses must match the document exactly, including documented codes.
	opts := &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true, SkipSettingDefaults: true,
		AuthenticationFunc: func(_ context.Context, in *openapi3filter.AuthenticationInput) error {
			if in.RequestValidationInput.Request.Header.Get("X-Api-Key") == "" && in.RequestValidationInput.Request.Header.Get("Authorization") == "" {
				return in.NewError(nil)
			}
			return nil
		}}
	form := "application/x-www-form-urlencoded"
	tests := []struct {
		name        string
		method      string
		path        string
		contentType string
		body        string
		header      map[string]string
		wantStatus  int
	}{
		{"list by cursor", "GET", "/customers?limit=5&status=active", "", "", nil, 200},
		{"list by page", "GET", "/customers?page=2&per_page=5", "", "", nil, 200},
		{"list by offset", "GET", "/customers?offset=5&limit=5&email=x%40example.com", "", "", nil, 200},
		{"create customer", "POST", "/customers", "application/json", `{"name":"Ada","email":"ada@example.com","status":"active","company":"X"}`, map[string]string{"Idempotency-Key": "oa-1"}, 201},
		{"replay customer", "POST", "/customers", "application/json", `{"name":"Ada","email":"ada@example.com","status":"active","company":"X"}`, map[string]string{"Idempotency-Key": "oa-1"}, 201},
		{"get customer", "GET", "/customers/1", "", "", nil, 200},
		{"update customer", "PATCH", "/customers/2", "application/json", `{"name":"Grace H"}`, nil, 200},
		{"merge-patch customer", "PATCH", "/customers/2", "application/merge-patch+json", `{"company":"Navy"}`, nil, 200},
		{"delete customer", "DELETE", "/customers/3", "", "", nil, 204},
		{"customer orders", "GET", "/customers/4/orders?limit=2", "", "", nil, 200},
		{"get order", "GET", "/orders/1", "", "", nil, 200},
		{"create order json", "POST", "/orders", "application/json", `{"customer_id":1,"amount":100,"currency":"usd","metadata":{"a":"b"}}`, nil, 201},
		{"create order form", "POST", "/orders", form, "customer_id=1&amount=100&currency=usd&description=x&metadata[a]=b", nil, 201},
		{"echo", "GET", "/echo/hello?q=1", "", "", nil, 200},
		{"echo post", "POST", "/echo/hello", "application/json", `{"a":1}`, nil, 200},
		{"lookup", "GET", "/lookup/abc", "", "", nil, 200},
		{"flaky succeeds", "GET", "/flaky?fail=0&key=oa", "", "", nil, 200},
		{"report", "GET", "/report.csv", "", "", nil, 200},
		{"export", "GET", "/export?size=4096", "", "", nil, 200},
		// Documented errors answer as documented too.
		{"not found", "GET", "/customers/9999", "", "", nil, 404},
		{"validation", "POST", "/customers", "application/json", `{"name":"A","email":"bad"}`, nil, 422},
		{"conflict", "POST", "/customers", "application/json", `{"name":"B","email":"b@example.com"}`, map[string]string{"Idempotency-Key": "oa-1"}, 409},
		{"flaky fails", "GET", "/flaky?fail=1&key=oa-fail", "", "", nil, 503},
		{"bad request", "GET", "/customers?limit=500", "", "", nil, 400},
		{"unauthorized", "GET", "/customers/1", "", "", map[string]string{"X-Api-Key": "wrong"}, 401},
	}
	covered := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, ts.URL+APIPrefix+tt.path, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("X-Api-Key", "k")
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			route, pathParams, err := router.FindRoute(req)
			if err != nil {
				t.Fatalf("no documented route: %v", err)
			}
			in := &openapi3filter.RequestValidationInput{Request: req, PathParams: pathParams, Route: route, Options: opts}
			if err := openapi3filter.ValidateRequest(ctx, in); err != nil && tt.wantStatus < 400 {
				t.Errorf("request does not match the document: %v", err)
			}
			// Validation consumed the body; send it again.
			req.Body = io.NopCloser(strings.NewReader(tt.body))
			resp, err := ts.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status = %d, want %d: %s", resp.StatusCode, tt.wantStatus, body)
			}
			out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode,
				Header: resp.Header, Body: io.NopCloser(bytes.NewReader(body)), Options: opts}
			if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
				t.Errorf("response does not match the document: %v", err)
			}
			if tt.wantStatus < 300 {
				covered[route.Operation.OperationID] = true
			}
		})
	}

	var all, missing []string
	for _, item := range doc.Paths.Map() {
		for _, op := range item.Operations() {
			all = append(all, op.OperationID)
			if !covered[op.OperationID] {
				missing = append(missing, op.OperationID)
			}
		}
	}
	if diff := cmp.Diff([]string(nil), missing); diff != "" {
		t.Errorf("operations without a happy-path check (-want +got):\n%s", diff)
	}
	if slices.Contains(all, "") {
		t.Error("an operation has no operationId")
	}
	if n := len(all); n != 14 {
		t.Errorf("%d operations documented, want 14", n)
	}
}

// TestOpenAPIRateLimited checks the documented 429 answer.
func TestOpenAPIRateLimited(t *testing.T) {
	ctx := context.Background()
	doc, err := openapi3.NewLoader().LoadFromData(OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	_, ts := newTestServer(t, Options{RateLimit: 1, RateWindow: time.Minute})
	doc.Servers = openapi3.Servers{{URL: ts.URL + APIPrefix}}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []int{200, 429} {
		req, _ := http.NewRequest("GET", ts.URL+APIPrefix+"/lookup/1", nil)
		route, params, err := router.FindRoute(req)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("request %d: status %d, want %d", i, resp.StatusCode, want)
		}
		opts := &openapi3filter.Options{IncludeResponseStatus: true}
		in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts}
		if err := openapi3filter.ValidateResponse(ctx, &openapi3filter.ResponseValidationInput{RequestValidationInput: in,
			Status: resp.StatusCode, Header: resp.Header, Body: io.NopCloser(bytes.NewReader(body)), Options: opts}); err != nil {
			t.Errorf("request %d: %v", i, err)
		}
	}
}
