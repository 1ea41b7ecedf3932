package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

func TestSetupFromEnvironment(t *testing.T) {
	tests := []struct {
		name        string
		give        map[string]string
		wantTracing bool
		wantErr     bool
	}{
		{name: "nothing configured", give: map[string]string{}, wantTracing: false},
		{name: "endpoint", give: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, wantTracing: true},
		{name: "traces endpoint over grpc", give: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, wantTracing: true},
		{name: "exporter none", give: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_TRACES_EXPORTER": "none"}, wantTracing: false},
		{name: "sdk disabled", give: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_SDK_DISABLED": "true"}, wantTracing: false},
		{name: "unknown protocol", give: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, k := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_TRACES_EXPORTER", "OTEL_SDK_DISABLED"} {
				t.Setenv(k, tt.give[k])
			}
			tel, err := Setup(context.Background(), Options{Components: []string{"mcp-front"}})
			if (err != nil) != tt.wantErr {
				t.Fatalf("Setup error = %v, want error %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			defer func() {
				// Nothing listens: do not wait for the export to time out.
				ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
				defer cancel()
				_ = tel.Shutdown(ctx)
			}()
			if got := tel.TracingEnabled(); got != tt.wantTracing {
				t.Errorf("TracingEnabled = %v, want %v", got, tt.wantTracing)
			}
			_, span := tel.TracerProvider("mcp-front").Tracer("t").Start(context.Background(), "x")
			if got := span.IsRecording(); got != tt.wantTracing {
				t.Errorf("span recording = %v, want %v", got, tt.wantTracing)
			}
			span.End()
			if tel.MetricsHandler() == nil {
				t.Error("no /metrics handler")
			}
		})
	}
}

func TestServiceNamePerComponent(t *testing.T) {
	t.Setenv("OTEL_SERVICE_NAME", "from-env")
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=test")
	exp := tracetest.NewInMemoryExporter()
	tests := []struct {
		give []string
		want map[string]string // component -> service.name
	}{
		{give: []string{"mcp-front", "rest-worker"}, want: map[string]string{"mcp-front": "mcp-front", "rest-worker": "rest-worker"}},
		{give: []string{"rest-worker"}, want: map[string]string{"rest-worker": "from-env"}},
	}
	for _, tt := range tests {
		tel, err := Setup(context.Background(), Options{Components: tt.give, SpanExporter: exp, SpanProcessorOptions: []sdktrace.BatchSpanProcessorOption{}})
		if err != nil {
			t.Fatal(err)
		}
		for c, want := range tt.want {
			_, span := tel.TracerProvider(c).Tracer("t").Start(context.Background(), c)
			span.End()
			_ = tel.ForceFlush(context.Background())
			spans := exp.GetSpans()
			got := ""
			env := ""
			for _, kv := range spans[len(spans)-1].Resource.Attributes() {
				switch kv.Key {
				case "service.name":
					got = kv.Value.AsString()
				case "deployment.environment.name":
					env = kv.Value.AsString()
				}
			}
			if got != want || env != "test" {
				t.Errorf("components %v: %s has service.name %q env %q, want %q and test", tt.give, c, got, env, want)
			}
		}
		_ = tel.Shutdown(context.Background())
	}
}

func TestLogHandlerAddsIDs(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(LogHandler(slog.NewJSONHandler(&buf, nil))).With("service", "x")
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ctx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid}))
	log.InfoContext(ctx, "with")
	log.Info("without")
	dec := json.NewDecoder(&buf)
	var with, without map[string]any
	if err := dec.Decode(&with); err != nil {
		t.Fatal(err)
	}
	if err := dec.Decode(&without); err != nil {
		t.Fatal(err)
	}
	if with["trace_id"] != tid.String() || with["span_id"] != sid.String() || with["service"] != "x" {
		t.Errorf("record with a span: %v", with)
	}
	if _, ok := without["trace_id"]; ok {
		t.Errorf("record without a span has trace_id: %v", without)
	}
}
