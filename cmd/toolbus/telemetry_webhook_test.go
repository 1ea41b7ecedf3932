package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/toolbus/toolbus/bus"
	"github.com/toolbus/toolbus/bus/bustest"
	"github.com/toolbus/toolbus/catalog"
	stateupdater "github.com/toolbus/toolbus/services/state-updater"
	webhookingest "github.com/toolbus/toolbus/services/webhook-ingest"
	"github.com/toolbus/toolbus/signature"
	"github.com/toolbus/toolbus/telemetry"
)

const traceWebhookSecret = "whsec_trace_test_secret_value"

// webhookTraceRig is webhook-ingest and state-updater in this process over
// embedded JetStream, each with its own tracer provider from one telemetry
// set-up; url serves /webhooks/ and /metrics.
type webhookTraceRig struct {
	tel *telemetry.Telemetry
	url string
}

func newWebhookTraceRig(t *testing.T, exp sdktrace.SpanExporter) *webhookTraceRig {
	t.Helper()
	tel, err := telemetry.Setup(context.Background(), telemetry.Options{
		Components:           []string{svcWebhooks, svcStateUpd},
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
	ctx := context.Background()
	if err := bus.DefaultTopology().Ensure(ctx, js); err != nil {
		t.Fatal(err)
	}
	log := bustest.Logger()
	ingest, err := webhookingest.New(webhookingest.Options{
		Catalog: cat, NC: nc, JS: js, Instance: "i1", Logger: log,
		TracerProvider: tel.TracerProvider(svcWebhooks), MeterProvider: tel.MeterProvider(),
	})
	if err != nil {
		t.Fatal(err)
	}
	updater, err := stateupdater.New(stateupdater.Options{
		Catalog: cat, NC: nc, JS: js, Instance: "u1", Logger: log,
		TracerProvider: tel.TracerProvider(svcStateUpd), MeterProvider: tel.MeterProvider(),
	})
	if err != nil {
		t.Fatal(err)
	}
	startServices(t, ctx, updater, ingest)
	mux := http.NewServeMux()
	mux.Handle("/webhooks/", ingest.Handler())
	mux.Handle("GET /metrics", tel.MetricsHandler())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &webhookTraceRig{tel: tel, url: srv.URL}
}

// sendStripe posts one signed Stripe event, with extra headers, and
// returns the status.
func sendStripe(t *testing.T, url, id, body string, extra http.Header) int {
	t.Helper()
	scheme, err := signature.New(signature.Config{Scheme: "stripe", Secrets: signature.Secrets{traceWebhookSecret}})
	if err != nil {
		t.Fatal(err)
	}
	h, err := scheme.Sign([]byte(body), time.Now(), id, "payment_intent.succeeded")
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, url+"/webhooks/stripe", bytes.NewReader([]byte(body)))
	req.Header = h
	req.Header.Set("Content-Type", "application/json")
	for k, v := range extra {
		req.Header[k] = v
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// TestTraceOfWebhook follows one signed webhook that carries a provider
// traceparent: one trace, continuing it, from webhook-ingest's server span
// through verification and publish to the state-updater's process and
// apply spans, with the expected parents, services, kinds and attributes,
// and no secret, signature or body on any span. The webhook metrics follow.
func TestTraceOfWebhook(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	rig := newWebhookTraceRig(t, exp)
	providerTrace, _ := trace.TraceIDFromHex("0af7651916cd43dd8448eb211c80319c")
	providerSpan, _ := trace.SpanIDFromHex("b7ad6b7169203331")
	const id = "evt_trace_1"
	body := fmt.Sprintf(`{"id":%q,"type":"payment_intent.succeeded","created":1700000001,"data":{"object":{"id":"pi_secretive_42","amount":1234}}}`, id)
	if st := sendStripe(t, rig.url, id, body, http.Header{"Traceparent": {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}}); st != http.StatusAccepted {
		t.Fatalf("webhook answered %d, want 202", st)
	}

	// POST, verify, publish, process, apply.
	spans := waitSpans(t, rig.tel, exp, providerTrace, 5)
	byName := map[string][]sdktrace.ReadOnlySpan{}
	for _, sp := range spans {
		byName[sp.Name()] = append(byName[sp.Name()], sp)
	}
	one := func(name string) sdktrace.ReadOnlySpan {
		t.Helper()
		if len(byName[name]) != 1 {
			var names []string
			for _, sp := range spans {
				names = append(names, sp.Name())
			}
			t.Fatalf("want one span %q, got %d; spans of the trace: %q", name, len(byName[name]), names)
		}
		return byName[name][0]
	}
	const subject = "toolbus.webhook.stripe.payment_intent_succeeded"
	server := one("POST /webhooks/{source}")
	verify := one("verify stripe")
	pub := one("publish " + subject)
	proc := one("process " + subject)
	apply := one("apply payments")

	for name, l := range map[string]struct {
		span    sdktrace.ReadOnlySpan
		parent  trace.SpanID
		kind    trace.SpanKind
		service string
	}{
		"server":  {server, providerSpan, trace.SpanKindServer, svcWebhooks},
		"verify":  {verify, server.SpanContext().SpanID(), trace.SpanKindInternal, svcWebhooks},
		"publish": {pub, server.SpanContext().SpanID(), trace.SpanKindProducer, svcWebhooks},
		"process": {proc, pub.SpanContext().SpanID(), trace.SpanKindConsumer, svcStateUpd},
		"apply":   {apply, proc.SpanContext().SpanID(), trace.SpanKindInternal, svcStateUpd},
	} {
		if got := l.span.Parent().SpanID(); got != l.parent {
			t.Errorf("%s: parent %s, want %s", name, got, l.parent)
		}
		if got := l.span.SpanKind(); got != l.kind {
			t.Errorf("%s: kind %s, want %s", name, got, l.kind)
		}
		if got := serviceOf(l.span); got != l.service {
			t.Errorf("%s: service.name %q, want %q", name, got, l.service)
		}
	}

	for _, w := range []struct {
		span sdktrace.ReadOnlySpan
		key  attribute.Key
		want attribute.Value
	}{
		{server, telemetry.AttrHTTPMethod, attribute.StringValue("POST")},
		{server, telemetry.AttrHTTPRoute, attribute.StringValue("/webhooks/{source}")},
		{server, telemetry.AttrHTTPStatus, attribute.IntValue(202)},
		{server, telemetry.AttrSource, attribute.StringValue("stripe")},
		{server, telemetry.AttrOutcome, attribute.StringValue("stored")},
		{server, telemetry.AttrEventID, attribute.StringValue(id)},
		{verify, telemetry.AttrScheme, attribute.StringValue("stripe")},
		{verify, telemetry.AttrOutcome, attribute.StringValue("ok")},
		{pub, telemetry.AttrMessagingSystem, attribute.StringValue("nats")},
		{pub, telemetry.AttrMessagingOperationName, attribute.StringValue("publish")},
		{pub, telemetry.AttrMessagingDestination, attribute.StringValue(subject)},
		{pub, telemetry.AttrMessagingMessageID, attribute.StringValue(id)},
		{pub, telemetry.AttrEventType, attribute.StringValue("payment_intent.succeeded")},
		{pub, telemetry.AttrOutcome, attribute.StringValue("stored")},
		{proc, telemetry.AttrMessagingSystem, attribute.StringValue("nats")},
		{proc, telemetry.AttrMessagingDestination, attribute.StringValue(subject)},
		{proc, telemetry.AttrMessagingMessageID, attribute.StringValue(id)},
		{proc, telemetry.AttrMessagingConsumerGroup, attribute.StringValue(stateupdater.ConsumerName("payments"))},
		{proc, telemetry.AttrMessagingDeliveryCount, attribute.Int64Value(1)},
		{proc, telemetry.AttrDisposition, attribute.StringValue("ack")},
		{apply, telemetry.AttrProjection, attribute.StringValue("payments")},
		{apply, telemetry.AttrEventID, attribute.StringValue(id)},
		{apply, telemetry.AttrSource, attribute.StringValue("stripe")},
		{apply, telemetry.AttrOutcome, attribute.StringValue("applied")},
	} {
		got, ok := attrOf(w.span, w.key)
		if !ok || got != w.want {
			t.Errorf("span %q: %s = %v (present %v), want %v", w.span.Name(), w.key, got.Emit(), ok, w.want.Emit())
		}
	}
	if h, ok := attrOf(apply, telemetry.AttrEntityKeyHash); !ok || len(h.AsString()) != 16 {
		t.Errorf("apply span: entity key hash %q", h.AsString())
	}
	// Never the secret, the signature, the body or the raw entity key.
	for _, sp := range spans {
		for _, kv := range sp.Attributes() {
			v := kv.Value.Emit()
			if strings.Contains(v, traceWebhookSecret) || strings.Contains(v, "v1=") || strings.Contains(v, "pi_secretive_42") ||
				strings.Contains(v, "amount") || strings.Contains(strings.ToLower(string(kv.Key)), "signature") {
				t.Errorf("span %q leaks %s=%s", sp.Name(), kv.Key, v)
			}
		}
	}

	// The same delivery again: a duplicate at the ingest (JetStream dedup).
	if st := sendStripe(t, rig.url, id, body, nil); st != http.StatusOK {
		t.Fatalf("duplicate answered %d, want 200", st)
	}
	// A forged one: refused, its verify span says why.
	req, _ := http.NewRequest(http.MethodPost, rig.url+"/webhooks/stripe", strings.NewReader(body))
	req.Header.Set("Stripe-Signature", "t=1,v1=00")
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("forged webhook: %v %v", res, err)
	} else {
		res.Body.Close()
	}
	var metrics string
	deadline := time.Now().Add(10 * time.Second)
	want := []string{
		`toolbus_webhooks_total{outcome="stored",source="stripe"} 1`,
		`toolbus_webhooks_total{outcome="duplicate",source="stripe"} 1`,
		`toolbus_webhooks_total{outcome="rejected",source="stripe"} 1`,
		`toolbus_webhook_dedup_hits_total{source="stripe"} 1`,
		`toolbus_projection_events_total{outcome="applied",projection="payments",source="stripe"} 1`,
		`toolbus_projection_lag_seconds_count{projection="payments",source="stripe"} 1`,
		`toolbus_projection_lag_seconds_bucket{projection="payments",source="stripe",le="+Inf"} 1`,
	}
	for {
		metrics = scrape(t, rig.url+"/metrics")
		missing := 0
		for _, w := range want {
			if !strings.Contains(metrics, w) {
				missing++
			}
		}
		if missing == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, w := range want {
		if !strings.Contains(metrics, w) {
			t.Errorf("/metrics lacks %s", w)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", grepLines(metrics, "toolbus_"))
	}
	_ = rig.tel.ForceFlush(context.Background())
	var rejected bool
	for _, sp := range exp.GetSpans().Snapshots() {
		if sp.Name() == "verify stripe" && sp.Status().Code == codes.Error {
			v, _ := attrOf(sp, telemetry.AttrOutcome)
			rejected = v.AsString() != "" && v.AsString() != "ok"
		}
	}
	if !rejected {
		t.Error("no verify span records the forged delivery's rejection")
	}
}
