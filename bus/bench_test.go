package bus_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/toolbus/toolbus/bus"
	toolbusv1 "github.com/toolbus/toolbus/gen/toolbus/v1"
)

// BenchmarkBusRoundTrip measures the bus path alone, as the all-in-one runs
// it (in-process connection, file storage): publish a call, pull it, run a
// trivial handler, reply, ack. Budget: under 100 µs p50 at one client.
//
// The traced variant records every span (always-on sampler, batch span
// processor, an exporter that discards): what tracing adds to the bus path
// (design budget: at most 10 µs p50 for the whole call). Each call runs
// under a server span standing for mcp-front's tools/call span, as in the
// all-in-one: its context is what the call's headers carry to the worker.
func BenchmarkBusRoundTrip(b *testing.B) {
	b.Run("untraced", func(b *testing.B) { benchBusRoundTrip(b, nil) })
	b.Run("traced", func(b *testing.B) {
		tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()),
			sdktrace.WithBatcher(tracetest.NewNoopExporter()))
		defer tp.Shutdown(context.Background())
		benchBusRoundTrip(b, tp)
	})
}

func benchBusRoundTrip(b *testing.B, tp trace.TracerProvider) {
	ns, err := bus.StartEmbedded(bus.EmbeddedOptions{StoreDir: b.TempDir(), DontListen: true})
	if err != nil {
		b.Fatal(err)
	}
	defer ns.Shutdown()
	nc, err := bus.Connect(bus.ConnectOptions{InProcess: ns, Name: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	if err := bus.DefaultTopology().Ensure(ctx, js); err != nil {
		b.Fatal(err)
	}
	c, err := bus.NewCaller(nc, js, bus.CallerOptions{Instance: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	w := bus.NewWorker(nc, js, bus.WorkerOptions{Name: "w", TracerProvider: tp})
	defer w.Shutdown(ctx)
	if err := w.ServeCalls(ctx, bus.CallConsumer{Kind: "rest", Upstream: "crm", Concurrency: 64}, func(ctx context.Context, call *toolbusv1.ToolCall, d bus.Delivery) (*toolbusv1.ToolResult, error) {
		return &toolbusv1.ToolResult{Json: call.Arguments}, nil
	}); err != nil {
		b.Fatal(err)
	}
	subject := bus.CallSubject("rest", "crm", "lookup")
	args := []byte(`{"id":"42"}`)
	var front trace.Tracer
	if tp != nil {
		front = tp.Tracer("bench-front")
	}
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		cctx, span := ctx, trace.SpanFromContext(ctx)
		if front != nil {
			cctx, span = front.Start(ctx, "tools/call lookup", trace.WithSpanKind(trace.SpanKindServer))
		}
		_, err := c.Call(cctx, subject, &toolbusv1.ToolCall{Tool: "lookup", Upstream: "crm", Kind: "rest", Arguments: args})
		span.End()
		if err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	reportPercentiles(b, lat)
}

func reportPercentiles(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}
