// Package telemetry provides Toolbus's OpenTelemetry set-up: tracer
// providers configured from the standard OTEL_* environment variables (one
// per component, so that mcp-front and rest-worker appear as separate
// services even when they share a process), the W3C trace-context and
// baggage propagator, a Prometheus /metrics handler fed by the OpenTelemetry
// metrics SDK, the instruments every service records (metrics.go), the
// attribute keys of Toolbus spans (attrs.go), and a log/slog handler that
// adds trace_id and span_id to every record.
//
// Tracing is off, at no cost, unless an OTLP endpoint is configured: the
// tracer providers are then no-ops and nothing is exported. Metrics are
// always collected in process and served on /metrics, unless
// OTEL_SDK_DISABLED=true.
//
// It must not record secrets or bodies, and must not start network work
// before a span is exported: Setup makes no connection.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// Namespace is the service.namespace of every Toolbus resource unless
// OTEL_RESOURCE_ATTRIBUTES sets another.
const Namespace = "toolbus"

// Options configure Setup. The zero value reads everything from the
// environment.
type Options struct {
	// Components are the services running in this process ("mcp-front",
	// "rest-worker"...). Each gets its own tracer provider whose resource
	// has service.name = the component. A process running exactly one
	// component uses OTEL_SERVICE_NAME instead when it is set.
	Components []string
	// Instance is service.instance.id; Version is service.version.
	Instance string
	Version  string
	// SpanExporter, when set, replaces the OTLP exporter and turns tracing
	// on whatever the environment says (tests and benchmarks).
	SpanExporter sdktrace.SpanExporter
	// SpanProcessorOptions tune the batch span processor (tests use a
	// short timeout); the OTEL_BSP_* variables apply otherwise.
	SpanProcessorOptions []sdktrace.BatchSpanProcessorOption
}

// Telemetry is the process's telemetry. Its zero value is not usable: call
// Setup. All methods are safe for concurrent use.
type Telemetry struct {
	tracing bool
	tps     map[string]*sdktrace.TracerProvider
	exp     sdktrace.SpanExporter
	bsp     sdktrace.SpanProcessor
	opts    Options

	mu  sync.Mutex
	res map[string]*resource.Resource

	mp       metric.MeterProvider
	sdkMP    *sdkmetric.MeterProvider
	registry *prometheus.Registry
	metrics  http.Handler

	shutdownOnce sync.Once
	shutdownErr  error
}

// Setup reads the OTEL_* environment and builds the providers. It installs
// the W3C tracecontext and baggage propagator globally (bus headers and
// upstream requests use it) and makes no network connection.
//
// Recognised variables: OTEL_SDK_DISABLED, OTEL_TRACES_EXPORTER (otlp or
// none), OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
// OTEL_EXPORTER_OTLP_PROTOCOL and OTEL_EXPORTER_OTLP_TRACES_PROTOCOL (grpc
// or http/protobuf, the default), the other OTEL_EXPORTER_OTLP_* variables
// (headers, timeout, certificates, compression: read by the exporters),
// OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER and
// OTEL_TRACES_SAMPLER_ARG, and OTEL_BSP_*.
func Setup(ctx context.Context, opts Options) (*Telemetry, error) {
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	t := &Telemetry{opts: opts, tps: map[string]*sdktrace.TracerProvider{}, res: map[string]*resource.Resource{}}

	if envBool("OTEL_SDK_DISABLED") && opts.SpanExporter == nil {
		t.mp = metricnoop.NewMeterProvider()
		t.registry = prometheus.NewRegistry()
		t.metrics = promhttp.HandlerFor(t.registry, promhttp.HandlerOpts{})
		return t, nil
	}
	if err := t.setupMetrics(ctx); err != nil {
		return nil, err
	}

	exp := opts.SpanExporter
	if exp == nil {
		var err error
		exp, err = otlpExporterFromEnv(ctx)
		if err != nil {
			return nil, errors.Join(err, t.sdkMP.Shutdown(ctx))
		}
	}
	if exp == nil {
		return t, nil
	}
	t.tracing = true
	t.exp = exp
	// One batch processor, hence one export stream, shared by every
	// component's provider: spans keep their own provider's resource.
	t.bsp = sdktrace.NewBatchSpanProcessor(exp, opts.SpanProcessorOptions...)
	for _, c := range opts.Components {
		if _, err := t.tracerProvider(ctx, c); err != nil {
			return nil, errors.Join(err, t.Shutdown(ctx))
		}
	}
	return t, nil
}

// otlpExporterFromEnv returns the OTLP trace exporter the environment asks
// for, or nil when tracing is not configured.
func otlpExporterFromEnv(ctx context.Context) (sdktrace.SpanExporter, error) {
	switch strings.ToLower(strings.TrimSpace(os.Getenv("OTEL_TRACES_EXPORTER"))) {
	case "none":
		return nil, nil
	case "", "otlp":
	default:
		return nil, fmt.Errorf("telemetry: OTEL_TRACES_EXPORTER=%q is not supported (use otlp or none)", os.Getenv("OTEL_TRACES_EXPORTER"))
	}
	if os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" &&
		!strings.EqualFold(os.Getenv("OTEL_TRACES_EXPORTER"), "otlp") {
		// Nothing configured: tracing stays off.
		return nil, nil
	}
	proto := os.Getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if proto == "" {
		proto = os.Getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	switch proto {
	case "", "http/protobuf":
		// The exporters read the endpoint, headers, TLS and timeout
		// variables themselves.
		exp, err := otlptracehttp.New(ctx)
		if err != nil {
			return nil, fmt.Errorf("telemetry: OTLP/HTTP exporter: %w", err)
		}
		return exp, nil
	case "grpc":
		exp, err := otlptracegrpc.New(ctx)
		if err != nil {
			return nil, fmt.Errorf("telemetry: OTLP/gRPC exporter: %w", err)
		}
		return exp, nil
	}
	return nil, fmt.Errorf("telemetry: OTLP protocol %q is not supported (use grpc or http/protobuf)", proto)
}

func (t *Telemetry) setupMetrics(ctx context.Context) error {
	res, err := t.resource(ctx, "")
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	exp, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo())
	if err != nil {
		return fmt.Errorf("telemetry: prometheus exporter: %w", err)
	}
	t.sdkMP = sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp), sdkmetric.WithResource(res))
	t.mp = t.sdkMP
	t.registry = reg
	t.metrics = promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: nil})
	return nil
}

// resource builds the resource of component ("" = the process, for
// metrics).
func (t *Telemetry) resource(ctx context.Context, component string) (*resource.Resource, error) {
	name := component
	if name == "" {
		name = "toolbus"
		if len(t.opts.Components) == 1 {
			name = t.opts.Components[0]
		}
	}
	base := []attribute.KeyValue{
		attribute.String("service.name", name),
		attribute.String("service.namespace", Namespace),
	}
	if t.opts.Version != "" {
		base = append(base, attribute.String("service.version", t.opts.Version))
	}
	if t.opts.Instance != "" {
		base = append(base, attribute.String("service.instance.id", t.opts.Instance))
	}
	ropts := []resource.Option{
		resource.WithAttributes(base...),
		resource.WithFromEnv(), // OTEL_RESOURCE_ATTRIBUTES, OTEL_SERVICE_NAME win...
		resource.WithTelemetrySDK(),
	}
	if component != "" && len(t.opts.Components) > 1 {
		// ...except for service.name when one process runs several
		// components: each keeps its own name so traces show which did what.
		ropts = append(ropts, resource.WithAttributes(attribute.String("service.name", component)))
	}
	res, err := resource.New(ctx, ropts...)
	if err != nil && res == nil {
		return nil, fmt.Errorf("telemetry: resource: %w", err)
	}
	// A partial resource (an unparsable OTEL_RESOURCE_ATTRIBUTES entry) is
	// still usable.
	return res, nil
}

func (t *Telemetry) tracerProvider(ctx context.Context, component string) (*sdktrace.TracerProvider, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if tp, ok := t.tps[component]; ok {
		return tp, nil
	}
	res, err := t.resource(ctx, component)
	if err != nil {
		return nil, err
	}
	// No WithSampler: the SDK reads OTEL_TRACES_SAMPLER(_ARG) itself and
	// defaults to parentbased_always_on.
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(t.bsp), sdktrace.WithResource(res))
	t.tps[component] = tp
	return tp, nil
}

// TracingEnabled reports whether spans are exported.
func (t *Telemetry) TracingEnabled() bool { return t != nil && t.tracing }

// TracerProvider is the tracer provider of component: a no-op one when
// tracing is off. A component not named in Options gets its provider on
// first use.
func (t *Telemetry) TracerProvider(component string) trace.TracerProvider {
	if !t.TracingEnabled() {
		return tracenoop.NewTracerProvider()
	}
	tp, err := t.tracerProvider(context.Background(), component)
	if err != nil {
		return tracenoop.NewTracerProvider()
	}
	return tp
}

// MeterProvider is the process's meter provider (a no-op one when
// OTEL_SDK_DISABLED=true).
func (t *Telemetry) MeterProvider() metric.MeterProvider {
	if t == nil || t.mp == nil {
		return metricnoop.NewMeterProvider()
	}
	return t.mp
}

// MetricsHandler serves the Prometheus text format: every OpenTelemetry
// instrument plus the Go runtime and process collectors.
func (t *Telemetry) MetricsHandler() http.Handler { return t.metrics }

// ForceFlush exports every finished span now.
func (t *Telemetry) ForceFlush(ctx context.Context) error {
	if !t.TracingEnabled() {
		return nil
	}
	return t.bsp.ForceFlush(ctx)
}

// Shutdown flushes pending spans and stops the providers. Call it last, after
// every service has stopped, so their final spans are exported. It is
// idempotent.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	t.shutdownOnce.Do(func() {
		var errs []error
		t.mu.Lock()
		tps := t.tps
		t.mu.Unlock()
		for _, tp := range tps {
			errs = append(errs, tp.Shutdown(ctx))
		}
		if t.bsp != nil {
			// Shared by every provider: shut down once more in case there
			// were none.
			errs = append(errs, t.bsp.Shutdown(ctx))
		}
		if t.sdkMP != nil {
			errs = append(errs, t.sdkMP.Shutdown(ctx))
		}
		t.shutdownErr = errors.Join(errs...)
	})
	return t.shutdownErr
}

func envBool(name string) bool {
	return strings.EqualFold(strings.TrimSpace(os.Getenv(name)), "true")
}
