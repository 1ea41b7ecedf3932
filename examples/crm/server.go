package crm

import (
	"crypto/subtle"
	"net/http"
	"strings"
	"sync"
	"time"
)

// APIPrefix is the path prefix of the JSON API.
const APIPrefix = "/api/v1"

// Options configure a [Server]. The zero value serves the seeded data with
// no auth, no rate limit and no fault control API.
type Options struct {
	// APIKey, when set, is required on every /api/v1 request, in the
	// X-Api-Key header or as Authorization: Bearer <key>.
	APIKey string

	// RateLimit is the number of /api/v1 requests allowed per RateWindow
	// across all clients; 0 means unlimited. Requests over it get 429 with
	// Retry-After, RateLimit and RateLimit-Policy headers.
	RateLimit int
	// RateWindow is the length of a rate-limit window (default 1s).
	RateWindow time.Duration

	// EnableFaults serves the fault control API under /_faults and lets
	// DELETE /_stats reset the counters. The Go methods work regardless.
	EnableFaults bool

	// Customers and Orders are the numbers of seeded records (defaults 50
	// and 200; a negative value seeds none).
	Customers int
	Orders    int
	// Seed makes the seeded data reproducible (default 1).
	Seed uint64

	// FlakyFailures is how many requests per key GET /api/v1/flaky fails
	// with 503 before it succeeds, unless the request gives ?fail= (default 2).
	FlakyFailures int

	// Now is the clock used for timestamps of new records (default time.Now).
	Now func() time.Time
}

func (o *Options) setDefaults() {
	if o.RateWindow <= 0 {
		o.RateWindow = time.Second
	}
	switch {
	case o.Customers == 0:
		o.Customers = 50
	case o.Customers < 0:
		o.Customers = 0
	}
	switch {
	case o.Orders == 0:
		o.Orders = 200
	case o.Orders < 0:
		o.Orders = 0
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	if o.FlakyFailures == 0 {
		o.FlakyFailures = 2
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Server is the CRM upstream. It is an [http.Handler] and safe for
// concurrent use.
type Server struct {
	opts    Options
	store   *store
	mux     *http.ServeMux
	control *http.ServeMux
	handler http.Handler

	idem    *idempotencyStore
	limiter *rateLimiter
	faults  *faultSet
	stats   *statsRecorder

	flakyMu sync.Mutex
	flaky   map[string]int

	// closed releases handlers held by "hang" faults when the server closes.
	closeOnce sync.Once
	closed    chan struct{}
}

var _ http.Handler = (*Server)(nil)

// NewServer returns a server with freshly seeded data. It starts no
// goroutines and opens no sockets; serve it with net/http or httptest.
func NewServer(opts Options) *Server {
	opts.setDefaults()
	s := &Server{
		opts:    opts,
		store:   newStore(opts.Customers, opts.Orders, opts.Seed, opts.Now),
		mux:     http.NewServeMux(),
		control: http.NewServeMux(),
		idem:    newIdempotencyStore(),
		faults:  newFaultSet(),
		stats:   newStatsRecorder(),
		flaky:   make(map[string]int),
		closed:  make(chan struct{}),
	}
	if opts.RateLimit > 0 {
		s.limiter = newRateLimiter(opts.RateLimit, opts.RateWindow)
	}
	s.routes()
	s.controlRoutes()
	// Order matters: stats see everything the client saw, faults act before
	// auth so a script can fail any request, and idempotency sits next to
	// the handler so an injected failure never stores a result.
	s.handler = s.countRequests(s.injectFaults(s.authenticate(s.rateLimit(s.idempotent(s.mux)))))
	return s
}

// Close releases requests held by "hang" faults. The server keeps answering
// other requests; Close only exists so tests can shut down promptly.
func (s *Server) Close() {
	s.closeOnce.Do(func() { close(s.closed) })
}

// ServeHTTP implements [http.Handler].
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if isControlPath(r.URL.Path) {
		s.control.ServeHTTP(w, r)
		return
	}
	s.handler.ServeHTTP(w, r)
}

func isControlPath(p string) bool {
	return p == "/_faults" || strings.HasPrefix(p, "/_faults/") || p == "/_stats"
}

func (s *Server) routes() {
	m := s.mux
	m.HandleFunc("GET /openapi.yaml", serveOpenAPI)
	m.HandleFunc("GET "+APIPrefix+"/customers", s.listCustomers)
	m.HandleFunc("POST "+APIPrefix+"/customers", s.createCustomer)
	m.HandleFunc("GET "+APIPrefix+"/customers/{id}", s.getCustomer)
	m.HandleFunc("PATCH "+APIPrefix+"/customers/{id}", s.updateCustomer)
	m.HandleFunc("DELETE "+APIPrefix+"/customers/{id}", s.deleteCustomer)
	m.HandleFunc("GET "+APIPrefix+"/customers/{id}/orders", s.listCustomerOrders)
	m.HandleFunc("GET "+APIPrefix+"/orders/{id}", s.getOrder)
	m.HandleFunc("POST "+APIPrefix+"/orders", s.createOrder)
	m.HandleFunc(APIPrefix+"/echo/{anything...}", s.echo)
	m.HandleFunc("GET "+APIPrefix+"/lookup/{id}", s.lookup)
	m.HandleFunc("GET "+APIPrefix+"/flaky", s.flakyHandler)
	m.HandleFunc("GET "+APIPrefix+"/report.csv", s.reportCSV)
	m.HandleFunc("GET "+APIPrefix+"/export", s.export)
	s.extraRoutes(m) // soap.go: POST /soap and the batch lookup
	m.HandleFunc("/", s.notFound)
}

// notFound answers JSON for unknown routes, and 405 with Allow when the path
// exists under other methods (a catch-all route hides the mux's own 405).
func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPatch, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := s.mux.Handler(probe); pattern != "" && pattern != "/" {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeError(w, http.StatusMethodNotAllowed, codeMethodNotAllowed, r.Method+" is not allowed on "+r.URL.Path)
		return
	}
	writeError(w, http.StatusNotFound, codeNotFound, "no route for "+r.Method+" "+r.URL.Path)
}

func isAPIPath(p string) bool {
	return p == APIPrefix || strings.HasPrefix(p, APIPrefix+"/")
}

func (s *Server) authenticate(next http.Handler) http.Handler {
	if s.opts.APIKey == "" {
		return next
	}
	want := []byte(s.opts.APIKey)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !isAPIPath(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		got := r.Header.Get("X-Api-Key")
		if got == "" {
			if token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
				got = strings.TrimSpace(token)
			}
		}
		if got == "" || subtle.ConstantTimeCompare([]byte(got), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="crm"`)
			msg := "missing API key: send X-Api-Key or Authorization: Bearer"
			if got != "" {
				msg = "invalid API key"
			}
			writeError(w, http.StatusUnauthorized, codeUnauthorized, msg)
			return
		}
		next.ServeHTTP(w, r)
	})
}
