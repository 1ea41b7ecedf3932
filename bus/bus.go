// Package bus provides Toolbus's NATS JetStream plumbing: the stream and
// consumer topology (declared once, applied idempotently), publishing tool
// calls and routing their results back to the caller, consuming calls with a
// per-message context, and dead letters.
//
// It must not know about MCP, HTTP upstreams or the catalog file format: it
// moves protobuf messages and enforces delivery semantics, nothing more.
package bus

import (
	"errors"
	"strings"
)

// Stream names.
const (
	StreamCalls       = "CALLS"
	StreamWebhooks    = "WEBHOOKS"
	StreamDeadLetters = "DEADLETTERS"
)

// Subject roots.
const (
	callSubjectRoot    = "toolbus.call"
	webhookSubjectRoot = "toolbus.webhook"
	dlqSubjectRoot     = "toolbus.dlq"
	replySubjectRoot   = "toolbus.reply"
)

// Header names used on bus messages. Trace context uses the W3C names
// (traceparent, tracestate) exactly.
const (
	HeaderMsgID    = "Nats-Msg-Id"
	HeaderDeadline = "Toolbus-Deadline"
)

// Sentinel errors.
var (
	// ErrBusUnavailable means NATS could not be reached or did not
	// acknowledge a publish in time. Callers may retry later.
	ErrBusUnavailable = errors.New("bus unavailable")
	// ErrShuttingDown means the component no longer accepts work.
	ErrShuttingDown = errors.New("shutting down")
)

// CallSubject is the subject a tool call is published on.
func CallSubject(kind, upstream, tool string) string {
	return callSubjectRoot + "." + kind + "." + upstream + "." + tool
}

// CallFilter is the filter subject of an upstream's call consumer.
func CallFilter(kind, upstream string) string {
	return callSubjectRoot + "." + kind + "." + upstream + ".>"
}

// CallConsumerName is the durable consumer shared by every replica of the
// worker that serves one upstream. It is part of the operational contract:
// the Kubernetes scalers watch it.
func CallConsumerName(kind, upstream string) string {
	return "calls-" + kind + "-" + upstream
}

// StateConsumerName is the durable consumer on WEBHOOKS that feeds one
// projection, shared by every state-updater replica. Like the call
// consumers, the Kubernetes scalers watch it.
func StateConsumerName(projection string) string {
	return "state-" + projection
}

// WebhookSubject is the subject a verified webhook event is published on.
// The event type is sanitised into one subject token.
func WebhookSubject(source, eventType string) string {
	return webhookSubjectRoot + "." + source + "." + subjectToken(eventType)
}

// DeadLetterSubject is where a dead letter of the given kind ("call" or
// "webhook") and name (upstream or source) is stored.
func DeadLetterSubject(kind, name string) string {
	return dlqSubjectRoot + "." + kind + "." + subjectToken(name)
}

// subjectToken maps s to a single valid subject token: dots, spaces and
// wildcards become underscores; an empty string becomes "_".
func subjectToken(s string) string {
	if s == "" {
		return "_"
	}
	if !strings.ContainsAny(s, ". *>\t\r\n") {
		return s
	}
	return strings.Map(func(r rune) rune {
		switch r {
		case '.', ' ', '*', '>', '\t', '\r', '\n':
			return '_'
		}
		return r
	}, s)
}
