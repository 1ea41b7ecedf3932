package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/toolbus/toolbus/bus"
	"github.com/toolbus/toolbus/bus/bustest"
	"github.com/toolbus/toolbus/catalog"
	"github.com/toolbus/toolbus/projection"
	"github.com/toolbus/toolbus/projection/projectiontest"
	"github.com/toolbus/toolbus/telemetry"
)

// TestTraceOfWebhookNotify follows one signed webhook carrying a provider
// traceparent to the MCP notification it causes: a go-sdk client subscribed
// to the entity's resource (through mcp-front, stateful) receives
// notifications/resources/updated, and the trace that the webhook's server
// span starts ends with mcp-front's "notify payments" producer span,
// parented on the state-updater's apply span (whose context the entity
// record stores, KV entries carrying no headers), without the entity key.
func TestTraceOfWebhookNotify(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tel, err := telemetry.Setup(context.Background(), telemetry.Options{
		Components:           []string{svcWebhooks, svcStateUpd, svcMCPFront},
		Instance:             "test",
		SpanExporter:         exp,
		SpanProcessorOptions: []sdktrace.BatchSpanProcessorOption{sdktrace.WithBatchTimeout(50 * time.Millisecond)},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	t.Setenv("TRACE_STRIPE_SECRET", traceWebhookSecret)
	cat, err := catalog.Parse("webhooks.yaml", []byte(`version: 1
sources:
  stripe:
    scheme: stripe
    secrets: ["${env:TRACE_STRIPE_SECRET}"]
projections:
  payments:
    sources: [stripe]
    events: ["payment_intent.*"]
    key: data.object.id
    version: created
`))
	if err != nil {
		t.Fatal(err)
	}
	ns := bustest.Server(t)
	nc, js := bustest.Connect(t, ns)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := bus.DefaultTopology().Ensure(ctx, js); err != nil {
		t.Fatal(err)
	}
	srv := startStateStack(t, ctx, cat, nc, js, tel)

	const entityKey = "pi_secretive_43"
	uri := projection.EntityURI("payments", entityKey)
	cs := projectiontest.Connect(t, ctx, &mcp.StreamableClientTransport{Endpoint: srv.url + "/mcp"}, nil)
	if err := cs.Subscribe(ctx, uri); err != nil {
		t.Fatal(err)
	}

	providerTrace, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	const id = "evt_trace_notify_1"
	body := fmt.Sprintf(`{"id":%q,"type":"payment_intent.succeeded","created":1700000002,"data":{"object":{"id":%q,"amount":99}}}`, id, entityKey)
	if st := sendStripe(t, srv.url, id, body, http.Header{"Traceparent": {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}); st != http.StatusAccepted {
		t.Fatalf("webhook answered %d, want 202", st)
	}
	select {
	case got := <-cs.Updated:
		if got != uri {
			t.Fatalf("notified of %q, want %q", got, uri)
		}
	case <-ctx.Done():
		t.Fatal("the subscribed client received no notifications/resources/updated")
	}

	// POST, verify, publish, process, apply, notify.
	spans := waitSpans(t, tel, exp, providerTrace, 6)
	byName := map[string][]sdktrace.ReadOnlySpan{}
	var names []string
	for _, sp := range spans {
		byName[sp.Name()] = append(byName[sp.Name()], sp)
		names = append(names, sp.Name())
	}
	one := func(name string) sdktrace.ReadOnlySpan {
		t.Helper()
		if len(byName[name]) != 1 {
			t.Fatalf("want one span %q, got %d; spans of the trace: %q", name, len(byName[name]), names)
		}
		return byName[name][0]
	}
	server := one("POST /webhooks/{source}")
	apply := one("apply payments")
	notify := one("notify payments")
	if server.SpanContext().TraceID() != notify.SpanContext().TraceID() {
		t.Errorf("notify span in trace %s, server span in %s", notify.SpanContext().TraceID(), server.SpanContext().TraceID())
	}
	if got, want := notify.Parent().SpanID(), apply.SpanContext().SpanID(); got != want {
		t.Errorf("notify: parent %s, want the apply span %s", got, want)
	}
	if !notify.Parent().IsRemote() {
		t.Error("notify: parent should be the remote apply span context read from the entity record")
	}
	if got := notify.SpanKind(); got != trace.SpanKindProducer {
		t.Errorf("notify: kind %s, want producer", got)
	}
	if got := serviceOf(notify); got != svcMCPFront {
		t.Errorf("notify: service.name %q, want %q", got, svcMCPFront)
	}
	applyHash, _ := attrOf(apply, telemetry.AttrEntityKeyHash)
	for _, w := range []struct {
		key  attribute.Key
		want attribute.Value
	}{
		{telemetry.AttrProjection, attribute.StringValue("payments")},
		{telemetry.AttrMCPMethod, attribute.StringValue("notifications/resources/updated")},
		{telemetry.AttrMCPResourceTemplate, attribute.StringValue("toolbus://state/payments/{key}")},
		{telemetry.AttrEntityKeyHash, applyHash},
	} {
		if got, ok := attrOf(notify, w.key); !ok || got != w.want {
			t.Errorf("notify: %s = %v (present %v), want %v", w.key, got.Emit(), ok, w.want.Emit())
		}
	}
	for _, sp := range spans {
		for _, kv := range sp.Attributes() {
			if strings.Contains(kv.Value.Emit(), entityKey) {
				t.Errorf("span %q leaks the entity key in %s", sp.Name(), kv.Key)
			}
		}
	}
}
