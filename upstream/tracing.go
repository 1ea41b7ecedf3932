package upstream

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"syscall"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/toolbus/toolbus/telemetry"
)

// tracerName is the instrumentation scope of upstream client spans.
const tracerName = "github.com/toolbus/toolbus/upstream"

// Tracing returns the middleware for [Layers.Tracing]. It does not start a
// span itself: it marks the call so that every attempt, below the retry
// layer, becomes one HTTP client span (child of the caller's span, named
// "GET /customers/{id}" when [WithRoute] gave the route) with the
// W3C trace context injected into the request, and so that requests the
// quota or circuit layers refuse are counted in m (which may be nil).
// upstreamName may be empty when one middleware serves several upstreams:
// [WithRoute] names the upstream per request.
// Retries and quota waits become events through [TelemetryObserver].
//
// Span attributes: http.request.method, url.full (query redacted),
// url.template, server.address, server.port, http.response.status_code,
// http.request.resend_count, error.type, toolbus.upstream and
// toolbus.attempt. No header or body is recorded.
func Tracing(tp trace.TracerProvider, upstreamName string, m *telemetry.ReliabilityMetrics) Middleware {
	if tp == nil {
		tp = tracenoop.NewTracerProvider()
	}
	tl := &tracingLayer{tracer: tp.Tracer(tracerName), upstream: upstreamName, metrics: m}
	return func(next http.RoundTripper) http.RoundTripper {
		return &tracingTransport{next: next, tl: tl}
	}
}

type tracingLayer struct {
	tracer   trace.Tracer
	upstream string
	metrics  *telemetry.ReliabilityMetrics
}

type tracingKey struct{}

type routeKey struct{}

type route struct{ upstream, template string }

// WithRoute records the upstream and route template ("/customers/{id}") of
// the request sent with ctx: the template names the attempt spans, whose
// URL alone has too many values.
func WithRoute(ctx context.Context, upstreamName, template string) context.Context {
	return context.WithValue(ctx, routeKey{}, route{upstreamName, template})
}

type tracingTransport struct {
	next http.RoundTripper
	tl   *tracingLayer
}

func (t *tracingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	return t.next.RoundTrip(req.WithContext(context.WithValue(req.Context(), tracingKey{}, t.tl)))
}

// traceAttempt is called by the attempt counter for every request that goes
// past the retry layer; attempt is its number within the call (1-based).
func traceAttempt(req *http.Request, attempt int, next http.RoundTripper) (*http.Response, error) {
	tl, ok := req.Context().Value(tracingKey{}).(*tracingLayer)
	if !ok {
		return next.RoundTrip(req)
	}
	rt, _ := req.Context().Value(routeKey{}).(route)
	tmpl, upName := rt.template, tl.upstream
	if rt.upstream != "" {
		upName = rt.upstream
	}
	name := req.Method
	if tmpl != "" {
		name += " " + tmpl
	}
	ctx, span := tl.tracer.Start(req.Context(), name, trace.WithSpanKind(trace.SpanKindClient))
	if span.IsRecording() {
		span.SetAttributes(
			telemetry.AttrHTTPMethod.String(req.Method),
			telemetry.AttrURLFull.String(redactURL(req.URL)),
			telemetry.AttrServerAddress.String(req.URL.Hostname()),
			telemetry.AttrUpstream.String(upName),
			telemetry.AttrAttempt.Int(attempt),
		)
		if p := port(req.URL.Port(), req.URL.Scheme); p > 0 {
			span.SetAttributes(telemetry.AttrServerPort.Int(p))
		}
		if tmpl != "" {
			span.SetAttributes(telemetry.AttrURLTemplate.String(tmpl))
		}
		if attempt > 1 {
			span.SetAttributes(telemetry.AttrHTTPResendCount.Int(attempt - 1))
		}
		// A shallow copy with its own header map: a RoundTripper must not
		// change the request it was given.
		r := new(http.Request)
		*r = *req
		r.Header = req.Header.Clone()
		if r.Header == nil {
			r.Header = http.Header{}
		}
		otel.GetTextMapPropagator().Inject(ctx, propagation.HeaderCarrier(r.Header))
		req = r
	}
	resp, err := next.RoundTrip(req.WithContext(ctx))
	if err != nil {
		et := errorType(err)
		switch et {
		case "quota", "circuit_open":
			tl.metrics.QuotaRejected(ctx, upName, et)
		}
		if span.IsRecording() {
			span.SetAttributes(telemetry.AttrErrorType.String(et))
			span.SetStatus(codes.Error, et)
		}
		span.End()
		return resp, err
	}
	if span.IsRecording() {
		span.SetAttributes(telemetry.AttrHTTPStatus.Int(resp.StatusCode))
		if resp.StatusCode >= 400 {
			span.SetAttributes(telemetry.AttrErrorType.String(strconv.Itoa(resp.StatusCode)))
			span.SetStatus(codes.Error, "")
		}
	}
	if resp.Body == nil || resp.Body == http.NoBody {
		span.End()
		return resp, nil
	}
	// The attempt lasts until its body is read or closed.
	resp.Body = &spanBody{ReadCloser: resp.Body, span: span}
	return resp, nil
}

func port(p, scheme string) int {
	if p != "" {
		n, _ := strconv.Atoi(p)
		return n
	}
	switch scheme {
	case "http":
		return 80
	case "https":
		return 443
	}
	return 0
}

// errorType is the error.type of a failed attempt: a short stable word,
// never the error's text (which may hold a URL).
func errorType(err error) string {
	var ne net.Error
	var tlsErr *tls.CertificateVerificationError
	var recErr tls.RecordHeaderError
	switch {
	case errors.Is(err, ErrQuota):
		return "quota"
	case errors.Is(err, ErrCircuitOpen):
		return "circuit_open"
	case errors.Is(err, ErrResponseTooLarge):
		return "response_too_large"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection_refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "connection_reset"
	case errors.As(err, &tlsErr), errors.As(err, &recErr):
		return "tls"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	}
	return "transport"
}

type spanBody struct {
	io.ReadCloser
	span trace.Span
	once sync.Once
}

func (b *spanBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		if err != io.EOF && b.span.IsRecording() {
			b.span.SetAttributes(telemetry.AttrErrorType.String(errorType(err)))
			b.span.SetStatus(codes.Error, "body read")
		}
		b.end()
	}
	return n, err
}

func (b *spanBody) Close() error {
	err := b.ReadCloser.Close()
	b.end()
	return err
}

func (b *spanBody) end() { b.once.Do(func() { b.span.End() }) }

// TelemetryObserver is the reliability [Observer] (with [QuotaObserver] and
// [CircuitObserver]) that turns retries, back-off waits, quota waits and
// circuit changes into events on the current span and into metrics (m may
// be nil). Events: "retry" (toolbus.attempt = the attempt that failed,
// toolbus.retry.wait_ms, toolbus.retry.reason), "quota_wait"
// (toolbus.quota.wait_ms, toolbus.quota.reason) and "circuit_change"
// (toolbus.circuit.from, toolbus.circuit.to).
func TelemetryObserver(m *telemetry.ReliabilityMetrics) Observer { return telemetryObserver{m: m} }

type telemetryObserver struct{ m *telemetry.ReliabilityMetrics }

var (
	_ Observer        = telemetryObserver{}
	_ QuotaObserver   = telemetryObserver{}
	_ CircuitObserver = telemetryObserver{}
)

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func (o telemetryObserver) OnRetry(ctx context.Context, attempt int, wait time.Duration, reason string) {
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.AddEvent("retry", trace.WithAttributes(
			telemetry.AttrAttempt.Int(attempt),
			telemetry.AttrRetryWait.Float64(ms(wait)),
			telemetry.AttrRetryReason.String(reason),
		))
	}
}

func (o telemetryObserver) OnQuotaWait(ctx context.Context, upstream string, wait time.Duration, reason string) {
	o.m.QuotaWaited(ctx, upstream, wait)
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.AddEvent("quota_wait", trace.WithAttributes(
			telemetry.AttrUpstream.String(upstream),
			telemetry.AttrQuotaWait.Float64(ms(wait)),
			telemetry.AttrQuotaReason.String(reason),
		))
	}
}

func (o telemetryObserver) OnCircuitChange(ctx context.Context, upstream, from, to string) {
	var s telemetry.CircuitState
	switch to {
	case "open":
		s = telemetry.CircuitOpen
	case "half-open":
		s = telemetry.CircuitHalfOpen
	default:
		s = telemetry.CircuitClosed
	}
	o.m.Circuit(ctx, upstream, s)
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.AddEvent("circuit_change", trace.WithAttributes(
			telemetry.AttrUpstream.String(upstream),
			telemetry.AttrCircuitFrom.String(from),
			telemetry.AttrCircuitTo.String(to),
		))
	}
}
