// Package inproc runs the Toolbus all-in-one path in one process (demo CRM
// upstream, embedded NATS with JetStream file storage, mcp-front,
// rest-worker, go-sdk client) so that `go test -cpuprofile/-memprofile`
// can profile it: the toolbus binary does not expose pprof. It wires the
// services the way `toolbus serve` does and must not diverge from it.
//
//	cd bench && GOWORK=off go test ./inproc -run '^$' -bench . -benchtime 20000x -cpuprofile cpu.pprof -memprofile mem.pprof
package inproc

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/toolbus/toolbus/bench/target"
	"github.com/toolbus/toolbus/bus"
	"github.com/toolbus/toolbus/catalog"
	"github.com/toolbus/toolbus/examples/crm"
	mcpfront "github.com/toolbus/toolbus/services/mcp-front"
	restworker "github.com/toolbus/toolbus/services/rest-worker"
)

const catalogTemplate = `version: 1
upstreams:
  crm:
    kind: rest
    base_url: %s/api/v1
    timeout: 10s
    concurrency: 256
tools:
  - name: lookup
    description: Return the given id.
    upstream: crm
    method: GET
    path: /lookup/{id}
    input_schema:
      type: object
      properties:
        id: {type: string, minLength: 1}
      required: [id]
      additionalProperties: false
`

// startToolbus starts the whole path and returns the MCP endpoint.
func startToolbus(tb testing.TB) string {
	tb.Helper()
	up := httptest.NewServer(crm.NewServer(crm.Options{Customers: -1}))
	tb.Cleanup(up.Close)

	cat, err := catalog.Parse("bench.yaml", fmt.Appendf(nil, catalogTemplate, up.URL))
	if err != nil {
		tb.Fatal(err)
	}
	// Info level, as shipped: the per-call log line is part of the cost.
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	ns, err := bus.StartEmbedded(bus.EmbeddedOptions{StoreDir: filepath.Join(tb.TempDir(), "jetstream"), DontListen: true, ServerName: "bench"})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	nc, err := bus.Connect(bus.ConnectOptions{InProcess: ns, Name: "bench", Logger: log})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := bus.WaitJetStream(ctx, nc, js, log); err != nil {
		tb.Fatal(err)
	}
	if err := bus.DefaultTopology().Ensure(ctx, js); err != nil {
		tb.Fatal(err)
	}
	front, err := mcpfront.New(mcpfront.Options{Catalog: cat, NC: nc, JS: js, Instance: "bench", Logger: log})
	if err != nil {
		tb.Fatal(err)
	}
	worker, err := restworker.New(restworker.Options{Catalog: cat, NC: nc, JS: js, Instance: "bench", Logger: log})
	if err != nil {
		tb.Fatal(err)
	}
	for _, s := range []interface {
		Start(context.Context) error
		Shutdown(context.Context) error
	}{front, worker} {
		if err := s.Start(ctx); err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() {
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = s.Shutdown(sctx)
		})
	}
	srv := httptest.NewServer(front.MCPHandler())
	tb.Cleanup(srv.Close)
	return srv.URL
}

// BenchmarkToolbusCall measures lookup calls through the all-in-one path with
// the go-sdk client, checking every answer carries its id.
func BenchmarkToolbusCall(b *testing.B) {
	for _, clients := range []int{1, 16} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			url := startToolbus(b)
			t := &target.MCP{Endpoint: url, Tool: "lookup", Arg: "id", HTTP: target.NewHTTPClient()}
			ctx := context.Background()
			sessions := make([]interface {
				Call(context.Context, string) (string, error)
				Close() error
			}, clients)
			for i := range sessions {
				s, err := t.Open(ctx)
				if err != nil {
					b.Fatal(err)
				}
				sessions[i] = s
				defer s.Close()
			}
			var next atomic.Int64
			var failed atomic.Value
			var wg sync.WaitGroup
			b.ReportAllocs()
			b.ResetTimer()
			for w, s := range sessions {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for n := next.Add(1); n <= int64(b.N); n = next.Add(1) {
						id := fmt.Sprintf("w%d-%d", w, n)
						got, err := s.Call(ctx, id)
						if err == nil && got != id {
							err = fmt.Errorf("asked for %s, got %s", id, got)
						}
						if err != nil {
							failed.CompareAndSwap(nil, err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			if err, _ := failed.Load().(error); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
		})
	}
}

// TestToolbusInProcess proves the rig works (make test runs it briefly).
func TestToolbusInProcess(t *testing.T) {
	url := startToolbus(t)
	tg := &target.MCP{Endpoint: url, Tool: "lookup", Arg: "id", HTTP: target.NewHTTPClient()}
	s, err := tg.Open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range 20 {
		id := fmt.Sprintf("t-%d-%s", i, strings.Repeat("x", i))
		got, err := s.Call(context.Background(), id)
		if err != nil || got != id {
			t.Fatalf("call %d: got %q, %v; want %q", i, got, err, id)
		}
	}
}
