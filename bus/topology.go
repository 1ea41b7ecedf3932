package bus

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Topology is the shape of the streams, declared once in code. The zero value
// is not useful: start from DefaultTopology.
type Topology struct {
	// Replicas of every stream: 1 on a single server, 3 on a production cluster.
	Replicas int
	// Storage of every stream.
	Storage jetstream.StorageType
	// CallMaxAge bounds how long a call stays in the stream, answered or not:
	// a call is worthless after its deadline (at most 10 minutes).
	CallMaxAge time.Duration
	// CallMaxBytes bounds the stream's size; the oldest calls (long answered,
	// at any sane load) are discarded first.
	CallMaxBytes int64
	// WebhookMaxAge is how long verified events are kept for replay.
	WebhookMaxAge time.Duration
	// DeadLetterMaxAge is how long dead letters are kept.
	DeadLetterMaxAge time.Duration
	// DuplicateWindow is the Nats-Msg-Id deduplication window of
	// DEADLETTERS.
	DuplicateWindow time.Duration
	// CallDuplicateWindow is the Nats-Msg-Id (call id) deduplication
	// window of CALLS. Every call gets a fresh id and is published once;
	// the only second publish of the same id is the client's own retry
	// inside Caller.Call, within its PublishTimeout (2 s). JetStream keeps
	// every id of the window in memory (about 130 bytes each), so a long
	// window costs memory in proportion to the call rate: 2 minutes held
	// 360,000 ids at 3,000 calls/s (docs/performance.md "Memory").
	CallDuplicateWindow time.Duration
	// WebhookDuplicateWindow is the dedup window for provider event ids.
	WebhookDuplicateWindow time.Duration
	// ResultTTL is how long results of mutating calls are kept by
	// idempotency key (bucket toolbus_results, kv.go).
	ResultTTL time.Duration
}

// DefaultTopology is the single-server shape used by the all-in-one.
func DefaultTopology() Topology {
	return Topology{
		Replicas:               1,
		Storage:                jetstream.FileStorage,
		CallMaxAge:             15 * time.Minute,
		CallMaxBytes:           1 << 30,
		WebhookMaxAge:          7 * 24 * time.Hour,
		DeadLetterMaxAge:       30 * 24 * time.Hour,
		DuplicateWindow:        2 * time.Minute,
		CallDuplicateWindow:    DefaultCallDuplicateWindow,
		WebhookDuplicateWindow: 24 * time.Hour,
		ResultTTL:              DefaultResultTTL,
	}
}

// DefaultCallDuplicateWindow is CALLS' deduplication window: five times
// the caller's default publish timeout.
const DefaultCallDuplicateWindow = 10 * time.Second

// CallsStream is the stream of tool calls. Each call is consumed once, by
// the one durable consumer of its upstream, as on a work queue; but the
// retention is by limits (age and size), not WorkQueuePolicy. With work-queue
// retention every ack deletes the message, and when that empties the file
// store's last block, the server creates a new block file and deletes the
// old one: two file-system operations per call whenever the queue runs dry,
// which is always at low load. Limits retention leaves acknowledged calls in
// place until they age out, and made the bus round trip about four times
// faster at one client (BenchmarkBusRoundTrip, docs/performance.md).
func (t Topology) CallsStream() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        StreamCalls,
		Description: "Toolbus tool calls (one durable consumer per upstream)",
		Subjects:    []string{callSubjectRoot + ".>"},
		Retention:   jetstream.LimitsPolicy,
		Storage:     t.Storage,
		Replicas:    t.Replicas,
		MaxAge:      t.CallMaxAge,
		MaxBytes:    t.CallMaxBytes,
		Duplicates:  t.callDuplicateWindow(),
		Discard:     jetstream.DiscardOld,
	}
}

func (t Topology) callDuplicateWindow() time.Duration {
	if t.CallDuplicateWindow > 0 {
		return t.CallDuplicateWindow
	}
	return DefaultCallDuplicateWindow
}

// WebhooksStream keeps verified webhook events for days, for replay.
func (t Topology) WebhooksStream() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        StreamWebhooks,
		Description: "Toolbus verified webhook events",
		Subjects:    []string{webhookSubjectRoot + ".>"},
		Retention:   jetstream.LimitsPolicy,
		Storage:     t.Storage,
		Replicas:    t.Replicas,
		MaxAge:      t.WebhookMaxAge,
		Duplicates:  t.WebhookDuplicateWindow,
		Discard:     jetstream.DiscardOld,
	}
}

// DeadLettersStream keeps calls and events that failed permanently.
func (t Topology) DeadLettersStream() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        StreamDeadLetters,
		Description: "Toolbus dead letters",
		Subjects:    []string{dlqSubjectRoot + ".>"},
		Retention:   jetstream.LimitsPolicy,
		Storage:     t.Storage,
		Replicas:    t.Replicas,
		MaxAge:      t.DeadLetterMaxAge,
		Duplicates:  t.DuplicateWindow,
	}
}

// Streams lists every stream of the topology.
func (t Topology) Streams() []jetstream.StreamConfig {
	return []jetstream.StreamConfig{t.CallsStream(), t.WebhooksStream(), t.DeadLettersStream()}
}

// Ensure creates or updates every stream. It is idempotent and safe to run
// from every replica at start-up.
func (t Topology) Ensure(ctx context.Context, js jetstream.JetStream) error {
	for _, cfg := range t.Streams() {
		if err := Declare(ctx, func(ctx context.Context) error {
			_, err := js.CreateOrUpdateStream(ctx, cfg)
			return err
		}); err != nil {
			return fmt.Errorf("ensure stream %s: %w", cfg.Name, err)
		}
	}
	return t.ensureKeyValues(ctx, js)
}

// CallConsumer configures the durable consumer of one upstream.
type CallConsumer struct {
	Kind     string
	Upstream string
	// Concurrency is the cluster-wide number of calls in flight to the
	// upstream: the consumer's MaxAckPending, shared by all replicas.
	Concurrency int
	// AckWait is how long a worker may hold a call without a heartbeat
	// before JetStream redelivers it to another replica.
	AckWait time.Duration
	// MaxDeliver bounds redeliveries (crashes, shutdowns) of one call.
	MaxDeliver int
}

// Config is the JetStream consumer configuration.
func (c CallConsumer) Config() jetstream.ConsumerConfig {
	ackWait := c.AckWait
	if ackWait <= 0 {
		ackWait = 30 * time.Second
	}
	maxDeliver := c.MaxDeliver
	if maxDeliver <= 0 {
		maxDeliver = 5
	}
	concurrency := c.Concurrency
	if concurrency <= 0 {
		concurrency = 16
	}
	return jetstream.ConsumerConfig{
		Durable:       CallConsumerName(c.Kind, c.Upstream),
		Description:   fmt.Sprintf("Toolbus %s calls to upstream %s", c.Kind, c.Upstream),
		FilterSubject: CallFilter(c.Kind, c.Upstream),
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       ackWait,
		MaxDeliver:    maxDeliver,
		MaxAckPending: concurrency,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		// Redelivery after a crash should be quick: the caller is waiting.
		BackOff: nil,
	}
}
