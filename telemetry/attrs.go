package telemetry

import (
	"go.opentelemetry.io/otel/attribute"

	toolbusv1 "github.com/toolbus/toolbus/gen/toolbus/v1"
)

// Attribute keys of Toolbus spans. The standard ones carry the names of the
// OpenTelemetry semantic conventions (HTTP, messaging, RPC, MCP); the
// toolbus.* ones are documented in docs/observability.md. None ever holds a
// secret or a body.
const (
	// Toolbus.
	AttrTool          = attribute.Key("toolbus.tool")
	AttrUpstream      = attribute.Key("toolbus.upstream")
	AttrCallID        = attribute.Key("toolbus.call_id")
	AttrAttempt       = attribute.Key("toolbus.attempt")
	AttrOutcome       = attribute.Key("toolbus.outcome")
	AttrCallerSubject = attribute.Key("toolbus.caller.subject")
	AttrCallerTenant  = attribute.Key("toolbus.caller.tenant")
	AttrCallerScopes  = attribute.Key("toolbus.caller.scopes")
	AttrVia           = attribute.Key("toolbus.via")
	AttrWorker        = attribute.Key("toolbus.worker")
	AttrDelivery      = attribute.Key("toolbus.delivery")
	AttrDisposition   = attribute.Key("toolbus.disposition")
	AttrQueueWait     = attribute.Key("toolbus.queue_wait_ms")
	AttrSource        = attribute.Key("toolbus.webhook.source")
	AttrEventType     = attribute.Key("toolbus.webhook.event_type")
	AttrEventID       = attribute.Key("toolbus.webhook.event_id")
	AttrProjection    = attribute.Key("toolbus.projection")
	AttrScheme        = attribute.Key("toolbus.webhook.scheme")
	AttrEntityKeyHash = attribute.Key("toolbus.entity.key_hash")
	AttrRetryWait     = attribute.Key("toolbus.retry.wait_ms")
	AttrRetryReason   = attribute.Key("toolbus.retry.reason")
	AttrQuotaWait     = attribute.Key("toolbus.quota.wait_ms")
	AttrQuotaReason   = attribute.Key("toolbus.quota.reason")
	AttrCircuitFrom   = attribute.Key("toolbus.circuit.from")
	AttrCircuitTo     = attribute.Key("toolbus.circuit.to")

	// Errors (all conventions).
	AttrErrorType = attribute.Key("error.type")

	// Messaging (NATS JetStream).
	AttrMessagingSystem        = attribute.Key("messaging.system")
	AttrMessagingOperationName = attribute.Key("messaging.operation.name")
	AttrMessagingOperationType = attribute.Key("messaging.operation.type")
	AttrMessagingDestination   = attribute.Key("messaging.destination.name")
	AttrMessagingTemplate      = attribute.Key("messaging.destination.template")
	AttrMessagingMessageID     = attribute.Key("messaging.message.id")
	AttrMessagingBodySize      = attribute.Key("messaging.message.body.size")
	AttrMessagingConsumerGroup = attribute.Key("messaging.consumer.group.name")
	// AttrMessagingDeliveryCount follows the convention's pattern for
	// system-specific attributes; NATS has no registered one yet.
	AttrMessagingDeliveryCount = attribute.Key("messaging.nats.message.delivery_count")
	AttrMessagingStreamSeq     = attribute.Key("messaging.nats.stream.sequence")

	// MCP (gen-ai / MCP conventions) and RPC.
	AttrMCPMethod    = attribute.Key("mcp.method.name")
	AttrMCPSessionID = attribute.Key("mcp.session.id")
	// AttrMCPResourceTemplate is the URI template of a resource, for spans
	// about a resource whose URI holds personal data (an entity key).
	AttrMCPResourceTemplate = attribute.Key("toolbus.mcp.resource.template")
	AttrGenAIToolName       = attribute.Key("gen_ai.tool.name")
	AttrGenAIOperation      = attribute.Key("gen_ai.operation.name")
	AttrRPCSystem           = attribute.Key("rpc.system")
	AttrRPCService          = attribute.Key("rpc.service")
	AttrRPCMethod           = attribute.Key("rpc.method")
	AttrNetworkProtocol     = attribute.Key("network.protocol.name")

	// HTTP client.
	AttrHTTPMethod      = attribute.Key("http.request.method")
	AttrHTTPRoute       = attribute.Key("http.route")
	AttrHTTPStatus      = attribute.Key("http.response.status_code")
	AttrHTTPResendCount = attribute.Key("http.request.resend_count")
	AttrURLFull         = attribute.Key("url.full")
	AttrURLTemplate     = attribute.Key("url.template")
	AttrServerAddress   = attribute.Key("server.address")
	AttrServerPort      = attribute.Key("server.port")
)

// MessagingSystemNATS is the messaging.system value of every bus span.
const MessagingSystemNATS = "nats"

// CallerAttrs are the span attributes naming the caller of a call:
// toolbus.caller.subject, toolbus.caller.tenant and toolbus.caller.scopes,
// each only when set. Never the token, which the Caller may carry for
// upstreams that forward or exchange it. Nil for a call without a caller.
func CallerAttrs(c *toolbusv1.Caller) []attribute.KeyValue {
	if c == nil {
		return nil
	}
	var out []attribute.KeyValue
	if c.GetSubject() != "" {
		out = append(out, AttrCallerSubject.String(c.GetSubject()))
	}
	if c.GetTenant() != "" {
		out = append(out, AttrCallerTenant.String(c.GetTenant()))
	}
	if len(c.GetScopes()) > 0 {
		out = append(out, AttrCallerScopes.StringSlice(c.GetScopes()))
	}
	return out
}
