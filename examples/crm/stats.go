package crm

import (
	"maps"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
)

// Stats is a snapshot of what the server has seen since it started or since
// the last reset. Requests to /_faults and /_stats are not counted.
type Stats struct {
	// Requests is the number of requests received.
	Requests int64 `json:"requests"`
	// Routes counts requests per route, keyed "METHOD /pattern", e.g.
	// "GET /api/v1/customers/{id}"; "unmatched" for unknown paths.
	Routes map[string]int64 `json:"routes"`
	// Statuses counts responses per status code, recorded when the handler
	// returns; 0 means no response was written (connection reset, or the
	// client gave up on a hang).
	Statuses map[int]int64 `json:"statuses"`
	// IdempotencyKeys counts, per Idempotency-Key header value, what the
	// server did with the requests that carried it.
	IdempotencyKeys map[string]KeyStats `json:"idempotency_keys"`
	// InFlight is the number of requests being served now; MaxInFlight the
	// highest number observed at once.
	InFlight    int64 `json:"in_flight"`
	MaxInFlight int64 `json:"max_in_flight"`
	// FaultsInjected counts requests a fault rule acted on.
	FaultsInjected int64 `json:"faults_injected"`
}

// KeyStats counts the requests that carried one Idempotency-Key.
type KeyStats struct {
	// Requests is every request with the key, including ones a fault or the
	// rate limiter answered.
	Requests int64 `json:"requests"`
	// Executions is how many times the operation really ran (at most once
	// while the stored result lasts).
	Executions int64 `json:"executions"`
	// Replays is how many times the stored first response was returned.
	Replays int64 `json:"replays"`
	// Conflicts is how many requests reused the key with a different
	// request and got 409.
	Conflicts int64 `json:"conflicts"`
}

type statsRecorder struct {
	inFlight    atomic.Int64
	maxInFlight atomic.Int64

	mu       sync.Mutex
	requests int64
	routes   map[string]int64
	statuses map[int]int64
	keys     map[string]*KeyStats
	faults   int64
}

func newStatsRecorder() *statsRecorder {
	r := &statsRecorder{}
	r.resetLocked()
	return r
}

func (r *statsRecorder) resetLocked() {
	r.requests, r.faults = 0, 0
	r.routes = make(map[string]int64)
	r.statuses = make(map[int]int64)
	r.keys = make(map[string]*KeyStats)
	r.maxInFlight.Store(r.inFlight.Load())
}

func (r *statsRecorder) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.resetLocked()
}

// enter counts a request as it arrives, so a client that saw its
// connection reset can read the count at once.
func (r *statsRecorder) enter(route, key string) {
	n := r.inFlight.Add(1)
	for {
		m := r.maxInFlight.Load()
		if n <= m || r.maxInFlight.CompareAndSwap(m, n) {
			break
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests++
	r.routes[route]++
	if key != "" {
		r.keyLocked(key).Requests++
	}
}

// done records the status sent when the handler returns.
func (r *statsRecorder) done(status int) {
	r.inFlight.Add(-1)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.statuses[status]++
}

func (r *statsRecorder) keyLocked(key string) *KeyStats {
	k := r.keys[key]
	if k == nil {
		k = &KeyStats{}
		r.keys[key] = k
	}
	return k
}

// key applies f to the counters of one idempotency key.
func (r *statsRecorder) key(key string, f func(*KeyStats)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f(r.keyLocked(key))
}

func (r *statsRecorder) faultInjected() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.faults++
}

func (r *statsRecorder) snapshot() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := Stats{
		Requests:        r.requests,
		Routes:          maps.Clone(r.routes),
		Statuses:        maps.Clone(r.statuses),
		IdempotencyKeys: make(map[string]KeyStats, len(r.keys)),
		InFlight:        r.inFlight.Load(),
		MaxInFlight:     r.maxInFlight.Load(),
		FaultsInjected:  r.faults,
	}
	for k, v := range r.keys {
		st.IdempotencyKeys[k] = *v
	}
	return st
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats { return s.stats.snapshot() }

// ResetStats zeroes the counters; MaxInFlight restarts from the requests in
// flight now.
func (s *Server) ResetStats() { s.stats.reset() }

func (s *Server) countRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, pattern := s.mux.Handler(r)
		s.stats.enter(routeLabel(r.Method, pattern), r.Header.Get("Idempotency-Key"))
		sw := &statusWriter{ResponseWriter: w}
		defer func() { s.stats.done(sw.status) }()
		next.ServeHTTP(sw, r)
	})
}

func routeLabel(method, pattern string) string {
	if pattern == "" || pattern == "/" {
		return "unmatched"
	}
	if _, path, ok := strings.Cut(pattern, " "); ok {
		pattern = path
	}
	return method + " " + pattern
}
