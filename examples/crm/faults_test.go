package crm

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// outcome is what a client observed for one request.
type outcome struct {
	Status  int
	Err     bool
	Headers map[string]string
	JSON    bool   // the body parsed as JSON
	Len     int    // body length of a 2xx answer
	Code    string // error.code of an error answer
}

func observe(t *testing.T, c *http.Client, method, url string, headers []string) outcome {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return outcome{Err: true}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return outcome{Status: resp.StatusCode, Err: true}
	}
	o := outcome{Status: resp.StatusCode, JSON: json.Valid(b)}
	if resp.StatusCode < 300 {
		o.Len = len(b)
	} else {
		var e errorBody
		json.Unmarshal(b, &e)
		o.Code = e.Error.Code
	}
	for _, h := range headers {
		if o.Headers == nil {
			o.Headers = map[string]string{}
		}
		o.Headers[h] = resp.Header.Get(h)
	}
	return o
}

func TestFaultRules(t *testing.T) {
	lookup := "/api/v1/lookup/7"
	okBody := outcome{Status: 200, JSON: true, Len: len(`{"id":"7","name":"item 7","value":0}`) + 9}
	tests := []struct {
		name    string
		give    Fault
		path    string
		headers []string
		want    []outcome
	}{
		{
			name: "next two answer 500",
			give: Fault{Path: lookup, Action: FaultError, Times: 2},
			path: lookup,
			want: []outcome{{Status: 500, JSON: true, Code: "internal_error"}, {Status: 500, JSON: true, Code: "internal_error"}, okBody},
		},
		{
			name:    "503 with Retry-After",
			give:    Fault{Path: lookup, Action: FaultError, Status: 503, RetryAfter: "2", Times: 1},
			path:    lookup,
			headers: []string{"Retry-After"},
			want: []outcome{
				{Status: 503, JSON: true, Code: "service_unavailable", Headers: map[string]string{"Retry-After": "2"}},
				{Status: 200, JSON: true, Len: okBody.Len, Headers: map[string]string{"Retry-After": ""}},
			},
		},
		{
			name:    "429 with RateLimit headers",
			give:    Fault{Path: "/api/v1/*", Action: FaultError, Status: 429, RetryAfter: "3", Times: 1},
			path:    lookup,
			headers: []string{"Retry-After", "RateLimit", "RateLimit-Policy"},
			want: []outcome{
				{Status: 429, JSON: true, Code: "rate_limited", Headers: map[string]string{"Retry-After": "3", "RateLimit": `"default";r=0;t=3`, "RateLimit-Policy": `"default";q=1;w=1`}},
				{Status: 200, JSON: true, Len: okBody.Len, Headers: map[string]string{"Retry-After": "", "RateLimit": "", "RateLimit-Policy": ""}},
			},
		},
		{
			name: "skip then fail once",
			give: Fault{Path: lookup, Action: FaultError, Status: 502, Skip: 1, Times: 1},
			path: lookup,
			want: []outcome{okBody, {Status: 502, JSON: true, Code: "internal_error"}, okBody},
		},
		{
			name: "other method does not match",
			give: Fault{Method: "POST", Path: lookup, Action: FaultError},
			path: lookup,
			want: []outcome{okBody},
		},
		{
			name: "other path does not match",
			give: Fault{Path: "/api/v1/lookup/8", Action: FaultError},
			path: lookup,
			want: []outcome{okBody},
		},
		{
			name:    "custom body and headers",
			give:    Fault{Path: lookup, Action: FaultError, Status: 400, Body: `{"oops":true}`, Headers: map[string]string{"X-Fault": "yes"}},
			path:    lookup,
			headers: []string{"X-Fault", "Content-Type"},
			want:    []outcome{{Status: 400, JSON: true, Headers: map[string]string{"X-Fault": "yes", "Content-Type": "application/json"}}},
		},
		{
			name: "reset connection",
			give: Fault{Path: lookup, Action: FaultReset, Times: 1},
			path: lookup,
			want: []outcome{{Err: true}, okBody},
		},
		{
			name:    "malformed JSON",
			give:    Fault{Path: lookup, Action: FaultMalformedJSON},
			path:    lookup,
			headers: []string{"Content-Type"},
			want:    []outcome{{Status: 200, Len: 30, Headers: map[string]string{"Content-Type": "application/json"}}},
		},
		{
			name: "malformed JSON truncates the real answer",
			give: Fault{Path: lookup, Action: FaultMalformedJSON, After: true},
			path: lookup,
			want: []outcome{{Status: 200, Len: okBody.Len / 2}},
		},
		{
			name: "10 MB body",
			give: Fault{Path: lookup, Action: FaultLargeBody},
			path: lookup,
			want: []outcome{{Status: 200, JSON: true, Len: 10 << 20}},
		},
		{
			name: "slow body keeps the real answer",
			give: Fault{Path: lookup, Action: FaultSlowBody, Delay: time.Millisecond},
			path: lookup,
			want: []outcome{okBody},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, ts := newTestServer(t, Options{})
			if _, err := s.AddFault(tt.give); err != nil {
				t.Fatal(err)
			}
			var got []outcome
			for range tt.want {
				got = append(got, observe(t, ts.Client(), "GET", ts.URL+tt.path, tt.headers))
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestFaultTiming(t *testing.T) {
	tests := []struct {
		name          string
		give          Fault
		clientTimeout time.Duration
		wantErr       bool
		wantMin       time.Duration
		wantStatus    int
	}{
		{"delay", Fault{Action: FaultDelay, Delay: 150 * time.Millisecond}, 0, false, 150 * time.Millisecond, 200},
		{"delay after the handler", Fault{Action: FaultDelay, Delay: 100 * time.Millisecond, After: true}, 0, false, 100 * time.Millisecond, 200},
		{"hang until the client gives up", Fault{Action: FaultHang}, 200 * time.Millisecond, true, 200 * time.Millisecond, 0},
		{"slow body", Fault{Action: FaultSlowBody, Delay: 5 * time.Millisecond}, 0, false, 40 * 5 * time.Millisecond, 200},
		{"slow body past the client deadline", Fault{Action: FaultSlowBody, Delay: 20 * time.Millisecond}, 100 * time.Millisecond, true, 100 * time.Millisecond, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, ts := newTestServer(t, Options{})
			tt.give.Path = "/api/v1/lookup/*"
			if _, err := s.AddFault(tt.give); err != nil {
				t.Fatal(err)
			}
			c := ts.Client()
			c.Timeout = tt.clientTimeout
			start := time.Now()
			got := observe(t, c, "GET", ts.URL+"/api/v1/lookup/42", nil)
			elapsed := time.Since(start)
			if got.Err != tt.wantErr || got.Status != tt.wantStatus && !tt.wantErr {
				t.Errorf("got %+v, want error %v status %d", got, tt.wantErr, tt.wantStatus)
			}
			if elapsed < tt.wantMin {
				t.Errorf("took %v, want at least %v", elapsed, tt.wantMin)
			}
		})
	}
}

func TestHangReleasedByClose(t *testing.T) {
	s, ts := newTestServer(t, Options{})
	if _, err := s.AddFault(Fault{Action: FaultHang}); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		resp, err := ts.Client().Get(ts.URL + "/api/v1/lookup/1")
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	waitFor(t, func() bool { return s.Stats().InFlight == 1 })
	s.Close()
	if err := <-errc; err == nil {
		t.Error("hung request got an answer after Close, want an aborted connection")
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestSlowBodyArrivesByteByByte(t *testing.T) {
	s, ts := newTestServer(t, Options{})
	if _, err := s.AddFault(Fault{Action: FaultSlowBody, Delay: 10 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	resp, err := ts.Client().Get(ts.URL + "/api/v1/lookup/1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var reads int
	buf := make([]byte, 64)
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			reads++
		}
		if err != nil {
			break
		}
	}
	if reads < 10 {
		t.Errorf("body arrived in %d reads, want it trickled byte by byte", reads)
	}
}

func TestFaultControlAPI(t *testing.T) {
	s, ts := newTestServer(t, Options{EnableFaults: true})
	c := ts.Client()

	resp, b := do(t, c, ts.URL, request{method: "POST", path: "/_faults",
		body: `{"path":"/api/v1/lookup/*","action":"delay","delay":"20ms","times":1}`})
	if resp.StatusCode != 201 || resp.Header.Get("Location") != "/_faults/f1" {
		t.Fatalf("add: %d %s", resp.StatusCode, b)
	}
	do(t, c, ts.URL, request{method: "POST", path: "/_faults", body: `{"method":"GET","path":"/api/v1/flaky","action":"error","status":503,"retry_after":"2"}`})

	type list struct {
		Faults []Fault `json:"faults"`
	}
	_, b = do(t, c, ts.URL, request{path: "/_faults"})
	want := list{[]Fault{
		{ID: "f1", Path: "/api/v1/lookup/*", Action: FaultDelay, Delay: 20 * time.Millisecond, Times: 1},
		{ID: "f2", Method: "GET", Path: "/api/v1/flaky", Action: FaultError, Status: 503, RetryAfter: "2"},
	}}
	if diff := cmp.Diff(want, decode[list](t, b)); diff != "" {
		t.Errorf("list (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want.Faults, s.Faults()); diff != "" {
		t.Errorf("Faults() (-want +got):\n%s", diff)
	}

	do(t, c, ts.URL, request{path: "/api/v1/lookup/1"}) // uses up f1
	if resp, _ := do(t, c, ts.URL, request{path: "/api/v1/flaky?fail=0"}); resp.StatusCode != 503 {
		t.Errorf("flaky with fault: %d", resp.StatusCode)
	}
	resp, _ = do(t, c, ts.URL, request{method: "DELETE", path: "/_faults/f2"})
	if resp.StatusCode != 204 {
		t.Errorf("delete: %d", resp.StatusCode)
	}
	if got := s.Faults(); len(got) != 0 {
		t.Errorf("faults left: %+v", got)
	}

	tests := []struct {
		name       string
		give       request
		wantStatus int
	}{
		{"delete unknown", request{method: "DELETE", path: "/_faults/f9"}, 404},
		{"unknown action", request{method: "POST", path: "/_faults", body: `{"action":"explode"}`}, 400},
		{"bad delay", request{method: "POST", path: "/_faults", body: `{"action":"delay","delay":"soon"}`}, 400},
		{"delay without delay", request{method: "POST", path: "/_faults", body: `{"action":"delay"}`}, 400},
		{"unknown field", request{method: "POST", path: "/_faults", body: `{"action":"hang","forever":true}`}, 400},
		{"clear", request{method: "DELETE", path: "/_faults"}, 204},
		{"reset stats", request{method: "DELETE", path: "/_stats"}, 204},
		{"wrong method", request{method: "PUT", path: "/_stats"}, 405},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if resp, b := do(t, c, ts.URL, tt.give); resp.StatusCode != tt.wantStatus {
				t.Errorf("status = %d, want %d: %s", resp.StatusCode, tt.wantStatus, b)
			}
		})
	}
}

func TestFaultControlAPIDisabled(t *testing.T) {
	s, ts := newTestServer(t, Options{})
	for _, r := range []request{
		{path: "/_faults"},
		{method: "POST", path: "/_faults", body: `{"action":"hang"}`},
		{method: "DELETE", path: "/_stats"},
	} {
		if resp, _ := do(t, ts.Client(), ts.URL, r); resp.StatusCode != 404 {
			t.Errorf("%s %s: %d, want 404", r.method, r.path, resp.StatusCode)
		}
	}
	if len(s.Faults()) != 0 {
		t.Error("a fault was installed through the disabled API")
	}
}

func TestStats(t *testing.T) {
	s, ts := newTestServer(t, Options{EnableFaults: true, APIKey: "k"})
	c := ts.Client()
	key := map[string]string{"X-Api-Key": "k"}
	keyed := map[string]string{"X-Api-Key": "k", "Idempotency-Key": "abc"}
	do(t, c, ts.URL, request{path: "/api/v1/customers/1", header: key})
	do(t, c, ts.URL, request{path: "/api/v1/customers/2", header: key})
	do(t, c, ts.URL, request{path: "/api/v1/customers/999", header: key})
	do(t, c, ts.URL, request{path: "/api/v1/customers"})
	do(t, c, ts.URL, request{path: "/api/v1/echo/a/b", header: key})
	do(t, c, ts.URL, request{method: "POST", path: "/api/v1/echo/a", header: key})
	do(t, c, ts.URL, request{path: "/nowhere"})
	do(t, c, ts.URL, request{method: "POST", path: "/api/v1/customers", body: `{"name":"A","email":"a@example.com"}`, header: keyed})
	do(t, c, ts.URL, request{method: "POST", path: "/api/v1/customers", body: `{"name":"A","email":"a@example.com"}`, header: keyed})
	do(t, c, ts.URL, request{path: "/_faults"}) // not counted

	// Parallel requests held by a delay show up as in-flight at once.
	if _, err := s.AddFault(Fault{Path: "/api/v1/lookup/*", Action: FaultDelay, Delay: 200 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() { do(t, c, ts.URL, request{path: "/api/v1/lookup/x", header: key}) })
	}
	wg.Wait()

	want := Stats{
		Requests: 17,
		Routes: map[string]int64{
			"GET /api/v1/customers/{id}":      3,
			"GET /api/v1/customers":           1,
			"GET /api/v1/echo/{anything...}":  1,
			"POST /api/v1/echo/{anything...}": 1,
			"unmatched":                       1,
			"POST /api/v1/customers":          2,
			"GET /api/v1/lookup/{id}":         8,
		},
		Statuses:        map[int]int64{200: 12, 201: 2, 401: 1, 404: 2},
		IdempotencyKeys: map[string]KeyStats{"abc": {Requests: 2, Executions: 1, Replays: 1}},
		MaxInFlight:     8,
		FaultsInjected:  8,
	}
	if diff := cmp.Diff(want, s.Stats()); diff != "" {
		t.Errorf("Stats() (-want +got):\n%s", diff)
	}
	_, b := do(t, c, ts.URL, request{path: "/_stats"})
	if diff := cmp.Diff(want, decode[Stats](t, b)); diff != "" {
		t.Errorf("GET /_stats (-want +got):\n%s", diff)
	}
	s.ResetStats()
	if diff := cmp.Diff(Stats{Routes: map[string]int64{}, Statuses: map[int]int64{}, IdempotencyKeys: map[string]KeyStats{}}, s.Stats()); diff != "" {
		t.Errorf("after reset (-want +got):\n%s", diff)
	}
}

func TestResetIsSeenAsConnectionError(t *testing.T) {
	s, ts := newTestServer(t, Options{})
	if _, err := s.AddFault(Fault{Action: FaultReset}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", ts.URL+"/api/v1/customers", nil)
	_, err := ts.Client().Do(req)
	if err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want a connection error", err)
	}
	if !strings.Contains(err.Error(), "reset") && !strings.Contains(err.Error(), "EOF") {
		t.Errorf("err = %v, want a reset or EOF", err)
	}
}
