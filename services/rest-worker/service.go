// Package restworker provides the REST worker service: it consumes the tool
// calls of REST upstreams from the bus, performs each against its upstream
// with the shared upstream client, and answers with a ToolResult.
//
// Request building (request.go) is where tool arguments meet the network:
// the scheme, host and port come only from the catalog's base URL, and
// each path argument becomes exactly one escaped path segment. The worker
// must not retry, rate limit or authenticate on its own: those are layers
// of the upstream client. It must not log arguments, bodies or secrets.
package restworker

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/toolbus/toolbus/bus"
	"github.com/toolbus/toolbus/bus/callservice"
	"github.com/toolbus/toolbus/catalog"
	toolbusv1 "github.com/toolbus/toolbus/gen/toolbus/v1"
	"github.com/toolbus/toolbus/telemetry"
	"github.com/toolbus/toolbus/upstream"
)

// Defaults of the call consumers.
const (
	// DefaultAckWait is how long a call held by a worker that stopped
	// heart-beating (a crash) waits before JetStream gives it to another
	// replica. The worker heart-beats every third of it.
	DefaultAckWait = callservice.DefaultAckWait
	// DefaultMaxDeliver bounds deliveries of one call (crashes, shutdowns).
	DefaultMaxDeliver = callservice.DefaultMaxDeliver
)

// role is what this worker serves: REST and SOAP upstreams.
var role = callservice.Role{
	Name:      "rest-worker",
	Kinds:     []catalog.Kind{catalog.KindREST, catalog.KindSOAP},
	Described: "rest or soap",
}

// Options configure the REST worker.
type Options struct {
	Catalog  *catalog.Catalog
	NC       *nats.Conn
	JS       jetstream.JetStream
	Instance string // worker instance name
	Logger   *slog.Logger
	// Upstreams restricts which REST upstreams this process serves (empty = all).
	Upstreams []string

	// AckWait and MaxDeliver configure the call consumers (defaults above).
	AckWait    time.Duration
	MaxDeliver int
	// HTTP configures every upstream client (its layers: retry, quota and
	// auth plug in here).
	HTTP upstream.Options
	// TracerProvider records the consumer span of each delivery and one
	// client span per upstream attempt; MeterProvider the worker and
	// consumer-backlog metrics (package telemetry). No-op when nil.
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
	// BacklogEvery is how often consumer backlogs are read for metrics
	// (default 10s).
	BacklogEvery time.Duration
}

// Service is a running REST worker.
type Service struct {
	opts      Options
	log       *slog.Logger
	upstreams []*catalog.Upstream
	h         *handler
	// gen is the catalog being served (reload.go); stores are opened by
	// Start.
	gen    atomic.Pointer[generation]
	stores stores
	// life consumes the calls (bus/callservice).
	life *callservice.Service
}

// New validates opts and prepares the HTTP clients and compiled routes. It
// makes no network calls.
func New(opts Options) (*Service, error) {
	life, err := callservice.New(role, callservice.Options{
		Catalog: opts.Catalog, NC: opts.NC, JS: opts.JS, Instance: opts.Instance, Logger: opts.Logger,
		Upstreams: opts.Upstreams, AckWait: opts.AckWait, MaxDeliver: opts.MaxDeliver,
		TracerProvider: opts.TracerProvider, MeterProvider: opts.MeterProvider,
		WatchBacklog: true, BacklogEvery: opts.BacklogEvery,
	})
	if err != nil {
		return nil, err
	}
	ups := life.Upstreams()
	if opts.HTTP.Layers.Tracing == nil && (opts.TracerProvider != nil || opts.MeterProvider != nil) {
		var rm *telemetry.ReliabilityMetrics
		if opts.MeterProvider != nil {
			if rm, err = telemetry.NewReliabilityMetrics(opts.MeterProvider); err != nil {
				return nil, fmt.Errorf("rest-worker: metrics: %w", err)
			}
		}
		// Upstream names come per request from upstream.WithRoute.
		opts.HTTP.Layers.Tracing = upstream.Tracing(opts.TracerProvider, "", rm)
	}
	h, err := newHandler(opts.Catalog, ups, opts.HTTP)
	if err != nil {
		return nil, fmt.Errorf("rest-worker: %w", err)
	}
	h.publish = opts.NC.Publish
	return &Service{opts: opts, log: life.Logger(), upstreams: ups, h: h, life: life}, nil
}

// Start consumes the calls of every served upstream, one durable consumer
// per upstream whose MaxAckPending is the upstream's concurrency. It
// returns once consumption has started. If it fails, what it started has
// been stopped.
func (s *Service) Start(ctx context.Context) error {
	err := s.life.Start(ctx, func(ctx context.Context, st callservice.Stores) (bus.CallHandler, error) {
		// Mutating calls answer from their stored result when their
		// idempotency key was seen (a crash redelivery, a client retry).
		// Shaping (jq, drop, cap) runs on the merged pages; the cache keeps
		// the shaped answer; results keep what the caller finally got.
		cache, err := bus.OpenResultCache(ctx, s.opts.JS)
		if err != nil {
			return nil, err
		}
		s.stores = stores{results: st.Results, conts: st.Conts, cache: cache}
		s.gen.Store(s.newGeneration(s.opts.Catalog, s.h))
		// Each call runs on the generation current when it arrives (reload.go).
		return func(ctx context.Context, call *toolbusv1.ToolCall, d bus.Delivery) (*toolbusv1.ToolResult, error) {
			return s.gen.Load().handle(ctx, call, d)
		}, nil
	})
	if err != nil {
		return err
	}
	s.log.Info("serving REST upstreams", "upstreams", len(s.upstreams), "tools", len(s.h.routes))
	return nil
}

// Shutdown stops in two phases (see bus.Worker.Shutdown): no new calls are
// taken and in-flight calls finish until ctx ends; then they are cancelled
// and handed back for redelivery. Idle upstream connections are closed.
func (s *Service) Shutdown(ctx context.Context) error {
	err := s.life.Shutdown(ctx)
	s.h.closeIdle()
	if g := s.gen.Load(); g != nil {
		g.h.closeIdle()
	}
	return err
}
