package main

import (
	"flag"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/toolbus/toolbus/bus"
	mcpfront "github.com/toolbus/toolbus/services/mcp-front"
	"github.com/toolbus/toolbus/upstream"
)

// reliabilityConfig is what `toolbus serve` is told about reliable
// execution (docs/reliability.md).
type reliabilityConfig struct {
	ackWait    time.Duration
	maxDeliver int
	resultTTL  time.Duration
	// webhookDedup is the WEBHOOKS stream's deduplication window.
	webhookDedup time.Duration
	// maxCallsPerCaller bounds one caller's calls in flight at mcp-front.
	maxCallsPerCaller int
}

func (c *reliabilityConfig) register(fs *flag.FlagSet) {
	fs.DurationVar(&c.ackWait, "ack-wait", 0, "how long a call held by a worker that stopped heart-beating (a crash) waits before another replica takes it; 0 for the worker's default (15s)")
	fs.IntVar(&c.maxDeliver, "max-deliver", 0, "deliveries of one call before it is dead-lettered; 0 for the worker's default (5)")
	fs.DurationVar(&c.resultTTL, "result-ttl", bus.DefaultResultTTL, "how long results of mutating calls are kept by idempotency key (bucket "+bus.BucketResults+")")
	fs.DurationVar(&c.webhookDedup, "webhook-dedup-window", bus.DefaultTopology().WebhookDuplicateWindow, "how long a provider's event id is remembered so a redelivery is stored once; JetStream holds each id of the window in memory (about 130 B each), size it to your event rate (docs/webhooks.md)")
	fs.IntVar(&c.maxCallsPerCaller, "max-calls-per-caller", mcpfront.DefaultMaxCallsPerCaller, "calls one caller (authenticated subject, else MCP session) may have in progress at mcp-front; more get a rate_limited tool error; -1 for no limit")
}

// reliability is the process's shared reliability state: started before
// the workers (it binds the KV buckets the topology created), it fills
// every upstream client's retry and quota layers.
type reliability struct {
	state *upstream.SharedState
	rel   *upstream.Reliability
}

// newReliability shares state through js and reports retries, quota waits
// and circuit changes to obs (spans and metrics).
func newReliability(js jetstream.JetStream, obs upstream.Observer) *reliability {
	st := upstream.NewSharedState(js)
	return &reliability{state: st, rel: upstream.NewReliability(upstream.ReliabilityOptions{State: st, Observer: obs})}
}

// httpOptions are the upstream client options of every worker.
func (r *reliability) httpOptions() upstream.Options {
	return upstream.Options{Reliability: r.rel}
}
