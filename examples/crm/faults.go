package crm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// FaultAction says what a fault rule does to a request it matches.
type FaultAction string

// Fault actions.
const (
	// FaultError answers Status (default 500) with a JSON error body, or
	// Body. With 429 it adds Retry-After (default 1) and RateLimit headers.
	FaultError FaultAction = "error"
	// FaultDelay waits Delay, then serves the request normally.
	FaultDelay FaultAction = "delay"
	// FaultHang holds the request until the client gives up or the server
	// is closed; nothing is ever written.
	FaultHang FaultAction = "hang"
	// FaultReset hijacks the connection and closes it with a TCP reset,
	// without writing a response.
	FaultReset FaultAction = "reset"
	// FaultSlowBody serves the request (or Body) but writes the response
	// body one byte per Delay (default 10ms), flushing each byte. The real
	// handler always runs first.
	FaultSlowBody FaultAction = "slow_body"
	// FaultMalformedJSON answers Status (default 200) with
	// Content-Type: application/json and a truncated JSON body.
	FaultMalformedJSON FaultAction = "malformed_json"
	// FaultLargeBody answers 200 with a valid JSON object of Size bytes
	// (default 10 MiB).
	FaultLargeBody FaultAction = "large_body"
)

const (
	defaultSlowBodyDelay = 10 * time.Millisecond
	defaultLargeBodySize = 10 << 20
	maxLargeBodySize     = 1 << 30
)

// Fault is a rule that makes matching requests misbehave. Rules are tried
// in the order they were added; the first that matches acts. A rule with
// Times is removed once it acted Times times.
type Fault struct {
	// ID is assigned by AddFault.
	ID string `json:"id,omitempty"`
	// Method matches the request method; empty matches any.
	Method string `json:"method,omitempty"`
	// Path matches the URL path exactly, or as a prefix when it ends in
	// "*" ("/api/v1/customers*"); empty matches any path.
	Path string `json:"path,omitempty"`
	// Action is what happens to a matching request.
	Action FaultAction `json:"action"`
	// Times is how many requests the rule acts on; 0 means all of them
	// until it is removed.
	Times int `json:"times,omitempty"`
	// Skip lets this many matching requests through untouched first, e.g.
	// Skip 2 with Times 1 fails only the third request.
	Skip int `json:"skip,omitempty"`
	// After runs the real handler first, so its side effect happens, and
	// then acts instead of sending its response: the "request was done but
	// the answer was lost" case.
	After bool `json:"after,omitempty"`
	// Status is the status code for FaultError and FaultMalformedJSON.
	Status int `json:"status,omitempty"`
	// RetryAfter is sent as the Retry-After header ("2", or an HTTP date).
	RetryAfter string `json:"retry_after,omitempty"`
	// Headers are added to the response of actions that write one.
	Headers map[string]string `json:"headers,omitempty"`
	// Body replaces the response body of FaultError, FaultMalformedJSON and
	// FaultSlowBody.
	Body string `json:"body,omitempty"`
	// Delay is the wait of FaultDelay and the per-byte interval of
	// FaultSlowBody. In JSON it is a Go duration string ("250ms").
	Delay time.Duration `json:"-"`
	// Size is the body size of FaultLargeBody in bytes.
	Size int `json:"size,omitempty"`
	// Hits is how many requests the rule has acted on (read only).
	Hits int `json:"hits"`
}

type faultJSON Fault

// MarshalJSON writes Delay as a duration string.
func (f Fault) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		faultJSON
		Delay string `json:"delay,omitempty"`
	}{faultJSON(f), durationString(f.Delay)})
}

func durationString(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return d.String()
}

// UnmarshalJSON reads Delay as a duration string.
func (f *Fault) UnmarshalJSON(b []byte) error {
	var v struct {
		faultJSON
		Delay string `json:"delay"`
	}
	// Strict, so a misspelt field in a test script fails loudly.
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return err
	}
	*f = Fault(v.faultJSON)
	if v.Delay != "" {
		d, err := time.ParseDuration(v.Delay)
		if err != nil {
			return fmt.Errorf("delay: %w", err)
		}
		f.Delay = d
	}
	return nil
}

// Validate reports whether the rule can be installed.
func (f *Fault) Validate() error {
	var errs []error
	switch f.Action {
	case FaultError, FaultDelay, FaultHang, FaultReset, FaultSlowBody, FaultMalformedJSON, FaultLargeBody:
	case "":
		errs = append(errs, errors.New("action is required"))
	default:
		errs = append(errs, fmt.Errorf("unknown action %q", f.Action))
	}
	if f.Status != 0 && (f.Status < 100 || f.Status > 599) {
		errs = append(errs, fmt.Errorf("status %d is not an HTTP status", f.Status))
	}
	if f.Times < 0 || f.Skip < 0 || f.Delay < 0 || f.Size < 0 {
		errs = append(errs, errors.New("times, skip, delay and size must not be negative"))
	}
	if f.Size > maxLargeBodySize {
		errs = append(errs, fmt.Errorf("size %d exceeds %d", f.Size, maxLargeBodySize))
	}
	if f.Action == FaultDelay && f.Delay == 0 {
		errs = append(errs, errors.New("delay action needs delay"))
	}
	return errors.Join(errs...)
}

func (f *Fault) matches(method, path string) bool {
	if f.Method != "" && !strings.EqualFold(f.Method, method) {
		return false
	}
	if prefix, ok := strings.CutSuffix(f.Path, "*"); ok {
		return strings.HasPrefix(path, prefix)
	}
	return f.Path == "" || f.Path == path
}

type faultSet struct {
	mu     sync.Mutex
	rules  []*faultRule
	nextID int
}

type faultRule struct {
	Fault
	seen int
}

func newFaultSet() *faultSet { return &faultSet{} }

// take finds the rule for a request and counts the request against it.
func (fs *faultSet) take(method, path string) (Fault, bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for i, r := range fs.rules {
		if !r.matches(method, path) {
			continue
		}
		r.seen++
		if r.seen <= r.Skip {
			continue
		}
		r.Hits++
		f := r.Fault
		if r.Times > 0 && r.Hits >= r.Times {
			fs.rules = slices.Delete(fs.rules, i, i+1)
		}
		return f, true
	}
	return Fault{}, false
}

// AddFault installs a rule and returns its id.
func (s *Server) AddFault(f Fault) (string, error) {
	if err := f.Validate(); err != nil {
		return "", fmt.Errorf("invalid fault: %w", err)
	}
	fs := s.faults
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.nextID++
	f.ID = "f" + strconv.Itoa(fs.nextID)
	f.Hits = 0
	fs.rules = append(fs.rules, &faultRule{Fault: f})
	return f.ID, nil
}

// RemoveFault removes a rule and reports whether it was installed.
func (s *Server) RemoveFault(id string) bool {
	fs := s.faults
	fs.mu.Lock()
	defer fs.mu.Unlock()
	i := slices.IndexFunc(fs.rules, func(r *faultRule) bool { return r.ID == id })
	if i < 0 {
		return false
	}
	fs.rules = slices.Delete(fs.rules, i, i+1)
	return true
}

// ClearFaults removes every rule.
func (s *Server) ClearFaults() {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	s.faults.rules = nil
}

// Faults returns the installed rules, in the order they are tried.
func (s *Server) Faults() []Fault {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	out := make([]Fault, 0, len(s.faults.rules))
	for _, r := range s.faults.rules {
		f := r.Fault
		f.Headers = cloneHeaders(f.Headers)
		out = append(out, f)
	}
	return out
}

func cloneHeaders(h map[string]string) map[string]string {
	if h == nil {
		return nil
	}
	c := make(map[string]string, len(h))
	for k, v := range h {
		c[k] = v
	}
	return c
}

func (s *Server) injectFaults(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, ok := s.faults.take(r.Method, r.URL.Path)
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		s.stats.faultInjected()
		if f.Action == FaultDelay && !f.After {
			if !s.sleep(r.Context(), f.Delay) {
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		var real *bufferedResponse
		if f.After || f.Action == FaultSlowBody {
			real = newBufferedResponse()
			next.ServeHTTP(real, r)
		}
		s.applyFault(w, r, f, real)
	})
}

// applyFault answers r as f says; real is the handler's response when it ran.
func (s *Server) applyFault(w http.ResponseWriter, r *http.Request, f Fault, real *bufferedResponse) {
	h := w.Header()
	setFaultHeaders := func() {
		for k, v := range f.Headers {
			h.Set(k, v)
		}
		if f.RetryAfter != "" {
			h.Set("Retry-After", f.RetryAfter)
		}
	}
	switch f.Action {
	case FaultDelay:
		if s.sleep(r.Context(), f.Delay) {
			real.writeTo(w, nil)
		}
	case FaultError:
		status := cmp0(f.Status, http.StatusInternalServerError)
		if status == http.StatusTooManyRequests {
			retry := cmp0(f.RetryAfter, "1")
			secs, err := strconv.Atoi(retry)
			if err != nil {
				secs = 1
			}
			h.Set("Retry-After", retry)
			setRateLimitHeaders(h, max(s.opts.RateLimit, 1), s.opts.RateWindow, 0, time.Duration(secs)*time.Second)
		}
		setFaultHeaders()
		if f.Body != "" {
			h.Set("Content-Type", cmp0(h.Get("Content-Type"), "application/json"))
			w.WriteHeader(status)
			w.Write([]byte(f.Body))
			return
		}
		writeError(w, status, faultErrorCode(status), fmt.Sprintf("injected fault: %d %s", status, http.StatusText(status)))
	case FaultHang:
		select {
		case <-r.Context().Done():
		case <-s.closed:
			panic(http.ErrAbortHandler)
		}
	case FaultReset:
		resetConnection(w)
	case FaultSlowBody:
		body := real.body.Bytes()
		if f.Body != "" {
			body = []byte(f.Body)
		}
		for k, v := range real.header {
			h[k] = v
		}
		setFaultHeaders()
		h.Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(real.statusCode())
		rc := http.NewResponseController(w)
		delay := cmp0(f.Delay, defaultSlowBodyDelay)
		for i := range body {
			if _, err := w.Write(body[i : i+1]); err != nil {
				return
			}
			rc.Flush()
			if i < len(body)-1 && !s.sleep(r.Context(), delay) {
				return
			}
		}
	case FaultMalformedJSON:
		body := `{"data":[{"id":1,"name":"trunc`
		if f.Body != "" {
			body = f.Body
		} else if real != nil && real.body.Len() > 1 {
			body = string(real.body.Bytes()[:real.body.Len()/2])
		}
		setFaultHeaders()
		h.Set("Content-Type", "application/json")
		h.Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(cmp0(f.Status, http.StatusOK))
		w.Write([]byte(body))
	case FaultLargeBody:
		setFaultHeaders()
		writeJSONOfSize(r.Context(), w, cmp0(f.Size, defaultLargeBodySize))
	}
}

func faultErrorCode(status int) string {
	switch {
	case status == http.StatusTooManyRequests:
		return codeRateLimited
	case status == http.StatusServiceUnavailable:
		return codeServiceUnavailable
	case status >= 500:
		return codeInternal
	}
	return "injected_fault"
}

// cmp0 returns v, or def when v is the zero value.
func cmp0[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// resetConnection closes the client connection without a response. On TCP a
// zero linger makes the close send RST, as a crashed or overloaded upstream
// does.
func resetConnection(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		// HTTP/2 or a recorder: aborting is the closest equivalent.
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	conn.Close()
}

// sleep waits d and reports whether it did; it gives up early when the
// client goes away or the server closes.
func (s *Server) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-s.closed:
		return false
	}
}

// writeJSONOfSize writes a valid JSON object of exactly n bytes (n >= 12),
// in chunks so large sizes do not need n bytes of memory.
func writeJSONOfSize(ctx context.Context, w http.ResponseWriter, n int) {
	const head, tail = `{"data":"`, `"}` + "\n"
	fill := max(0, n-len(head)-len(tail))
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(head)+fill+len(tail)))
	w.WriteHeader(http.StatusOK)
	w.Write([]byte(head))
	chunk := []byte(strings.Repeat("x", min(fill, 32<<10)))
	for fill > 0 {
		if ctx.Err() != nil {
			return
		}
		k := min(fill, len(chunk))
		if _, err := w.Write(chunk[:k]); err != nil {
			return
		}
		fill -= k
	}
	w.Write([]byte(tail))
}
