package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/toolbus/toolbus/bus"
	"github.com/toolbus/toolbus/bus/bustest"
	"github.com/toolbus/toolbus/catalog"
	mcpfront "github.com/toolbus/toolbus/services/mcp-front"
	stateupdater "github.com/toolbus/toolbus/services/state-updater"
	webhookingest "github.com/toolbus/toolbus/services/webhook-ingest"
	"github.com/toolbus/toolbus/telemetry"
)

// startServices starts svcs in order and shuts them down in reverse order
// when the test ends.
func startServices(tb testing.TB, ctx context.Context, svcs ...lifecycle) {
	tb.Helper()
	for _, s := range svcs {
		if err := s.Start(ctx); err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = s.Shutdown(sctx)
		})
	}
}

// stateStack is the webhook-to-state path of the all-in-one: webhook-ingest,
// state-updater and mcp-front over one bus, started, serving /webhooks/
// and /mcp at url.
type stateStack struct {
	ingest  *webhookingest.Service
	updater *stateupdater.Service
	front   *mcpfront.Service
	url     string
}

// services are the stack's services in start order.
func (s *stateStack) services() []lifecycle { return []lifecycle{s.updater, s.ingest, s.front} }

// startStateStack starts a stateStack for cat. tel (nil for none) records
// each service's spans and metrics.
func startStateStack(t *testing.T, ctx context.Context, cat *catalog.Catalog, nc *nats.Conn, js jetstream.JetStream, tel *telemetry.Telemetry) *stateStack {
	t.Helper()
	log := bustest.Logger()
	st := &stateStack{}
	var err error
	st.ingest, err = webhookingest.New(webhookingest.Options{
		Catalog: cat, NC: nc, JS: js, Instance: "i1", Logger: log,
		TracerProvider: tel.TracerProvider(svcWebhooks), MeterProvider: tel.MeterProvider(),
	})
	if err != nil {
		t.Fatal(err)
	}
	st.updater, err = stateupdater.New(stateupdater.Options{
		Catalog: cat, NC: nc, JS: js, Instance: "u1", Logger: log,
		TracerProvider: tel.TracerProvider(svcStateUpd), MeterProvider: tel.MeterProvider(),
	})
	if err != nil {
		t.Fatal(err)
	}
	st.front, err = mcpfront.New(mcpfront.Options{
		Catalog: cat, NC: nc, JS: js, Instance: "f1", Logger: log,
		TracerProvider: tel.TracerProvider(svcMCPFront), MeterProvider: tel.MeterProvider(),
	})
	if err != nil {
		t.Fatal(err)
	}
	startServices(t, ctx, st.services()...)
	mux := http.NewServeMux()
	mux.Handle("/webhooks/", st.ingest.Handler())
	mux.Handle("/mcp", st.front.MCPHandler())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	st.url = srv.URL
	return st
}

// fileRig is what the all-in-one hot-reload tests start from: a catalog
// file, the catalog loaded from it, and a bus with the topology applied.
type fileRig struct {
	t     *testing.T
	path  string
	cat   *catalog.Catalog
	nc    *nats.Conn
	js    jetstream.JetStream
	edits int
}

func newFileRig(t *testing.T, ctx context.Context, src string) *fileRig {
	t.Helper()
	f := &fileRig{t: t, path: filepath.Join(t.TempDir(), "catalog.yaml")}
	if err := os.WriteFile(f.path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	var err error
	if f.cat, err = catalog.Load(f.path); err != nil {
		t.Fatal(err)
	}
	f.nc, f.js = bustest.Connect(t, bustest.Server(t))
	if err := bus.DefaultTopology().Ensure(ctx, f.js); err != nil {
		t.Fatal(err)
	}
	return f
}

// write replaces the catalog file with src, with a modification time
// later than every earlier one (modification times can be coarse).
func (f *fileRig) write(src string) {
	f.t.Helper()
	if err := os.WriteFile(f.path, []byte(src), 0o600); err != nil {
		f.t.Fatal(err)
	}
	f.edits++
	bump(f.t, f.path, time.Duration(f.edits)*2*time.Second)
}

// reload hot-reloads svcs from the file, as the all-in-one does, until the
// test ends.
func (f *fileRig) reload(ctx context.Context, svcs ...lifecycle) {
	f.t.Helper()
	r, err := startCatalogReload(ctx, f.js, 0, f.cat, svcs, f.path, bustest.Logger())
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(r.Stop)
}
