package mcpfront

import (
	"context"
	"log/slog"

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

// start watches the projection buckets for the life of the service.
// Each notification is a "notify <projection>" span of tp continuing the
// trace of the event that changed the entity.
func (st *stateSurface) start(srv *mcp.Server, cat *catalog.Catalog, log *slog.Logger, tp trace.TracerProvider) {
	ctx, cancel := context.WithCancel(context.Background())
	st.cancel, st.done = cancel, make(chan struct{})
	go func() {
		defer close(st.done)
		if err := projection.NotifyWith(ctx, srv, st.reader, cat, projection.NotifyOptions{Logger: log, TracerProvider: tp}); err != nil && ctx.Err() == nil {
			log.Error("projection notifications stopped", "error", err)
		}
	}()
}

func (st *stateSurface) stop() {
	if st == nil || st.cancel == nil {
		return
	}
	st.cancel()
	<-st.done
}
