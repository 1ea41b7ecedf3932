// Package bustest starts real, embedded NATS JetStream servers for tests.
// It must only be imported from tests.
package bustest

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/toolbus/toolbus/bus"
)

// Server starts an embedded JetStream server on a random loopback port with
// its store in a temporary directory, shut down when the test ends.
func Server(t testing.TB) *server.Server {
	t.Helper()
	return ServerAt(t, t.TempDir(), -1)
}

// ServerAt starts an embedded JetStream server with the given store
// directory and port (-1 for a random one). Restarting on the same directory
// and port simulates a NATS restart.
func ServerAt(t testing.TB, storeDir string, port int) *server.Server {
	t.Helper()
	ns, err := bus.StartEmbedded(bus.EmbeddedOptions{StoreDir: storeDir, Port: port, ServerName: "bustest"})
	if err != nil {
		t.Fatalf("start embedded nats: %v", err)
	}
	t.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	return ns
}

// Connect returns a connection to ns (over loopback, so the server can be
// stopped and restarted under it) and a JetStream context with the Toolbus
// topology applied. Both are closed when the test ends.
func Connect(t testing.TB, ns *server.Server) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := bus.Connect(bus.ConnectOptions{URL: ns.ClientURL(), Name: t.Name(), Logger: Logger()})
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := bus.WaitJetStream(ctx, nc, js, Logger()); err != nil {
		t.Fatalf("wait jetstream: %v", err)
	}
	topo := bus.DefaultTopology()
	if err := topo.Ensure(ctx, js); err != nil {
		t.Fatalf("topology: %v", err)
	}
	return nc, js
}

// Logger discards logs: background reconnect logs may outlive the test that
// caused them, and testing.T must not be used after its test ends.
func Logger() *slog.Logger { return slog.New(slog.DiscardHandler) }
