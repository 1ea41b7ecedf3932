package telemetry

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// MeterName is the instrumentation scope of every Toolbus instrument.
const MeterName = "github.com/toolbus/toolbus"

// LatencyBuckets are the histogram boundaries, in seconds, of every Toolbus
// duration: from a millisecond (a cached call) to two minutes (the longest
// tool timeout worth waiting for).
var LatencyBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120}

// Metric label keys. They are Prometheus label names once exported.
const (
	LabelTool       = "tool"
	LabelUpstream   = "upstream"
	LabelOutcome    = "outcome"
	LabelVia        = "via"
	LabelReason     = "reason"
	LabelSource     = "source"
	LabelProjection = "projection"
	LabelConsumer   = "consumer"
	LabelStream     = "stream"
)

// Instruments are built from a meter provider; every record method is safe
// on a nil receiver (a service started without telemetry records nothing).

// CallMetrics are recorded by mcp-front: one per call answered to a client.
type CallMetrics struct {
	calls    metric.Int64Counter
	duration metric.Float64Histogram
}

// NewCallMetrics creates toolbus.calls and toolbus.call.duration.
func NewCallMetrics(mp metric.MeterProvider) (*CallMetrics, error) {
	m := mp.Meter(MeterName)
	var errs [2]error
	cm := &CallMetrics{}
	cm.calls, errs[0] = m.Int64Counter("toolbus.calls", metric.WithUnit("{call}"),
		metric.WithDescription("Tool calls answered to clients, by tool, upstream, outcome (ok or an error code) and transport."))
	cm.duration, errs[1] = m.Float64Histogram("toolbus.call.duration", metric.WithUnit("s"),
		metric.WithDescription("Total time of a tool call as seen by mcp-front, from receipt to answer."),
		metric.WithExplicitBucketBoundaries(LatencyBuckets...))
	return cm, errors.Join(errs[:]...)
}

// Record counts one answered call.
func (m *CallMetrics) Record(ctx context.Context, tool, upstream, outcome, via string, d time.Duration) {
	if m == nil {
		return
	}
	set := sets.option(labelKey{kind: kindCall, a: tool, b: upstream, c: outcome, d: via})
	m.calls.Add(ctx, 1, set)
	m.duration.Record(ctx, d.Seconds(), set)
}

// WorkerMetrics are recorded by the bus worker for every worker type (REST,
// GraphQL): executions, queue wait, upstream time, retries, redeliveries.
type WorkerMetrics struct {
	executions   metric.Int64Counter
	queueWait    metric.Float64Histogram
	upstreamTime metric.Float64Histogram
	retries      metric.Int64Counter
	redeliveries metric.Int64Counter
}

// NewWorkerMetrics creates the worker instruments.
func NewWorkerMetrics(mp metric.MeterProvider) (*WorkerMetrics, error) {
	m := mp.Meter(MeterName)
	var errs [5]error
	wm := &WorkerMetrics{}
	wm.executions, errs[0] = m.Int64Counter("toolbus.worker.calls", metric.WithUnit("{call}"),
		metric.WithDescription("Calls answered by workers (each delivery that produced an answer), by tool, upstream and outcome."))
	wm.queueWait, errs[1] = m.Float64Histogram("toolbus.call.queue_wait", metric.WithUnit("s"),
		metric.WithDescription("Time from mcp-front accepting a call to a worker receiving it (redeliveries included)."),
		metric.WithExplicitBucketBoundaries(LatencyBuckets...))
	wm.upstreamTime, errs[2] = m.Float64Histogram("toolbus.upstream.duration", metric.WithUnit("s"),
		metric.WithDescription("Time spent calling the upstream for one call, across all attempts and back-off waits."),
		metric.WithExplicitBucketBoundaries(LatencyBuckets...))
	wm.retries, errs[3] = m.Int64Counter("toolbus.upstream.retries", metric.WithUnit("{retry}"),
		metric.WithDescription("Upstream requests sent again after a failed attempt within one call."))
	wm.redeliveries, errs[4] = m.Int64Counter("toolbus.call.redeliveries", metric.WithUnit("{delivery}"),
		metric.WithDescription("Calls received again from JetStream (worker crash, shutdown or hand-back)."))
	return wm, errors.Join(errs[:]...)
}

// Received records one delivery: its queue wait (zero when unknown) and
// whether it is a redelivery.
func (m *WorkerMetrics) Received(ctx context.Context, tool, upstream string, queueWait time.Duration, delivery uint64) {
	if m == nil {
		return
	}
	set := sets.option(labelKey{kind: kindToolUpstream, a: tool, b: upstream})
	if queueWait > 0 {
		m.queueWait.Record(ctx, queueWait.Seconds(), set)
	}
	if delivery > 1 {
		m.redeliveries.Add(ctx, 1, set)
	}
}

// Answered records one answer: its outcome, the upstream time (zero when
// the upstream was not called) and the attempts made.
func (m *WorkerMetrics) Answered(ctx context.Context, tool, upstream, outcome string, upstreamTime time.Duration, attempts int32) {
	if m == nil {
		return
	}
	m.executions.Add(ctx, 1, sets.option(labelKey{kind: kindExecution, a: tool, b: upstream, c: outcome}))
	set := sets.option(labelKey{kind: kindToolUpstream, a: tool, b: upstream})
	if upstreamTime > 0 {
		m.upstreamTime.Record(ctx, upstreamTime.Seconds(), set)
	}
	if attempts > 1 {
		m.retries.Add(ctx, int64(attempts-1), set)
	}
}

// CircuitState is the value of the toolbus.circuit.state gauge.
type CircuitState int64

// Circuit states.
const (
	CircuitClosed   CircuitState = 0
	CircuitHalfOpen CircuitState = 1
	CircuitOpen     CircuitState = 2
)

// ReliabilityMetrics are for the upstream client's reliability layers
// (quota and circuit breaker): create them once per process and record from
// the layers' observer hooks.
type ReliabilityMetrics struct {
	quotaWaits      metric.Int64Counter
	quotaWaitTime   metric.Float64Histogram
	quotaRejections metric.Int64Counter
	circuit         metric.Int64Gauge
}

// NewReliabilityMetrics creates the quota and circuit instruments.
func NewReliabilityMetrics(mp metric.MeterProvider) (*ReliabilityMetrics, error) {
	m := mp.Meter(MeterName)
	var errs [4]error
	rm := &ReliabilityMetrics{}
	rm.quotaWaits, errs[0] = m.Int64Counter("toolbus.quota.waits", metric.WithUnit("{wait}"),
		metric.WithDescription("Upstream requests that waited for quota (rate or concurrency) before being sent."))
	rm.quotaWaitTime, errs[1] = m.Float64Histogram("toolbus.quota.wait.duration", metric.WithUnit("s"),
		metric.WithDescription("How long requests waited for upstream quota."),
		metric.WithExplicitBucketBoundaries(LatencyBuckets...))
	rm.quotaRejections, errs[2] = m.Int64Counter("toolbus.quota.rejections", metric.WithUnit("{request}"),
		metric.WithDescription("Upstream requests refused locally because the quota would not free up within the call's deadline, by reason."))
	rm.circuit, errs[3] = m.Int64Gauge("toolbus.circuit.state", metric.WithUnit("{state}"),
		metric.WithDescription("Circuit breaker state per upstream: 0 closed, 1 half-open, 2 open."))
	return rm, errors.Join(errs[:]...)
}

// QuotaWaited records a request that waited d for quota.
func (m *ReliabilityMetrics) QuotaWaited(ctx context.Context, upstream string, d time.Duration) {
	if m == nil {
		return
	}
	set := metric.WithAttributeSet(attribute.NewSet(attribute.String(LabelUpstream, upstream)))
	m.quotaWaits.Add(ctx, 1, set)
	m.quotaWaitTime.Record(ctx, d.Seconds(), set)
}

// QuotaRejected records a request refused for quota; reason is a short
// stable word such as "rate", "concurrency" or "deadline".
func (m *ReliabilityMetrics) QuotaRejected(ctx context.Context, upstream, reason string) {
	if m == nil {
		return
	}
	m.quotaRejections.Add(ctx, 1, metric.WithAttributeSet(attribute.NewSet(
		attribute.String(LabelUpstream, upstream), attribute.String(LabelReason, reason))))
}

// Circuit records the circuit breaker state of upstream.
func (m *ReliabilityMetrics) Circuit(ctx context.Context, upstream string, s CircuitState) {
	if m == nil {
		return
	}
	m.circuit.Record(ctx, int64(s), metric.WithAttributeSet(attribute.NewSet(attribute.String(LabelUpstream, upstream))))
}

// WebhookMetrics are for webhook-ingest and state-updater.
type WebhookMetrics struct {
	webhooks      metric.Int64Counter
	dedupHits     metric.Int64Counter
	projectionLag metric.Float64Histogram
	projected     metric.Int64Counter
}

// NewWebhookMetrics creates the webhook instruments.
func NewWebhookMetrics(mp metric.MeterProvider) (*WebhookMetrics, error) {
	m := mp.Meter(MeterName)
	var errs [4]error
	wm := &WebhookMetrics{}
	wm.webhooks, errs[0] = m.Int64Counter("toolbus.webhooks", metric.WithUnit("{event}"),
		metric.WithDescription("Webhook deliveries received, by source and outcome (accepted, duplicate, bad_signature, too_large, unavailable...)."))
	wm.dedupHits, errs[1] = m.Int64Counter("toolbus.webhook.dedup_hits", metric.WithUnit("{event}"),
		metric.WithDescription("Webhook deliveries recognised as duplicates of an event already stored or applied."))
	wm.projectionLag, errs[2] = m.Float64Histogram("toolbus.projection.lag", metric.WithUnit("s"),
		metric.WithDescription("Time from a webhook event being stored to its projection being applied."),
		metric.WithExplicitBucketBoundaries(LatencyBuckets...))
	wm.projected, errs[3] = m.Int64Counter("toolbus.projection.events", metric.WithUnit("{event}"),
		metric.WithDescription("Webhook events handled by the state-updater, by projection, source and outcome (applied, deleted, older, duplicate, ignored, poison, retry)."))
	return wm, errors.Join(errs[:]...)
}

// Projected counts one event handled for projection with its outcome.
func (m *WebhookMetrics) Projected(ctx context.Context, projection, source, outcome string) {
	if m == nil {
		return
	}
	m.projected.Add(ctx, 1, sets.option(labelKey{kind: kindProjected, a: projection, b: source, c: outcome}))
}

// Received counts one webhook delivery with its outcome.
func (m *WebhookMetrics) Received(ctx context.Context, source, outcome string) {
	if m == nil {
		return
	}
	m.webhooks.Add(ctx, 1, sets.option(labelKey{kind: kindWebhook, a: source, b: outcome}))
}

// DedupHit counts one duplicate delivery of source.
func (m *WebhookMetrics) DedupHit(ctx context.Context, source string) {
	if m == nil {
		return
	}
	m.dedupHits.Add(ctx, 1, metric.WithAttributeSet(attribute.NewSet(attribute.String(LabelSource, source))))
}

// Applied records the lag of one event applied to projection.
func (m *WebhookMetrics) Applied(ctx context.Context, projection, source string, lag time.Duration) {
	if m == nil {
		return
	}
	m.projectionLag.Record(ctx, lag.Seconds(), sets.option(labelKey{kind: kindApplied, a: projection, b: source}))
}
