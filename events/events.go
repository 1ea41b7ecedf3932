// Package events provides Toolbus's operational event feed: one small JSON
// summary per finished tool call (published by mcp-front) and per webhook
// delivery (published by webhook-ingest), on core NATS subjects under
// toolbus.events. The operator console subscribes to it to show live
// traffic and compute rates, error rates and latency percentiles.
//
// The feed is best effort by design: it is published fire-and-forget (no
// JetStream, no acknowledgement, no retry), so it costs a call a few
// microseconds and can never slow down or fail one. It must not carry
// secrets, tokens, arguments or bodies: a summary names what happened, the
// bus streams keep the payloads.
package events

import (
	"time"

	"github.com/nats-io/nats.go"
)

// Subjects of the feed. A subscriber takes SubjectAll.
const (
	SubjectRoot    = "toolbus.events"
	SubjectAll     = SubjectRoot + ".>"
	SubjectCall    = SubjectRoot + ".call"
	SubjectWebhook = SubjectRoot + ".webhook"
)

// MaxMessageLen bounds the error message carried by a Call summary.
const MaxMessageLen = 300

// Call summarises one tool call answered by mcp-front.
type Call struct {
	Time     time.Time `json:"time"`
	ID       string    `json:"call_id"`
	Tool     string    `json:"tool"`
	Upstream string    `json:"upstream"`
	// Via is the transport the call came in on: mcp or grpc.
	Via string `json:"via"`
	// Caller is the authenticated caller ("api_key:nightly-sync@acme"),
	// empty without authentication. Never a token.
	Caller string `json:"caller,omitempty"`
	// Outcome is "ok" or the tool error code (timeout, rate_limited, ...),
	// as in the toolbus_calls_total metric.
	Outcome string `json:"outcome"`
	// Message is the tool error's message, shortened to MaxMessageLen.
	Message string `json:"message,omitempty"`
	// Attempts the worker made upstream; Delivery is the JetStream
	// delivery count of the call when answered.
	Attempts       int32   `json:"attempts,omitempty"`
	Delivery       uint64  `json:"delivery,omitempty"`
	UpstreamStatus int32   `json:"upstream_status,omitempty"`
	DurationMS     float64 `json:"duration_ms"`
	Worker         string  `json:"worker,omitempty"`
	// TraceID is set when tracing is on.
	TraceID string `json:"trace_id,omitempty"`
	// Instance is the mcp-front instance that answered.
	Instance string `json:"instance,omitempty"`
}

// Webhook outcomes.
const (
	WebhookStored      = "stored"
	WebhookDuplicate   = "duplicate"
	WebhookRejected    = "rejected"
	WebhookTooLarge    = "too_large"
	WebhookUnavailable = "unavailable"
	WebhookHandshake   = "handshake"
	WebhookUnreadable  = "unreadable"
)

// Webhook summarises one delivery received by webhook-ingest.
type Webhook struct {
	Time   time.Time `json:"time"`
	Source string    `json:"source"`
	// Type and EventID are known once the signature verified.
	Type    string `json:"type,omitempty"`
	EventID string `json:"event_id,omitempty"`
	// Outcome is one of the Webhook* constants.
	Outcome string `json:"outcome"`
	// Reason says why a delivery was rejected (signature_mismatch,
	// timestamp_out_of_tolerance, ...): what the provider is never told.
	Reason string `json:"reason,omitempty"`
	Status int    `json:"status"`
	// Seq is the WEBHOOKS stream sequence of a stored event.
	Seq        uint64  `json:"seq,omitempty"`
	DurationMS float64 `json:"duration_ms"`
	Instance   string  `json:"instance,omitempty"`
}

// Publish sends v on subject without waiting: the message goes into the
// connection's write buffer. Errors (NATS away) are returned for tests and
// otherwise meant to be ignored: the feed is best effort.
func Publish(nc *nats.Conn, subject string, v any) error {
	if nc == nil {
		return nil
	}
	return publishEncoded(v, func(data []byte) error { return nc.Publish(subject, data) })
}

// Shorten cuts s to at most n bytes on a rune boundary, marking the cut.
func Shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && n < len(s) && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}
