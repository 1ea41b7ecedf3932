// Package webhookingest provides the webhook receiver: POST
// /webhooks/{source} verifies a provider's delivery with the source's
// signature scheme, stores it durably on the WEBHOOKS stream (deduplicated
// by the provider's event id) and only then answers 2xx.
//
// It must not parse a body before its signature verified, must not tell a
// caller why a delivery was refused (the reason goes to the logs), and must
// never answer 2xx without a JetStream acknowledgement nor 4xx because the
// bus is down: the provider's retries are the only copy of an unacknowledged
// event.
package webhookingest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/toolbus/toolbus/bus"
	"github.com/toolbus/toolbus/catalog"
	"github.com/toolbus/toolbus/events"
	toolbusv1 "github.com/toolbus/toolbus/gen/toolbus/v1"
	"github.com/toolbus/toolbus/signature"
	"github.com/toolbus/toolbus/telemetry"
)

// Defaults.
const (
	// DefaultPublishTimeout bounds the wait for JetStream's acknowledgement.
	// Providers time out after 10 s (Stripe, GitHub) or 5 s (Shopify,
	// Slack: 3 s); answering 503 well before lets them retry cleanly.
	DefaultPublishTimeout = 2 * time.Second
	// RetryAfter is sent with every 503.
	RetryAfter = 5 * time.Second
)

// Options configure the ingest.
type Options struct {
	Catalog  *catalog.Catalog
	NC       *nats.Conn
	JS       jetstream.JetStream
	Instance string
	Logger   *slog.Logger
	// PublishTimeout bounds the wait for the PubAck (DefaultPublishTimeout).
	PublishTimeout time.Duration
	// TracerProvider records a server span per delivery, with the
	// verification and publish spans under it (nil: no spans).
	TracerProvider trace.TracerProvider
	// MeterProvider records deliveries by source and outcome and dedup
	// hits (nil: no metrics).
	MeterProvider metric.MeterProvider
}

// Service receives webhooks. Create it with New, mount Handler at
// /webhooks/, call Start to accept deliveries and Shutdown to stop.
type Service struct {
	opts Options
	log  *slog.Logger
	// sources is the table deliveries are verified with; Reload swaps it
	// whole, and a delivery keeps the table it started with.
	sources  atomic.Pointer[map[string]*source]
	reloadMu sync.Mutex
	mux      *http.ServeMux
	tracer   trace.Tracer
	tracing  bool // spans are recorded (not the no-op tracer)
	metrics  *telemetry.WebhookMetrics

	// mu orders admissions against Shutdown, as in mcp-front.
	mu       sync.RWMutex
	started  bool
	closing  bool
	inflight sync.WaitGroup
}

type source struct {
	cfg    *catalog.Source
	scheme signature.Scheme
	// extra lists the source's own non-secret headers worth keeping.
	extra []string
}

// New builds the verifiers of every catalog source. It has no side effects.
func New(opts Options) (*Service, error) {
	switch {
	case opts.Catalog == nil:
		return nil, errors.New("webhook-ingest: no catalog")
	case opts.NC == nil || opts.JS == nil:
		return nil, errors.New("webhook-ingest: no NATS connection")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Instance == "" {
		opts.Instance = "webhook-ingest"
	}
	if opts.PublishTimeout <= 0 {
		opts.PublishTimeout = DefaultPublishTimeout
	}
	s := &Service{
		opts:   opts,
		log:    opts.Logger.With("service", "webhook-ingest", "instance", opts.Instance),
		mux:    http.NewServeMux(),
		tracer: tracerFrom(opts.TracerProvider),
	}
	_, off := s.tracer.(tracenoop.Tracer)
	s.tracing = !off
	if opts.MeterProvider != nil {
		m, err := telemetry.NewWebhookMetrics(opts.MeterProvider)
		if err != nil {
			return nil, fmt.Errorf("webhook-ingest: metrics: %w", err)
		}
		s.metrics = m
	}
	sources, err := buildSources(opts.Catalog)
	if err != nil {
		return nil, fmt.Errorf("webhook-ingest: %w", err)
	}
	s.sources.Store(&sources)
	s.mux.HandleFunc("POST /webhooks/{source}", s.receive)
	return s, nil
}

// buildSources builds the verifier of every source of cat.
func buildSources(cat *catalog.Catalog) (map[string]*source, error) {
	out := make(map[string]*source, len(cat.Sources))
	for name, cs := range cat.Sources {
		sch, err := cs.Verifier()
		if err != nil {
			return nil, fmt.Errorf("source %s: %w", name, err)
		}
		src := &source{cfg: cs, scheme: sch}
		for _, h := range []string{cs.Signature.IDHeader, cs.Signature.TypeHeader, cs.Signature.TimestampHeader} {
			if h != "" {
				src.extra = append(src.extra, strings.ToLower(h))
			}
		}
		out[name] = src
	}
	return out, nil
}

// Reload verifies deliveries with the sources of cat from now on: a new
// source is received at once, a removed one answers 404, and a changed one
// (scheme, secrets, tolerance, limits) applies to the next delivery. A
// delivery in flight finishes with the source it started with. On error
// nothing changes.
func (s *Service) Reload(cat *catalog.Catalog) error {
	if cat == nil {
		return errors.New("webhook-ingest: reload: no catalog")
	}
	next, err := buildSources(cat)
	if err != nil {
		return fmt.Errorf("webhook-ingest: reload: %w", err)
	}
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	old := *s.sources.Load()
	var added, removed, changed []string
	for name, src := range next {
		prev, ok := old[name]
		switch {
		case !ok:
			added = append(added, name)
		case !sameSource(prev.cfg, src.cfg):
			changed = append(changed, name)
		}
	}
	for name := range old {
		if _, ok := next[name]; !ok {
			removed = append(removed, name)
		}
	}
	s.sources.Store(&next)
	if len(added)+len(removed)+len(changed) > 0 {
		slices.Sort(added)
		slices.Sort(removed)
		slices.Sort(changed)
		s.log.Info("webhook sources reloaded", "added", added, "removed", removed, "changed", changed, "sources", len(next))
	}
	return nil
}

// sameSource reports whether two catalog sources verify and keep
// deliveries alike, wherever they are written: the resolved signature
// configuration (secret values included: a rotated secret file is a
// change; they are compared, never logged) and the body limit.
func sameSource(a, b *catalog.Source) bool {
	return a.MaxBodyBytes == b.MaxBodyBytes && reflect.DeepEqual(a.Signature, b.Signature)
}

// Handler serves POST /webhooks/{source}; mount it at /webhooks/.
func (s *Service) Handler() http.Handler { return s.mux }

// Start accepts deliveries. The WEBHOOKS stream must exist
// (bus.Topology.Ensure); until Start, deliveries get 503.
func (s *Service) Start(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return bus.ErrShuttingDown
	}
	s.started = true
	s.log.Info("receiving webhooks", "sources", len(*s.sources.Load()))
	return nil
}

// Shutdown refuses new deliveries with 503 (providers retry) and waits for
// those in flight to get their acknowledgement, until ctx ends.
func (s *Service) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		s.inflight.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("webhook-ingest: deliveries still in flight: %w", ctx.Err())
	}
}

func (s *Service) enter() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if !s.started || s.closing {
		return false
	}
	s.inflight.Add(1)
	return true
}

// unavailable answers 503 with Retry-After: the provider keeps the event
// and retries, which is the only safe answer when it is not stored.
func unavailable(w http.ResponseWriter) {
	w.Header().Set("Retry-After", strconv.Itoa(int(RetryAfter/time.Second)))
	http.Error(w, "temporarily unavailable, retry later", http.StatusServiceUnavailable)
}

// expectWebhooks is the publish option of every event: the server refuses
// a message that some other stream would store.
var expectWebhooks = jetstream.WithExpectStream(bus.StreamWebhooks)

// envelopeSlack is room for the event's fields other than the body, so
// that the encoding rarely outgrows the buffer it is written into.
const envelopeSlack = 1 << 10

func (s *Service) receive(w http.ResponseWriter, r *http.Request) {
	ctx, span := s.startServerSpan(r)
	name := r.PathValue("source")
	src, ok := (*s.sources.Load())[name]
	dl := &delivery{start: time.Now(), ev: events.Webhook{Source: name}}
	defer s.endServerSpan(ctx, span, dl, ok)
	if !ok {
		http.NotFound(w, r)
		return
	}
	defer s.publishEvent(dl)
	if !s.enter() {
		dl.set(events.WebhookUnavailable, http.StatusServiceUnavailable, "not_accepting")
		unavailable(w)
		return
	}
	defer s.inflight.Done()
	// Every log line names the source; s.log.With would build a logger
	// per delivery even when nothing is logged.
	log := s.log

	limit := src.cfg.MaxBodyBytes
	if r.ContentLength > limit {
		log.Warn("webhook refused", "source", name, "status", http.StatusRequestEntityTooLarge, "reason", "body too large", "content_length", r.ContentLength)
		dl.set(events.WebhookTooLarge, http.StatusRequestEntityTooLarge, "body_too_large")
		http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
		return
	}
	bodyBuf, err := readBody(w, r, limit)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			log.Warn("webhook refused", "source", name, "status", http.StatusRequestEntityTooLarge, "reason", "body too large")
			dl.set(events.WebhookTooLarge, http.StatusRequestEntityTooLarge, "body_too_large")
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
		// The sender went away mid-body; nobody reads this answer.
		log.Info("webhook body unreadable", "source", name, "error", err)
		dl.set(events.WebhookUnreadable, http.StatusBadRequest, "")
		http.Error(w, "unreadable body", http.StatusBadRequest)
		return
	}
	// The body's bytes are reused once this delivery is answered: nothing
	// below keeps them (ids, types and challenges are copied into strings,
	// NATS copies the message before the publish returns).
	defer putBuf(bodyBuf)
	body := *bodyBuf
	received := time.Now()
	_, vspan := s.startVerifySpan(ctx, src)
	d, err := src.scheme.Verify(signature.Request{Header: r.Header, Body: body, Now: received})
	switch {
	case err != nil:
		endVerifySpan(vspan, rejectReason(err), true)
	case d.Handshake != nil:
		endVerifySpan(vspan, events.WebhookHandshake, false)
	default:
		endVerifySpan(vspan, "ok", false)
	}
	if err != nil {
		// The reason is for operators only: a prober learns nothing.
		log.Warn("webhook refused", "source", name, "status", http.StatusUnauthorized, "reason", err, "remote", r.RemoteAddr)
		dl.set(events.WebhookRejected, http.StatusUnauthorized, rejectReason(err))
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	dl.ev.Type = d.Type
	if d.Handshake != nil {
		dl.set(events.WebhookHandshake, http.StatusOK, "")
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, d.Handshake.Challenge)
		return
	}
	id := d.ID
	if id == "" {
		// No provider id: identical bodies are the same delivery.
		sum := sha256.Sum256(body)
		id = "sha256:" + hex.EncodeToString(sum[:])
	}
	dl.ev.EventID = id
	env := &envelope{ev: toolbusv1.WebhookEvent{
		Id: id, Source: name, Type: d.Type, Body: body,
		Headers: keptHeaders(r.Header, src.extra),
		Scheme:  src.cfg.Scheme,
	}}
	env.ev.ReceivedAt = env.timestamp(&env.received, received)
	if !d.Timestamp.IsZero() {
		env.ev.ProviderTime = env.timestamp(&env.provider, d.Timestamp)
	}
	dataBuf := getBuf(len(body) + envelopeSlack)
	defer putBuf(dataBuf)
	data, err := proto.MarshalOptions{}.MarshalAppend(*dataBuf, &env.ev)
	if err != nil {
		log.Error("encode webhook event", "source", name, "error", err)
		dl.set(events.WebhookUnavailable, http.StatusServiceUnavailable, "encode")
		unavailable(w)
		return
	}
	*dataBuf = data[:0] // keep the grown buffer, if it grew
	msg := &nats.Msg{Subject: bus.WebhookSubject(name, d.Type), Data: data, Header: nats.Header{}}
	msg.Header.Set(bus.HeaderMsgID, id)
	pctx, pspan := s.startPublishSpan(ctx, msg.Subject, name, d.Type, id, len(data))
	// The state-updater continues the trace under the publish span.
	bus.InjectTrace(pctx, msg.Header)

	// The provider's connection may drop, but the publish must still end
	// with a known outcome: bound it by PublishTimeout alone.
	pctx, cancel := context.WithTimeout(context.WithoutCancel(pctx), s.opts.PublishTimeout)
	defer cancel()
	ack, err := s.opts.JS.PublishMsg(pctx, msg, expectWebhooks)
	if err != nil {
		endPublishSpan(pspan, 0, false, err)
	} else {
		endPublishSpan(pspan, ack.Sequence, ack.Duplicate, nil)
	}
	if err != nil {
		log.Warn("webhook not stored", "source", name, "status", http.StatusServiceUnavailable, "event_id", id, "type", d.Type, "error", err)
		dl.set(events.WebhookUnavailable, http.StatusServiceUnavailable, "bus")
		unavailable(w)
		return
	}
	dl.ev.Seq = ack.Sequence
	if ack.Duplicate {
		dl.set(events.WebhookDuplicate, http.StatusOK, "")
		// Stored before: tell the provider to stop retrying.
		log.Info("webhook duplicate", "source", name, "event_id", id, "type", d.Type, "seq", ack.Sequence)
		w.WriteHeader(http.StatusOK)
		return
	}
	dl.set(events.WebhookStored, http.StatusAccepted, "")
	if log.Enabled(ctx, slog.LevelDebug) {
		log.Debug("webhook stored", "source", name, "event_id", id, "type", d.Type, "seq", ack.Sequence, "secret", d.Secret)
	}
	if d.Secret > 0 {
		log.Info("webhook verified with an older secret", "source", name, "secret", d.Secret)
	}
	w.WriteHeader(http.StatusAccepted)
}

// envelope is a delivery's event with its timestamps, allocated together.
type envelope struct {
	ev                 toolbusv1.WebhookEvent
	received, provider timestamppb.Timestamp
}

// timestamp sets ts to t, as timestamppb.New does, and returns it.
func (e *envelope) timestamp(ts *timestamppb.Timestamp, t time.Time) *timestamppb.Timestamp {
	ts.Seconds, ts.Nanos = t.Unix(), int32(t.Nanosecond())
	return ts
}

// keptPrefixes are provider header families that describe the delivery;
// anything that carries a signature is dropped below.
var keptPrefixes = []string{"x-github-", "x-shopify-", "x-slack-", "webhook-", "svix-"}

// keptHeaders returns the headers worth keeping with the event, lower-cased:
// content type, user agent, the providers' delivery headers and the
// source's configured id/type/timestamp headers, never a signature.
func keptHeaders(h http.Header, extra []string) map[string]string {
	out := make(map[string]string, 4)
	for name, vals := range h {
		if len(vals) == 0 {
			continue
		}
		if lower, ok := keptName(name, extra); ok {
			out[lower] = vals[0]
		}
	}
	return out
}

// keptName says whether the header name is kept, and its lower-case form.
// ASCII names (all that net/http accepts) are matched without allocating;
// only kept names are lower-cased.
func keptName(name string, extra []string) (string, bool) {
	for i := 0; i < len(name); i++ {
		if name[i] >= utf8.RuneSelf {
			lower := strings.ToLower(name)
			return lower, keptLower(lower, extra)
		}
	}
	if containsFold(name, "signature") || containsFold(name, "hmac") {
		return "", false
	}
	keep := equalFold(name, "content-type") || equalFold(name, "user-agent")
	for _, p := range keptPrefixes {
		keep = keep || len(name) >= len(p) && equalFold(name[:len(p)], p)
	}
	for _, e := range extra {
		keep = keep || equalFold(name, e)
	}
	if !keep {
		return "", false
	}
	return strings.ToLower(name), true
}

// keptLower is keptName's rule for a lower-cased name.
func keptLower(lower string, extra []string) bool {
	if strings.Contains(lower, "signature") || strings.Contains(lower, "hmac") {
		return false
	}
	keep := lower == "content-type" || lower == "user-agent"
	for _, p := range keptPrefixes {
		keep = keep || strings.HasPrefix(lower, p)
	}
	for _, e := range extra {
		keep = keep || lower == e
	}
	return keep
}

// equalFold reports whether the ASCII string s equals lower, which is
// lower-case, ignoring ASCII case.
func equalFold(s, lower string) bool {
	if len(s) != len(lower) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// containsFold reports whether the ASCII string s contains lower, which
// is lower-case, ignoring ASCII case.
func containsFold(s, lower string) bool {
	for i := 0; i+len(lower) <= len(s); i++ {
		if equalFold(s[i:i+len(lower)], lower) {
			return true
		}
	}
	return false
}
