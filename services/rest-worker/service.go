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
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/toolbus/toolbus/bus"
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
	DefaultAckWait = 15 * time.Second
	// DefaultMaxDeliver bounds deliveries of one call (crashes, shutdowns).
	DefaultMaxDeliver = 5
)

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

	mu      sync.Mutex
	worker  *bus.Worker
	backlog *bus.BacklogWatcher
	stopped bool
}

// New validates opts and prepares the HTTP clients and compiled routes. It
// makes no network calls.
func New(opts Options) (*Service, error) {
	switch {
	case opts.Catalog == nil:
		return nil, errors.New("rest-worker: no catalog")
	case opts.NC == nil || opts.JS == nil:
		return nil, errors.New("rest-worker: no NATS connection")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Instance == "" {
		opts.Instance = "rest-worker"
	}
	if opts.AckWait <= 0 {
		opts.AckWait = DefaultAckWait
	}
	if opts.MaxDeliver <= 0 {
		opts.MaxDeliver = DefaultMaxDeliver
	}
	ups, err := selectUpstreams(opts.Catalog, opts.Upstreams)
	if err != nil {
		return nil, err
	}
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
	return &Service{opts: opts, log: opts.Logger.With("service", "rest-worker", "instance", opts.Instance), upstreams: ups, h: h}, nil
}

// selectUpstreams returns the REST upstreams to serve, sorted by name.
func selectUpstreams(cat *catalog.Catalog, names []string) ([]*catalog.Upstream, error) {
	var ups []*catalog.Upstream
	if len(names) == 0 {
		for _, u := range cat.Upstreams {
			if u.Kind == catalog.KindREST || u.Kind == catalog.KindSOAP {
				ups = append(ups, u)
			}
		}
	} else {
		for _, n := range names {
			u, ok := cat.Upstreams[n]
			switch {
			case !ok:
				return nil, fmt.Errorf("rest-worker: upstream %q is not in the catalog", n)
			case u.Kind != catalog.KindREST && u.Kind != catalog.KindSOAP:
				return nil, fmt.Errorf("rest-worker: upstream %q is of kind %s, not rest or soap", n, u.Kind)
			}
			if !slices.Contains(ups, u) {
				ups = append(ups, u)
			}
		}
	}
	slices.SortFunc(ups, func(a, b *catalog.Upstream) int {
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	return ups, nil
}

// Start consumes the calls of every served upstream, one durable consumer
// per upstream whose MaxAckPending is the upstream's concurrency. It
// returns once consumption has started. If it fails, what it started has
// been stopped.
func (s *Service) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.stopped:
		return bus.ErrShuttingDown
	case s.worker != nil:
		return errors.New("rest-worker: already started")
	}
	// Mutating calls answer from their stored result when their
	// idempotency key was seen (a crash redelivery, a client retry).
	results, err := bus.OpenResultStore(ctx, s.opts.JS)
	if err != nil {
		return fmt.Errorf("rest-worker: %w", err)
	}
	// Shaping (jq, drop, cap) runs on the merged pages; the cache keeps
	// the shaped answer; results keep what the caller finally got.
	conts, err := bus.OpenContinuations(ctx, s.opts.JS)
	if err != nil {
		return fmt.Errorf("rest-worker: %w", err)
	}
	cache, err := bus.OpenResultCache(ctx, s.opts.JS)
	if err != nil {
		return fmt.Errorf("rest-worker: %w", err)
	}
	s.stores = stores{results: results, conts: conts, cache: cache}
	s.gen.Store(s.newGeneration(s.opts.Catalog, s.h))
	// Each call runs on the generation current when it arrives (reload.go).
	handle := func(ctx context.Context, call *toolbusv1.ToolCall, d bus.Delivery) (*toolbusv1.ToolResult, error) {
		return s.gen.Load().handle(ctx, call, d)
	}
	w := bus.NewWorker(s.opts.NC, s.opts.JS, bus.WorkerOptions{Name: s.opts.Instance, Logger: s.log,
		TracerProvider: s.opts.TracerProvider, MeterProvider: s.opts.MeterProvider})
	for _, u := range s.upstreams {
		cc := bus.CallConsumer{
			Kind:        string(u.Kind),
			Upstream:    u.Name,
			Concurrency: u.Concurrency,
			AckWait:     s.opts.AckWait,
			MaxDeliver:  s.opts.MaxDeliver,
		}
		if err := w.ServeCalls(ctx, cc, handle); err != nil {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = w.Shutdown(sctx)
			return fmt.Errorf("rest-worker: serve upstream %s: %w", u.Name, err)
		}
	}
	s.worker = w
	if s.opts.MeterProvider != nil {
		names := make([]string, 0, len(s.upstreams))
		for _, u := range s.upstreams {
			names = append(names, bus.CallConsumerName(string(u.Kind), u.Name))
		}
		bw, err := bus.WatchBacklog(ctx, s.opts.JS, s.opts.MeterProvider, bus.BacklogOptions{
			Stream: bus.StreamCalls, Consumers: names, Every: s.opts.BacklogEvery, Logger: s.log})
		if err != nil {
			s.log.Warn("consumer backlog metrics unavailable", "error", err)
		}
		s.backlog = bw
	}
	s.log.Info("serving REST upstreams", "upstreams", len(s.upstreams), "tools", len(s.h.routes))
	return nil
}

// Shutdown stops in two phases (see bus.Worker.Shutdown): no new calls are
// taken and in-flight calls finish until ctx ends; then they are cancelled
// and handed back for redelivery. Idle upstream connections are closed.
func (s *Service) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.stopped = true
	w := s.worker
	bw := s.backlog
	s.backlog = nil
	s.mu.Unlock()
	if bw != nil {
		bw.Stop()
	}
	var err error
	if w != nil {
		err = w.Shutdown(ctx)
	}
	s.h.closeIdle()
	if g := s.gen.Load(); g != nil {
		g.h.closeIdle()
	}
	return err
}
