// Package mcpfront provides Toolbus's front door: it serves the catalog's
// tools over MCP (Streamable HTTP and stdio) and over gRPC
// (toolbus.v1.ToolService), validates every call's arguments, publishes the
// call on the bus and turns the worker's ToolResult into the answer.
//
// It must not call upstreams itself and must not retry: workers own
// execution, retries and quotas. A call that reaches it is answered exactly
// once, with a result, a tool error a model can act on, or (only for
// protocol faults) a protocol error.
package mcpfront

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/toolbus/toolbus/bus"
	"github.com/toolbus/toolbus/catalog"
	"github.com/toolbus/toolbus/mcpauth"
	"github.com/toolbus/toolbus/telemetry"
)

// Options configures a Service.
type Options struct {
	Catalog *catalog.Catalog
	NC      *nats.Conn
	JS      jetstream.JetStream
	// Instance uniquely names this front's reply subjects; random if empty.
	Instance string
	Logger   *slog.Logger
	// Stateless serves Streamable HTTP without sessions. Only a stateless
	// server can speak protocol 2026-07-28; a stateful one negotiates
	// 2025-11-25 or older.
	Stateless bool
	// Version is reported as the MCP server implementation version.
	Version string
	// Auth authenticates MCP and gRPC callers (the catalog's auth
	// section); nil serves without authentication. serve mounts its
	// metadata and gRPC interceptor.
	Auth *mcpauth.Authenticator
	// TracerProvider and MeterProvider record the call spans and metrics
	// (package telemetry); no-op when nil.
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
	// MaxCallsPerCaller bounds one caller's calls in flight (callerlimit.go):
	// 0 for DefaultMaxCallsPerCaller, negative for no limit.
	MaxCallsPerCaller int
}

// sessionIdleTimeout closes stateful MCP sessions that clients abandoned
// without a DELETE, so they do not hold memory forever.
const sessionIdleTimeout = 30 * time.Minute

// Service serves the catalog's tools. Create it with New, call Start before
// serving, and Shutdown to stop.
type Service struct {
	cat   *catalog.Catalog
	nc    *nats.Conn
	js    jetstream.JetStream
	inst  string
	log   *slog.Logger
	tools map[string]*frontTool

	server  *mcp.Server
	handler http.Handler
	// lists is the tools/list fast path over HTTP (listfast.go).
	lists *listSplicer
	// direct answers tools/call over HTTP without the SDK (directcall.go).
	direct *directCalls

	caller *bus.Caller
	// auth authenticates callers; nil when the catalog has no auth. Its
	// tool scopes follow a reload (reload.go).
	auth *mcpauth.Authenticator
	// perCaller bounds each caller's calls in flight; nil for no limit.
	perCaller *callerLimiter

	tp      trace.TracerProvider
	tracer  trace.Tracer
	metrics *telemetry.CallMetrics
	// state serves projections; nil when the catalog has none.
	state *stateSurface
	// cache and conts are opened by Start (cache.go, continue.go); nil
	// when their buckets are unavailable.
	cache *frontCache
	conts *bus.Continuations
	// cur is the catalog being served and its tools (reload.go); cat is
	// the one the service started with.
	cur atomic.Pointer[served]
	// reloadMu serialises Reload; calls never take it.
	reloadMu sync.Mutex

	// mu orders admissions against Shutdown: once closing is set, no call
	// joins inflight, so waiting on inflight cannot miss one.
	mu       sync.RWMutex
	closing  bool
	inflight sync.WaitGroup
}

// New builds the MCP server and the tool table from the catalog. It has no
// side effects on the bus: Start connects the call path.
func New(opts Options) (*Service, error) {
	switch {
	case opts.Catalog == nil:
		return nil, errors.New("mcpfront: no catalog")
	case opts.NC == nil || opts.JS == nil:
		return nil, errors.New("mcpfront: no NATS connection")
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	// Every line logged with a call's context carries its trace_id.
	log = slog.New(telemetry.LogHandler(log.Handler()))
	version := opts.Version
	if version == "" {
		version = "dev"
	}
	s := &Service{
		cat:   opts.Catalog,
		auth:  opts.Auth,
		nc:    opts.NC,
		js:    opts.JS,
		inst:  opts.Instance,
		log:   log,
		tools: make(map[string]*frontTool, len(opts.Catalog.Tools)),

		perCaller: newCallerLimiter(opts.MaxCallsPerCaller),
	}
	s.tp = opts.TracerProvider
	if s.tp == nil {
		s.tp = tracenoop.NewTracerProvider()
	}
	s.tracer = s.tp.Tracer(tracerName)
	if opts.MeterProvider != nil {
		m, err := telemetry.NewCallMetrics(opts.MeterProvider)
		if err != nil {
			return nil, fmt.Errorf("mcpfront: metrics: %w", err)
		}
		s.metrics = m
	}
	sopts := &mcp.ServerOptions{
		Logger: log,
		// Declare the capability even for an empty catalog, so clients ask.
		HasTools: true,
	}
	s.state = withState(opts.Catalog, opts.JS, sopts)
	var receiving []mcp.Middleware
	if opts.Auth != nil {
		receiving = append(receiving, opts.Auth.MCPMiddleware())
	}
	// Outermost, after auth: tools/list reuses the encoded tool list while
	// the (possibly filtered) list is unchanged (listcache.go), and over
	// HTTP writes it into the response directly (listfast.go).
	s.lists = newListSplicer()
	receiving = append(receiving, listCacheMiddleware(&listCache{}, s.lists))
	// tools/call over HTTP runs the same middleware on its fast path
	// (directcall.go), which learns of sessions once they are initialized.
	s.direct = newDirectCalls(s, opts.Stateless, receiving)
	s.server = mcp.NewServer(&mcp.Implementation{Name: "toolbus", Title: "Toolbus", Version: version}, sopts)
	for _, m := range append(receiving, s.direct.track) {
		s.server.AddReceivingMiddleware(m)
	}
	s.state.serve(s.server, s.log, s.tp)
	for _, ct := range opts.Catalog.Tools {
		ft, err := newFrontTool(ct)
		if err != nil {
			return nil, err
		}
		s.tools[ct.Name] = ft
		s.server.AddTool(ft.mcp, s.mcpToolHandler(ft))
	}
	s.addCatalogExtras(opts.Catalog) // continue.go, widgets.go
	first := &served{cat: opts.Catalog, tools: s.tools}
	first.extraTools, first.widgets = extraNames(opts.Catalog)
	s.cur.Store(first)
	// No EventStore: the tools/list fast path relies on the SDK keeping no
	// copy of an answer to replay (listfast.go).
	streamable := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s.server }, &mcp.StreamableHTTPOptions{
		Stateless:      opts.Stateless,
		Logger:         log,
		SessionTimeout: sessionIdleTimeout,
		// A client that hangs up can no longer receive the answer; stop
		// waiting for it (the worker still finishes or times out on its own).
		PropagateRequestCancellation: true,
	})
	mcpHTTP := s.lists.wrap(streamable, s.direct)
	s.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.enter() {
			w.Header().Set("Retry-After", "1")
			http.Error(w, "Toolbus is shutting down; retry shortly", http.StatusServiceUnavailable)
			return
		}
		// A POST carries requests and their answers: Shutdown waits for it
		// so an answer is flushed before sessions close. A GET is a
		// long-lived notification stream that closing the session ends.
		if r.Method == http.MethodPost {
			s.inflight.Add(1)
			defer s.inflight.Done()
		}
		s.mu.RUnlock()
		mcpHTTP.ServeHTTP(w, r)
	})
	if opts.Auth != nil {
		s.handler = opts.Auth.Middleware(s.handler)
	}
	return s, nil
}

// Start creates the bus caller: from then on calls are published and their
// results routed back to this instance. It does not declare streams; the
// topology is applied once by whoever owns it (bus.Topology.Ensure).
func (s *Service) Start(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c, err := bus.NewCaller(s.nc, s.js, bus.CallerOptions{Instance: s.inst, Logger: s.log})
	if err != nil {
		return fmt.Errorf("mcpfront: start: %w", err)
	}
	s.openStores(ctx) // continue.go
	s.mu.Lock()
	s.caller = c
	s.mu.Unlock()
	s.state.start(ctx)
	return nil
}

// MCPHandler is the Streamable HTTP handler to mount at /mcp. Once Shutdown
// has begun it answers 503 with Retry-After.
func (s *Service) MCPHandler() http.Handler { return s.handler }

// ServeStdio serves MCP over the process's stdin and stdout until the client
// disconnects or ctx ends. Desktop clients launch Toolbus this way.
func (s *Service) ServeStdio(ctx context.Context) error {
	return s.ServeTransport(ctx, &mcp.StdioTransport{})
}

// ServeTransport serves one MCP session over t until the peer disconnects or
// ctx ends. ServeStdio uses it; tests use it with in-memory pipes.
func (s *Service) ServeTransport(ctx context.Context, t mcp.Transport) error {
	if err := s.server.Run(ctx, t); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("mcpfront: serve: %w", err)
	}
	return nil
}

// Shutdown stops accepting calls, waits for in-flight calls until ctx ends,
// then closes MCP sessions and the bus caller. Calls still waiting when ctx
// ends are answered with a "shutting down" tool error.
func (s *Service) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	already := s.closing
	s.closing = true
	caller := s.caller
	s.mu.Unlock()
	if already {
		return nil
	}

	done := make(chan struct{})
	go func() { s.inflight.Wait(); close(done) }()
	var waitErr error
	select {
	case <-done:
	case <-ctx.Done():
		waitErr = fmt.Errorf("mcpfront: calls still in flight at shutdown: %w", ctx.Err())
	}
	var closeErr error
	if caller != nil {
		// Waiting calls return bus.ErrShuttingDown, which answers them.
		closeErr = caller.Close()
	}
	<-done
	s.state.stop()
	for ss := range s.server.Sessions() {
		_ = ss.Close()
	}
	return errors.Join(waitErr, closeErr)
}

// enter read-locks mu and reports true when the service still accepts
// work; the caller then registers itself and unlocks. On false, mu is
// already unlocked.
func (s *Service) enter() bool {
	s.mu.RLock()
	if s.closing {
		s.mu.RUnlock()
		return false
	}
	return true
}

// admit registers one call in flight. It returns the caller to use, or
// bus.ErrShuttingDown once Shutdown has begun.
func (s *Service) admit() (*bus.Caller, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closing {
		return nil, bus.ErrShuttingDown
	}
	if s.caller == nil {
		return nil, errNotStarted
	}
	s.inflight.Add(1)
	return s.caller, nil
}

var errNotStarted = errors.New("mcpfront: Start was not called")
