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
	"fmt"
	"log/slog"
	"strings"
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
	"github.com/toolbus/toolbus/upstream"
)

// Defaults of the call consumers, as for REST calls.
const (
	// DefaultAckWait is how long a call held by a worker that stopped
	// heart-beating waits before JetStream gives it to another replica.
	DefaultAckWait = callservice.DefaultAckWait
	// DefaultMaxDeliver bounds deliveries of one call (crashes, shutdowns).
	DefaultMaxDeliver = callservice.DefaultMaxDeliver
)

// role is what this worker serves: graphql upstreams.
var role = callservice.Role{
	Name:      "graphql-worker",
	Kinds:     []catalog.Kind{catalog.KindGraphQL},
	Described: "graphql",
}

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
	// life consumes the calls (bus/callservice).
	life *callservice.Service
}

// New validates opts and prepares one HTTP client per upstream. It makes no
// network calls. The catalog must have no GraphQL schema pending
// introspection (catalog.ResolveGraphQLSchemas).
func New(opts Options) (*Service, error) {
	life, err := callservice.New(role, callservice.Options{
		Catalog: opts.Catalog, NC: opts.NC, JS: opts.JS, Instance: opts.Instance, Logger: opts.Logger,
		Upstreams: opts.Upstreams, AckWait: opts.AckWait, MaxDeliver: opts.MaxDeliver,
		TracerProvider: opts.TracerProvider, MeterProvider: opts.MeterProvider,
		Check: func(cat *catalog.Catalog) error {
			if p := cat.PendingGraphQLSchemas(); len(p) > 0 {
				return fmt.Errorf("graphql-worker: the schemas of upstreams %s are not loaded yet (run catalog.ResolveGraphQLSchemas first)", strings.Join(p, ", "))
			}
			return nil
		},
	})
	if err != nil {
		return nil, err
	}
	ups := life.Upstreams()
	h, err := newHandler(opts.Catalog, ups, opts.HTTP)
	if err != nil {
		return nil, fmt.Errorf("graphql-worker: %w", err)
	}
	return &Service{opts: opts, log: life.Logger(), upstreams: ups, h: h, life: life}, nil
}

// Start consumes the calls of every served upstream, one durable consumer
// per upstream (calls-graphql-<upstream>) whose MaxAckPending is the
// upstream's concurrency. If it fails, what it started has been stopped.
func (s *Service) Start(ctx context.Context) error {
	err := s.life.Start(ctx, func(_ context.Context, st callservice.Stores) (bus.CallHandler, error) {
		// Mutations answer from their stored result when their idempotency
		// key was seen (a crash redelivery, a client retry), as REST calls
		// do. Response shaping (jq, drop, cap) applies to the merged answer.
		s.stores = stores{results: st.Results, conts: st.Conts}
		s.gen.Store(s.newGeneration(s.opts.Catalog, s.h))
		// Each call runs on the generation current when it arrives (reload.go).
		return func(ctx context.Context, call *toolbusv1.ToolCall, d bus.Delivery) (*toolbusv1.ToolResult, error) {
			return s.gen.Load().handle(ctx, call, d)
		}, nil
	})
	if err != nil {
		return err
	}
	s.log.Info("serving GraphQL upstreams", "upstreams", len(s.upstreams), "tools", len(s.h.routes))
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
