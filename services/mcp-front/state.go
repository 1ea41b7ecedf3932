package mcpfront

import (
	"context"
	"log/slog"
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
	cancel context.CancelFunc
	done   chan struct{}
}

// withState prepares server options for projections; nil when the catalog
// declares none.
func withState(cat *catalog.Catalog, js jetstream.JetStream, sopts *mcp.ServerOptions) *stateSurface {
	if len(cat.Projections) == 0 {
		return nil
	}
	sopts.SubscribeHandler = projection.SubscribeHandler(cat)
	sopts.UnsubscribeHandler = projection.UnsubscribeHandler
	return &stateSurface{reader: projection.NewReader(js, cat)}
}

// watchReadyTimeout bounds how long start waits for the projection
// watches; past it the service starts anyway and says so.
const watchReadyTimeout = 10 * time.Second

// start watches the projection buckets for the life of the service.
// Each notification is a "notify <projection>" span of tp continuing the
// trace of the event that changed the entity. It returns once every
// projection whose bucket exists is watched (or startCtx ends, or
// watchReadyTimeout passes), so that a subscriber never misses a change
// made after Start returned.
func (st *stateSurface) start(startCtx context.Context, srv *mcp.Server, cat *catalog.Catalog, log *slog.Logger, tp trace.TracerProvider) {
	ctx, cancel := context.WithCancel(context.Background())
	st.cancel, st.done = cancel, make(chan struct{})
	ready := make(chan struct{})
	go func() {
		defer close(st.done)
		err := projection.NotifyWith(ctx, srv, st.reader, cat, projection.NotifyOptions{
			Logger: log, TracerProvider: tp, Ready: func() { close(ready) },
		})
		if err != nil && ctx.Err() == nil {
			log.Error("projection notifications stopped", "error", err)
		}
	}()
	timer := time.NewTimer(watchReadyTimeout)
	defer timer.Stop()
	select {
	case <-ready:
	case <-startCtx.Done():
		log.Warn("starting before the projection watches are in place: changes until then are not notified", "error", startCtx.Err())
	case <-timer.C:
		log.Warn("starting before the projection watches are in place: changes until then are not notified", "waited", watchReadyTimeout)
	}
}

func (st *stateSurface) stop() {
	if st == nil || st.cancel == nil {
		return
	}
	st.cancel()
	<-st.done
}
