package upstream

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/toolbus/toolbus/catalog"
	"github.com/toolbus/toolbus/toolerr"
)

// retryTransport repeats failed attempts of one request inside its
// context's deadline. It retries network errors, 408, 429 and 5xx (but 501
// and 505, which will not change), waiting a full-jitter exponential
// back-off or what the upstream asked for (Retry-After, RateLimit,
// X-RateLimit-*), whichever is longer. It gives up, answering with the last
// attempt, when the policy's attempts are used, when the next attempt could
// not start before the deadline, when the upstream asks for a longer wait
// than max_retry_after, or when repeating the request is not safe: a
// request that may change upstream state is repeated only when it carries
// the upstream's idempotency header, is marked idempotent, or provably
// never reached the upstream (connection refused).
type retryTransport struct {
	next  http.RoundTripper
	up    *catalog.Upstream
	clock Clock
	obs   Observer
}

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	pol, ok := ctx.Value(policyKey{}).(catalog.RetryPolicy)
	if !ok {
		pol = t.up.Retry
	}
	resp, err := t.next.RoundTrip(req)
	if pol.MaxAttempts <= 1 {
		return resp, err
	}
	safe := safeToRepeat(req, t.up)
	replayable := req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
	var bo *backoff.ExponentialBackOff
	for attempt := 1; attempt < pol.MaxAttempts; attempt++ {
		reason, asked, retry := shouldRetry(ctx, resp, err, safe, t.clock.Now())
		if !retry || !replayable {
			return resp, err
		}
		if bo == nil {
			bo = &backoff.ExponentialBackOff{InitialInterval: pol.InitialBackoff, Multiplier: 2, MaxInterval: pol.MaxBackoff}
			bo.Reset()
		}
		// Full jitter: uniform between zero and the exponential ceiling.
		wait := time.Duration(rand.Int64N(int64(bo.NextBackOff()) + 1))
		if asked > 0 {
			if asked > pol.MaxRetryAfter {
				// Waiting less than asked would only earn another refusal;
				// the caller hears how long to stay away.
				return resp, err
			}
			wait = max(wait, asked)
		}
		if dl, ok := ctx.Deadline(); ok && !t.clock.Now().Add(wait).Before(dl) {
			return resp, err
		}
		r, gerr := rewind(req)
		if gerr != nil {
			return resp, err
		}
		discard(resp)
		t.obs.OnRetry(ctx, attempt, wait, reason)
		if serr := t.clock.Sleep(ctx, wait); serr != nil {
			return nil, serr
		}
		resp, err = t.next.RoundTrip(r)
	}
	return resp, err
}

// rewind returns req with a fresh body for another attempt.
func rewind(req *http.Request) (*http.Request, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return req, nil
	}
	body, err := req.GetBody()
	if err != nil {
		return nil, err
	}
	r := new(http.Request)
	*r = *req
	r.Body = body
	return r, nil
}

// discard drains a little of a response that will not be used, so its
// connection can be reused, and closes it.
func discard(resp *http.Response) {
	if resp == nil {
		return
	}
	_, _ = io.CopyN(io.Discard, resp.Body, 4<<10)
	resp.Body.Close()
}

// safeToRepeat reports whether sending req twice cannot do a thing twice.
func safeToRepeat(req *http.Request, u *catalog.Upstream) bool {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return true
	}
	if v, _ := req.Context().Value(idempotentKey{}).(bool); v {
		return true
	}
	return u.IdempotencyHeader != "" && req.Header.Get(u.IdempotencyHeader) != ""
}

// shouldRetry classifies an attempt's outcome. asked is the wait the
// upstream asked for, if any.
func shouldRetry(ctx context.Context, resp *http.Response, err error, safe bool, now time.Time) (reason string, asked time.Duration, retry bool) {
	if ctx.Err() != nil {
		return "", 0, false
	}
	if err != nil {
		switch {
		case neverSent(err):
			return "connection refused", 0, true
		case !retryableError(err):
			return "", 0, false
		}
		return "transport error: " + shortError(err), 0, safe
	}
	switch s := resp.StatusCode; {
	case s == http.StatusRequestTimeout, s == http.StatusTooManyRequests,
		s >= 500 && s != http.StatusNotImplemented && s != http.StatusHTTPVersionNotSupported:
		asked, _ = waitAsked(resp.Header, now, s == http.StatusTooManyRequests)
		return "status " + strconv.Itoa(s), asked, safe
	}
	return "", 0, false
}

// neverSent reports errors that prove the request never reached the
// upstream: nothing was performed, whatever the method.
func neverSent(err error) bool {
	if errors.Is(err, syscall.ECONNREFUSED) {
		return true
	}
	var opErr *net.OpError
	var dnsErr *net.DNSError
	return errors.As(err, &opErr) && opErr.Op == "dial" && !errors.Is(err, ErrLinkLocal) &&
		!(errors.As(err, &dnsErr) && dnsErr.IsNotFound)
}

// retryableError reports transport errors another attempt may not meet.
func retryableError(err error) bool {
	var (
		certErr *tls.CertificateVerificationError
		unknown x509.UnknownAuthorityError
		hostErr x509.HostnameError
		dnsErr  *net.DNSError
	)
	switch {
	// The call's own context has been checked already: a deadline error
	// here is the transport's (response header timeout), worth another try.
	case errors.Is(err, ErrResponseTooLarge), errors.Is(err, ErrRedirectRefused), errors.Is(err, ErrLinkLocal),
		errors.Is(err, ErrCircuitOpen), errors.Is(err, ErrQuota),
		errors.As(err, &certErr), errors.As(err, &unknown), errors.As(err, &hostErr):
		return false
	case errors.As(err, &dnsErr):
		return !dnsErr.IsNotFound
	}
	return true
}

func shortError(err error) string {
	s := innermost(err).Error()
	if len(s) > 80 {
		s = s[:80]
	}
	return s
}

// waitAsked reads how long the upstream asked clients to wait: Retry-After
// (seconds or HTTP-date), else the IETF RateLimit header ("r=0;t=N" in the
// structured-field form, or RateLimit-Remaining/RateLimit-Reset of the
// earlier drafts), else X-RateLimit-Remaining/X-RateLimit-Reset (seconds,
// or a Unix time). The rate-limit headers count only when no request is
// left, unless always is set (a 429 says so already). Values are capped at
// toolerr.MaxRetryAfter.
func waitAsked(h http.Header, now time.Time, always bool) (time.Duration, bool) {
	if d, ok := toolerr.ParseRetryAfter(h.Get("Retry-After"), now); ok {
		return d, true
	}
	if v := h.Get("RateLimit"); v != "" {
		if d, ok := parseRateLimitField(v, always); ok {
			return d, true
		}
	}
	if d, ok := remainingReset(h.Get("RateLimit-Remaining"), h.Get("RateLimit-Reset"), now, always); ok {
		return d, true
	}
	return remainingReset(h.Get("X-RateLimit-Remaining"), h.Get("X-RateLimit-Reset"), now, always)
}

// parseRateLimitField reads `"policy";r=0;t=5, "other";r=10;t=60`: the
// longest t among items with no request left.
func parseRateLimitField(v string, always bool) (time.Duration, bool) {
	var wait time.Duration
	found := false
	for item := range strings.SplitSeq(v, ",") {
		r, t := int64(-1), int64(-1)
		for p := range strings.SplitSeq(item, ";") {
			k, val, ok := strings.Cut(strings.TrimSpace(p), "=")
			if !ok {
				continue
			}
			n, err := strconv.ParseInt(strings.TrimSpace(val), 10, 64)
			if err != nil || n < 0 {
				continue
			}
			switch k {
			case "r":
				r = n
			case "t":
				t = n
			}
		}
		if t >= 0 && (r == 0 || (always && r >= 0)) {
			wait, found = max(wait, capWait(t)), true
		}
	}
	return wait, found
}

func remainingReset(remaining, reset string, now time.Time, always bool) (time.Duration, bool) {
	if reset == "" || (!always && strings.TrimSpace(remaining) != "0") {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(reset), 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	if n > 1_000_000_000 {
		// A Unix time (GitHub, Twitter style) rather than seconds.
		d := time.Unix(n, 0).Sub(now)
		return min(max(d, 0), toolerr.MaxRetryAfter), true
	}
	return capWait(n), true
}

func capWait(secs int64) time.Duration {
	if secs > int64(toolerr.MaxRetryAfter/time.Second) {
		return toolerr.MaxRetryAfter
	}
	return time.Duration(secs) * time.Second
}
