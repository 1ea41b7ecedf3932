package upstream

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/toolbus/toolbus/catalog"
	"github.com/toolbus/toolbus/toolerr"
)

// Observer hears about the reliability machinery's decisions. Tracing and
// metrics implement it (span events, counters); it must return quickly.
// Implementations may also implement QuotaObserver and CircuitObserver.
type Observer interface {
	// OnRetry is called before waiting wait to send attempt attempt+1;
	// reason says why ("status 503", "connection reset", ...).
	OnRetry(ctx context.Context, attempt int, wait time.Duration, reason string)
}

// QuotaObserver hears about waits for the shared rate limit and pauses.
type QuotaObserver interface {
	// OnQuotaWait is called before an attempt waits for upstream's quota;
	// reason is "rate_limit" or "paused".
	OnQuotaWait(ctx context.Context, upstream string, wait time.Duration, reason string)
}

// CircuitObserver hears about circuit state changes made by this replica.
type CircuitObserver interface {
	OnCircuitChange(ctx context.Context, upstream, from, to string)
}

// Clock is the time source of retries and quotas; tests replace it to
// take long waits without sleeping.
type Clock interface {
	Now() time.Time
	// Sleep waits d, or returns ctx's error when ctx ends first.
	Sleep(ctx context.Context, d time.Duration) error
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

type nopObserver struct{}

func (nopObserver) OnRetry(context.Context, int, time.Duration, string) {}

// ReliabilityOptions configure a Reliability.
type ReliabilityOptions struct {
	// State shares rate limits, pauses and circuits with every replica
	// through NATS KV; nil keeps them in this process.
	State *SharedState
	// Observer hears retries, quota waits and circuit changes (optional).
	Observer Observer
	// Clock replaces the real clock (tests).
	Clock Clock
}

// Reliability fills the Retry and Quota slots of every client built with
// it (see Options.Reliability): retries with back-off inside the call's
// deadline, the upstream's shared rate limit and pause, and its circuit
// breaker, all configured by the upstream's catalog entry. One Reliability
// serves every upstream of a process.
type Reliability struct {
	state *SharedState
	obs   Observer
	clock Clock

	mu     sync.Mutex
	guards map[string]*guard
	local  map[string]*upState
}

// NewReliability returns the reliability layers for one process.
func NewReliability(o ReliabilityOptions) *Reliability {
	r := &Reliability{state: o.State, obs: o.Observer, clock: o.Clock, guards: map[string]*guard{}, local: map[string]*upState{}}
	if r.obs == nil {
		r.obs = nopObserver{}
	}
	if r.clock == nil {
		r.clock = realClock{}
	}
	return r
}

// guardFor returns the quota and circuit guard of u, shared by every client
// of u in this process so its local token lease and failure count are one.
func (r *Reliability) guardFor(u *catalog.Upstream) *guard {
	r.mu.Lock()
	defer r.mu.Unlock()
	if g := r.guards[u.Name]; g != nil && g.up == u {
		return g
	}
	var st *upState
	if r.state != nil {
		st = r.state.upstream(u.Name)
	} else {
		if st = r.local[u.Name]; st == nil {
			st = newUpState()
			r.local[u.Name] = st
		}
	}
	g := newGuard(u, st, r)
	r.guards[u.Name] = g
	return g
}

// retryLayer and quotaLayer are installed by New.
func (r *Reliability) retryLayer(u *catalog.Upstream) Middleware {
	return func(next http.RoundTripper) http.RoundTripper {
		return &retryTransport{next: next, up: u, clock: r.clock, obs: r.obs}
	}
}

func (r *Reliability) quotaLayer(u *catalog.Upstream) Middleware {
	g := r.guardFor(u)
	return func(next http.RoundTripper) http.RoundTripper {
		return &guardTransport{next: next, g: g}
	}
}

type policyKey struct{}

type idempotentKey struct{}

// WithRetryPolicy makes requests sent with ctx use p instead of the
// upstream's policy: the worker passes the tool's effective policy.
func WithRetryPolicy(ctx context.Context, p catalog.RetryPolicy) context.Context {
	return context.WithValue(ctx, policyKey{}, p)
}

// MarkIdempotent declares that a request sent with ctx may be repeated
// without an idempotency key although its method is POST (a GraphQL query,
// for example).
func MarkIdempotent(ctx context.Context) context.Context {
	return context.WithValue(ctx, idempotentKey{}, true)
}

// classifyReliability turns the errors of the quota and circuit layers
// into tool errors; nil for any other error.
func classifyReliability(tool, upstream string, err error) *toolerr.ToolError {
	var qe *QuotaError
	var ce *CircuitOpenError
	switch {
	case errors.As(err, &qe) && qe.Paused:
		return toolerr.UpstreamPaused(tool, upstream, qe.RetryAfter)
	case errors.As(err, &qe):
		return toolerr.QuotaExhausted(tool, upstream, qe.Limit, qe.RetryAfter)
	case errors.As(err, &ce):
		return toolerr.CircuitOpen(tool, upstream, ce.Failures, ce.RetryAfter)
	}
	return nil
}

// Attempts returns how many requests a failed call sent (0 when none
// was, for example when a quota refused it first).
func Attempts(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Attempts
	}
	return 0
}
