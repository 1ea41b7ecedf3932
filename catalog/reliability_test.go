package catalog

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestReliabilityFields(t *testing.T) {
	const src = `version: 1
upstreams:
  crm:
    base_url: http://h
    retry: {max_attempts: 5, initial_backoff: 50ms, max_backoff: 2s, max_retry_after: 1m}
    rate_limit: {requests: 100, per: 1m, burst: 20}
    circuit_breaker: {failures: 3, cool_down: 10s}
  plain: {base_url: http://p, rate_limit: {requests: 5}, circuit_breaker: {}}
tools:
  - name: t
    description: d
    upstream: crm
    method: POST
    path: /x
    retry: {max_attempts: 1}
  - name: u
    description: d
    upstream: plain
    method: GET
    path: /y
`
	cat, err := Parse("c.yaml", []byte(src), testOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		give any
		want any
	}{
		{"upstream retry", cat.Upstreams["crm"].Retry, RetryPolicy{MaxAttempts: 5, InitialBackoff: 50 * time.Millisecond, MaxBackoff: 2 * time.Second, MaxRetryAfter: time.Minute}},
		{"upstream rate limit", cat.Upstreams["crm"].RateLimit, &RateLimit{Requests: 100, Per: time.Minute, Burst: 20}},
		{"upstream circuit breaker", cat.Upstreams["crm"].CircuitBreaker, &CircuitBreaker{Failures: 3, CoolDown: 10 * time.Second}},
		{"default retry", cat.Upstreams["plain"].Retry, RetryPolicy{MaxAttempts: DefaultMaxAttempts, InitialBackoff: DefaultInitialBackoff, MaxBackoff: DefaultMaxBackoff, MaxRetryAfter: DefaultMaxRetryAfter}},
		{"rate limit defaults: per 1s, burst one window", cat.Upstreams["plain"].RateLimit, &RateLimit{Requests: 5, Per: time.Second, Burst: 5}},
		{"circuit breaker defaults", cat.Upstreams["plain"].CircuitBreaker, &CircuitBreaker{Failures: 5, CoolDown: 30 * time.Second}},
		{"tool override keeps the upstream's other fields", cat.toolsByName["t"].RetryPolicy(), RetryPolicy{MaxAttempts: 1, InitialBackoff: 50 * time.Millisecond, MaxBackoff: 2 * time.Second, MaxRetryAfter: time.Minute}},
		{"tool without override", cat.toolsByName["u"].RetryPolicy(), cat.Upstreams["plain"].Retry},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, tt.give); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	if cat.Upstreams["crm"].RateLimit == nil || cat.Upstreams["plain"].CircuitBreaker == nil {
		t.Fatal("declared limits missing")
	}
}

// relHead declares upstream crm in block style; cases add fields at line 5.
const relHead = "version: 1\nupstreams:\n  crm:\n    base_url: http://h\n"

func TestReliabilityRules(t *testing.T) {
	tests := []struct {
		name string
		give string
		want []string
	}{
		{"retry unknown field", relHead + "    retry: {attempts: 3}\n", []string{
			`c.yaml:5:13: upstreams.crm.retry.attempts: unknown field (known fields: max_attempts, initial_backoff, max_backoff, max_retry_after)`,
		}},
		{"max_attempts range", relHead + "    retry: {max_attempts: 0}\n", []string{
			`c.yaml:5:27: upstreams.crm.retry.max_attempts: must be between 1 (no retries) and 10, got 0`,
		}},
		{"backoff not a duration", relHead + "    retry: {initial_backoff: 5}\n", []string{
			`c.yaml:5:30: upstreams.crm.retry.initial_backoff: must be a duration such as 500ms or 2s, got an integer`,
		}},
		{"max below initial", relHead + "    retry: {initial_backoff: 2s, max_backoff: 1s}\n", []string{
			`c.yaml:5:12: upstreams.crm.retry.max_backoff: must not be shorter than initial_backoff (2s), got 1s`,
		}},
		{"max_retry_after too long", relHead + "    retry: {max_retry_after: 1h}\n", []string{
			`c.yaml:5:30: upstreams.crm.retry.max_retry_after: must be between 1s and 10m, got 1h`,
		}},
		{"rate limit requires requests", relHead + "    rate_limit: {per: 1s}\n", []string{
			`c.yaml:5:17: upstreams.crm.rate_limit.requests: required field is missing`,
		}},
		{"rate limit requests zero", relHead + "    rate_limit: {requests: 0}\n", []string{
			`c.yaml:5:28: upstreams.crm.rate_limit.requests: must be between 1 and 1000000000, got 0`,
		}},
		{"rate limit bad per", relHead + "    rate_limit: {requests: 1, per: 2d}\n", []string{
			`c.yaml:5:36: upstreams.crm.rate_limit.per: invalid duration "2d": want a value such as 500ms or 2s`,
		}},
		{"rate limit not a mapping", relHead + "    rate_limit: 10\n", []string{
			`c.yaml:5:17: upstreams.crm.rate_limit: must be a mapping, got an integer`,
		}},
		{"circuit breaker cool_down", relHead + "    circuit_breaker: {failures: 2, cool_down: 2h}\n", []string{
			`c.yaml:5:47: upstreams.crm.circuit_breaker.cool_down: must be between 100ms and 1h, got 2h`,
		}},
		{"circuit breaker failures", relHead + "    circuit_breaker: {failures: -1}\n", []string{
			`c.yaml:5:33: upstreams.crm.circuit_breaker.failures: must be between 1 and 1000, got -1`,
		}},
		{"tool retry", tool + "    retry: {max_attempts: 11}\n", []string{
			`c.yaml:10:27: tools[0] (t).retry.max_attempts: must be between 1 (no retries) and 10, got 11`,
		}},
		{"tool retry checked against the upstream's backoff", tool + "    retry: {max_backoff: 100ms}\n", []string{
			`c.yaml:10:12: tools[0] (t).retry.max_backoff: must not be shorter than initial_backoff (200ms), got 100ms`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := problems(t, tt.give)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("problems (-want +got):\n%s\ngot:\n%#v", diff, got)
			}
		})
	}
}
