package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/toolbus/toolbus/catalog"
)

// Version is the Toolbus version sent in User-Agent; release builds set it
// with -ldflags "-X github.com/toolbus/toolbus/upstream.Version=v1.2.3".
var Version = "dev"

// UserAgent is the User-Agent Toolbus sends upstream unless the catalog
// sets one.
func UserAgent() string { return "toolbus/" + Version }

// Middleware wraps a round tripper with one concern (retry, quota, auth...).
// A Middleware must honour the request's context and must not modify the
// request it is given (clone it first, as http.RoundTripper requires).
type Middleware func(next http.RoundTripper) http.RoundTripper

// Layers are the optional slots of the round-tripper chain. Each slot has a
// fixed place in the chain (see the package documentation); nil slots are
// skipped. They are filled by the work that follows this package's first
// version: tracing, retry with back-off, shared quotas, upstream auth.
type Layers struct {
	Tracing Middleware
	Retry   Middleware
	Quota   Middleware
	Auth    Middleware
}

// Options configure a Client. The zero value is ready for production.
type Options struct {
	Layers Layers
	// Transport replaces the tuned base transport (tests and benchmarks
	// inject faults here). The other layers still apply.
	Transport http.RoundTripper
	// ResponseHeaderTimeout bounds waiting for the status line after the
	// request is written; default: the upstream's timeout. The call's
	// context deadline applies in any case.
	ResponseHeaderTimeout time.Duration
	// AllowLinkLocal lets the dialer connect to link-local addresses (such
	// as 169.254.169.254, the cloud metadata service). It is off unless
	// the upstream's base URL is itself a link-local address.
	AllowLinkLocal bool
	// Reliability, when set, fills the Retry and Quota slots left nil
	// with the upstream's catalog retry policy, shared rate limit, pauses
	// and circuit breaker (reliability.go).
	Reliability *Reliability
}

// MaxRedirects is how many redirects one request may follow.
const MaxRedirects = 5

// Client calls one upstream. It is safe for concurrent use and meant to be
// shared by every call to that upstream, so connections are reused.
type Client struct {
	up    *catalog.Upstream
	limit int64
	hc    *http.Client
	// base is the tuned transport, nil when Options.Transport replaced it.
	base *http.Transport
}

// New returns the client for upstream u. It makes no network calls.
func New(u *catalog.Upstream, opts Options) (*Client, error) {
	if u == nil || u.BaseURL == nil {
		return nil, errors.New("upstream: no base URL")
	}
	if s := u.BaseURL.Scheme; (s != "http" && s != "https") || u.BaseURL.Host == "" {
		return nil, fmt.Errorf("upstream %s: base URL must be an absolute http or https URL", u.Name)
	}
	// A catalog loaded without this upstream's secrets (catalog.WithSecrets)
	// has no value to send: refuse the upstream rather than send none.
	if err := u.SecretsErr(); err != nil {
		return nil, err
	}
	limit := u.MaxResponseBytes
	if limit <= 0 {
		limit = catalog.DefaultMaxResponseBytes
	}
	c := &Client{up: u, limit: limit}

	rt := opts.Transport
	if rt == nil {
		c.base = newTransport(u, opts)
		rt = c.base
	}
	rt = &sizeLimit{next: rt, limit: limit}
	if len(u.Headers) > 0 {
		rt = &catalogHeaders{next: rt, headers: u.Headers}
	}
	auth := opts.Layers.Auth
	if auth == nil {
		// The catalog's auth for this upstream (auth.go); every worker
		// gets it through this one constructor.
		var err error
		if auth, err = NewAuth(u, AuthOptions{}); err != nil {
			return nil, err
		}
	}
	if auth != nil {
		rt = auth(rt)
	}
	quota, retry := opts.Layers.Quota, opts.Layers.Retry
	if rel := opts.Reliability; rel != nil && quota == nil {
		quota = rel.quotaLayer(u)
	}
	if rel := opts.Reliability; rel != nil && retry == nil {
		retry = rel.retryLayer(u)
	}
	if quota != nil {
		rt = quota(rt)
	}
	rt = &attemptCounter{next: rt}
	if retry != nil {
		rt = retry(rt)
	}
	if opts.Layers.Tracing != nil {
		rt = opts.Layers.Tracing(rt)
	}
	c.hc = &http.Client{
		Transport:     rt,
		CheckRedirect: redirectPolicy(u.BaseURL),
		// No Timeout: every call carries its own deadline in its context.
	}
	return c, nil
}

// Upstream is the upstream this client calls.
func (c *Client) Upstream() *catalog.Upstream { return c.up }

// MaxResponseBytes is the response size limit in force.
func (c *Client) MaxResponseBytes() int64 { return c.limit }

// CloseIdleConnections closes pooled connections; call it at shutdown.
func (c *Client) CloseIdleConnections() { c.hc.CloseIdleConnections() }

// Response is an upstream answer read in full.
type Response struct {
	Status int
	Header http.Header
	// Body is the whole body, at most MaxResponseBytes long.
	Body []byte
	// Elapsed runs from sending the request to reading the last body byte,
	// across all attempts and redirects.
	Elapsed time.Duration
	// Attempts counts the requests sent for this call, not counting
	// redirects (1 until a retry layer is installed).
	Attempts int
}

// Do sends req, whose URL must be on the upstream's origin, and reads the
// whole answer. Any status is a Response; an error means there is no
// usable answer, and [Classify] turns it into a tool error. Errors never
// contain the request's query string, and an answer with status 400 or
// more never quotes a credential the auth layer sent (it is replaced by
// "[redacted]" in the body and header values).
func (c *Client) Do(req *http.Request) (*Response, error) {
	if !sameOrigin(req.URL, c.up.BaseURL) {
		// The worker builds URLs from the base URL only; this is the last
		// line of defence if that ever breaks.
		return nil, &Error{Op: "send", URL: redactURL(req.URL), Err: errors.New("request URL is not on the upstream's scheme, host and port")}
	}
	var attempts atomic.Int32
	sent := &sentCredentials{}
	ctx := context.WithValue(req.Context(), attemptsKey{}, &attempts)
	req = req.WithContext(context.WithValue(ctx, sentKey{}, sent))
	start := time.Now()
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, c.wrapAttempts(req, "send", err, &attempts)
	}
	defer resp.Body.Close()
	body, err := readBody(resp)
	if err != nil {
		return nil, c.wrapAttempts(req, "read", err, &attempts)
	}
	if resp.StatusCode >= 400 {
		// Refusals often quote the credential; error answers become tool
		// errors, logs and dead letters.
		body = sent.redact(body, resp.Header)
	}
	return &Response{
		Status:   resp.StatusCode,
		Header:   resp.Header,
		Body:     body,
		Elapsed:  time.Since(start),
		Attempts: max(int(attempts.Load()), 1),
	}, nil
}

func readBody(resp *http.Response) ([]byte, error) {
	if cl := resp.ContentLength; cl >= 0 {
		// The size layer has refused a Content-Length over the limit, and
		// the transport stops at Content-Length: one exact allocation.
		buf := make([]byte, cl)
		_, err := io.ReadFull(resp.Body, buf)
		return buf, err
	}
	return io.ReadAll(resp.Body)
}

// wrap replaces net/http's *url.Error, whose text holds the full URL, with
// an *Error that shows the URL without its query.
func (c *Client) wrap(req *http.Request, op string, err error) error {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	return &Error{Op: op, URL: redactURL(req.URL), Err: err, query: req.URL.RawQuery}
}

func (c *Client) wrapAttempts(req *http.Request, op string, err error, n *atomic.Int32) error {
	e := c.wrap(req, op, err).(*Error)
	e.Attempts = int(n.Load())
	return e
}

// Error is a failed upstream request. Its text names the URL without the
// query string (API keys travel there) and is safe to log.
type Error struct {
	Op  string // "send" or "read"
	URL string // scheme://host/path?[redacted]
	Err error
	// Attempts counts the requests sent for the call, as in Response.
	Attempts int
	// query is removed from Err's text in case an inner error quoted it.
	query string
}

func (e *Error) Error() string {
	msg := e.Err.Error()
	if len(e.query) >= 4 {
		msg = strings.ReplaceAll(msg, e.query, "[redacted]")
	}
	return e.Op + " " + e.URL + ": " + msg
}

func (e *Error) Unwrap() error { return e.Err }

// redactURL renders u without user info, query or fragment.
func redactURL(u *url.URL) string {
	r := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath}
	s := r.String()
	if u.RawQuery != "" {
		s += "?[redacted]"
	}
	return s
}

type attemptsKey struct{}

// attemptCounter counts the requests of one call that go past the retry
// layer. Redirect hops carry the response that caused them and are not
// counted.
type attemptCounter struct{ next http.RoundTripper }

func (a *attemptCounter) RoundTrip(req *http.Request) (*http.Response, error) {
	attempt := 1
	if n, ok := req.Context().Value(attemptsKey{}).(*atomic.Int32); ok {
		if req.Response == nil {
			attempt = int(n.Add(1))
		} else {
			attempt = int(n.Load())
		}
	}
	// One client span per attempt when the tracing layer is installed.
	return traceAttempt(req, attempt, a.next)
}

// catalogHeaders sets the upstream's catalog headers on every request.
type catalogHeaders struct {
	next    http.RoundTripper
	headers []catalog.Header
}

func (h *catalogHeaders) RoundTrip(req *http.Request) (*http.Response, error) {
	// A shallow copy with a fresh header map: RoundTrip must not modify
	// the caller's request, and a full Clone would copy the URL and more.
	r := new(http.Request)
	*r = *req
	r.Header = make(http.Header, len(req.Header)+len(h.headers))
	for k, v := range req.Header {
		r.Header[k] = v
	}
	for _, hd := range h.headers {
		r.Header.Set(hd.Name, hd.Value.Reveal())
	}
	return h.next.RoundTrip(r)
}
