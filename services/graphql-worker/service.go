// Package graphqlworker provides the GraphQL worker service: it consumes the
// tool calls of graphql upstreams from the bus, POSTs each tool's validated
// operation with the call's arguments as variables through the shared
// upstream client, and answers with a ToolResult: the data, the data with
// its errors marked, or a tool error a model can act on. Relay connections
// are followed page by page, or their cursor is handed back, as the catalog
// says.
//
// The worker sends only the operation the catalog validated; arguments
// become variables, never document text. It must not retry, rate limit or
// authenticate on its own (layers of the upstream client do) and must not
// log arguments, bodies or secrets.
package graphqlworker

import (
	"context"
	"errors"
	"fmt"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/toolbus/toolbus/bus"
	"github.com/toolbus/toolbus/catalog"
	toolbusv1 "github.com/toolbus/toolbus/gen/toolbus/v1"
	"github.com/toolbus/toolbus/upstream"
)

// Defaults of the call consumers, as for REST calls.
const (
	// DefaultAckWait is how long a call held by a worker that stopped
	// heart-beating waits before JetStream gives it to another replica.
	DefaultAckWait = 15 * time.Second
	// DefaultMaxDeliver bounds deliveries of one call (crashes, shutdowns).
	DefaultMaxDeliver = 5
)

// Options configure the GraphQL worker.
type Options struct {
	Catalog  *catalog.Catalog
	NC       *nats.Conn
	JS       jetstream.JetStream
	Instance string // worker instance name
	Logger   *slog.Logger
	// Upstreams restricts which graphql upstreams this process serves
	// (empty = all).
	Upstreams []string

	// AckWait and MaxDeliver configure the call consumers (defaults above).
	AckWait    time.Duration
	MaxDeliver int
	// HTTP configures every upstream client (its layers: retry, quota and
	// auth plug in here).
	HTTP upstream.Options
	// TracerProvider and MeterProvider record the consume/process spans and
	// the worker metrics (no-op when nil).
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
}

// Service is a running GraphQL worker.
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
	stopped bool
}

// New validates opts and prepares one HTTP client per upstream. It makes no
// network calls. The catalog must have no GraphQL schema pending
// introspection (catalog.ResolveGraphQLSchemas).
func New(opts Options) (*Service, error) {
	switch {
	case opts.Catalog == nil:
		return nil, errors.New("graphql-worker: no catalog")
	case opts.NC == nil || opts.JS == nil:
		return nil, errors.New("graphql-worker: no NATS connection")
	}
	if p := opts.Catalog.PendingGraphQLSchemas(); len(p) > 0 {
		return nil, fmt.Errorf("graphql-worker: the schemas of upstreams %s are not loaded yet (run catalog.ResolveGraphQLSchemas first)", strings.Join(p, ", "))
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Instance == "" {
		opts.Instance = "graphql-worker"
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
	h, err := newHandler(opts.Catalog, ups, opts.HTTP)
	if err != nil {
		return nil, fmt.Errorf("graphql-worker: %w", err)
	}
	return &Service{opts: opts, log: opts.Logger.With("service", "graphql-worker", "instance", opts.Instance), upstreams: ups, h: h}, nil
}

// selectUpstreams returns the graphql upstreams to serve, sorted by name.
func selectUpstreams(cat *catalog.Catalog, names []string) ([]*catalog.Upstream, error) {
	var ups []*catalog.Upstream
	if len(names) == 0 {
		for _, u := range cat.Upstreams {
			if u.Kind == catalog.KindGraphQL {
				ups = append(ups, u)
			}
		}
	}
	for _, n := range names {
		u, ok := cat.Upstreams[n]
		switch {
		case !ok:
			return nil, fmt.Errorf("graphql-worker: upstream %q is not in the catalog", n)
		case u.Kind != catalog.KindGraphQL:
			return nil, fmt.Errorf("graphql-worker: upstream %q is of kind %s, not graphql", n, u.Kind)
		}
		if !slices.Contains(ups, u) {
			ups = append(ups, u)
		}
	}
	slices.SortFunc(ups, func(a, b *catalog.Upstream) int { return strings.Compare(a.Name, b.Name) })
	return ups, nil
}

// Start consumes the calls of every served upstream, one durable consumer
// per upstream (calls-graphql-<upstream>) whose MaxAckPending is the
// upstream's concurrency. If it fails, what it started has been stopped.
func (s *Service) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.stopped:
		return bus.ErrShuttingDown
	case s.worker != nil:
		return errors.New("graphql-worker: already started")
	}
	// Mutations answer from their stored result when their idempotency key
	// was seen (a crash redelivery, a client retry), as REST calls do.
	results, err := bus.OpenResultStore(ctx, s.opts.JS)
	if err != nil {
		return fmt.Errorf("graphql-worker: %w", err)
	}
	// Response shaping (jq, drop, cap) applies to the merged answer.
	conts, err := bus.OpenContinuations(ctx, s.opts.JS)
	if err != nil {
		return fmt.Errorf("graphql-worker: %w", err)
	}
	s.stores = stores{results: results, conts: conts}
	s.gen.Store(s.newGeneration(s.opts.Catalog, s.h))
	// Each call runs on the generation current when it arrives (reload.go).
	handle := func(ctx context.Context, call *toolbusv1.ToolCall, d bus.Delivery) (*toolbusv1.ToolResult, error) {
		return s.gen.Load().handle(ctx, call, d)
	}
	w := bus.NewWorker(s.opts.NC, s.opts.JS, bus.WorkerOptions{Name: s.opts.Instance, Logger: s.log,
		TracerProvider: s.opts.TracerProvider, MeterProvider: s.opts.MeterProvider})
	for _, u := range s.upstreams {
		cc := bus.CallConsumer{
			Kind:        string(catalog.KindGraphQL),
			Upstream:    u.Name,
			Concurrency: u.Concurrency,
			AckWait:     s.opts.AckWait,
			MaxDeliver:  s.opts.MaxDeliver,
		}
		if err := w.ServeCalls(ctx, cc, handle); err != nil {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = w.Shutdown(sctx)
			return fmt.Errorf("graphql-worker: serve upstream %s: %w", u.Name, err)
		}
	}
	s.worker = w
	s.log.Info("serving GraphQL upstreams", "upstreams", len(s.upstreams), "tools", len(s.h.routes))
	return nil
}

// Shutdown stops in two phases (see bus.Worker.Shutdown): no new calls are
// taken and in-flight calls finish until ctx ends; then they are cancelled
// and handed back for redelivery. Idle upstream connections are closed.
func (s *Service) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.stopped = true
	w := s.worker
	s.mu.Unlock()
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
