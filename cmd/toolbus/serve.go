package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc"

	"github.com/toolbus/toolbus/bus"
	"github.com/toolbus/toolbus/catalog"
	"github.com/toolbus/toolbus/health"
	graphqlworker "github.com/toolbus/toolbus/services/graphql-worker"
	mcpfront "github.com/toolbus/toolbus/services/mcp-front"
	restworker "github.com/toolbus/toolbus/services/rest-worker"
	stateupdater "github.com/toolbus/toolbus/services/state-updater"
	webhookingest "github.com/toolbus/toolbus/services/webhook-ingest"
	"github.com/toolbus/toolbus/telemetry"
	"github.com/toolbus/toolbus/upstream"
)

// Service names accepted by --services.
const (
	svcMCPFront  = "mcp-front"
	svcRESTWork  = "rest-worker"
	svcGraphQL   = "graphql-worker"
	svcWebhooks  = "webhook-ingest"
	svcStateUpd  = "state-updater"
	servicesAll  = "all"
	defaultGrace = 25 * time.Second
)

// available lists the services this build can run, in start order.
var available = []string{svcMCPFront, svcRESTWork, svcGraphQL, svcWebhooks, svcStateUpd}

// serveConfig is everything `toolbus serve` is told.
type serveConfig struct {
	catalogPath string
	catalogSrc  []byte // when set, parsed instead of reading catalogPath
	catalogFS   fs.FS  // files catalogSrc references (GraphQL schemas, operations)
	services    []string
	natsURL     string
	natsListen  string
	dataDir     string
	httpAddr    string
	grpcAddr    string
	stdio       bool
	stateless   bool
	logLevel    string
	logFormat   string
	grace       time.Duration
	instance    string
	replicas    int
	rel         reliabilityConfig
	console     consoleConfig
	runtime     runtimeConfig // runtimecfg.go
	// spanExporter, when set, receives the spans instead of OTLP (tests).
	spanExporter sdktrace.SpanExporter
}

// envFlags maps flags whose defaults may come from the environment through
// the flag's own parser, so a malformed value is an error, not ignored.
var envFlags = map[string]string{
	"shutdown-grace":  "TOOLBUS_SHUTDOWN_GRACE",
	"stream-replicas": "TOOLBUS_STREAM_REPLICAS",
}

// applyEnv sets flags from the environment before the command line is
// parsed, so explicit flags still win.
func applyEnv(fs *flag.FlagSet) error {
	for flagName, env := range envFlags {
		if v, ok := os.LookupEnv(env); ok && fs.Lookup(flagName) != nil {
			if err := fs.Set(flagName, v); err != nil {
				return fmt.Errorf("%s=%q: %v", env, v, err)
			}
		}
	}
	return nil
}

func envOr(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

func (c *serveConfig) register(fs *flag.FlagSet) {
	fs.StringVar(&c.catalogPath, "catalog", envOr("TOOLBUS_CATALOG", "toolbus.yaml"), "catalog file [TOOLBUS_CATALOG]")
	fs.Func("services", "comma-separated services to run: all, "+strings.Join(available, ", ")+" [TOOLBUS_SERVICES]", func(s string) error {
		svcs, err := parseServices(s)
		c.services = svcs
		return err
	})
	fs.StringVar(&c.natsURL, "nats", envOr("TOOLBUS_NATS_URL", ""), "external NATS URL(s); empty runs an embedded NATS server with JetStream [TOOLBUS_NATS_URL]")
	fs.StringVar(&c.natsListen, "nats-listen", envOr("TOOLBUS_NATS_LISTEN", "127.0.0.1:4222"), "where the embedded NATS server listens for other processes; 'none' for in-process only [TOOLBUS_NATS_LISTEN]")
	fs.StringVar(&c.dataDir, "data", envOr("TOOLBUS_DATA", "./data"), "directory for the embedded server's JetStream files [TOOLBUS_DATA]")
	fs.StringVar(&c.httpAddr, "http", envOr("TOOLBUS_HTTP_ADDR", "127.0.0.1:8080"), "HTTP listen address (/mcp, /healthz, /readyz); 'none' to disable [TOOLBUS_HTTP_ADDR]")
	fs.StringVar(&c.grpcAddr, "grpc", envOr("TOOLBUS_GRPC_ADDR", "127.0.0.1:9090"), "gRPC listen address (ToolService, grpc.health.v1); 'none' to disable [TOOLBUS_GRPC_ADDR]")
	fs.BoolVar(&c.stdio, "stdio", false, "serve MCP over stdin/stdout (for desktop clients that launch toolbus)")
	fs.BoolVar(&c.stateless, "stateless", envOr("TOOLBUS_MCP_STATELESS", "") == "true", "serve Streamable HTTP statelessly (no MCP sessions) [TOOLBUS_MCP_STATELESS]")
	fs.StringVar(&c.logLevel, "log-level", envOr("TOOLBUS_LOG_LEVEL", "info"), "debug, info, warn or error [TOOLBUS_LOG_LEVEL]")
	fs.StringVar(&c.logFormat, "log-format", envOr("TOOLBUS_LOG_FORMAT", "json"), "json or text [TOOLBUS_LOG_FORMAT]")
	fs.DurationVar(&c.grace, "shutdown-grace", defaultGrace, "how long in-flight calls may take to finish after SIGTERM [TOOLBUS_SHUTDOWN_GRACE]")
	fs.IntVar(&c.replicas, "stream-replicas", 1, "replicas of every stream and bucket: 1 on one server, 3 on a production cluster [TOOLBUS_STREAM_REPLICAS]")
	fs.StringVar(&c.instance, "instance", envOr("TOOLBUS_INSTANCE", ""), "instance name (defaults to host name and a random suffix) [TOOLBUS_INSTANCE]")
	c.rel.register(fs)
	c.console.register(fs)
	c.runtime.register(fs)
}

func parseServices(s string) ([]string, error) {
	var out []string
	for _, name := range strings.Split(s, ",") {
		name = strings.TrimSpace(name)
		switch {
		case name == "":
			continue
		case name == servicesAll:
			out = append(out, available...)
		case slices.Contains(available, name):
			out = append(out, name)
		default:
			return nil, fmt.Errorf("unknown service %q (known: all, %s)", name, strings.Join(available, ", "))
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

func runServe(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	var cfg serveConfig
	fs := flag.NewFlagSet("toolbus serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg.register(fs)
	if err := applyEnv(fs); err != nil {
		return usageError{err.Error()}
	}
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	if d := cfg.rel.webhookDedup; d < time.Second || d > bus.DefaultTopology().WebhookMaxAge {
		return usageError{fmt.Sprintf("--webhook-dedup-window %v: want 1s to %v (the WEBHOOKS stream's age limit)", d, bus.DefaultTopology().WebhookMaxAge)}
	}
	if cfg.replicas < 1 || cfg.replicas > 5 {
		return usageError{fmt.Sprintf("--stream-replicas %d: JetStream allows 1 to 5", cfg.replicas)}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("toolbus serve: unexpected argument %q", fs.Arg(0))}
	}
	if _, _, err := cfg.runtime.resolveMemoryLimit("", true); err != nil {
		return usageError{err.Error()}
	}
	if err := cfg.runtime.checkPprofAddr(); err != nil {
		return err
	}
	if cfg.services == nil {
		svcs, err := parseServices(envOr("TOOLBUS_SERVICES", servicesAll))
		if err != nil {
			return usageError{err.Error()}
		}
		cfg.services = svcs
	}
	return serve(ctx, cfg, stdin, stdout, stderr, nil)
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, usageError{fmt.Sprintf("bad --log-level %q: use debug, info, warn or error", level)}
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	// Every record logged with a span's context gets trace_id and span_id.
	case "json":
		return slog.New(telemetry.LogHandler(slog.NewJSONHandler(w, opts))), nil
	case "text":
		return slog.New(telemetry.LogHandler(slog.NewTextHandler(w, opts))), nil
	}
	return nil, usageError{fmt.Sprintf("bad --log-format %q: use json or text", format)}
}

// lifecycle is what the command needs from a service.
type lifecycle interface {
	Start(ctx context.Context) error
	Shutdown(ctx context.Context) error
}

// serve runs the configured services until ctx ends, then shuts down in
// order: stop taking calls, let in-flight calls finish (workers keep running
// meanwhile), stop the workers, drain NATS. ready, when non-nil, receives the
// bound addresses once everything is serving.
func serve(ctx context.Context, cfg serveConfig, stdin io.Reader, stdout, stderr io.Writer, ready func(addrs)) error {
	log, err := newLogger(stderr, cfg.logLevel, cfg.logFormat)
	if err != nil {
		return err
	}
	if cfg.instance == "" {
		host, _ := os.Hostname()
		cfg.instance = sanitizeInstance(host) + "-" + nuid.Next()[:8]
	}
	log = log.With("instance", cfg.instance)

	// Process settings (runtimecfg.go): a bad soft memory limit fails
	// here, before anything starts; it is set once start-up is done.
	// pprof, when asked for, serves on its own loopback listener.
	if _, _, err := cfg.runtime.resolveMemoryLimit("", true); err != nil {
		return usageError{err.Error()}
	}
	pprofAddr, stopPprof, err := cfg.runtime.startPprof(log)
	if err != nil {
		return err
	}
	defer stopPprof()

	// Telemetry first and shut down last (deferred first), so the spans of
	// the final calls are exported.
	tel, err := telemetry.Setup(ctx, telemetry.Options{Components: cfg.services, Instance: cfg.instance, Version: version, SpanExporter: cfg.spanExporter})
	if err != nil {
		return err
	}
	defer shutdownTelemetry(log, tel)
	log.Info("telemetry", "tracing", tel.TracingEnabled(), "metrics", "/metrics")

	cat, err := loadCatalog(ctx, cfg)
	if err != nil {
		return err
	}
	log.Info("catalog loaded", "file", cat.File, "tools", len(cat.Tools), "upstreams", len(cat.Upstreams), "digest", cat.Digest[:12])
	authn, err := newAuthenticator(cfg, cat, log) // auth.go
	if err != nil {
		return err
	}

	// NATS: embedded unless told where the cluster is.
	var ns *server.Server
	copts := bus.ConnectOptions{URL: cfg.natsURL, Name: "toolbus/" + cfg.instance, Logger: log}
	if cfg.natsURL == "" {
		eo := bus.EmbeddedOptions{StoreDir: filepath.Join(cfg.dataDir, "jetstream"), ServerName: "toolbus-" + cfg.instance}
		if cfg.natsListen == "none" {
			eo.DontListen = true
		} else {
			host, port, err := splitHostPort(cfg.natsListen)
			if err != nil {
				return usageError{fmt.Sprintf("bad --nats-listen %q: %v", cfg.natsListen, err)}
			}
			eo.Host, eo.Port = host, port
		}
		ns, err = bus.StartEmbedded(eo)
		if err != nil {
			return fmt.Errorf("%w (is another toolbus or nats-server using %s? use --nats-listen or --nats)", err, cfg.natsListen)
		}
		defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
		copts.InProcess = ns
	}
	nc, err := bus.Connect(copts)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}

	hr := health.New(2 * time.Second)
	var started atomic.Bool
	hr.Add("nats", func(context.Context) error {
		if !nc.IsConnected() {
			return fmt.Errorf("not connected to NATS (%s)", nc.Status())
		}
		return nil
	})
	hr.Add("services", func(context.Context) error {
		if !started.Load() {
			return errors.New("services are starting (waiting for NATS JetStream)")
		}
		return nil
	})

	// The workers' shared reliability state starts first: it binds the
	// KV buckets the topology creates (cmd/toolbus/reliability.go).
	relMetrics, err := telemetry.NewReliabilityMetrics(tel.MeterProvider())
	if err != nil {
		return fmt.Errorf("reliability metrics: %w", err)
	}
	rel := newReliability(js, upstream.TelemetryObserver(relMetrics))

	// Construct services (no side effects) so handlers can be mounted before
	// NATS is reachable; they answer 503 until started.
	var front *mcpfront.Service
	var ingest *webhookingest.Service
	var svcs []lifecycle    // started in order
	var edges []lifecycle   // take requests from outside; stopped first
	var workers []lifecycle // consume the bus; stopped after the edges
	svcs = append(svcs, rel.state)
	for _, name := range cfg.services {
		switch name {
		case svcMCPFront:
			front, err = mcpfront.New(mcpfront.Options{Catalog: cat, NC: nc, JS: js, Instance: cfg.instance, Logger: log.With("service", svcMCPFront), Stateless: cfg.stateless, Version: version, Auth: authn,
				TracerProvider: tel.TracerProvider(svcMCPFront), MeterProvider: tel.MeterProvider(), MaxCallsPerCaller: cfg.rel.maxCallsPerCaller})
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			svcs = append(svcs, front)
			edges = append(edges, front)
		case svcGraphQL:
			w, err := graphqlworker.New(graphqlworker.Options{Catalog: cat, NC: nc, JS: js, Instance: cfg.instance, Logger: log.With("service", svcGraphQL),
				HTTP: rel.httpOptions(), AckWait: cfg.rel.ackWait, MaxDeliver: cfg.rel.maxDeliver,
				TracerProvider: tel.TracerProvider(svcGraphQL), MeterProvider: tel.MeterProvider()})
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			svcs = append(svcs, w)
			workers = append(workers, w)
		case svcRESTWork:
			w, err := restworker.New(restworker.Options{Catalog: cat, NC: nc, JS: js, Instance: cfg.instance, Logger: log.With("service", svcRESTWork),
				HTTP: rel.httpOptions(), AckWait: cfg.rel.ackWait, MaxDeliver: cfg.rel.maxDeliver,
				TracerProvider: tel.TracerProvider(svcRESTWork), MeterProvider: tel.MeterProvider()})
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			svcs = append(svcs, w)
			workers = append(workers, w)
		case svcWebhooks:
			ingest, err = webhookingest.New(webhookingest.Options{Catalog: cat, NC: nc, JS: js, Instance: cfg.instance, Logger: log.With("service", svcWebhooks),
				TracerProvider: tel.TracerProvider(svcWebhooks), MeterProvider: tel.MeterProvider()})
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			svcs = append(svcs, ingest)
			edges = append(edges, ingest)
		case svcStateUpd:
			u, err := stateupdater.New(stateupdater.Options{Catalog: cat, NC: nc, JS: js, Instance: cfg.instance, Logger: log.With("service", svcStateUpd),
				TracerProvider: tel.TracerProvider(svcStateUpd), MeterProvider: tel.MeterProvider()})
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			svcs = append(svcs, u)
			workers = append(workers, u)
		}
	}

	cons, err := newConsole(cfg, cat, nc, js, authn, log) // console.go; nil when off
	if err != nil {
		return err
	}
	if cons != nil {
		svcs, edges = append(svcs, cons), append(edges, cons)
	}

	mux := http.NewServeMux()
	mux.Handle("GET /healthz", health.LiveHandler())
	mux.Handle("GET /readyz", hr.ReadyHandler())
	mux.Handle("GET /metrics", tel.MetricsHandler())
	if front != nil {
		mux.Handle("/mcp", gate(&started, front.MCPHandler()))
		authn.Mount(mux) // RFC 9728 metadata
	}
	if ingest != nil {
		mux.Handle("/webhooks/", gate(&started, ingest.Handler()))
	}
	if cons != nil {
		mux.Handle("/console/", cons.Handler())
	}
	a := addrs{pprof: pprofAddr}
	var httpSrv *http.Server
	if cfg.httpAddr != "none" {
		lis, err := net.Listen("tcp", cfg.httpAddr)
		if err != nil {
			return fmt.Errorf("http listen: %w", err)
		}
		a.http = lis.Addr().String()
		httpSrv = &http.Server{
			Handler:           mux,
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       2 * time.Minute,
			MaxHeaderBytes:    64 << 10,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		}
		go func() {
			if err := httpSrv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("http server", "error", err)
			}
		}()
	}
	var grpcSrv *grpc.Server
	if cfg.grpcAddr != "none" {
		lis, err := net.Listen("tcp", cfg.grpcAddr)
		if err != nil {
			return fmt.Errorf("grpc listen: %w", err)
		}
		a.grpc = lis.Addr().String()
		grpcSrv = grpc.NewServer(grpcServerOptions(authn)...)
		hr.RegisterGRPC(grpcSrv)
		if front != nil {
			front.RegisterGRPC(grpcSrv)
		}
		go func() {
			if err := grpcSrv.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
				log.Error("grpc server", "error", err)
			}
		}()
	}
	if ns != nil && cfg.natsListen != "none" {
		a.nats = ns.ClientURL()
	}

	log.Info("listening", "http", a.http, "grpc", a.grpc)

	// Wait for the bus, then start services.
	if err := bus.WaitJetStream(ctx, nc, js, log); err != nil {
		return shutdownAfterStartFailure(log, httpSrv, grpcSrv, err)
	}
	topo := bus.DefaultTopology()
	topo.Replicas = cfg.replicas
	topo.ResultTTL = cfg.rel.resultTTL
	if cfg.rel.webhookDedup > 0 {
		topo.WebhookDuplicateWindow = cfg.rel.webhookDedup
	}
	if err := ensureWithRetry(ctx, log, func(ctx context.Context) error { return topo.Ensure(ctx, js) }); err != nil {
		return shutdownAfterStartFailure(log, httpSrv, grpcSrv, err)
	}
	var running []lifecycle
	for _, s := range svcs {
		if err := ensureWithRetry(ctx, log, s.Start); err != nil {
			stopAll(log, running, cfg.grace)
			return shutdownAfterStartFailure(log, httpSrv, grpcSrv, err)
		}
		running = append(running, s)
	}
	// Hot reload (reload.go): the applied catalog, and in the all-in-one
	// the edited --catalog file, replace the catalog without a restart.
	pollFile := ""
	if cfg.natsURL == "" && cfg.catalogSrc == nil {
		pollFile = cfg.catalogPath
	}
	reload, err := startCatalogReload(ctx, js, nc.MaxPayload(), cat, running, pollFile, log)
	if err != nil {
		log.Warn("catalog hot reload is off", "error", err)
	}
	defer reload.Stop()
	// The soft memory limit (off unless asked for) applies from here on,
	// not to loading the catalog and starting: a 1,000-tool catalog
	// allocates about 90 MB while it is parsed, and a limit below that
	// only slows start-up.
	allInOne := cfg.natsURL == "" && slices.Contains(cfg.services, svcMCPFront)
	restoreMemLimit, err := cfg.runtime.applyMemoryLimit(log, allInOne)
	if err != nil { // checked at the top already
		log.Warn("memory limit not set", "error", err)
	}
	defer restoreMemLimit()
	started.Store(true)
	log.Info("toolbus ready", "services", strings.Join(cfg.services, ","), "http", a.http, "grpc", a.grpc, "nats", natsDesc(cfg, ns))
	if ready != nil {
		ready(a)
	}

	var stdioErr error
	if cfg.stdio && front != nil {
		// The client owns our stdin: when it closes it, we are done.
		stdioErr = front.ServeStdio(ctx)
	} else {
		<-ctx.Done()
	}

	// Two-phase shutdown within the grace period.
	log.Info("shutting down", "grace", cfg.grace)
	reload.Stop()
	sctx, cancel := context.WithTimeout(context.Background(), cfg.grace)
	defer cancel()
	started.Store(false)
	if httpSrv != nil {
		// Stops accepting; in-flight MCP requests keep running while the
		// workers are still up to answer them.
		go func() { _ = httpSrv.Shutdown(sctx) }()
	}
	if grpcSrv != nil {
		go gracefulStopGRPC(sctx, grpcSrv)
	}
	var errs []error
	// Front doors first: they stop taking work while the workers still run
	// to answer what is in flight.
	for _, edge := range edges {
		if err := edge.Shutdown(sctx); err != nil {
			errs = append(errs, err)
		}
	}
	for i := len(workers) - 1; i >= 0; i-- {
		if err := workers[i].Shutdown(sctx); err != nil {
			errs = append(errs, err)
		}
	}
	if httpSrv != nil {
		_ = httpSrv.Close()
	}
	if err := nc.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		errs = append(errs, fmt.Errorf("drain nats: %w", err))
	}
	waitClosed(sctx, nc)
	if stdioErr != nil && !errors.Is(stdioErr, context.Canceled) && !errors.Is(stdioErr, io.EOF) {
		errs = append(errs, fmt.Errorf("stdio: %w", stdioErr))
	}
	if len(errs) > 0 {
		for _, err := range errs {
			log.Warn("shutdown", "error", err)
		}
	}
	log.Info("stopped")
	return nil
}

// addrs are the addresses a running Toolbus listens on.
type addrs struct{ http, grpc, nats, pprof string }

// shutdownTelemetry flushes the last spans, within a bound of its own: the
// grace period is spent by then.
func shutdownTelemetry(log *slog.Logger, tel *telemetry.Telemetry) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := tel.Shutdown(ctx); err != nil {
		log.Warn("telemetry shutdown", "error", err)
	}
}

func natsDesc(cfg serveConfig, ns *server.Server) string {
	if ns == nil {
		return bus.RedactURL(cfg.natsURL)
	}
	if cfg.natsListen == "none" {
		return "embedded (in-process only)"
	}
	return "embedded " + ns.ClientURL()
}

func loadCatalog(ctx context.Context, cfg serveConfig) (*catalog.Catalog, error) {
	var cat *catalog.Catalog
	var err error
	opts := catalogLoadOptions(cfg) // catalogsecrets.go: only the secrets of cfg.services
	if cfg.catalogSrc != nil {
		cat, err = catalog.Parse(cfg.catalogPath, cfg.catalogSrc, append(opts, catalog.WithFS(cfg.catalogFS))...)
	} else {
		cat, err = catalog.Load(cfg.catalogPath, opts...)
	}
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("catalog %s not found: pass --catalog FILE or set TOOLBUS_CATALOG (try 'toolbus demo' for a working example)", cfg.catalogPath)
		}
		return nil, err
	}
	// GraphQL schemas to introspect that have no cache yet: fetched (and
	// cached) once here, before any service reads the catalog.
	return catalog.ResolveGraphQLSchemas(ctx, cat, nil)
}

// gate answers 503 until open is true, so a load balancer never routes MCP
// traffic to a process that cannot queue calls yet.
func gate(open *atomic.Bool, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !open.Load() {
			w.Header().Set("Retry-After", "1")
			http.Error(w, "toolbus is not ready (starting or shutting down)", http.StatusServiceUnavailable)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// ensureWithRetry runs f until it succeeds or ctx ends: a NATS cluster that
// is electing a leader answers errors for a few seconds.
func ensureWithRetry(ctx context.Context, log *slog.Logger, f func(context.Context) error) error {
	wait := 200 * time.Millisecond
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := f(actx)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
		}
		log.Warn("start-up step failed, retrying", "attempt", attempt, "error", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
		case <-time.After(wait):
		}
		wait = min(wait*2, 5*time.Second)
	}
}

func stopAll(log *slog.Logger, svcs []lifecycle, grace time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	for i := len(svcs) - 1; i >= 0; i-- {
		if err := svcs[i].Shutdown(ctx); err != nil {
			log.Warn("shutdown", "error", err)
		}
	}
}

func shutdownAfterStartFailure(log *slog.Logger, h *http.Server, g *grpc.Server, err error) error {
	if h != nil {
		_ = h.Close()
	}
	if g != nil {
		g.Stop()
	}
	if errors.Is(err, context.Canceled) {
		log.Info("stopped before start-up completed")
		return nil
	}
	return err
}

func gracefulStopGRPC(ctx context.Context, g *grpc.Server) {
	done := make(chan struct{})
	go func() { g.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		g.Stop()
	}
}

func waitClosed(ctx context.Context, nc *nats.Conn) {
	for !nc.IsClosed() {
		select {
		case <-ctx.Done():
			nc.Close()
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func splitHostPort(s string) (string, int, error) {
	host, p, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("bad port %q", p)
	}
	if port == 0 {
		port = -1 // nats-server: pick a free port
	}
	return host, port, nil
}

func sanitizeInstance(s string) string {
	s = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '-'
	}, s)
	if s == "" {
		return "toolbus"
	}
	return s
}
