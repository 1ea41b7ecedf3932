package restworker

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/toolbus/toolbus/bus"
	"github.com/toolbus/toolbus/bus/bustest"
	"github.com/toolbus/toolbus/catalog"
	"github.com/toolbus/toolbus/examples/crm"
	toolbusv1 "github.com/toolbus/toolbus/gen/toolbus/v1"
	"github.com/toolbus/toolbus/upstream"
)

// timedCRM is the demo CRM behind a handler that records arrival times.
type timedCRM struct {
	*crm.Server
	mu    sync.Mutex
	times []time.Time
}

func (c *timedCRM) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	c.times = append(c.times, time.Now())
	c.mu.Unlock()
	c.Server.ServeHTTP(w, r)
}

func (c *timedCRM) arrivals() []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := slices.Clone(c.times)
	slices.SortFunc(out, func(a, b time.Time) int { return a.Compare(b) })
	return out
}

func startTimedCRM(t *testing.T, delay time.Duration) (*timedCRM, string) {
	t.Helper()
	c := &timedCRM{Server: crm.NewServer(crm.Options{})}
	if _, err := c.AddFault(crm.Fault{Path: "/api/v1/customers/*", Action: crm.FaultDelay, Delay: delay}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(c)
	t.Cleanup(func() { c.Close(); srv.Close() })
	return c, srv.URL
}

// startReplicas runs n rest-worker instances on their own NATS
// connections, each with its own shared-state view, as n processes would.
func startReplicas(t *testing.T, ns *server.Server, cat *catalog.Catalog, n int) {
	t.Helper()
	for i := range n {
		nc, js := bustest.Connect(t, ns)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		st, err := upstream.OpenSharedState(ctx, js)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		svc, err := New(Options{
			Catalog: cat, NC: nc, JS: js, Instance: fmt.Sprintf("rest-%d", i+1), Logger: bustest.Logger(),
			HTTP: upstream.Options{Reliability: upstream.NewReliability(upstream.ReliabilityOptions{State: st})},
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := svc.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = svc.Shutdown(ctx)
		})
	}
}

// hammer makes n concurrent get_customer calls to upstream up and returns
// the workers that answered.
func hammer(t *testing.T, caller *bus.Caller, up string, n int) map[string]int {
	t.Helper()
	var mu sync.Mutex
	workers := map[string]int{}
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &toolbusv1.ToolCall{
				Tool: "get_" + up, Upstream: up, Kind: "rest", Arguments: fmt.Appendf(nil, `{"id":%d}`, i%40+1),
				Deadline: timestamppb.New(time.Now().Add(30 * time.Second)),
			}
			ctx, cancel := context.WithTimeout(context.Background(), 35*time.Second)
			defer cancel()
			res, err := caller.Call(ctx, bus.CallSubject("rest", up, c.Tool), c)
			if err != nil {
				t.Errorf("call %d: %v", i, err)
				return
			}
			if res.Error != nil {
				t.Errorf("call %d: %s: %s", i, res.Error.Code, res.Error.Message)
				return
			}
			mu.Lock()
			workers[res.Worker]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	return workers
}

// TestQuotaAcrossReplicas: three rest-worker replicas hammer upstreams
// limited to R requests per second (with a burst) and to C concurrent
// calls; the upstreams never see more, all replicas together.
func TestQuotaAcrossReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("takes a few seconds of rate-limited calls")
	}
	const (
		rate     = 20 // requests per second
		burst    = 5
		conc     = 3
		leaseTTL = 250 * time.Millisecond // upstream.rateBucket's lease life for per: 1s
	)
	limited, limitedURL := startTimedCRM(t, 10*time.Millisecond)
	narrow, narrowURL := startTimedCRM(t, 100*time.Millisecond)
	src := fmt.Sprintf(`version: 1
upstreams:
  limited:
    base_url: %s/api/v1
    concurrency: 16
    rate_limit: {requests: %d, per: 1s, burst: %d}
  narrow:
    base_url: %s/api/v1
    concurrency: %d
tools:
  - {name: get_limited, description: d, upstream: limited, method: GET, path: "/customers/{id}", input_schema: {type: object, properties: {id: {type: integer}}, required: [id]}}
  - {name: get_narrow, description: d, upstream: narrow, method: GET, path: "/customers/{id}", input_schema: {type: object, properties: {id: {type: integer}}, required: [id]}}
`, limitedURL, rate, burst, narrowURL, conc)
	cat, err := catalog.Parse("quota.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	ns := bustest.Server(t)
	startReplicas(t, ns, cat, 3)
	nc, js := bustest.Connect(t, ns)
	caller, err := bus.NewCaller(nc, js, bus.CallerOptions{Instance: "front", Logger: bustest.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = caller.Close() })

	t.Run("rate", func(t *testing.T) {
		workers := hammer(t, caller, "limited", 60)
		if len(workers) < 2 {
			t.Fatalf("answered by %v: the calls did not spread over replicas, nothing was shown", workers)
		}
		times := limited.arrivals()
		if len(times) != 60 {
			t.Fatalf("upstream saw %d requests, want 60", len(times))
		}
		// Over any stretch between two arrivals, the count must stay within
		// the token bucket's bound for all replicas together.
		worst := 0.0
		for i := range times {
			for j := i; j < len(times); j++ {
				span := times[j].Sub(times[i])
				allowed := burst + rate*(span+leaseTTL).Seconds()
				if n := float64(j - i + 1); n > allowed {
					t.Fatalf("%d requests within %v: more than burst %d + %d/s × (%v + lease %v) = %.1f", j-i+1, span, burst, rate, span, leaseTTL, allowed)
				}
				worst = max(worst, float64(j-i+1)/(burst+rate*(span+leaseTTL).Seconds()))
			}
		}
		total := times[len(times)-1].Sub(times[0])
		t.Logf("60 requests over %v (%.1f/s) from %v; worst window at %.0f%% of the bound", total, 59/total.Seconds(), workers, worst*100)
	})
	t.Run("concurrency", func(t *testing.T) {
		workers := hammer(t, caller, "narrow", 24)
		st := narrow.Stats()
		if st.MaxInFlight > conc {
			t.Errorf("upstream saw %d requests at once, want at most %d across all replicas", st.MaxInFlight, conc)
		}
		t.Logf("max in flight %d (limit %d), answered by %v", st.MaxInFlight, conc, workers)
	})
}
