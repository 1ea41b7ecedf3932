package crm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// newTestServer serves a fresh CRM over a real loopback listener.
func newTestServer(t *testing.T, opts Options) (*Server, *httptest.Server) {
	t.Helper()
	s := NewServer(opts)
	ts := httptest.NewServer(s)
	t.Cleanup(func() {
		s.Close()
		ts.Close()
	})
	return s, ts
}

type request struct {
	method string
	path   string
	body   string
	header map[string]string
}

func do(t *testing.T, c *http.Client, base string, r request) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(cmp0(r.method, http.MethodGet), base+r.path, strings.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	if r.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, r.path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", req.Method, r.path, err)
	}
	return resp, b
}

func decode[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decoding %q: %v", b, err)
	}
	return v
}

var nextLinkRE = regexp.MustCompile(`<([^>]+)>;\s*rel="next"`)

func nextLink(h http.Header) string {
	m := nextLinkRE.FindStringSubmatch(h.Get("Link"))
	if m == nil {
		return ""
	}
	return m[1]
}

func TestListCustomersPaginationStyles(t *testing.T) {
	s, ts := newTestServer(t, Options{})
	idsOf := func(cs []Customer) []int64 {
		ids := make([]int64, 0, len(cs))
		for _, c := range cs {
			ids = append(ids, c.ID)
		}
		return ids
	}
	all := idsOf(s.store.allCustomers())
	var churned []int64
	for _, c := range s.store.allCustomers() {
		if c.Status == StatusChurned {
			churned = append(churned, c.ID)
		}
	}
	if len(all) != 50 || len(churned) == 0 {
		t.Fatalf("seed: %d customers, %d churned", len(all), len(churned))
	}

	// Each walk follows one style's way to the next page until it ends.
	type next func(page customerList, h http.Header) string
	byCursor := func(page customerList, _ http.Header) string {
		if page.NextCursor == "" {
			return ""
		}
		return "/api/v1/customers?limit=7&cursor=" + page.NextCursor
	}
	byLink := func(_ customerList, h http.Header) string { return nextLink(h) }
	byPageNumber := func(page customerList, _ http.Header) string {
		if !page.HasMore {
			return ""
		}
		return fmt.Sprintf("/api/v1/customers?page=%d&per_page=%d", page.Page+1, page.PerPage)
	}
	tests := []struct {
		name  string
		first string
		next  next
		want  []int64
		pages int
	}{
		{"cursor from body", "/api/v1/customers?limit=7", byCursor, all, 8},
		{"cursor from Link", "/api/v1/customers?limit=7", byLink, all, 8},
		{"default limit", "/api/v1/customers", byLink, all, 3},
		{"page from Link", "/api/v1/customers?page=1&per_page=10", byLink, all, 5},
		{"page numbers", "/api/v1/customers?per_page=9", byPageNumber, all, 6},
		{"offset from Link", "/api/v1/customers?offset=0&limit=11", byLink, all, 5},
		{"one big page", "/api/v1/customers?limit=100", byLink, all, 1},
		{"churned by cursor", "/api/v1/customers?status=churned&limit=2", byLink, churned, (len(churned) + 1) / 2},
		{"churned by page", "/api/v1/customers?status=churned&page=1&per_page=2", byLink, churned, (len(churned) + 1) / 2},
		{"email filter", "/api/v1/customers?email=" + strings.ToUpper(s.store.allCustomers()[4].Email), byLink, all[4:5], 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []int64
			pages := 0
			for path := tt.first; path != ""; {
				path = strings.TrimPrefix(path, ts.URL)
				resp, b := do(t, ts.Client(), ts.URL, request{path: path})
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
				}
				page := decode[customerList](t, b)
				got = append(got, idsOf(page.Data)...)
				pages++
				path = tt.next(page, resp.Header)
				if pages > 100 {
					t.Fatal("pagination does not end")
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ids (-want +got):\n%s", diff)
			}
			if pages != tt.pages {
				t.Errorf("pages = %d, want %d", pages, tt.pages)
			}
		})
	}
}

func TestListCustomersStableWhileChanging(t *testing.T) {
	// A cursor walk must not skip or repeat customers when earlier ones are
	// deleted and new ones are added during the walk.
	s, ts := newTestServer(t, Options{})
	var got []int64
	for path := "/api/v1/customers?limit=10"; path != ""; {
		resp, b := do(t, ts.Client(), ts.URL, request{path: strings.TrimPrefix(path, ts.URL)})
		page := decode[customerList](t, b)
		for _, c := range page.Data {
			got = append(got, c.ID)
		}
		s.store.deleteCustomer(page.Data[0].ID)
		path = nextLink(resp.Header)
		if len(got) == 20 {
			s.store.createCustomer(Customer{Name: "Late", Email: "late@example.com", Status: StatusActive})
		}
	}
	want := make([]int64, 51)
	for i := range want {
		want[i] = int64(i + 1)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ids (-want +got):\n%s", diff)
	}
}

func TestErrors(t *testing.T) {
	_, ts := newTestServer(t, Options{})
	form := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	tests := []struct {
		name       string
		give       request
		wantStatus int
		want       errorBody
	}{
		{"unknown customer", request{path: "/api/v1/customers/42000"}, 404,
			errorBody{errorDetail{Code: "not_found", Message: "customer 42000 not found"}}},
		{"non-numeric customer id", request{path: "/api/v1/customers/abc"}, 404,
			errorBody{errorDetail{Code: "not_found", Message: "customer abc not found"}}},
		{"unknown order", request{path: "/api/v1/orders/9999"}, 404,
			errorBody{errorDetail{Code: "not_found", Message: "order 9999 not found"}}},
		{"orders of unknown customer", request{path: "/api/v1/customers/777/orders"}, 404,
			errorBody{errorDetail{Code: "not_found", Message: "customer 777 not found"}}},
		{"delete unknown", request{method: "DELETE", path: "/api/v1/customers/9999"}, 404,
			errorBody{errorDetail{Code: "not_found", Message: "customer 9999 not found"}}},
		{"unknown route", request{path: "/api/v1/nope"}, 404,
			errorBody{errorDetail{Code: "not_found", Message: "no route for GET /api/v1/nope"}}},
		{"wrong method", request{method: "PUT", path: "/api/v1/customers/1", body: "{}"}, 405,
			errorBody{errorDetail{Code: "method_not_allowed", Message: "PUT is not allowed on /api/v1/customers/1"}}},
		{"missing name, invalid email", request{method: "POST", path: "/api/v1/customers", body: `{"email":"not-an-email"}`}, 422,
			errorBody{errorDetail{Code: "validation_failed", Message: "request body has invalid fields", Fields: []FieldError{
				{"name", "required", "name is required"},
				{"email", "invalid", `"not-an-email" is not a valid email address`},
			}}}},
		{"display name in email", request{method: "POST", path: "/api/v1/customers", body: `{"name":"A","email":"A <a@example.com>"}`}, 422,
			errorBody{errorDetail{Code: "validation_failed", Message: "request body has invalid fields", Fields: []FieldError{
				{"email", "invalid", `"A <a@example.com>" is not a valid email address`},
			}}}},
		{"bad status", request{method: "POST", path: "/api/v1/customers", body: `{"name":"A","email":"a@example.com","status":"gone"}`}, 422,
			errorBody{errorDetail{Code: "validation_failed", Message: "request body has invalid fields", Fields: []FieldError{
				{"status", "invalid", "status must be active or churned"},
			}}}},
		{"unknown field", request{method: "POST", path: "/api/v1/customers", body: `{"name":"A","email":"a@example.com","age":3}`}, 422,
			errorBody{errorDetail{Code: "validation_failed", Message: "request body has invalid fields", Fields: []FieldError{
				{"age", "unknown", "unknown field age"},
			}}}},
		{"wrong type", request{method: "POST", path: "/api/v1/customers", body: `{"name":5,"email":"a@example.com"}`}, 422,
			errorBody{errorDetail{Code: "validation_failed", Message: "request body has invalid fields", Fields: []FieldError{
				{"name", "type", "name: got number, want a string"},
			}}}},
		{"empty body", request{method: "POST", path: "/api/v1/customers", header: map[string]string{"Content-Type": "application/json"}}, 400,
			errorBody{errorDetail{Code: "invalid_request", Message: "request body is empty; a JSON object is required"}}},
		{"wrong content type", request{method: "POST", path: "/api/v1/customers", body: "name=A", header: form}, 415,
			errorBody{errorDetail{Code: "unsupported_media_type", Message: "Content-Type must be application/json, not application/x-www-form-urlencoded"}}},
		{"patch invalid email", request{method: "PATCH", path: "/api/v1/customers/1", body: `{"email":"x@"}`}, 422,
			errorBody{errorDetail{Code: "validation_failed", Message: "request body has invalid fields", Fields: []FieldError{
				{"email", "invalid", `"x@" is not a valid email address`},
			}}}},
		{"limit too large", request{path: "/api/v1/customers?limit=101"}, 400,
			errorBody{errorDetail{Code: "invalid_request", Message: "invalid parameter limit: must be an integer from 1 to 100"}}},
		{"bad page", request{path: "/api/v1/customers?page=0"}, 400,
			errorBody{errorDetail{Code: "invalid_request", Message: "invalid parameter page: must be an integer from 1 to 1073741824"}}},
		{"forged cursor", request{path: "/api/v1/customers?cursor=abc"}, 400,
			errorBody{errorDetail{Code: "invalid_request", Message: "invalid parameter cursor: not a cursor returned by this API"}}},
		{"bad status filter", request{path: "/api/v1/customers?status=gone"}, 400,
			errorBody{errorDetail{Code: "invalid_request", Message: "invalid parameter status: must be active or churned"}}},
		{"order for unknown customer", request{method: "POST", path: "/api/v1/orders", body: `{"customer_id":999,"amount":100,"currency":"usd"}`}, 422,
			errorBody{errorDetail{Code: "validation_failed", Message: "request body has invalid fields", Fields: []FieldError{
				{"customer_id", "not_found", "customer 999 not found"},
			}}}},
		{"export too small", request{path: "/api/v1/export?size=5"}, 400,
			errorBody{errorDetail{Code: "invalid_request", Message: "invalid parameter size: must be an integer from 12 to 268435456"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, b := do(t, ts.Client(), ts.URL, tt.give)
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			if diff := cmp.Diff(tt.want, decode[errorBody](t, b)); diff != "" {
				t.Errorf("body (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCustomerLifecycle(t *testing.T) {
	now := time.Date(2025, 5, 1, 12, 0, 0, 0, time.UTC)
	_, ts := newTestServer(t, Options{Now: func() time.Time { return now }})
	c := ts.Client()

	resp, b := do(t, c, ts.URL, request{method: "POST", path: "/api/v1/customers", body: `{"name":"Ada Lovelace","email":"ada@example.com","company":"Analytical"}`})
	want := Customer{ID: 51, Name: "Ada Lovelace", Email: "ada@example.com", Status: "active", Company: "Analytical", CreatedAt: now, UpdatedAt: now}
	if diff := cmp.Diff(want, decode[Customer](t, b)); diff != "" || resp.StatusCode != 201 {
		t.Fatalf("create: status %d (-want +got):\n%s", resp.StatusCode, diff)
	}
	if loc := resp.Header.Get("Location"); loc != "/api/v1/customers/51" {
		t.Errorf("Location = %q", loc)
	}

	_, b = do(t, c, ts.URL, request{path: "/api/v1/customers/51"})
	if diff := cmp.Diff(want, decode[Customer](t, b)); diff != "" {
		t.Errorf("get (-want +got):\n%s", diff)
	}

	resp, b = do(t, c, ts.URL, request{method: "PATCH", path: "/api/v1/customers/51", body: `{"status":"churned"}`,
		header: map[string]string{"Content-Type": "application/merge-patch+json"}})
	want.Status = StatusChurned
	if diff := cmp.Diff(want, decode[Customer](t, b)); diff != "" || resp.StatusCode != 200 {
		t.Errorf("patch: status %d (-want +got):\n%s", resp.StatusCode, diff)
	}

	resp, b = do(t, c, ts.URL, request{method: "DELETE", path: "/api/v1/customers/51"})
	if resp.StatusCode != 204 || len(b) != 0 {
		t.Errorf("delete: %d %q", resp.StatusCode, b)
	}
	resp, _ = do(t, c, ts.URL, request{path: "/api/v1/customers/51"})
	if resp.StatusCode != 404 {
		t.Errorf("get after delete: %d", resp.StatusCode)
	}
}

func TestCustomerOrdersPagination(t *testing.T) {
	s, ts := newTestServer(t, Options{})
	var want []int64
	for _, id := range s.store.orderIDs {
		if s.store.orders[id].CustomerID == 3 {
			want = append(want, id)
		}
	}
	var got []int64
	for path := "/api/v1/customers/3/orders?limit=2"; path != ""; {
		resp, b := do(t, ts.Client(), ts.URL, request{path: strings.TrimPrefix(path, ts.URL)})
		for _, o := range decode[orderList](t, b).Data {
			got = append(got, o.ID)
		}
		path = nextLink(resp.Header)
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" || len(want) == 0 {
		t.Errorf("order ids (-want +got):\n%s", diff)
	}
}

func TestAuth(t *testing.T) {
	_, ts := newTestServer(t, Options{APIKey: "s3cret"})
	tests := []struct {
		name       string
		give       request
		wantStatus int
		wantAuthn  string
	}{
		{"no key", request{path: "/api/v1/customers/1"}, 401, `Bearer realm="crm"`},
		{"wrong key", request{path: "/api/v1/customers/1", header: map[string]string{"X-Api-Key": "nope"}}, 401, `Bearer realm="crm"`},
		{"wrong bearer", request{path: "/api/v1/customers/1", header: map[string]string{"Authorization": "Bearer nope"}}, 401, `Bearer realm="crm"`},
		{"basic is not accepted", request{path: "/api/v1/customers/1", header: map[string]string{"Authorization": "Basic czNjcmV0"}}, 401, `Bearer realm="crm"`},
		{"X-Api-Key", request{path: "/api/v1/customers/1", header: map[string]string{"X-Api-Key": "s3cret"}}, 200, ""},
		{"bearer", request{path: "/api/v1/customers/1", header: map[string]string{"Authorization": "Bearer s3cret"}}, 200, ""},
		{"openapi is public", request{path: "/openapi.yaml"}, 200, ""},
		{"stats is public", request{path: "/_stats"}, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, b := do(t, ts.Client(), ts.URL, tt.give)
			got := []any{resp.StatusCode, resp.Header.Get("WWW-Authenticate")}
			if diff := cmp.Diff([]any{tt.wantStatus, tt.wantAuthn}, got); diff != "" {
				t.Errorf("(-want +got):\n%s\n%s", diff, b)
			}
		})
	}
}

func TestRateLimit(t *testing.T) {
	// A long window keeps the test independent of the clock.
	_, ts := newTestServer(t, Options{RateLimit: 3, RateWindow: time.Minute})
	type result struct {
		Status                                 int
		RateLimit, Policy, RetryAfter, ErrCode string
	}
	var got []result
	for range 5 {
		resp, b := do(t, ts.Client(), ts.URL, request{path: "/api/v1/lookup/x"})
		r := result{Status: resp.StatusCode, RateLimit: resp.Header.Get("RateLimit"), Policy: resp.Header.Get("RateLimit-Policy"), RetryAfter: resp.Header.Get("Retry-After")}
		if resp.StatusCode != 200 {
			r.ErrCode = decode[errorBody](t, b).Error.Code
		}
		got = append(got, r)
	}
	policy := `"default";q=3;w=60`
	want := []result{
		{200, `"default";r=2;t=60`, policy, "", ""},
		{200, `"default";r=1;t=60`, policy, "", ""},
		{200, `"default";r=0;t=60`, policy, "", ""},
		{429, `"default";r=0;t=60`, policy, "60", "rate_limited"},
		{429, `"default";r=0;t=60`, policy, "60", "rate_limited"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if resp, _ := do(t, ts.Client(), ts.URL, request{path: "/openapi.yaml"}); resp.StatusCode != 200 {
		t.Errorf("/openapi.yaml is rate limited: %d", resp.StatusCode)
	}
}

func TestRateLimitWindowResets(t *testing.T) {
	_, ts := newTestServer(t, Options{RateLimit: 1, RateWindow: 50 * time.Millisecond})
	var got []int
	for _, wait := range []time.Duration{0, 0, 60 * time.Millisecond} {
		time.Sleep(wait)
		resp, _ := do(t, ts.Client(), ts.URL, request{path: "/api/v1/lookup/x"})
		got = append(got, resp.StatusCode)
	}
	if diff := cmp.Diff([]int{200, 429, 200}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestIdempotencyKey(t *testing.T) {
	s, ts := newTestServer(t, Options{})
	c := ts.Client()
	key := map[string]string{"Idempotency-Key": "k-1"}
	body := `{"name":"Grace","email":"grace@example.com"}`

	type result struct {
		Status   int
		Replayed string
		Body     string
	}
	call := func(r request) result {
		resp, b := do(t, c, ts.URL, r)
		return result{resp.StatusCode, resp.Header.Get("Idempotent-Replayed"), string(b)}
	}
	first := call(request{method: "POST", path: "/api/v1/customers", body: body, header: key})
	second := call(request{method: "POST", path: "/api/v1/customers", body: body, header: key})
	other := call(request{method: "POST", path: "/api/v1/customers", body: `{"name":"Other","email":"o@example.com"}`, header: key})
	otherPath := call(request{method: "PATCH", path: "/api/v1/customers/1", body: body, header: key})

	if first.Status != 201 || first.Replayed != "" {
		t.Fatalf("first: %+v", first)
	}
	if diff := cmp.Diff(result{201, "true", first.Body}, second); diff != "" {
		t.Errorf("replay (-want +got):\n%s", diff)
	}
	for _, got := range []result{other, otherPath} {
		if diff := cmp.Diff(409, got.Status); diff != "" {
			t.Errorf("reuse with another request: %s", got.Body)
		}
		if code := decode[errorBody](t, []byte(got.Body)).Error.Code; code != "idempotency_key_reused" {
			t.Errorf("code = %q", code)
		}
	}
	if n := len(s.store.allCustomers()); n != 51 {
		t.Errorf("customers = %d, want 51", n)
	}
	want := KeyStats{Requests: 4, Executions: 1, Replays: 1, Conflicts: 2}
	if diff := cmp.Diff(want, s.Stats().IdempotencyKeys["k-1"]); diff != "" {
		t.Errorf("key stats (-want +got):\n%s", diff)
	}
}

func TestIdempotencyKeyAfterFailures(t *testing.T) {
	tests := []struct {
		name          string
		fault         Fault
		wantFirstErr  bool
		wantFirst     int
		wantCustomers int
		wantKey       KeyStats
	}{
		{
			// An injected 500 happens before the handler: nothing ran, nothing
			// is stored, and the retry creates the customer.
			name:          "500 before the handler",
			fault:         Fault{Method: "POST", Path: "/api/v1/customers", Action: FaultError, Times: 1},
			wantFirst:     500,
			wantCustomers: 51,
			wantKey:       KeyStats{Requests: 2, Executions: 1},
		},
		{
			// The customer was created but the answer was lost: the retry
			// gets the stored answer and nothing is created twice.
			name:          "reset after the handler",
			fault:         Fault{Method: "POST", Path: "/api/v1/customers", Action: FaultReset, After: true, Times: 1},
			wantFirstErr:  true,
			wantCustomers: 51,
			wantKey:       KeyStats{Requests: 2, Executions: 1, Replays: 1},
		},
		{
			name:          "503 after the handler",
			fault:         Fault{Method: "POST", Path: "/api/v1/customers", Action: FaultError, Status: 503, After: true, Times: 1},
			wantFirst:     503,
			wantCustomers: 51,
			wantKey:       KeyStats{Requests: 2, Executions: 1, Replays: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, ts := newTestServer(t, Options{})
			if _, err := s.AddFault(tt.fault); err != nil {
				t.Fatal(err)
			}
			send := func() (*http.Response, error) {
				req, _ := http.NewRequest("POST", ts.URL+"/api/v1/customers", strings.NewReader(`{"name":"Ada","email":"ada@example.com"}`))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Idempotency-Key", "retry-me")
				return ts.Client().Do(req)
			}
			resp, err := send()
			if (err != nil) != tt.wantFirstErr {
				t.Fatalf("first attempt error = %v, want error %v", err, tt.wantFirstErr)
			}
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode != tt.wantFirst {
					t.Errorf("first status = %d, want %d", resp.StatusCode, tt.wantFirst)
				}
			}
			resp, err = send()
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 201 {
				t.Errorf("retry status = %d", resp.StatusCode)
			}
			if n := len(s.store.allCustomers()); n != tt.wantCustomers {
				t.Errorf("customers = %d, want %d", n, tt.wantCustomers)
			}
			if diff := cmp.Diff(tt.wantKey, s.Stats().IdempotencyKeys["retry-me"]); diff != "" {
				t.Errorf("key stats (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCreateOrderEncodings(t *testing.T) {
	form := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	tests := []struct {
		name       string
		give       request
		wantStatus int
		want       Order
		wantFields []FieldError
	}{
		{
			name:       "form with nested metadata",
			give:       request{body: "customer_id=2&amount=1999&currency=USD&description=Pro+plan&metadata[plan]=pro&metadata[source]=web%20form", header: form},
			wantStatus: 201,
			want:       Order{CustomerID: 2, Amount: 1999, Currency: "usd", Status: "pending", Description: "Pro plan", Metadata: map[string]string{"plan": "pro", "source": "web form"}},
		},
		{
			name:       "form with escaped brackets",
			give:       request{body: "customer_id=2&amount=5&currency=eur&metadata%5Bk%5D=v", header: form},
			wantStatus: 201,
			want:       Order{CustomerID: 2, Amount: 5, Currency: "eur", Status: "pending", Metadata: map[string]string{"k": "v"}},
		},
		{
			name:       "json",
			give:       request{body: `{"customer_id":2,"amount":1999,"currency":"usd","metadata":{"plan":"pro"}}`},
			wantStatus: 201,
			want:       Order{CustomerID: 2, Amount: 1999, Currency: "usd", Status: "pending", Metadata: map[string]string{"plan": "pro"}},
		},
		{
			name:       "json without metadata",
			give:       request{body: `{"customer_id":2,"amount":1,"currency":"gbp"}`},
			wantStatus: 201,
			want:       Order{CustomerID: 2, Amount: 1, Currency: "gbp", Status: "pending", Metadata: map[string]string{}},
		},
		{
			name:       "form with bad fields",
			give:       request{body: "customer_id=x&amount=-3&currency=dollars&metadata[a][b]=c&colour=red", header: form},
			wantStatus: 422,
			wantFields: []FieldError{
				{"colour", "unknown", "unknown field colour"},
				{"customer_id", "type", "customer_id must be an integer"},
				{"metadata[a][b]", "unknown", "unknown field metadata[a][b]"},
			},
		},
		{
			name:       "form with invalid values",
			give:       request{body: "customer_id=2&amount=0&currency=dollars", header: form},
			wantStatus: 422,
			wantFields: []FieldError{
				{"amount", "invalid", "amount must be a positive integer in minor units"},
				{"currency", "invalid", "currency must be a three-letter ISO 4217 code"},
			},
		},
		{
			name:       "json metadata must hold strings",
			give:       request{body: `{"customer_id":2,"amount":1,"currency":"usd","metadata":{"n":1}}`},
			wantStatus: 422,
			wantFields: []FieldError{{"metadata", "type", "metadata: got number, want a string"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, ts := newTestServer(t, Options{})
			tt.give.method, tt.give.path = "POST", "/api/v1/orders"
			resp, b := do(t, ts.Client(), ts.URL, tt.give)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status = %d, want %d: %s", resp.StatusCode, tt.wantStatus, b)
			}
			if tt.wantStatus != 201 {
				if diff := cmp.Diff(tt.wantFields, decode[errorBody](t, b).Error.Fields); diff != "" {
					t.Errorf("fields (-want +got):\n%s", diff)
				}
				return
			}
			got := decode[Order](t, b)
			if diff := cmp.Diff(tt.want, got, cmpopts.IgnoreFields(Order{}, "ID", "CreatedAt")); diff != "" {
				t.Errorf("order (-want +got):\n%s", diff)
			}
			_, b = do(t, ts.Client(), ts.URL, request{path: resp.Header.Get("Location")})
			if diff := cmp.Diff(got, decode[Order](t, b)); diff != "" {
				t.Errorf("stored order (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEcho(t *testing.T) {
	_, ts := newTestServer(t, Options{})
	tests := []struct {
		name string
		give request
		want echoResponse
	}{
		{
			name: "escaped slash and space stay in one segment",
			give: request{path: "/api/v1/echo/a%2Fb%20c?x=1&x=2", header: map[string]string{"X-Trace": "t1"}},
			want: echoResponse{Method: "GET", RequestURI: "/api/v1/echo/a%2Fb%20c?x=1&x=2", Path: "/api/v1/echo/a/b c", RawPath: "/api/v1/echo/a%2Fb%20c",
				EscapedPath: "/api/v1/echo/a%2Fb%20c", Anything: "a/b c", RawQuery: "x=1&x=2", Query: map[string][]string{"x": {"1", "2"}},
				Headers: map[string]string{"X-Trace": "t1"}},
		},
		{
			name: "several segments",
			give: request{path: "/api/v1/echo/one/two"},
			want: echoResponse{Method: "GET", RequestURI: "/api/v1/echo/one/two", Path: "/api/v1/echo/one/two", EscapedPath: "/api/v1/echo/one/two",
				Anything: "one/two", Query: map[string][]string{}, Headers: map[string]string{}},
		},
		{
			name: "post with body",
			give: request{method: "POST", path: "/api/v1/echo/x", body: `{"a":1}`},
			want: echoResponse{Method: "POST", RequestURI: "/api/v1/echo/x", Path: "/api/v1/echo/x", EscapedPath: "/api/v1/echo/x",
				Anything: "x", Query: map[string][]string{}, Headers: map[string]string{"Content-Type": "application/json"}, Body: `{"a":1}`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, b := do(t, ts.Client(), ts.URL, tt.give)
			got := decode[echoResponse](t, b)
			tt.want.Host = strings.TrimPrefix(ts.URL, "http://")
			// Only headers the test sent are compared; Go adds its own.
			for k := range got.Headers {
				if _, ok := tt.want.Headers[k]; !ok {
					delete(got.Headers, k)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestDiagnosticEndpoints(t *testing.T) {
	_, ts := newTestServer(t, Options{FlakyFailures: 1})
	c := ts.Client()

	_, b := do(t, c, ts.URL, request{path: "/api/v1/lookup/item%2042"})
	if got := decode[lookupResponse](t, b); got.ID != "item 42" || got.Name != "item item 42" {
		t.Errorf("lookup = %+v", got)
	}

	var statuses []int
	for _, key := range []string{"a", "a", "a", "b", "b"} {
		resp, _ := do(t, c, ts.URL, request{path: "/api/v1/flaky?fail=2&key=" + key})
		statuses = append(statuses, resp.StatusCode)
	}
	resp, _ := do(t, c, ts.URL, request{path: "/api/v1/flaky"})
	statuses = append(statuses, resp.StatusCode)
	if diff := cmp.Diff([]int{503, 503, 200, 503, 503, 503}, statuses); diff != "" {
		t.Errorf("flaky statuses (-want +got):\n%s", diff)
	}
	if ra := resp.Header.Get("Retry-After"); ra != "1" {
		t.Errorf("flaky Retry-After = %q", ra)
	}

	resp, b = do(t, c, ts.URL, request{path: "/api/v1/report.csv"})
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if ct := resp.Header.Get("Content-Type"); ct != "text/csv; charset=utf-8" || len(lines) != 51 || lines[0] != "id,name,email,status,company,created_at" {
		t.Errorf("report: %q, %d lines, header %q", ct, len(lines), lines[0])
	}

	for _, size := range []int{12, 1000, 1 << 20, 3<<20 + 7} {
		resp, b := do(t, c, ts.URL, request{path: fmt.Sprintf("/api/v1/export?size=%d", size)})
		if len(b) != size || resp.ContentLength != int64(size) || !json.Valid(b) {
			t.Errorf("export size %d: got %d bytes, Content-Length %d, valid %v", size, len(b), resp.ContentLength, json.Valid(b))
		}
	}

	resp, b = do(t, c, ts.URL, request{path: "/openapi.yaml"})
	if !bytes.Equal(b, OpenAPI) || resp.Header.Get("Content-Type") != "application/yaml" {
		t.Errorf("openapi.yaml not served as embedded")
	}
}

func TestConcurrentCreates(t *testing.T) {
	const n = 64
	tests := []struct {
		name          string
		key           func(i int) string
		email         func(i int) string
		wantDistinct  int
		wantCustomers int
	}{
		{"distinct keys", func(i int) string { return fmt.Sprintf("key-%d", i) }, func(i int) string { return fmt.Sprintf("c%d@example.com", i) }, n, 50 + n},
		{"no keys", func(int) string { return "" }, func(i int) string { return fmt.Sprintf("c%d@example.com", i) }, n, 50 + n},
		{"one key", func(int) string { return "same" }, func(int) string { return "same@example.com" }, 1, 51},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, ts := newTestServer(t, Options{})
			ids := make([]int64, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					h := map[string]string{}
					if k := tt.key(i); k != "" {
						h["Idempotency-Key"] = k
					}
					resp, b := do(t, ts.Client(), ts.URL, request{method: "POST", path: "/api/v1/customers",
						body: fmt.Sprintf(`{"name":"C","email":%q}`, tt.email(i)), header: h})
					if resp.StatusCode != 201 {
						t.Errorf("status %d: %s", resp.StatusCode, b)
						return
					}
					ids[i] = decode[Customer](t, b).ID
				})
			}
			wg.Wait()
			slices.Sort(ids)
			if got := len(slices.Compact(ids)); got != tt.wantDistinct {
				t.Errorf("distinct ids = %d, want %d", got, tt.wantDistinct)
			}
			if got := len(s.store.allCustomers()); got != tt.wantCustomers {
				t.Errorf("customers = %d, want %d", got, tt.wantCustomers)
			}
		})
	}
}

func TestSeedIsDeterministic(t *testing.T) {
	a, b := NewServer(Options{}), NewServer(Options{})
	if diff := cmp.Diff(a.store.allCustomers(), b.store.allCustomers()); diff != "" {
		t.Errorf("customers differ between servers:\n%s", diff)
	}
	o1, _ := a.store.order(200)
	o2, _ := b.store.order(200)
	if diff := cmp.Diff(o1, o2); diff != "" || o1.ID != 200 {
		t.Errorf("orders differ:\n%s", diff)
	}
	if c := NewServer(Options{Customers: -1, Orders: -1}); len(c.store.allCustomers()) != 0 {
		t.Error("negative counts still seeded")
	}
}
