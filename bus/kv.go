package bus

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// KV buckets of the reliability state, declared with the streams and
// created or updated by Topology.Ensure. Their names are an operational
// contract (dashboards and runbooks read them with `nats kv`).
const (
	// BucketRateLimits holds one token bucket per rate-limited upstream
	// (key: upstream name), leased in batches with compare-and-set.
	BucketRateLimits = "toolbus_ratelimit"
	// BucketUpstreamState holds what every replica watches: "pause.<upstream>"
	// (paused until, Unix nanoseconds, written on 429/Retry-After) and
	// "circuit.<upstream>" (circuit-breaker state).
	BucketUpstreamState = "toolbus_upstream_state"
	// BucketResults keeps the results of mutating calls under
	// "<upstream>.<sha256 of the idempotency key>" for Topology.ResultTTL.
	BucketResults = "toolbus_results"
	// BucketCache holds cached answers of read-only tools (cache.go),
	// BucketContinuations the remainders of capped answers, and
	// BucketCatalog the applied catalog (catalogstore.go).
	BucketCache         = "toolbus_cache"
	BucketContinuations = "toolbus_continuations"
	BucketCatalog       = "toolbus_catalog"
	// BucketConsoleSessions holds the operator console's browser sessions
	// under the SHA-256 of their id, so that any replica serving the
	// console knows them.
	BucketConsoleSessions = "toolbus_console_sessions"
)

// ConsoleSessionMaxTTL is the age at which a console session record is
// dropped, whatever session lifetime the console was given.
const ConsoleSessionMaxTTL = 24 * time.Hour

// DefaultResultTTL is how long the result of a mutating call is kept.
const DefaultResultTTL = 24 * time.Hour

// KeyValues lists the KV buckets of the topology.
func (t Topology) KeyValues() []jetstream.KeyValueConfig {
	ttl := t.ResultTTL
	if ttl <= 0 {
		ttl = DefaultResultTTL
	}
	return []jetstream.KeyValueConfig{
		{
			Bucket:      BucketRateLimits,
			Description: "Toolbus shared rate-limit token buckets, one key per upstream",
			History:     1,
			Storage:     t.Storage,
			Replicas:    t.Replicas,
			// An idle upstream's bucket is full again after a window; a
			// day bounds what forgotten upstreams leave behind.
			TTL: 24 * time.Hour,
		},
		{
			Bucket:      BucketUpstreamState,
			Description: "Toolbus upstream pauses (pause.<upstream>) and circuit breakers (circuit.<upstream>)",
			History:     1,
			Storage:     t.Storage,
			Replicas:    t.Replicas,
		},
		{
			Bucket:      BucketResults,
			Description: "Toolbus results of mutating calls by idempotency key",
			History:     1,
			Storage:     t.Storage,
			Replicas:    t.Replicas,
			TTL:         ttl,
		},
		{
			Bucket:      BucketCache,
			Description: "Toolbus cached answers of read-only tools by tool, arguments and caller",
			History:     1,
			Storage:     t.Storage,
			Replicas:    t.Replicas,
			// Entries carry their own expiry (the tool's ttl, at most an
			// hour); the bucket's TTL only clears what nobody reads again.
			TTL: time.Hour,
		},
		{
			Bucket:      BucketContinuations,
			Description: "Toolbus remainders of capped tool answers, read by <tool>_continue",
			History:     1,
			Storage:     t.Storage,
			Replicas:    t.Replicas,
			TTL:         ContinuationTTL,
		},
		{
			Bucket:      BucketConsoleSessions,
			Description: "Toolbus operator console sessions by SHA-256 of the session id",
			History:     1,
			Storage:     t.Storage,
			Replicas:    t.Replicas,
			TTL:         ConsoleSessionMaxTTL,
		},
		{
			Bucket:      BucketCatalog,
			Description: "Toolbus applied catalog (toolbus catalog apply), watched by every service",
			History:     5,
			Storage:     t.Storage,
			Replicas:    t.Replicas,
		},
	}
}

// ensureKeyValues creates or updates every KV bucket.
func (t Topology) ensureKeyValues(ctx context.Context, js jetstream.JetStream) error {
	for _, cfg := range t.KeyValues() {
		if err := Declare(ctx, func(ctx context.Context) error {
			_, err := js.CreateOrUpdateKeyValue(ctx, cfg)
			return err
		}); err != nil {
			return fmt.Errorf("ensure kv bucket %s: %w", cfg.Bucket, err)
		}
	}
	return nil
}
