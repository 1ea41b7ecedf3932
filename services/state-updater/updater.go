// Package stateupdater provides the state-updater service: it consumes
// verified webhook events from the WEBHOOKS stream and applies them to the
// catalog's projections (package projection), one durable consumer per
// projection, shared by every replica.
//
// It must not verify, publish or re-order events, and must not write
// projection buckets except through projection.Applier: the ordering and
// idempotency rules live there, so the replay command and any number of
// replicas apply events the same way.
package stateupdater

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"

	"github.com/toolbus/toolbus/bus"
	"github.com/toolbus/toolbus/catalog"
	toolbusv1 "github.com/toolbus/toolbus/gen/toolbus/v1"
	"github.com/toolbus/toolbus/projection"
	"github.com/toolbus/toolbus/telemetry"
)

// Consumer defaults.
const (
	DefaultAckWait = 30 * time.Second
	// DefaultMaxDeliver bounds deliveries of an event whose application
	// keeps failing for a transient reason (bus trouble); the last one
	// dead-letters it so the projection does not stall forever.
	DefaultMaxDeliver = 20
	// DefaultMaxAckPending bounds events in flight per projection across
	// all replicas.
	DefaultMaxAckPending = 256
)

// retryBackOff spaces redeliveries of events that failed transiently.
var retryBackOff = []time.Duration{time.Second, 5 * time.Second, 30 * time.Second}

// ConsumerName is the durable consumer of a projection: an operational
// contract (scalers and `toolbus webhooks` read it).
func ConsumerName(projectionName string) string { return bus.StateConsumerName(projectionName) }

// FilterSubjects are the WEBHOOKS subjects of a projection's sources.
func FilterSubjects(p *catalog.Projection) []string {
	var subjects []string
	for _, s := range p.Sources {
		// WebhookSubject sanitises its type token, so build the wildcard
		// from a placeholder type.
		subjects = append(subjects, strings.TrimSuffix(bus.WebhookSubject(s.Name, "x"), "x")+">")
	}
	slices.Sort(subjects)
	return slices.Compact(subjects)
}

// Options configure the state-updater.
type Options struct {
	Catalog  *catalog.Catalog
	NC       *nats.Conn
	JS       jetstream.JetStream
	Instance string
	Logger   *slog.Logger
	// Projections restricts which projections this process serves (empty = all).
	Projections []string
	// Buckets shapes the projection buckets (replicas, storage).
	Buckets projection.BucketOptions
	// AckWait, MaxDeliver and MaxAckPending configure the consumers.
	AckWait       time.Duration
	MaxDeliver    int
	MaxAckPending int
	// TracerProvider records a consumer span per delivery with an apply
	// span under it, continuing the ingest's trace (nil: no spans).
	TracerProvider trace.TracerProvider
	// MeterProvider records events by projection and outcome, projection
	// lag and dedup hits (nil: no metrics).
	MeterProvider metric.MeterProvider
}

// Service is a running state-updater.
type Service struct {
	opts    Options
	log     *slog.Logger
	projs   []*catalog.Projection
	applier *projection.Applier
	tracer  trace.Tracer
	metrics *telemetry.WebhookMetrics

	mu      sync.Mutex
	running map[string]*consumer // by projection name
	started bool
	stopped bool
}

// consumer is one projection being consumed. Reload swaps proj; an event
// is applied with the projection current when it arrives.
type consumer struct {
	proj atomic.Pointer[catalog.Projection]
	cc   jetstream.ConsumeContext
	// removed is set when a reload drops the projection: an event the
	// server still hands over (to a pull made before) is given back, not
	// applied.
	removed atomic.Bool
}

// New checks opts. It makes no network calls.
func New(opts Options) (*Service, error) {
	switch {
	case opts.Catalog == nil:
		return nil, errors.New("state-updater: no catalog")
	case opts.NC == nil || opts.JS == nil:
		return nil, errors.New("state-updater: no NATS connection")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Instance == "" {
		opts.Instance = "state-updater"
	}
	if opts.AckWait <= 0 {
		opts.AckWait = DefaultAckWait
	}
	if opts.MaxDeliver <= 0 {
		opts.MaxDeliver = DefaultMaxDeliver
	}
	if opts.MaxAckPending <= 0 {
		opts.MaxAckPending = DefaultMaxAckPending
	}
	projs, missing := served(opts.Catalog, opts.Projections)
	if len(missing) > 0 {
		return nil, fmt.Errorf("state-updater: projection %q is not in the catalog", missing[0])
	}
	var wm *telemetry.WebhookMetrics
	if opts.MeterProvider != nil {
		var err error
		if wm, err = telemetry.NewWebhookMetrics(opts.MeterProvider); err != nil {
			return nil, fmt.Errorf("state-updater: metrics: %w", err)
		}
	}
	return &Service{
		opts:    opts,
		log:     opts.Logger.With("service", "state-updater", "instance", opts.Instance),
		projs:   projs,
		applier: projection.NewApplier(opts.JS),
		tracer:  tracerFrom(opts.TracerProvider),
		metrics: wm,
	}, nil
}

// served are the projections of cat this process applies: those named
// (all when none is), in name order; missing are named ones cat lacks.
func served(cat *catalog.Catalog, names []string) (projs []*catalog.Projection, missing []string) {
	names = slices.Clone(names)
	if len(names) == 0 {
		for name := range cat.Projections {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, name := range slices.Compact(names) {
		if p, ok := cat.Projections[name]; ok {
			projs = append(projs, p)
		} else {
			missing = append(missing, name)
		}
	}
	return projs, missing
}

// ConsumerConfig is the durable consumer of projection p.
func (s *Service) ConsumerConfig(p *catalog.Projection) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:        ConsumerName(p.Name),
		Description:    "Toolbus projection " + p.Name,
		FilterSubjects: FilterSubjects(p),
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        s.opts.AckWait,
		MaxDeliver:     s.opts.MaxDeliver,
		MaxAckPending:  s.opts.MaxAckPending,
		DeliverPolicy:  jetstream.DeliverAllPolicy,
		BackOff:        retryBackOff,
	}
}

// Start ensures the projection buckets and consumers, and consumes. If it
// fails, what it started has been stopped.
func (s *Service) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.stopped:
		return bus.ErrShuttingDown
	case s.started:
		return errors.New("state-updater: already started")
	}
	if err := projection.EnsureBuckets(ctx, s.opts.JS, s.opts.Catalog, s.opts.Buckets); err != nil {
		return fmt.Errorf("state-updater: %w", err)
	}
	s.running = map[string]*consumer{}
	for _, p := range s.projs {
		if err := s.consume(ctx, p); err != nil {
			for _, c := range s.running {
				c.cc.Stop()
			}
			s.running = nil
			return fmt.Errorf("state-updater: %w", err)
		}
	}
	s.started = true
	s.log.Info("applying projections", "projections", len(s.projs))
	return nil
}

// consume creates (or updates) the durable consumer of p and consumes it.
// s.mu is held.
func (s *Service) consume(ctx context.Context, p *catalog.Projection) error {
	var cons jetstream.Consumer
	err := bus.Declare(ctx, func(ctx context.Context) (err error) {
		cons, err = s.opts.JS.CreateOrUpdateConsumer(ctx, bus.StreamWebhooks, s.ConsumerConfig(p))
		return err
	})
	if err != nil {
		return fmt.Errorf("consume projection %s: %w", p.Name, err)
	}
	c := &consumer{}
	c.proj.Store(p)
	name := p.Name
	c.cc, err = cons.Consume(func(msg jetstream.Msg) {
		if c.removed.Load() {
			_ = msg.Nak()
			return
		}
		s.handle(c.proj.Load(), msg)
	},
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			s.log.Warn("consume", "projection", name, "error", err)
		}))
	if err != nil {
		return fmt.Errorf("consume projection %s: %w", p.Name, err)
	}
	s.running[p.Name] = c
	return nil
}

// reloadTimeout bounds the bus work of one Reload.
const reloadTimeout = 30 * time.Second

// Reload applies the projections of cat from now on:
//   - a new projection gets its bucket and durable consumer, which starts
//     from the first stored event of its sources: it is built from the
//     events the WEBHOOKS stream still holds;
//   - a changed projection applies its new definition to the next event
//     (entities already written keep their values until an event changes
//     them, or a replay rebuilds them); a source added to it is consumed
//     from its next event, since the durable consumer does not go back;
//   - a removed projection is no longer consumed; its bucket and durable
//     consumer stay, as data, until deleted by hand.
//
// A process restricted to some projections (Options.Projections) keeps
// to them: one the catalog no longer has stops. An error (the bus refused
// a consumer) is returned after everything else was applied; the next
// applied catalog or a restart retries.
func (s *Service) Reload(cat *catalog.Catalog) error {
	if cat == nil {
		return errors.New("state-updater: reload: no catalog")
	}
	next, missing := served(cat, s.opts.Projections)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return nil
	}
	s.opts.Catalog, s.projs = cat, next
	if !s.started {
		return nil
	}
	if len(missing) > 0 {
		s.log.Warn("projections this process applies are no longer in the catalog", "projections", missing)
	}
	ctx, cancel := context.WithTimeout(context.Background(), reloadTimeout)
	defer cancel()
	var errs []error
	var added, changed, removed []string
	keep := map[string]bool{}
	for _, p := range next {
		keep[p.Name] = true
		c, ok := s.running[p.Name]
		if !ok {
			err := projection.EnsureBucket(ctx, s.opts.JS, p, s.opts.Buckets)
			if err == nil {
				err = s.consume(ctx, p)
			}
			if err != nil {
				errs = append(errs, err)
				continue
			}
			added = append(added, p.Name)
			continue
		}
		old := c.proj.Load()
		if !slices.Equal(FilterSubjects(old), FilterSubjects(p)) {
			if err := bus.Declare(ctx, func(ctx context.Context) error {
				_, err := s.opts.JS.UpdateConsumer(ctx, bus.StreamWebhooks, s.ConsumerConfig(p))
				return err
			}); err != nil {
				// Keep applying the old definition: its filter is the
				// consumer's.
				errs = append(errs, fmt.Errorf("update the consumer of projection %s: %w", p.Name, err))
				continue
			}
		}
		if !reflect.DeepEqual(definition(old), definition(p)) {
			changed = append(changed, p.Name)
		}
		c.proj.Store(p)
	}
	for name, c := range s.running {
		if !keep[name] {
			c.removed.Store(true)
			c.cc.Stop()
			delete(s.running, name)
			removed = append(removed, name)
		}
	}
	if len(added)+len(changed)+len(removed) > 0 {
		slices.Sort(removed)
		s.log.Info("projections reloaded", "added", added, "changed", changed, "removed", removed)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("state-updater: reload: %w", err)
	}
	return nil
}

// definition is what of p decides how events are applied: its sources by
// name, not where anything is written, so that moving lines is no change.
func definition(p *catalog.Projection) catalog.Projection {
	q := *p
	q.Pos = catalog.Pos{}
	q.Sources = nil
	for _, src := range p.Sources {
		q.Sources = append(q.Sources, &catalog.Source{Name: src.Name})
	}
	return q
}

// Shutdown stops pulling and waits for the event being applied, until ctx
// ends. Unacknowledged events are redelivered to another replica.
func (s *Service) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.stopped = true
	var consumes []jetstream.ConsumeContext
	for _, c := range s.running {
		consumes = append(consumes, c.cc)
	}
	s.running = nil
	s.mu.Unlock()
	for _, cc := range consumes {
		cc.Drain()
	}
	for _, cc := range consumes {
		select {
		case <-cc.Closed():
		case <-ctx.Done():
			for _, c := range consumes {
				c.Stop()
			}
			return fmt.Errorf("state-updater: shutdown: %w", ctx.Err())
		}
	}
	return nil
}

// applyTimeout bounds one event's application (a few KV round trips).
const applyTimeout = 10 * time.Second

func (s *Service) handle(p *catalog.Projection, msg jetstream.Msg) {
	md, err := msg.Metadata()
	if err != nil {
		s.log.Error("message without metadata", "projection", p.Name, "error", err)
		_ = msg.Term()
		return
	}
	ctx, cancel := context.WithTimeout(bus.ExtractTrace(context.Background(), msg.Headers()), applyTimeout)
	defer cancel()
	ctx, span := s.startProcessSpan(ctx, ConsumerName(p.Name), msg, md)
	var ev toolbusv1.WebhookEvent
	if err := proto.Unmarshal(msg.Data(), &ev); err != nil {
		s.metrics.Projected(ctx, p.Name, sourceOf(msg), outcomePoison)
		disp := s.deadLetter(ctx, p, msg, md, "", fmt.Errorf("undecodable WebhookEvent: %v: %w", err, projection.ErrPoison))
		endProcessSpan(span, disp, true)
		return
	}
	actx, aspan := s.tracer.Start(ctx, "apply "+p.Name, trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithAttributes(
			telemetry.AttrProjection.String(p.Name), telemetry.AttrSource.String(ev.Source),
			telemetry.AttrEventType.String(ev.Type), telemetry.AttrEventID.String(ev.Id)))
	res, err := s.applier.ApplyResult(actx, p, projection.Event{
		ID: ev.Id, Source: ev.Source, Type: ev.Type, Body: ev.Body,
		ReceivedAt: ev.ReceivedAt.AsTime(), Sequence: md.Sequence.Stream,
	})
	outcome := outcomeOf(res, err)
	endApplySpan(aspan, res, outcome, err)
	s.metrics.Projected(ctx, p.Name, ev.Source, outcome)
	switch outcome {
	case outcomeApplied, outcomeDeleted:
		if ev.ReceivedAt != nil {
			s.metrics.Applied(ctx, p.Name, ev.Source, time.Since(ev.ReceivedAt.AsTime()))
		}
	case outcomeDuplicate:
		s.metrics.DedupHit(ctx, ev.Source)
	}
	switch {
	case errors.Is(err, projection.ErrPoison):
		endProcessSpan(span, s.deadLetter(ctx, p, msg, md, ev.Source, err), true)
	case err != nil && md.NumDelivered >= uint64(s.opts.MaxDeliver):
		endProcessSpan(span, s.deadLetter(ctx, p, msg, md, ev.Source, fmt.Errorf("gave up after %d deliveries: %w", md.NumDelivered, err)), true)
	case err != nil:
		// Transient (bus trouble, a hot key): let JetStream redeliver it
		// with back-off; later events of other entities keep flowing.
		s.log.WarnContext(ctx, "apply failed, will retry", "projection", p.Name, "event_id", ev.Id, "seq", md.Sequence.Stream, "error", err)
		_ = msg.NakWithDelay(retryBackOff[min(int(md.NumDelivered), len(retryBackOff))-1])
		endProcessSpan(span, "nak", true)
	default:
		s.log.DebugContext(ctx, "event", "projection", p.Name, "event_id", ev.Id, "seq", md.Sequence.Stream, "outcome", res.Outcome)
		_ = msg.Ack()
		endProcessSpan(span, "ack", false)
	}
}

// sourceOf reads the source from a WEBHOOKS subject.
func sourceOf(msg jetstream.Msg) string {
	return strings.Split(strings.TrimPrefix(msg.Subject(), "toolbus.webhook."), ".")[0]
}

// deadLetter stores the event with its reason and acknowledges it, so it
// no longer blocks anything; if the dead letter cannot be stored, the event
// is redelivered instead. It returns the disposition: dead_letter or nak.
func (s *Service) deadLetter(ctx context.Context, p *catalog.Projection, msg jetstream.Msg, md *jetstream.MsgMetadata, source string, reason error) string {
	if source == "" {
		source = sourceOf(msg)
	}
	headers := map[string]string{}
	for k, v := range msg.Headers() {
		if len(v) > 0 {
			headers[k] = v[0]
		}
	}
	dl := &toolbusv1.DeadLetter{
		// Deterministic: a redelivered poison event is dead-lettered once.
		Id:             fmt.Sprintf("%s-%d", ConsumerName(p.Name), md.Sequence.Stream),
		Kind:           "webhook",
		Subject:        msg.Subject(),
		Payload:        msg.Data(),
		Headers:        headers,
		Reason:         reason.Error(),
		Class:          toolbusv1.ErrorClass_ERROR_CLASS_INVALID_ARGUMENT,
		Deliveries:     md.NumDelivered,
		LastError:      reason.Error(),
		Stream:         bus.StreamWebhooks,
		StreamSequence: md.Sequence.Stream,
		Handler:        ConsumerName(p.Name),
	}
	if !errors.Is(reason, projection.ErrPoison) {
		dl.Class = toolbusv1.ErrorClass_ERROR_CLASS_INTERNAL
	}
	if err := bus.PublishDeadLetter(ctx, s.opts.JS, dl, source); err != nil {
		s.log.Error("dead letter not stored, will retry", "projection", p.Name, "seq", md.Sequence.Stream, "error", err)
		_ = msg.NakWithDelay(retryBackOff[0])
		return "nak"
	}
	s.log.WarnContext(ctx, "event dead-lettered", "projection", p.Name, "seq", md.Sequence.Stream, "reason", reason)
	_ = msg.Ack()
	return "dead_letter"
}
