package upstream

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/toolbus/toolbus/bus/bustest"
	"github.com/toolbus/toolbus/catalog"
)

// replica is one worker process's view: its own NATS connection, shared
// state and client.
type replica struct {
	state  *SharedState
	client *Client
}

func newReplicas(t testing.TB, ns *server.Server, u *catalog.Upstream, n int) []replica {
	t.Helper()
	out := make([]replica, n)
	for i := range out {
		_, js := bustest.Connect(t, ns)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		st, err := OpenSharedState(ctx, js)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		c, err := New(u, Options{Reliability: NewReliability(ReliabilityOptions{State: st})})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.CloseIdleConnections)
		out[i] = replica{state: st, client: c}
	}
	return out
}

// arrivals is an upstream handler recording when requests arrive.
type arrivals struct {
	mu    sync.Mutex
	times []time.Time
	// status answers each request; 200 when nil.
	status func(n int) (int, http.Header)
}

func (a *arrivals) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	a.times = append(a.times, time.Now())
	n := len(a.times)
	a.mu.Unlock()
	code := http.StatusOK
	if a.status != nil {
		var h http.Header
		code, h = a.status(n)
		for k, v := range h {
			w.Header()[k] = v
		}
	}
	w.WriteHeader(code)
}

func (a *arrivals) snapshot() []time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]time.Time(nil), a.times...)
}

func doGet(c *Client, base string, timeout time.Duration, pol *catalog.RetryPolicy) (*Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if pol != nil {
		ctx = WithRetryPolicy(ctx, *pol)
	}
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/x", nil)
	return c.Do(req)
}

var oneAttempt = &catalog.RetryPolicy{MaxAttempts: 1, InitialBackoff: time.Millisecond, MaxBackoff: time.Millisecond, MaxRetryAfter: time.Second}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not happen within 5s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestPauseAcrossReplicas: a 429 with Retry-After seen by one replica
// holds the others' requests for that long.
func TestPauseAcrossReplicas(t *testing.T) {
	up := &arrivals{status: func(n int) (int, http.Header) {
		if n == 1 {
			return http.StatusTooManyRequests, http.Header{"Retry-After": {"1"}}
		}
		return http.StatusOK, nil
	}}
	srv := httptest.NewServer(up)
	t.Cleanup(srv.Close)
	base, _ := url.Parse(srv.URL)
	ns := bustest.Server(t)
	reps := newReplicas(t, ns, reliableUpstream(base), 3)

	before := time.Now()
	resp, err := doGet(reps[0].client, srv.URL, 5*time.Second, oneAttempt)
	if err != nil || resp.Status != http.StatusTooManyRequests {
		t.Fatalf("first request: %v %v, want 429", resp, err)
	}
	for i, r := range reps[1:] {
		st := r.state.upstream("crm")
		waitFor(t, "replica "+string(rune('2'+i))+" seeing the pause", func() bool { return st.pausedUntil.Load() > 0 })
	}

	// A call that cannot wait that long fails at once, without a request.
	_, err = doGet(reps[2].client, srv.URL, 200*time.Millisecond, nil)
	te := Classify("get_customer", "crm", time.Second, err)
	if te.Code != "upstream_paused" || !strings.HasPrefix(te.Message, "rate limited by crm") || te.RetryAfter == nil {
		t.Errorf("short call during the pause: %v", te)
	}
	if n := len(up.snapshot()); n != 1 {
		t.Fatalf("upstream saw %d requests during the pause, want only the first", n)
	}

	// Calls that can wait are held until the pause ends, on every replica.
	var wg sync.WaitGroup
	for _, r := range reps[1:] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if resp, err := doGet(r.client, srv.URL, 5*time.Second, oneAttempt); err != nil || resp.Status != http.StatusOK {
				t.Errorf("held call: %v %v", resp, err)
			}
		}()
	}
	wg.Wait()
	times := up.snapshot()
	if len(times) != 3 {
		t.Fatalf("upstream saw %d requests, want 3", len(times))
	}
	for i, at := range times[1:] {
		if at.Before(before.Add(time.Second)) {
			t.Errorf("request %d arrived %v after the 429's request was sent, want at least the 1s Retry-After", i+2, at.Sub(before))
		}
	}
}

// TestCircuitAcrossReplicas: failures at one replica open the circuit for
// all; after the cool-down one probe closes it again.
func TestCircuitAcrossReplicas(t *testing.T) {
	var mu sync.Mutex
	failing := true
	up := &arrivals{status: func(int) (int, http.Header) {
		mu.Lock()
		defer mu.Unlock()
		if failing {
			return http.StatusInternalServerError, nil
		}
		return http.StatusOK, nil
	}}
	srv := httptest.NewServer(up)
	t.Cleanup(srv.Close)
	base, _ := url.Parse(srv.URL)
	u := reliableUpstream(base)
	u.CircuitBreaker = &catalog.CircuitBreaker{Failures: 3, CoolDown: 500 * time.Millisecond}
	ns := bustest.Server(t)
	reps := newReplicas(t, ns, u, 2)

	for range 3 {
		if resp, err := doGet(reps[0].client, srv.URL, 5*time.Second, oneAttempt); err != nil || resp.Status != 500 {
			t.Fatalf("failing request: %v %v", resp, err)
		}
	}
	st := reps[1].state.upstream("crm")
	waitFor(t, "replica 2 seeing the open circuit", func() bool { return st.circuit.Load().state == circuitOpen })
	_, err := doGet(reps[1].client, srv.URL, 5*time.Second, nil)
	te := Classify("get_customer", "crm", time.Second, err)
	if te.Code != "circuit_open" || te.RetryAfter == nil {
		t.Fatalf("call with the circuit open: %v, want circuit_open", te)
	}
	if n := len(up.snapshot()); n != 3 {
		t.Fatalf("upstream saw %d requests, want 3: an open circuit must not send", n)
	}

	mu.Lock()
	failing = false
	mu.Unlock()
	time.Sleep(600 * time.Millisecond) // the cool-down
	if resp, err := doGet(reps[1].client, srv.URL, 5*time.Second, nil); err != nil || resp.Status != 200 {
		t.Fatalf("probe: %v %v", resp, err)
	}
	st0 := reps[0].state.upstream("crm")
	waitFor(t, "replica 1 seeing the circuit closed", func() bool { return st0.circuit.Load().state == circuitClosed })
	if resp, err := doGet(reps[0].client, srv.URL, 5*time.Second, nil); err != nil || resp.Status != 200 {
		t.Fatalf("after the probe: %v %v", resp, err)
	}
}

// TestLocalRateLimit: without shared state the bucket still holds within
// one process, and a call that cannot get a token in time is refused with
// a message a model can use.
func TestLocalRateLimit(t *testing.T) {
	up := &arrivals{}
	srv := httptest.NewServer(up)
	t.Cleanup(srv.Close)
	base, _ := url.Parse(srv.URL)
	u := reliableUpstream(base)
	u.RateLimit = &catalog.RateLimit{Requests: 2, Per: time.Minute, Burst: 2}
	c := newClient(t, u, Options{Reliability: NewReliability(ReliabilityOptions{})})
	for range 2 {
		if _, err := doGet(c, srv.URL, time.Second, nil); err != nil {
			t.Fatal(err)
		}
	}
	_, err := doGet(c, srv.URL, time.Second, nil)
	te := Classify("get_customer", "crm", time.Second, err)
	if te.Code != "quota_exhausted" || !strings.HasPrefix(te.Message, "rate limited by crm: the shared quota of 2 requests per 1m is used up") {
		t.Errorf("third call: %s: %s", te.Code, te.Message)
	}
	if n := len(up.snapshot()); n != 2 {
		t.Errorf("upstream saw %d requests, want 2", n)
	}
}

// stubTransport answers 200 at once, so a benchmark measures the layers.
type stubTransport struct{}

func (stubTransport) RoundTrip(*http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody, ContentLength: 0}, nil
}

// BenchmarkQuotaNoLimitHit measures what the shared quota machinery (pause
// check, circuit check, token lease from NATS KV amortised over local
// spending) adds to one attempt when no limit is hit.
func BenchmarkQuotaNoLimitHit(b *testing.B) {
	for _, shared := range []bool{true, false} {
		name := "shared"
		if !shared {
			name = "local"
		}
		b.Run(name, func(b *testing.B) {
			base, _ := url.Parse("http://127.0.0.1:1")
			u := reliableUpstream(base)
			u.RateLimit = &catalog.RateLimit{Requests: 10_000_000, Per: time.Second, Burst: 10_000_000}
			u.CircuitBreaker = &catalog.CircuitBreaker{Failures: 5, CoolDown: time.Second}
			var st *SharedState
			if shared {
				ns := bustest.Server(b)
				_, js := bustest.Connect(b, ns)
				var err error
				if st, err = OpenSharedState(context.Background(), js); err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { _ = st.Close() })
			}
			rel := NewReliability(ReliabilityOptions{State: st})
			rt := rel.retryLayer(u)(&attemptCounter{next: rel.quotaLayer(u)(stubTransport{})})
			ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "GET", "http://127.0.0.1:1/x", nil)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				resp, err := rt.RoundTrip(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
			}
		})
	}
}
