package upstream

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/toolbus/toolbus/catalog"
)

// fakeClock takes waits without sleeping: Sleep advances Now.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	slept []time.Duration
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Now()} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.slept = append(c.slept, d)
	c.now = c.now.Add(d)
	return nil
}

func (c *fakeClock) waits() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.slept...)
}

// step is what the scripted upstream does with one request.
type step struct {
	status  int
	header  map[string]string
	reset   bool          // close the connection without answering
	hang    bool          // never answer
	delay   time.Duration // wait before answering
	dateIn  time.Duration // Retry-After as an HTTP-date this far ahead
	epochIn time.Duration // X-RateLimit-Reset as a Unix time this far ahead
}

// script is an httptest upstream that plays steps in order, then answers
// 200, and records the Idempotency-Key of every request.
type script struct {
	mu    sync.Mutex
	steps []step
	keys  []string
	hits  int
}

func (s *script) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	s.mu.Lock()
	s.hits++
	s.keys = append(s.keys, r.Header.Get("Idempotency-Key"))
	st := step{status: http.StatusOK}
	if len(s.steps) > 0 {
		st, s.steps = s.steps[0], s.steps[1:]
	}
	s.mu.Unlock()
	switch {
	case st.reset:
		resetConnection(w)
		return
	case st.hang:
		<-r.Context().Done()
		return
	}
	if st.delay > 0 {
		select {
		case <-time.After(st.delay):
		case <-r.Context().Done():
			return
		}
	}
	for k, v := range st.header {
		w.Header().Set(k, v)
	}
	if st.dateIn > 0 {
		w.Header().Set("Retry-After", time.Now().Add(st.dateIn).UTC().Format(http.TimeFormat))
	}
	if st.epochIn > 0 {
		w.Header().Set("X-RateLimit-Remaining", "0")
		w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(time.Now().Add(st.epochIn).Unix(), 10))
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(st.status)
	_, _ = w.Write([]byte(`{}`))
}

func resetConnection(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	conn.Close()
}

var testPolicy = catalog.RetryPolicy{MaxAttempts: 3, InitialBackoff: 200 * time.Millisecond, MaxBackoff: 5 * time.Second, MaxRetryAfter: 30 * time.Second}

func reliableUpstream(base *url.URL) *catalog.Upstream {
	return &catalog.Upstream{
		Name: "crm", Kind: catalog.KindREST, BaseURL: base, Timeout: 5 * time.Second, Concurrency: 4,
		IdempotencyHeader: "Idempotency-Key",
		Reliability:       catalog.Reliability{Retry: testPolicy},
	}
}

// TestRetryPolicy drives the retry layer against a scripted upstream:
// attempts sent, waits taken (on a fake clock), and what is never retried.
func TestRetryPolicy(t *testing.T) {
	s5 := func(s int) step { return step{status: s} }
	tests := []struct {
		name   string
		method string
		key    string // Idempotency-Key sent, if any
		steps  []step
		// policy overrides the upstream's for the request, when set.
		policy  *catalog.RetryPolicy
		timeout time.Duration
		// headerTimeout sets the client's ResponseHeaderTimeout.
		headerTimeout time.Duration
		wantHits      int
		wantStatus    int // 0: an error is expected
		// wantWaits are exact waits; ceilings (when set instead) bound
		// jittered ones.
		wantWaits    []time.Duration
		wantCeilings []time.Duration
	}{
		{name: "503 then 503 then 200, GET", method: "GET", steps: []step{s5(503), s5(503)},
			wantHits: 3, wantStatus: 200, wantCeilings: []time.Duration{200 * time.Millisecond, 400 * time.Millisecond}},
		{name: "500 every time: attempts used up", method: "GET", steps: []step{s5(500), s5(500), s5(500), s5(500)},
			wantHits: 3, wantStatus: 500, wantCeilings: []time.Duration{200 * time.Millisecond, 400 * time.Millisecond}},
		{name: "408 and 502 and 504 retried", method: "GET", steps: []step{s5(408), s5(502)},
			wantHits: 3, wantStatus: 200, wantCeilings: []time.Duration{200 * time.Millisecond, 400 * time.Millisecond}},
		{name: "404 not retried", method: "GET", steps: []step{s5(404)}, wantHits: 1, wantStatus: 404},
		{name: "400 not retried", method: "GET", steps: []step{s5(400)}, wantHits: 1, wantStatus: 400},
		{name: "409 not retried even with a key", method: "POST", key: "k-409", steps: []step{s5(409)}, wantHits: 1, wantStatus: 409},
		{name: "501 not retried", method: "GET", steps: []step{s5(501)}, wantHits: 1, wantStatus: 501},
		{name: "429 Retry-After seconds honoured", method: "GET",
			steps:    []step{{status: 429, header: map[string]string{"Retry-After": "7"}}},
			wantHits: 2, wantStatus: 200, wantWaits: []time.Duration{7 * time.Second}},
		{name: "503 Retry-After HTTP-date honoured", method: "GET",
			steps:    []step{{status: 503, dateIn: 4 * time.Second}},
			wantHits: 2, wantStatus: 200, wantCeilings: []time.Duration{4 * time.Second}},
		{name: "429 RateLimit structured field honoured", method: "GET",
			steps:    []step{{status: 429, header: map[string]string{"RateLimit": `"default";r=0;t=5`, "RateLimit-Policy": `"default";q=10;w=60`}}},
			wantHits: 2, wantStatus: 200, wantWaits: []time.Duration{5 * time.Second}},
		{name: "429 X-RateLimit-Reset Unix time honoured", method: "GET",
			steps:    []step{{status: 429, epochIn: 6 * time.Second}},
			wantHits: 2, wantStatus: 200, wantCeilings: []time.Duration{6 * time.Second}},
		{name: "Retry-After over max_retry_after: not retried", method: "GET",
			steps:    []step{{status: 429, header: map[string]string{"Retry-After": "120"}}},
			wantHits: 1, wantStatus: 429},
		{name: "nothing past the deadline", method: "GET", timeout: 2 * time.Second,
			steps:    []step{{status: 503, header: map[string]string{"Retry-After": "3"}}},
			wantHits: 1, wantStatus: 503},
		{name: "POST without idempotency key not retried", method: "POST", steps: []step{s5(503)},
			wantHits: 1, wantStatus: 503},
		{name: "POST with idempotency key retried", method: "POST", key: "k-1", steps: []step{s5(503), s5(500)},
			wantHits: 3, wantStatus: 200, wantCeilings: []time.Duration{200 * time.Millisecond, 400 * time.Millisecond}},
		{name: "PATCH without key not retried after reset", method: "PATCH", steps: []step{{reset: true}},
			wantHits: 1},
		{name: "GET retried after connection reset", method: "GET", steps: []step{{reset: true}},
			wantHits: 2, wantStatus: 200, wantCeilings: []time.Duration{200 * time.Millisecond}},
		{name: "slow answer (response header timeout) retried for GET", method: "GET", headerTimeout: 300 * time.Millisecond,
			steps:    []step{{delay: time.Second}},
			wantHits: 2, wantStatus: 200, wantCeilings: []time.Duration{200 * time.Millisecond}},
		{name: "hang until the deadline: not retried", method: "GET", timeout: 300 * time.Millisecond,
			steps: []step{{hang: true}}, wantHits: 1},
		{name: "tool policy with one attempt", method: "GET", policy: &catalog.RetryPolicy{MaxAttempts: 1, InitialBackoff: time.Millisecond, MaxBackoff: time.Millisecond, MaxRetryAfter: time.Second},
			steps: []step{s5(503)}, wantHits: 1, wantStatus: 503},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := &script{steps: tt.steps}
			srv := httptest.NewServer(sc)
			t.Cleanup(srv.Close)
			base, _ := url.Parse(srv.URL)
			clock := newFakeClock()
			c := newClient(t, reliableUpstream(base), Options{
				Reliability:           NewReliability(ReliabilityOptions{Clock: clock}),
				ResponseHeaderTimeout: tt.headerTimeout,
			})
			ctx, cancel := context.WithTimeout(context.Background(), cmpOr(tt.timeout, 10*time.Second))
			defer cancel()
			if tt.policy != nil {
				ctx = WithRetryPolicy(ctx, *tt.policy)
			}
			var body io.Reader
			if tt.method != "GET" {
				body = bytes.NewReader([]byte(`{"name":"Ada"}`))
			}
			req, err := http.NewRequestWithContext(ctx, tt.method, srv.URL+"/customers", body)
			if err != nil {
				t.Fatal(err)
			}
			if tt.key != "" {
				req.Header.Set("Idempotency-Key", tt.key)
			}
			resp, err := c.Do(req)
			sc.mu.Lock()
			hits, keys := sc.hits, sc.keys
			sc.mu.Unlock()
			if hits != tt.wantHits {
				t.Errorf("upstream saw %d requests, want %d", hits, tt.wantHits)
			}
			switch {
			case tt.wantStatus == 0 && err == nil:
				t.Errorf("got status %d, want an error", resp.Status)
			case tt.wantStatus != 0 && err != nil:
				t.Errorf("got error %v, want status %d", err, tt.wantStatus)
			case tt.wantStatus != 0 && resp.Status != tt.wantStatus:
				t.Errorf("status %d, want %d", resp.Status, tt.wantStatus)
			case err == nil && resp.Attempts != tt.wantHits:
				t.Errorf("Response.Attempts = %d, want %d", resp.Attempts, tt.wantHits)
			case err != nil && Attempts(err) != tt.wantHits:
				t.Errorf("Attempts(err) = %d, want %d", Attempts(err), tt.wantHits)
			}
			waits := clock.waits()
			if tt.wantWaits != nil {
				if diff := cmp.Diff(tt.wantWaits, waits); diff != "" {
					t.Errorf("waits (-want +got):\n%s", diff)
				}
			}
			if tt.wantCeilings != nil {
				if len(waits) != len(tt.wantCeilings) {
					t.Fatalf("waits %v, want %d of them", waits, len(tt.wantCeilings))
				}
				for i, w := range waits {
					if w < 0 || w > tt.wantCeilings[i] {
						t.Errorf("wait %d = %v, want between 0 and %v", i+1, w, tt.wantCeilings[i])
					}
				}
			}
			if tt.wantWaits == nil && tt.wantCeilings == nil && len(waits) > 0 {
				t.Errorf("waited %v, want no retry", waits)
			}
			for i, k := range keys {
				if k != tt.key {
					t.Errorf("attempt %d carried Idempotency-Key %q, want %q on every attempt", i+1, k, tt.key)
				}
			}
		})
	}
}

func cmpOr(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// TestRetryNeverSentPOST retries a POST without an idempotency key when
// the connection was refused: the request provably never left.
func TestRetryNeverSentPOST(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now: connections are refused
	base, _ := url.Parse("http://" + addr)
	clock := newFakeClock()
	c := newClient(t, reliableUpstream(base), Options{Reliability: NewReliability(ReliabilityOptions{Clock: clock})})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", base.String()+"/customers", bytes.NewReader([]byte(`{}`)))
	_, err = c.Do(req)
	if err == nil {
		t.Fatal("want an error")
	}
	if got := Attempts(err); got != testPolicy.MaxAttempts {
		t.Errorf("attempts = %d, want %d (refused connections are retried whatever the method)", got, testPolicy.MaxAttempts)
	}
	if te := Classify("create_customer", "crm", time.Second, err); te.Code != "upstream_unreachable" {
		t.Errorf("classified as %s, want upstream_unreachable", te.Code)
	}
}

// TestRetryObserver checks the hook tracing implements.
func TestRetryObserver(t *testing.T) {
	sc := &script{steps: []step{{status: 503}}}
	srv := httptest.NewServer(sc)
	t.Cleanup(srv.Close)
	base, _ := url.Parse(srv.URL)
	obs := &recordingObserver{}
	c := newClient(t, reliableUpstream(base), Options{Reliability: NewReliability(ReliabilityOptions{Clock: newFakeClock(), Observer: obs})})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/x", nil)
	if _, err := c.Do(req); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"1 status 503"}, obs.got()); diff != "" {
		t.Errorf("OnRetry calls (-want +got):\n%s", diff)
	}
}

type recordingObserver struct {
	mu    sync.Mutex
	calls []string
}

func (o *recordingObserver) OnRetry(_ context.Context, attempt int, _ time.Duration, reason string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.calls = append(o.calls, strconv.Itoa(attempt)+" "+reason)
}

func (o *recordingObserver) got() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.calls...)
}

func TestWaitAsked(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name   string
		give   http.Header
		always bool
		want   time.Duration
		wantOK bool
	}{
		{"retry-after seconds", http.Header{"Retry-After": {"12"}}, false, 12 * time.Second, true},
		{"retry-after date", http.Header{"Retry-After": {now.Add(90 * time.Second).Format(http.TimeFormat)}}, false, 90 * time.Second, true},
		{"ratelimit exhausted", http.Header{"Ratelimit": {`"default";r=0;t=1`}}, false, time.Second, true},
		{"ratelimit with room left is no wait", http.Header{"Ratelimit": {`"default";r=3;t=1`}}, false, 0, false},
		{"ratelimit on a 429 counts even with room", http.Header{"Ratelimit": {`"default";r=3;t=4`}}, true, 4 * time.Second, true},
		{"ratelimit two policies: longest exhausted", http.Header{"Ratelimit": {`"burst";r=0;t=1, "day";r=0;t=3600`}}, false, time.Hour, true},
		{"draft ratelimit-reset", http.Header{"Ratelimit-Remaining": {"0"}, "Ratelimit-Reset": {"9"}}, false, 9 * time.Second, true},
		{"x-ratelimit seconds", http.Header{"X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {"30"}}, false, 30 * time.Second, true},
		{"x-ratelimit unix time", http.Header{"X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {strconv.FormatInt(now.Add(45*time.Second).Unix(), 10)}}, false, 45 * time.Second, true},
		{"x-ratelimit remaining", http.Header{"X-Ratelimit-Remaining": {"5"}, "X-Ratelimit-Reset": {"30"}}, false, 0, false},
		{"capped", http.Header{"Retry-After": {"999999999"}}, false, 24 * time.Hour, true},
		{"garbage", http.Header{"Retry-After": {"soon"}}, false, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := waitAsked(tt.give, now, tt.always)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("waitAsked = %v, %v; want %v, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}
