package mcpfront

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/toolbus/toolbus/catalog"
	"github.com/toolbus/toolbus/projection"
)

// stateSurface serves the catalog's projections (state kept by the
// state-updater) as MCP resources and read-only tools, and tells subscribed
// sessions when an entity changes.
type stateSurface struct {
	reader *projection.Reader
	srv    *mcp.Server
	log    *slog.Logger
	tp     trace.TracerProvider

	mu      sync.Mutex
	cat     *catalog.Catalog
	watches map[string]*stateWatch // by projection
	started bool
	stopped bool
}

// stateWatch is the notification watch of one projection.
type stateWatch struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// withState prepares server options for projections. It does so even for
// a catalog without any, so that a hot reload can add some: the server
// then offers resource subscriptions from the start.
func withState(cat *catalog.Catalog, js jetstream.JetStream, sopts *mcp.ServerOptions) *stateSurface {
	st := &stateSurface{reader: projection.NewReader(js, cat), cat: cat, watches: map[string]*stateWatch{}}
	sopts.SubscribeHandler = st.reader.SubscribeHandler()
	sopts.UnsubscribeHandler = projection.UnsubscribeHandler
	return st
}

// watchReadyTimeout bounds how long start waits for the projection
// watches; past it the service starts anyway and says so.
const watchReadyTimeout = 10 * time.Second

// serve registers the resources and tools of every projection on srv; log
// and tp are for the watches.
func (st *stateSurface) serve(srv *mcp.Server, log *slog.Logger, tp trace.TracerProvider) {
	st.srv, st.log, st.tp = srv, log, tp
	projection.Register(srv, st.reader, st.cat)
}

// start watches the projection buckets for the life of the service.
// Each notification is a "notify <projection>" span of tp continuing the
// trace of the event that changed the entity. It returns once every
// projection whose bucket exists is watched (or startCtx ends, or
// watchReadyTimeout passes), so that a subscriber never misses a change
// made after Start returned.
func (st *stateSurface) start(startCtx context.Context) {
	st.mu.Lock()
	if st.started || st.stopped {
		st.mu.Unlock()
		return
	}
	st.started = true
	ready := st.watch(slices.Sorted(maps.Keys(st.cat.Projections)))
	log := st.log
	st.mu.Unlock()
	timer := time.NewTimer(watchReadyTimeout)
	defer timer.Stop()
	for _, r := range ready {
		select {
		case <-r:
		case <-startCtx.Done():
			log.Warn("starting before the projection watches are in place: changes until then are not notified", "error", startCtx.Err())
			return
		case <-timer.C:
			log.Warn("starting before the projection watches are in place: changes until then are not notified", "waited", watchReadyTimeout)
			return
		}
	}
}

// watch starts the watch of each named projection and returns a channel
// per projection, closed once its watch is in place (at once if its
// bucket does not exist yet). st.mu is held.
func (st *stateSurface) watch(names []string) []chan struct{} {
	var ready []chan struct{}
	cat := st.cat // the goroutines must not read st.cat, which reload writes
	for _, name := range names {
		ctx, cancel := context.WithCancel(context.Background())
		w := &stateWatch{cancel: cancel, done: make(chan struct{})}
		r := make(chan struct{})
		ready = append(ready, r)
		go func() {
			defer close(w.done)
			err := projection.NotifyWith(ctx, st.srv, st.reader, cat, projection.NotifyOptions{
				Logger: st.log, TracerProvider: st.tp, Projections: []string{name}, Ready: func() { close(r) },
			})
			if err != nil && ctx.Err() == nil {
				st.log.Error("projection notifications stopped", "projection", name, "error", err)
			}
		}()
		st.watches[name] = w
	}
	return ready
}

// reload serves the projections of cat: a new projection gets its
// resources, tools and watch; a removed one loses them. A changed one
// needs nothing here (its bucket and tools are named after it).
func (st *stateSurface) reload(cat *catalog.Catalog) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.stopped {
		return
	}
	var added, removed []string
	for _, name := range slices.Sorted(maps.Keys(cat.Projections)) {
		if _, ok := st.cat.Projections[name]; !ok {
			added = append(added, name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(st.cat.Projections)) {
		if _, ok := cat.Projections[name]; !ok {
			removed = append(removed, name)
		}
	}
	// Reads and subscriptions follow the new catalog before its tools are
	// listed.
	st.cat = cat
	st.reader.SetCatalog(cat)
	for _, name := range removed {
		projection.Unregister(st.srv, name)
		if w := st.watches[name]; w != nil {
			w.cancel()
			<-w.done
			delete(st.watches, name)
		}
	}
	for _, name := range added {
		projection.RegisterProjection(st.srv, st.reader, name)
	}
	if st.started {
		st.watch(added)
	}
	if len(added)+len(removed) > 0 {
		st.log.Info("projections reloaded", "added", added, "removed", removed)
	}
}

func (st *stateSurface) stop() {
	if st == nil {
		return
	}
	st.mu.Lock()
	st.stopped = true
	watches := st.watches
	st.watches = map[string]*stateWatch{}
	st.mu.Unlock()
	for _, w := range watches {
		w.cancel()
	}
	for _, w := range watches {
		<-w.done
	}
}
