// Package callservice runs the lifecycle every tool-call worker shares: it
// checks the worker's options, selects the upstreams of the kinds the
// worker serves, opens the KV-backed stores of the call chain, consumes one
// durable call consumer per upstream with a bus.Worker, and stops in two
// phases. What a call does (the handler, its generations and reloads) stays
// with the worker.
package callservice

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/toolbus/toolbus/bus"
	"github.com/toolbus/toolbus/catalog"
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

// Role names a worker and the upstream kinds it serves.
type Role struct {
	// Name prefixes every error, is the default instance name and the
	// "service" attribute of the logger ("rest-worker").
	Name string
	// Kinds are the upstream kinds the worker serves.
	Kinds []catalog.Kind
	// Described is how errors name Kinds ("rest or soap").
	Described string
}

// Serves reports whether the worker serves upstreams of kind k.
func (r Role) Serves(k catalog.Kind) bool { return slices.Contains(r.Kinds, k) }

// Select returns the upstreams to serve, sorted by name: those named, which
// must be in cat and of a served kind, or every upstream of a served kind
// when names is empty.
func (r Role) Select(cat *catalog.Catalog, names []string) ([]*catalog.Upstream, error) {
	var ups []*catalog.Upstream
	if len(names) == 0 {
		for _, u := range cat.Upstreams {
			if r.Serves(u.Kind) {
				ups = append(ups, u)
			}
		}
	}
	for _, n := range names {
		u, ok := cat.Upstreams[n]
		switch {
		case !ok:
			return nil, fmt.Errorf("%s: upstream %q is not in the catalog", r.Name, n)
		case !r.Serves(u.Kind):
			return nil, fmt.Errorf("%s: upstream %q is of kind %s, not %s", r.Name, n, u.Kind, r.Described)
		}
		if !slices.Contains(ups, u) {
			ups = append(ups, u)
		}
	}
	slices.SortFunc(ups, func(a, b *catalog.Upstream) int { return strings.Compare(a.Name, b.Name) })
	return ups, nil
}

// Options configure a Service; the fields mirror those of the workers'
// own options.
type Options struct {
	Catalog  *catalog.Catalog
	NC       *nats.Conn
	JS       jetstream.JetStream
	Instance string // worker instance name (default: the role's name)
	Logger   *slog.Logger
	// Upstreams restricts which upstreams are served (empty = all of the
	// role's kinds).
	Upstreams []string

	// AckWait and MaxDeliver configure the call consumers (defaults above).
	AckWait    time.Duration
	MaxDeliver int
	// TracerProvider and MeterProvider are handed to the bus.Worker.
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
	// WatchBacklog exposes the backlogs of the call consumers as metrics
	// when MeterProvider is set, read every BacklogEvery (default 10s).
	WatchBacklog bool
	BacklogEvery time.Duration

	// Check, when set, refuses a catalog the worker cannot serve; New
	// returns its error as is, before selecting upstreams.
	Check func(*catalog.Catalog) error
}

// Stores are the KV-backed stores Start opens for the call chain.
type Stores struct {
	// Results answers mutating calls from their stored result when their
	// idempotency key was seen (a crash redelivery, a client retry).
	Results *bus.ResultStore
	// Conts keeps what response shaping (jq, drop, cap) cut off.
	Conts *bus.Continuations
}

// Service is the lifecycle of one worker: its upstreams and, once
// started, its bus.Worker.
type Service struct {
	role      Role
	opts      Options
	log       *slog.Logger
	upstreams []*catalog.Upstream

	mu      sync.Mutex
	worker  *bus.Worker
	backlog *bus.BacklogWatcher
	stopped bool
	// handle is the handler Start's setup returned; Add serves new
	// upstreams with it.
	handle bus.CallHandler
}

// New validates opts, fills in their defaults and selects the upstreams to
// serve. It makes no network calls.
func New(role Role, opts Options) (*Service, error) {
	switch {
	case opts.Catalog == nil:
		return nil, errors.New(role.Name + ": no catalog")
	case opts.NC == nil || opts.JS == nil:
		return nil, errors.New(role.Name + ": no NATS connection")
	}
	if opts.Check != nil {
		if err := opts.Check(opts.Catalog); err != nil {
			return nil, err
		}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Instance == "" {
		opts.Instance = role.Name
	}
	if opts.AckWait <= 0 {
		opts.AckWait = DefaultAckWait
	}
	if opts.MaxDeliver <= 0 {
		opts.MaxDeliver = DefaultMaxDeliver
	}
	ups, err := role.Select(opts.Catalog, opts.Upstreams)
	if err != nil {
		return nil, err
	}
	log := opts.Logger.With("service", role.Name, "instance", opts.Instance)
	return &Service{role: role, opts: opts, log: log, upstreams: ups}, nil
}

// Logger is the worker's logger, tagged with its service and instance.
func (s *Service) Logger() *slog.Logger { return s.log }

// Upstreams are the upstreams served, sorted by name: those selected by
// New and those added since (Add).
func (s *Service) Upstreams() []*catalog.Upstream {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.upstreams)
}

// consumer is the call consumer of upstream u.
func (s *Service) consumer(u *catalog.Upstream) bus.CallConsumer {
	return bus.CallConsumer{
		Kind:        string(u.Kind),
		Upstream:    u.Name,
		Concurrency: u.Concurrency,
		AckWait:     s.opts.AckWait,
		MaxDeliver:  s.opts.MaxDeliver,
	}
}

// Reselect returns, for a reloaded catalog cat, the upstreams the worker
// serves from now on and, among them, the fresh ones it does not consume
// yet (serve them with Add once the new routes are in place). An upstream
// cat no longer has, or has with a kind the role does not serve, is
// dropped and logged: its queued calls fail as unknown tools. Upstreams
// new to cat are fresh only when the worker serves every upstream of its
// kinds (no Upstreams option); a worker given a list keeps to it.
func (s *Service) Reselect(cat *catalog.Catalog) (ups, fresh []*catalog.Upstream) {
	current := s.Upstreams()
	names := s.opts.Upstreams
	if len(names) == 0 {
		for _, u := range current {
			names = append(names, u.Name)
		}
		for name, u := range cat.Upstreams {
			if s.role.Serves(u.Kind) && !slices.Contains(names, name) {
				names = append(names, name)
			}
		}
	}
	for _, n := range names {
		u, ok := cat.Upstreams[n]
		if !ok || !s.role.Serves(u.Kind) {
			s.log.Warn("catalog reload: upstream removed; its queued calls fail as unknown tools", "upstream", n)
			continue
		}
		ups = append(ups, u)
		if !slices.ContainsFunc(current, func(v *catalog.Upstream) bool { return v.Name == n }) {
			fresh = append(fresh, u)
		}
	}
	slices.SortFunc(ups, func(a, b *catalog.Upstream) int { return strings.Compare(a.Name, b.Name) })
	return ups, fresh
}

// ServeNew serves the upstreams ups of a reloaded catalog (Reselect's),
// within a bound of its own: the fresh ones get their consumers (Add), and
// a served upstream whose concurrency changed gets its consumer's
// MaxAckPending updated (Retune). The catalog is already served; an error
// says which consumers do not follow it yet.
func (s *Service) ServeNew(ups, fresh []*catalog.Upstream) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var errs []error
	if len(fresh) > 0 {
		added, err := s.Add(ctx, fresh)
		if len(added) > 0 {
			s.log.Info("catalog reload: serving new upstreams", "upstreams", added)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	if err := s.Retune(ctx, ups); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("reload: the new catalog is served, but not all of its consumers follow it yet (the next reload tries again): %w", err)
	}
	return nil
}

// Retune updates the consumer of every served upstream in ups whose
// concurrency differs from the one it is served with: the consumer's
// MaxAckPending is the upstream's cluster-wide limit, so every replica
// sets the same value, and in-flight calls keep running. It returns the
// first consumer it could not update; that upstream keeps its old limit,
// and a later Retune tries again.
func (s *Service) Retune(ctx context.Context, ups []*catalog.Upstream) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped || s.worker == nil {
		return nil
	}
	for _, u := range ups {
		i := slices.IndexFunc(s.upstreams, func(v *catalog.Upstream) bool { return v.Name == u.Name })
		if i < 0 || s.upstreams[i].Concurrency == u.Concurrency {
			continue
		}
		cfg := s.consumer(u).Config()
		if err := bus.Declare(ctx, func(ctx context.Context) error {
			_, err := s.opts.JS.UpdateConsumer(ctx, bus.StreamCalls, cfg)
			return err
		}); err != nil {
			return fmt.Errorf("%s: update the consumer of upstream %s: %w", s.role.Name, u.Name, err)
		}
		s.log.Info("catalog reload: upstream concurrency changed", "upstream", u.Name, "from", s.upstreams[i].Concurrency, "to", u.Concurrency)
		s.upstreams[i] = u
	}
	return nil
}

// Add consumes the calls of upstreams that are not served yet, with the
// handler Start set up: an upstream new to a reloaded catalog is served
// without a restart. Upstreams already served, and those of kinds the role
// does not serve, are skipped; added names the new ones. It fails before
// Start and after Shutdown; an upstream whose consumer could not be
// created is not served, and a later Add tries it again.
func (s *Service) Add(ctx context.Context, ups []*catalog.Upstream) (added []string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.stopped:
		return nil, bus.ErrShuttingDown
	case s.worker == nil:
		return nil, errors.New(s.role.Name + ": not started")
	}
	for _, u := range ups {
		if !s.role.Serves(u.Kind) || slices.ContainsFunc(s.upstreams, func(v *catalog.Upstream) bool { return v.Name == u.Name }) {
			continue
		}
		if err := s.worker.ServeCalls(ctx, s.consumer(u), s.handle); err != nil {
			return added, fmt.Errorf("%s: serve upstream %s: %w", s.role.Name, u.Name, err)
		}
		s.upstreams = append(s.upstreams, u)
		added = append(added, u.Name)
	}
	slices.SortFunc(s.upstreams, func(a, b *catalog.Upstream) int { return strings.Compare(a.Name, b.Name) })
	return added, nil
}

// Start opens the stores, hands them to setup, which returns the handler
// of every call, and consumes the calls of every served upstream with it:
// one durable consumer per upstream whose MaxAckPending is the upstream's
// concurrency. setup runs under the service's lock and its error is
// returned prefixed by the role's name. Start returns once consumption has
// started; if it fails, what it started has been stopped.
func (s *Service) Start(ctx context.Context, setup func(context.Context, Stores) (bus.CallHandler, error)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.stopped:
		return bus.ErrShuttingDown
	case s.worker != nil:
		return errors.New(s.role.Name + ": already started")
	}
	results, err := bus.OpenResultStore(ctx, s.opts.JS)
	if err != nil {
		return fmt.Errorf("%s: %w", s.role.Name, err)
	}
	conts, err := bus.OpenContinuations(ctx, s.opts.JS)
	if err != nil {
		return fmt.Errorf("%s: %w", s.role.Name, err)
	}
	handle, err := setup(ctx, Stores{Results: results, Conts: conts})
	if err != nil {
		return fmt.Errorf("%s: %w", s.role.Name, err)
	}
	w := bus.NewWorker(s.opts.NC, s.opts.JS, bus.WorkerOptions{Name: s.opts.Instance, Logger: s.log,
		TracerProvider: s.opts.TracerProvider, MeterProvider: s.opts.MeterProvider})
	for _, u := range s.upstreams {
		if err := w.ServeCalls(ctx, s.consumer(u), handle); err != nil {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = w.Shutdown(sctx)
			return fmt.Errorf("%s: serve upstream %s: %w", s.role.Name, u.Name, err)
		}
	}
	s.worker = w
	s.handle = handle
	if s.opts.WatchBacklog && s.opts.MeterProvider != nil {
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
	return nil
}

// Shutdown stops in two phases (see bus.Worker.Shutdown): no new calls are
// taken and in-flight calls finish until ctx ends; then they are cancelled
// and handed back for redelivery. A later Start fails.
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
	if w != nil {
		return w.Shutdown(ctx)
	}
	return nil
}
