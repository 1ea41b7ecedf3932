package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
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
	"github.com/toolbus/toolbus/examples/crm"
	mcpfront "github.com/toolbus/toolbus/services/mcp-front"
	restworker "github.com/toolbus/toolbus/services/rest-worker"
	"github.com/toolbus/toolbus/telemetry"
	"github.com/toolbus/toolbus/upstream"
)

// traceRig is mcp-front and rest-worker in this process over embedded
// JetStream, each with its own tracer provider from one telemetry set-up,
// in front of the demo CRM.
type traceRig struct {
	tel    *telemetry.Telemetry
	crm    *crm.Server
	mcpURL string
}

func newTraceRig(tb testing.TB, exp sdktrace.SpanExporter) *traceRig {
	tb.Helper()
	tel, err := telemetry.Setup(context.Background(), telemetry.Options{
		Components:           []string{svcMCPFront, svcRESTWork},
		Instance:             "test",
		SpanExporter:         exp,
		SpanProcessorOptions: []sdktrace.BatchSpanProcessorOption{sdktrace.WithBatchTimeout(50 * time.Millisecond)},
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = tel.Shutdown(context.Background()) })

	up := crm.NewServer(crm.Options{})
	upSrv := httptest.NewServer(up)
	tb.Cleanup(func() { up.Close(); upSrv.Close() })
	cat, err := catalog.Parse("trace.yaml", []byte(`version: 1
upstreams:
  crm:
    base_url: `+upSrv.URL+`/api/v1
    timeout: 5s
    concurrency: 16
tools:
  - name: get_customer
    description: Fetch one customer by id.
    upstream: crm
    method: GET
    path: /customers/{id}
    input_schema:
      type: object
      properties:
        id: {type: integer, minimum: 1}
      required: [id]
`))
	if err != nil {
		tb.Fatal(err)
	}

	ns := bustest.Server(tb)
	nc, js := bustest.Connect(tb, ns)
	ctx := context.Background()
	if err := bus.DefaultTopology().Ensure(ctx, js); err != nil {
		tb.Fatal(err)
	}
	log := bustest.Logger()
	rm, err := telemetry.NewReliabilityMetrics(tel.MeterProvider())
	if err != nil {
		tb.Fatal(err)
	}
	worker, err := restworker.New(restworker.Options{
		Catalog: cat, NC: nc, JS: js, Instance: "w1", Logger: log,
		TracerProvider: tel.TracerProvider(svcRESTWork), MeterProvider: tel.MeterProvider(),
		// The real retry layer, reporting to the span through the observer.
		HTTP: upstream.Options{Reliability: upstream.NewReliability(upstream.ReliabilityOptions{Observer: upstream.TelemetryObserver(rm)})},
	})
	if err != nil {
		tb.Fatal(err)
	}
	front, err := mcpfront.New(mcpfront.Options{
		Catalog: cat, NC: nc, JS: js, Instance: "f1", Logger: log, Stateless: true,
		TracerProvider: tel.TracerProvider(svcMCPFront), MeterProvider: tel.MeterProvider(),
	})
	if err != nil {
		tb.Fatal(err)
	}
	startServices(tb, ctx, worker, front)
	mux := http.NewServeMux()
	mux.Handle("/mcp", front.MCPHandler())
	mux.Handle("GET /metrics", tel.MetricsHandler())
	srv := httptest.NewServer(mux)
	tb.Cleanup(srv.Close)
	return &traceRig{tel: tel, crm: up, mcpURL: srv.URL + "/mcp"}
}

// headerTransport adds fixed headers to every request (a client's
// traceparent).
type headerTransport struct {
	h    http.Header
	next http.RoundTripper
}

func (t headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, v := range t.h {
		r.Header[k] = v
	}
	return t.next.RoundTrip(r)
}

func sessionWithHeaders(tb testing.TB, url string, h http.Header) *mcp.ClientSession {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := mcp.NewClient(&mcp.Implementation{Name: "trace-test", Version: "test"}, nil)
	hc := &http.Client{Transport: headerTransport{h: h, next: http.DefaultTransport}}
	s, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: url, HTTPClient: hc}, nil)
	if err != nil {
		tb.Fatalf("connect %s: %v", url, err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

func attrOf(s sdktrace.ReadOnlySpan, k attribute.Key) (attribute.Value, bool) {
	for _, kv := range s.Attributes() {
		if kv.Key == k {
			return kv.Value, true
		}
	}
	return attribute.Value{}, false
}

func serviceOf(s sdktrace.ReadOnlySpan) string {
	for _, kv := range s.Resource().Attributes() {
		if kv.Key == "service.name" {
			return kv.Value.AsString()
		}
	}
	return ""
}

// waitSpans flushes and returns the spans of traceID once want of them
// have ended.
func waitSpans(t *testing.T, tel *telemetry.Telemetry, exp *tracetest.InMemoryExporter, traceID trace.TraceID, want int) []sdktrace.ReadOnlySpan {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_ = tel.ForceFlush(context.Background())
		var got []sdktrace.ReadOnlySpan
		for _, s := range exp.GetSpans().Snapshots() {
			if s.SpanContext().TraceID() == traceID {
				got = append(got, s)
			}
		}
		if len(got) >= want || time.Now().After(deadline) {
			return got
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestTraceOfToolCall follows one tool call whose first upstream attempt
// fails with 503: one trace, continuing the client's traceparent, with the
// expected parent links, services, kinds and attributes. Three spans per
// call (plus one per extra attempt): the bus publish and the reply are not
// spans; the worker's process span is a direct child of the front's span.
func TestTraceOfToolCall(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	rig := newTraceRig(t, exp)
	if _, err := rig.crm.AddFault(crm.Fault{Method: "GET", Path: "/api/v1/customers/1", Action: crm.FaultError, Status: 503, Times: 1}); err != nil {
		t.Fatal(err)
	}
	clientTrace, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	clientSpan, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	s := sessionWithHeaders(t, rig.mcpURL, http.Header{"Traceparent": {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}})
	res := callTool(t, s, "get_customer", map[string]any{"id": 1})
	if res.IsError {
		t.Fatalf("call failed: %+v", res.Content[0])
	}

	// tools/call, process, two attempts.
	spans := waitSpans(t, rig.tel, exp, clientTrace, 4)
	if len(spans) != 4 {
		var names []string
		for _, sp := range spans {
			names = append(names, sp.Name())
		}
		t.Errorf("want 4 spans (tools/call, process, 2 attempts), got %d: %q", len(spans), names)
	}
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
	call := one("tools/call get_customer")
	proc := one("process toolbus.call.rest.crm.get_customer")
	for _, gone := range []string{"publish toolbus.call.rest.crm.get_customer", "publish toolbus.reply.{instance}.{call_id}"} {
		if len(byName[gone]) != 0 {
			t.Errorf("span %q is back: the publish and the reply are not spans", gone)
		}
	}
	attempts := byName["GET /customers/{id}"]
	if len(attempts) != 2 {
		t.Fatalf("want 2 upstream attempt spans, got %d", len(attempts))
	}
	if attempts[0].StartTime().After(attempts[1].StartTime()) {
		attempts[0], attempts[1] = attempts[1], attempts[0]
	}

	type link struct {
		span     sdktrace.ReadOnlySpan
		parent   trace.SpanID
		kind     trace.SpanKind
		service  string
		callAttr bool
	}
	for name, l := range map[string]link{
		"tools/call": {call, clientSpan, trace.SpanKindServer, svcMCPFront, true},
		"process":    {proc, call.SpanContext().SpanID(), trace.SpanKindConsumer, svcRESTWork, true},
		"attempt 1":  {attempts[0], proc.SpanContext().SpanID(), trace.SpanKindClient, svcRESTWork, false},
		"attempt 2":  {attempts[1], proc.SpanContext().SpanID(), trace.SpanKindClient, svcRESTWork, false},
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
		if l.callAttr {
			id, _ := attrOf(l.span, telemetry.AttrCallID)
			want, _ := attrOf(call, telemetry.AttrCallID)
			if id.AsString() == "" || id != want {
				t.Errorf("%s: toolbus.call_id %q, want %q", name, id.AsString(), want.AsString())
			}
		}
	}

	wantAttrs := []struct {
		span sdktrace.ReadOnlySpan
		key  attribute.Key
		want attribute.Value
	}{
		{call, telemetry.AttrTool, attribute.StringValue("get_customer")},
		{call, telemetry.AttrUpstream, attribute.StringValue("crm")},
		{call, telemetry.AttrOutcome, attribute.StringValue("ok")},
		{call, telemetry.AttrMCPMethod, attribute.StringValue("tools/call")},
		{call, telemetry.AttrAttempt, attribute.IntValue(2)},
		{proc, telemetry.AttrMessagingSystem, attribute.StringValue("nats")},
		{proc, telemetry.AttrMessagingDestination, attribute.StringValue("toolbus.call.rest.crm.get_customer")},
		{proc, telemetry.AttrTool, attribute.StringValue("get_customer")},
		{proc, telemetry.AttrUpstream, attribute.StringValue("crm")},
		{proc, telemetry.AttrMessagingDeliveryCount, attribute.Int64Value(1)},
		{proc, telemetry.AttrMessagingConsumerGroup, attribute.StringValue("calls-rest-crm")},
		{proc, telemetry.AttrOutcome, attribute.StringValue("ok")},
		{proc, telemetry.AttrDisposition, attribute.StringValue("ack")},
		{attempts[0], telemetry.AttrHTTPStatus, attribute.IntValue(503)},
		{attempts[0], telemetry.AttrAttempt, attribute.IntValue(1)},
		{attempts[0], telemetry.AttrErrorType, attribute.StringValue("503")},
		{attempts[1], telemetry.AttrHTTPStatus, attribute.IntValue(200)},
		{attempts[1], telemetry.AttrAttempt, attribute.IntValue(2)},
		{attempts[1], telemetry.AttrHTTPResendCount, attribute.IntValue(1)},
		{attempts[1], telemetry.AttrHTTPMethod, attribute.StringValue("GET")},
		{attempts[1], telemetry.AttrURLTemplate, attribute.StringValue("/customers/{id}")},
		{attempts[1], telemetry.AttrUpstream, attribute.StringValue("crm")},
	}
	for _, w := range wantAttrs {
		got, ok := attrOf(w.span, w.key)
		if !ok || got != w.want {
			t.Errorf("span %q: %s = %v (present %v), want %v", w.span.Name(), w.key, got.Emit(), ok, w.want.Emit())
		}
	}
	// The reply is not a span: its size is an attribute of the process span.
	if v, ok := attrOf(proc, attribute.Key("toolbus.reply.body_size")); !ok || v.AsInt64() <= 0 {
		t.Errorf("process span: toolbus.reply.body_size = %s (present %v), want the reply's size", v.Emit(), ok)
	}
	// The upstream saw the trace context of its attempt span.
	// The retry (and its back-off wait) is an event on the process span.
	var retry bool
	for _, ev := range proc.Events() {
		if ev.Name == "retry" {
			retry = true
		}
	}
	if !retry {
		t.Errorf("process span has no retry event: %+v", proc.Events())
	}
	// No argument values, bodies or headers on any span.
	for _, sp := range spans {
		for _, kv := range sp.Attributes() {
			if strings.Contains(kv.Value.Emit(), "Jane") || strings.HasPrefix(string(kv.Key), "http.request.header") {
				t.Errorf("span %q leaks %s=%s", sp.Name(), kv.Key, kv.Value.Emit())
			}
		}
	}
}

// TestMetricsAfterCalls scrapes /metrics after a few calls: counters and
// histograms with their labels.
func TestMetricsAfterCalls(t *testing.T) {
	rig := newTraceRig(t, tracetest.NewNoopExporter())
	s := sessionWithHeaders(t, rig.mcpURL, nil)
	for range 3 {
		if res := callTool(t, s, "get_customer", map[string]any{"id": 1}); res.IsError {
			t.Fatalf("call failed: %+v", res.Content[0])
		}
	}
	if res := callTool(t, s, "get_customer", map[string]any{"id": 999999}); !res.IsError {
		t.Fatal("customer 999999 exists?")
	}
	body := scrape(t, strings.TrimSuffix(rig.mcpURL, "/mcp")+"/metrics")
	for _, want := range []string{
		`toolbus_calls_total{outcome="ok",tool="get_customer",upstream="crm",via="mcp"} 3`,
		`toolbus_calls_total{outcome="upstream_not_found",tool="get_customer",upstream="crm",via="mcp"} 1`,
		`toolbus_call_duration_seconds_bucket{outcome="ok",tool="get_customer",upstream="crm",via="mcp",le="+Inf"} 3`,
		`toolbus_call_duration_seconds_count{outcome="ok",tool="get_customer",upstream="crm",via="mcp"} 3`,
		`toolbus_worker_calls_total{outcome="ok",tool="get_customer",upstream="crm"} 3`,
		`toolbus_call_queue_wait_seconds_count{tool="get_customer",upstream="crm"} 4`,
		`toolbus_upstream_duration_seconds_count{tool="get_customer",upstream="crm"} 4`,
		`toolbus_consumer_pending{consumer="calls-rest-crm",stream="CALLS"}`,
		`toolbus_consumer_ack_pending{consumer="calls-rest-crm",stream="CALLS"}`,
		`go_goroutines`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", grepLines(body, "toolbus_"))
	}
}

func scrape(t *testing.T, url string) string {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", url, res.StatusCode, err)
	}
	return string(b)
}

func grepLines(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// BenchmarkToolCallTracing measures one tool call end to end (MCP client →
// mcp-front → JetStream → rest-worker → demo CRM → back) with tracing off
// (no-op providers) and on (every span sampled, batch processor, exporter
// that discards).
func BenchmarkToolCallTracing(b *testing.B) {
	for _, bc := range []struct {
		name string
		exp  sdktrace.SpanExporter
	}{
		{"off", nil},
		{"on", tracetest.NewNoopExporter()},
	} {
		b.Run(bc.name, func(b *testing.B) {
			rig := newTraceRig(b, bc.exp)
			if rig.tel.TracingEnabled() != (bc.exp != nil) {
				b.Fatalf("tracing enabled = %v", rig.tel.TracingEnabled())
			}
			s := sessionWithHeaders(b, rig.mcpURL, nil)
			ctx := context.Background()
			params := &mcp.CallToolParams{Name: "get_customer", Arguments: map[string]any{"id": 1}}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				res, err := s.CallTool(ctx, params)
				if err != nil || res.IsError {
					b.Fatalf("call: %v %+v", err, res)
				}
			}
		})
	}
}
