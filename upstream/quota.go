package upstream

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/toolbus/toolbus/catalog"
)

// ErrQuota matches every *QuotaError.
var ErrQuota = errors.New("upstream quota")

// QuotaError is an attempt Toolbus did not send because the upstream's
// shared rate limit, or a pause it asked for, leaves no room before the
// call's deadline.
type QuotaError struct {
	Upstream string
	// Paused is true for a pause (429/Retry-After seen by any replica),
	// false for the catalog's rate_limit.
	Paused     bool
	Limit      string // "20 requests per 1s", for rate limits
	RetryAfter time.Duration
}

func (e *QuotaError) Error() string {
	if e.Paused {
		return fmt.Sprintf("upstream %s is paused; retry after %s", e.Upstream, e.RetryAfter.Round(time.Millisecond))
	}
	return fmt.Sprintf("quota of upstream %s (%s) is used up; retry after %s", e.Upstream, e.Limit, e.RetryAfter.Round(time.Millisecond))
}

func (e *QuotaError) Is(target error) bool { return target == ErrQuota }

// MaxPause caps a pause asked for by an upstream (429 with Retry-After).
const MaxPause = time.Hour

// guard applies one upstream's pause, circuit breaker and rate limit to
// each attempt, and learns from each answer.
type guard struct {
	up      *catalog.Upstream
	st      *upState
	shared  *SharedState // nil: process-local
	clock   Clock
	obs     Observer
	circuit *breaker    // nil: no circuit_breaker
	rate    *rateBucket // nil: no rate_limit
}

func newGuard(u *catalog.Upstream, st *upState, r *Reliability) *guard {
	g := &guard{up: u, st: st, shared: r.state, clock: r.clock, obs: r.obs}
	if cb := u.CircuitBreaker; cb != nil {
		g.circuit = &breaker{upstream: u.Name, cfg: *cb, st: st, shared: r.state, clock: r.clock, obs: r.obs}
	}
	if rl := u.RateLimit; rl != nil {
		g.rate = newRateBucket(u.Name, *rl, r.state, r.clock)
	}
	return g
}

type guardTransport struct {
	next http.RoundTripper
	g    *guard
}

func (t *guardTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	g := t.g
	ctx := req.Context()
	if err := g.waitPause(ctx); err != nil {
		return nil, err
	}
	probe := false
	if g.circuit != nil {
		var err error
		if probe, err = g.circuit.allow(ctx, g.clock.Now()); err != nil {
			return nil, err
		}
	}
	if g.rate != nil {
		if err := g.rate.wait(ctx, g.obs); err != nil {
			return nil, err
		}
	}
	resp, err := t.next.RoundTrip(req)
	g.learn(ctx, resp, err, probe)
	return resp, err
}

// waitPause holds an attempt while the upstream is paused, or refuses it
// when the pause outlasts the deadline.
func (g *guard) waitPause(ctx context.Context) error {
	until := g.st.pausedUntil.Load()
	if until == 0 {
		return nil
	}
	now := g.clock.Now()
	left := time.Duration(until - now.UnixNano())
	if left <= 0 {
		return nil
	}
	if dl, ok := ctx.Deadline(); ok && !now.Add(left).Before(dl) {
		return &QuotaError{Upstream: g.up.Name, Paused: true, RetryAfter: left}
	}
	if qo, ok := g.obs.(QuotaObserver); ok {
		qo.OnQuotaWait(ctx, g.up.Name, left, "paused")
	}
	return g.clock.Sleep(ctx, left)
}

// learn feeds an attempt's outcome to the circuit and, on 429, on
// Retry-After or on an exhausted RateLimit, pauses the upstream for every
// replica.
func (g *guard) learn(ctx context.Context, resp *http.Response, err error, probe bool) {
	if g.circuit != nil {
		failed := false
		switch {
		case err != nil:
			// The caller giving up says nothing about the upstream.
			failed = ctx.Err() == nil && !errors.Is(err, ErrResponseTooLarge) && !errors.Is(err, ErrRedirectRefused)
		case resp.StatusCode >= 500:
			failed = true
		}
		if err == nil || failed {
			g.circuit.record(ctx, g.clock.Now(), failed, probe)
		}
	}
	if resp == nil {
		return
	}
	// A 429, or any failure with Retry-After (a 503 saying when to come
	// back), pauses every replica for that long.
	tooMany := resp.StatusCode == http.StatusTooManyRequests ||
		(resp.StatusCode >= 400 && resp.Header.Get("Retry-After") != "")
	if !tooMany && !hasRateHeaders(resp.Header) {
		return
	}
	now := g.clock.Now()
	wait, ok := waitAsked(resp.Header, now, tooMany)
	if !ok {
		if !tooMany {
			return
		}
		wait = time.Second // a bare 429: back off a little
	}
	if !tooMany {
		// RateLimit with nothing left on a success: slow down proactively,
		// but never for longer than a retry would wait.
		wait = min(wait, g.up.Retry.MaxRetryAfter)
	}
	wait = min(wait, MaxPause)
	if wait <= 0 {
		return
	}
	g.pause(ctx, now.Add(wait))
}

func hasRateHeaders(h http.Header) bool {
	return h["Ratelimit"] != nil || h["Ratelimit-Remaining"] != nil || h["X-Ratelimit-Remaining"] != nil
}

// pause records a pause here at once and for every replica through KV.
// A pause only ever extends: a shorter one is not written.
func (g *guard) pause(ctx context.Context, until time.Time) {
	u := until.UnixNano()
	for {
		cur := g.st.pausedUntil.Load()
		if u <= cur+int64(10*time.Millisecond) {
			return
		}
		if g.st.pausedUntil.CompareAndSwap(cur, u) {
			break
		}
	}
	if g.shared != nil && g.shared.state != nil {
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		// Best effort: this replica is paused already; others learn it
		// from their next 429 if the bus cannot take the write.
		_ = g.shared.publishPause(pctx, g.up.Name, until)
	}
}

// rateBucket is a token bucket of Requests per Per with capacity Burst,
// held in KV (key = upstream name in bus.BucketRateLimits) and shared by
// every replica. A replica leases a batch of tokens with compare-and-set
// and spends them locally, so most calls never touch the bus; a lease is
// only good for leaseTTL, and unspent tokens go back into the bucket with
// the next lease. The bucket never holds more than Burst, so over any
// period T all replicas together send at most
// Burst + Requests×(T+leaseTTL)/Per requests.
type rateBucket struct {
	upstream string
	rl       catalog.RateLimit
	shared   *SharedState // nil, or not started: this process only
	clock    Clock
	leaseTTL time.Duration
	maxLease int
	limit    string
	perToken float64 // nanoseconds per token

	// acquire admits one lease at a time (a channel so waiting honours
	// the context).
	acquire chan struct{}

	mu      sync.Mutex
	tokens  int
	expires int64 // Unix nanoseconds
	lease   int
	// level and updated are the bucket itself when kv is nil.
	level   float64
	updated int64
}

func newRateBucket(upstream string, rl catalog.RateLimit, shared *SharedState, clock Clock) *rateBucket {
	ttl := min(rl.Per/4, 250*time.Millisecond)
	perToken := float64(rl.Per) / float64(rl.Requests)
	return &rateBucket{
		upstream: upstream,
		rl:       rl,
		shared:   shared,
		clock:    clock,
		leaseTTL: ttl,
		maxLease: max(1, min(rl.Burst, int(float64(ttl)/perToken))),
		limit:    fmt.Sprintf("%d requests per %s", rl.Requests, fmtPer(rl.Per)),
		perToken: perToken,
		acquire:  make(chan struct{}, 1),
		lease:    1,
		level:    float64(rl.Burst),
		updated:  clock.Now().UnixNano(),
	}
}

func fmtPer(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	}
	return d.String()
}

// take spends a leased token if one is left.
func (b *rateBucket) take(now int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.tokens > 0 && now < b.expires {
		b.tokens--
		return true
	}
	return false
}

// wait spends a token, leasing more when none is left, and waits for the
// bucket to refill when it is empty, unless the wait outlasts ctx's deadline.
func (b *rateBucket) wait(ctx context.Context, obs Observer) error {
	if b.take(b.clock.Now().UnixNano()) {
		return nil
	}
	select {
	case b.acquire <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-b.acquire }()
	for {
		now := b.clock.Now()
		if b.take(now.UnixNano()) {
			return nil
		}
		ok, wait, err := b.leaseTokens(ctx, now)
		switch {
		case err != nil:
			return &QuotaError{Upstream: b.upstream, Limit: b.limit + ", shared state unavailable", RetryAfter: time.Second}
		case ok:
			return nil
		}
		if dl, ok := ctx.Deadline(); ok && !now.Add(wait).Before(dl) {
			return &QuotaError{Upstream: b.upstream, Limit: b.limit, RetryAfter: wait}
		}
		if qo, ok := obs.(QuotaObserver); ok {
			qo.OnQuotaWait(ctx, b.upstream, wait, "rate_limit")
		}
		if err := b.clock.Sleep(ctx, wait); err != nil {
			return err
		}
	}
}

// leaseTokens takes a batch of tokens from the bucket for this replica,
// one of them for the caller. When the bucket is empty it reports how long
// until one token is back.
func (b *rateBucket) leaseTokens(ctx context.Context, now time.Time) (bool, time.Duration, error) {
	nowNS := now.UnixNano()
	b.mu.Lock()
	leftover := 0
	switch {
	case b.tokens > 0:
		// The lease expired unspent: give the rest back rather than lose
		// it, and lease less next time.
		leftover, b.tokens = b.tokens, 0
		b.lease = max(1, b.lease/2)
	case nowNS < b.expires:
		// Spent before it expired: lease more, so fewer calls touch KV.
		b.lease = min(b.lease*2, b.maxLease)
	}
	want := b.lease
	b.mu.Unlock()

	for range 20 {
		level, updated, rev, err := b.read(ctx, nowNS)
		if err != nil {
			return false, 0, err
		}
		if elapsed := nowNS - updated; elapsed > 0 {
			level += float64(elapsed) / b.perToken
		}
		level = min(float64(b.rl.Burst), level+float64(leftover))
		take := 0
		if level >= 1 {
			take = min(want, int(math.Floor(level)))
		}
		if take == 0 && leftover == 0 {
			return false, time.Duration((1 - level) * b.perToken), nil
		}
		ok, err := b.write(ctx, level-float64(take), max(nowNS, updated), rev)
		if err != nil {
			return false, 0, err
		}
		if !ok {
			continue // another replica leased first: read again
		}
		leftover = 0
		if take == 0 {
			return false, time.Duration((1 - level) * b.perToken), nil
		}
		b.mu.Lock()
		b.tokens = take - 1
		b.expires = nowNS + int64(b.leaseTTL)
		b.mu.Unlock()
		return true, 0, nil
	}
	return false, time.Millisecond, nil
}

// read returns the bucket's level, when it was computed and its revision.
// kv is the shared bucket, or nil when the state is this process's.
func (b *rateBucket) kv() jetstream.KeyValue {
	if b.shared == nil {
		return nil
	}
	return b.shared.rate
}

func (b *rateBucket) read(ctx context.Context, now int64) (float64, int64, uint64, error) {
	kv := b.kv()
	if kv == nil {
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.level, b.updated, 0, nil
	}
	kctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	e, err := kv.Get(kctx, b.upstream)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return float64(b.rl.Burst), now, 0, nil
	}
	if err != nil {
		return 0, 0, 0, err
	}
	level, updated, ok := decodeBucket(e.Value())
	if !ok {
		return float64(b.rl.Burst), now, e.Revision(), nil
	}
	return level, updated, e.Revision(), nil
}

// write stores the bucket if nobody changed it since revision rev.
func (b *rateBucket) write(ctx context.Context, level float64, updated int64, rev uint64) (bool, error) {
	kv := b.kv()
	if kv == nil {
		b.mu.Lock()
		defer b.mu.Unlock()
		b.level, b.updated = level, updated
		return true, nil
	}
	kctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	val := []byte(strconv.FormatFloat(level, 'f', 3, 64) + " " + strconv.FormatInt(updated, 10))
	var err error
	if rev == 0 {
		_, err = kv.Create(kctx, b.upstream, val)
	} else {
		_, err = kv.Update(kctx, b.upstream, val, rev)
	}
	switch {
	case isConflict(err):
		return false, nil
	case err != nil:
		return false, err
	}
	return true, nil
}

func decodeBucket(v []byte) (level float64, updated int64, ok bool) {
	l, u, found := strings.Cut(string(v), " ")
	if !found {
		return 0, 0, false
	}
	level, err1 := strconv.ParseFloat(l, 64)
	updated, err2 := strconv.ParseInt(u, 10, 64)
	return level, updated, err1 == nil && err2 == nil
}
