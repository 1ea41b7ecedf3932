package catalog

import (
	"fmt"
	"time"

	"gopkg.in/yaml.v3"
)

// Reliability defaults. They are filled in one place (defaultReliability)
// and documented in docs/reliability.md.
const (
	DefaultMaxAttempts    = 3
	MaxMaxAttempts        = 10
	DefaultInitialBackoff = 200 * time.Millisecond
	DefaultMaxBackoff     = 5 * time.Second
	DefaultMaxRetryAfter  = 30 * time.Second
	// MaxRateWindow bounds rate_limit.per: limits per day are the longest
	// upstreams publish.
	MaxRateWindow = 24 * time.Hour
	// MaxCoolDown bounds circuit_breaker.cool_down.
	MaxCoolDown = time.Hour
)

// RetryPolicy says how one call retries failed attempts inside its
// deadline: up to MaxAttempts attempts, waiting a random time between zero
// and InitialBackoff×2^(n-1) (at most MaxBackoff) between them, or what
// the upstream asked for with Retry-After or RateLimit headers when that is
// longer, unless it asked for more than MaxRetryAfter.
type RetryPolicy struct {
	MaxAttempts    int
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	MaxRetryAfter  time.Duration
}

// RateLimit is an upstream's request rate, shared by every replica:
// Requests per Per on average, with bursts of up to Burst requests.
type RateLimit struct {
	Requests int
	Per      time.Duration
	Burst    int
}

// CircuitBreaker stops calling an upstream for CoolDown after Failures
// consecutive failed attempts (5xx, network errors, timeouts), across all
// replicas; then one probe call decides whether it closes again.
type CircuitBreaker struct {
	Failures int
	CoolDown time.Duration
}

// Reliability is the reliability part of an upstream, embedded in
// Upstream so its fields read as u.Retry, u.RateLimit, u.CircuitBreaker.
type Reliability struct {
	// Retry is the upstream's retry policy, defaults filled in.
	Retry RetryPolicy
	// RateLimit is nil when the upstream declares none.
	RateLimit *RateLimit
	// CircuitBreaker is nil when the upstream declares none.
	CircuitBreaker *CircuitBreaker
}

func defaultReliability() Reliability {
	return Reliability{Retry: RetryPolicy{
		MaxAttempts:    DefaultMaxAttempts,
		InitialBackoff: DefaultInitialBackoff,
		MaxBackoff:     DefaultMaxBackoff,
		MaxRetryAfter:  DefaultMaxRetryAfter,
	}}
}

// RetryPolicy is the tool's effective retry policy: its own retry fields
// over the upstream's policy.
func (t *Tool) RetryPolicy() RetryPolicy {
	if t.Retry != nil {
		return *t.Retry
	}
	return t.Upstream.Retry
}

var (
	retryFields   = []string{"max_attempts", "initial_backoff", "max_backoff", "max_retry_after"}
	rateFields    = []string{"requests", "per", "burst"}
	circuitFields = []string{"failures", "cool_down"}
)

// reliabilityField parses one of the upstream fields retry, rate_limit and
// circuit_breaker into u; it reports false for other names.
func (p *parser) reliabilityField(u *Upstream, f member, field string) bool {
	switch f.name {
	case "retry":
		if r, ok := p.retryPolicy(f.val, field, u.Retry); ok {
			u.Retry = r
		}
	case "rate_limit":
		u.RateLimit = p.rateLimit(f.val, field)
	case "circuit_breaker":
		u.CircuitBreaker = p.circuitBreaker(f.val, field)
	default:
		return false
	}
	return true
}

// toolRetry parses a tool's retry override. Fields it omits come from the
// upstream's policy, so upstreams must be parsed first (they are).
func (p *parser) toolRetry(t *Tool, n *yaml.Node, field string) {
	base := defaultReliability().Retry
	if t.Upstream != nil {
		base = t.Upstream.Retry
	}
	if r, ok := p.retryPolicy(n, field, base); ok {
		t.Retry = &r
	}
}

func (p *parser) retryPolicy(n *yaml.Node, field string, base RetryPolicy) (RetryPolicy, bool) {
	ms, ok := p.mapping(n, field, retryFields)
	if !ok {
		return base, false
	}
	before := len(p.problems)
	r := base
	for _, f := range ms {
		ff := field + "." + f.name
		switch f.name {
		case "max_attempts":
			if v, ok := p.integer(f.val, ff); ok {
				if v < 1 || v > MaxMaxAttempts {
					p.errorf(f.val, ff, "must be between 1 (no retries) and %d, got %d", MaxMaxAttempts, v)
				}
				r.MaxAttempts = int(v)
			}
		case "initial_backoff":
			r.InitialBackoff, _ = p.boundedDuration(f.val, ff, time.Millisecond, time.Minute)
		case "max_backoff":
			r.MaxBackoff, _ = p.boundedDuration(f.val, ff, time.Millisecond, MaxTimeout)
		case "max_retry_after":
			r.MaxRetryAfter, _ = p.boundedDuration(f.val, ff, time.Second, MaxTimeout)
		}
	}
	if len(p.problems) == before && r.MaxBackoff < r.InitialBackoff {
		p.errorf(n, field+".max_backoff", "must not be shorter than initial_backoff (%s), got %s", r.InitialBackoff, r.MaxBackoff)
	}
	return r, len(p.problems) == before
}

func (p *parser) rateLimit(n *yaml.Node, field string) *RateLimit {
	ms, ok := p.mapping(n, field, rateFields)
	if !ok {
		return nil
	}
	before := len(p.problems)
	rl := &RateLimit{Per: time.Second}
	for _, f := range ms {
		ff := field + "." + f.name
		switch f.name {
		case "requests":
			rl.Requests = p.positiveInt(f.val, ff, 1e9)
		case "per":
			rl.Per, _ = p.boundedDuration(f.val, ff, time.Millisecond, MaxRateWindow)
		case "burst":
			rl.Burst = p.positiveInt(f.val, ff, 1e9)
		}
	}
	if ms.get("requests") == nil {
		p.errorf(n, field+".requests", "required field is missing")
	}
	if len(p.problems) > before {
		return nil
	}
	if rl.Burst == 0 {
		// A bucket of one window's worth: the upstream's own fixed-window
		// limiters allow as much at a window start.
		rl.Burst = rl.Requests
	}
	return rl
}

func (p *parser) circuitBreaker(n *yaml.Node, field string) *CircuitBreaker {
	ms, ok := p.mapping(n, field, circuitFields)
	if !ok {
		return nil
	}
	before := len(p.problems)
	cb := &CircuitBreaker{Failures: 5, CoolDown: 30 * time.Second}
	for _, f := range ms {
		ff := field + "." + f.name
		switch f.name {
		case "failures":
			cb.Failures = p.positiveInt(f.val, ff, 1000)
		case "cool_down":
			cb.CoolDown, _ = p.boundedDuration(f.val, ff, 100*time.Millisecond, MaxCoolDown)
		}
	}
	if len(p.problems) > before {
		return nil
	}
	return cb
}

// positiveInt reads an integer between 1 and max.
func (p *parser) positiveInt(n *yaml.Node, field string, max int64) int {
	v, ok := p.integer(n, field)
	if !ok {
		return 0
	}
	if v < 1 || v > max {
		p.errorf(n, field, "must be between 1 and %d, got %d", max, v)
		return 0
	}
	return int(v)
}

// boundedDuration reads a duration between lo and hi.
func (p *parser) boundedDuration(n *yaml.Node, field string, lo, hi time.Duration) (time.Duration, bool) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		p.errorf(n, field, "must be a duration such as 500ms or 2s, got %s", kindName(n))
		return 0, false
	}
	d, err := time.ParseDuration(n.Value)
	switch {
	case err != nil:
		p.errorf(n, field, "invalid duration %q: want a value such as 500ms or 2s", n.Value)
	case d < lo || d > hi:
		p.errorf(n, field, "must be between %s and %s, got %s", fmtDuration(lo), fmtDuration(hi), n.Value)
	default:
		return d, true
	}
	return 0, false
}

// fmtDuration prints 1m rather than 1m0s.
func fmtDuration(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return d.String()
}
