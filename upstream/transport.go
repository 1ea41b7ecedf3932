package upstream

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/toolbus/toolbus/catalog"
)

// Transport tuning. Connections are reused across calls; dial and TLS
// timeouts are short because a healthy upstream connects in milliseconds
// and a call's deadline should be spent waiting for the answer, not a SYN.
const (
	dialTimeout           = 5 * time.Second
	tcpKeepAlive          = 30 * time.Second
	tlsHandshakeTimeout   = 10 * time.Second
	idleConnTimeout       = 90 * time.Second
	expectContinueTimeout = time.Second
	maxResponseHeader     = 1 << 20
	// maxIdlePerHost caps the idle pool so one upstream configured with a
	// huge concurrency cannot hold thousands of idle sockets.
	maxIdlePerHost = 1024
)

// ErrLinkLocal is returned when a connection to a link-local address is
// refused.
var ErrLinkLocal = errors.New("connection to a link-local address refused (cloud metadata services live there)")

func newTransport(u *catalog.Upstream, opts Options) *http.Transport {
	allowLL := opts.AllowLinkLocal || isLinkLocalHost(u.BaseURL.Hostname())
	d := &net.Dialer{Timeout: dialTimeout, KeepAlive: tcpKeepAlive}
	if !allowLL {
		d.Control = refuseLinkLocal
	}
	rht := opts.ResponseHeaderTimeout
	if rht <= 0 {
		rht = u.Timeout
	}
	// Every call in flight may hold a connection; keep that many idle so a
	// burst does not reconnect.
	idle := min(max(u.Concurrency, 2), maxIdlePerHost)
	return &http.Transport{
		Proxy:                  http.ProxyFromEnvironment,
		DialContext:            d.DialContext,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           idle,
		MaxIdleConnsPerHost:    idle,
		IdleConnTimeout:        idleConnTimeout,
		TLSHandshakeTimeout:    tlsHandshakeTimeout,
		ExpectContinueTimeout:  expectContinueTimeout,
		ResponseHeaderTimeout:  rht,
		MaxResponseHeaderBytes: maxResponseHeader,
		TLSClientConfig:        &tls.Config{MinVersion: tls.VersionTLS12},
	}
}

// metadataV6 is the AWS IPv6 instance metadata address, which is not
// link-local but serves the same purpose.
var metadataV6 = netip.MustParseAddr("fd00:ec2::254")

func isLinkLocal(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() || a == metadataV6
}

func isLinkLocalHost(host string) bool {
	a, err := netip.ParseAddr(host)
	return err == nil && isLinkLocal(a)
}

// refuseLinkLocal runs after name resolution, so a host name that resolves
// (or is rebound) to a metadata address is refused too.
func refuseLinkLocal(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return nil
	}
	if isLinkLocalHost(host) {
		return ErrLinkLocal
	}
	return nil
}

// ErrRedirectRefused matches every *RedirectError.
var ErrRedirectRefused = errors.New("redirect refused")

// RedirectError is a redirect Toolbus would not follow. Reason names at
// most the target's host, never its full URL.
type RedirectError struct {
	Status int
	Reason string
}

func (e *RedirectError) Error() string {
	return fmt.Sprintf("redirect refused after %d: %s", e.Status, e.Reason)
}

func (e *RedirectError) Is(target error) bool { return target == ErrRedirectRefused }

func redirectPolicy(base *url.URL) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		status := 0
		if req.Response != nil {
			status = req.Response.StatusCode
		}
		if len(via) > MaxRedirects {
			return &RedirectError{Status: status, Reason: fmt.Sprintf("more than %d redirects", MaxRedirects)}
		}
		if !sameOrigin(req.URL, base) {
			return &RedirectError{Status: status, Reason: "to " + describeOrigin(req.URL) + ", outside the upstream's scheme, host and port"}
		}
		return nil
	}
}

// sameOrigin compares scheme, host and port, filling in default ports.
func sameOrigin(u, base *url.URL) bool {
	return strings.EqualFold(u.Scheme, base.Scheme) &&
		strings.EqualFold(u.Hostname(), base.Hostname()) &&
		portOf(u) == portOf(base)
}

func portOf(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
		return "443"
	case "http":
		return "80"
	}
	return ""
}

// describeOrigin names a redirect target: scheme and host only, since its
// path and query may carry tokens.
func describeOrigin(u *url.URL) string {
	if u.Host == "" {
		return "a URL without a host"
	}
	host := u.Hostname()
	if isLinkLocalHost(host) {
		return "a link-local address"
	}
	return u.Scheme + "://" + u.Host
}

// ErrResponseTooLarge matches every *TooLargeError.
var ErrResponseTooLarge = errors.New("upstream response too large")

// TooLargeError is an answer larger than the upstream's MaxResponseBytes.
type TooLargeError struct {
	// Size is the announced Content-Length, or -1 when the body was cut
	// off while streaming.
	Size  int64
	Limit int64
}

func (e *TooLargeError) Error() string {
	if e.Size >= 0 {
		return fmt.Sprintf("upstream response of %d bytes exceeds the limit of %d bytes", e.Size, e.Limit)
	}
	return fmt.Sprintf("upstream response exceeds the limit of %d bytes", e.Limit)
}

func (e *TooLargeError) Is(target error) bool { return target == ErrResponseTooLarge }

// sizeLimit makes a body larger than limit fail with *TooLargeError: at
// once when Content-Length says so, otherwise after limit+1 bytes.
type sizeLimit struct {
	next  http.RoundTripper
	limit int64
}

func (s *sizeLimit) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := s.next.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	if resp.ContentLength > s.limit {
		// Closing unread drops the connection instead of draining a huge
		// body into the void.
		resp.Body.Close()
		resp.Body = &failedBody{err: &TooLargeError{Size: resp.ContentLength, Limit: s.limit}}
		return resp, nil
	}
	resp.Body = &limitedBody{rc: resp.Body, left: s.limit, limit: s.limit}
	return resp, nil
}

type limitedBody struct {
	rc    io.ReadCloser
	left  int64 // bytes still allowed
	limit int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left < 0 {
		return 0, &TooLargeError{Size: -1, Limit: b.limit}
	}
	// Read up to one byte past the limit: that byte proves the body is
	// too large, without trusting Content-Length.
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		return 0, &TooLargeError{Size: -1, Limit: b.limit}
	}
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }

type failedBody struct{ err error }

func (b *failedBody) Read([]byte) (int, error) { return 0, b.err }
func (b *failedBody) Close() error             { return nil }
