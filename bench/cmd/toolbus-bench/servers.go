package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/toolbus/toolbus/bench/target"
	"github.com/toolbus/toolbus/examples/crm"
)

// The benchmark re-runs its own binary to serve the upstream and the plain
// MCP server, so that their CPU time and memory are measured apart from the
// load generator's. Each logs a JSON line {"msg":"listening","http":ADDR}
// on stderr, the same readiness line toolbus writes.

const (
	cmdUpstream = "serve-upstream"
	cmdPlainMCP = "serve-plain-mcp"
)

func logListening(addr string) {
	b, _ := json.Marshal(map[string]string{"msg": "listening", "http": addr})
	fmt.Fprintln(os.Stderr, string(b))
}

// serveUntilSignal serves h on a loopback port until SIGTERM or SIGINT.
func serveUntilSignal(h http.Handler) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	logListening(lis.Addr().String())
	if err := srv.Serve(lis); err != http.ErrServerClosed {
		return err
	}
	return nil
}

// runUpstream serves the demo CRM with no seeded records: the benchmark only
// calls GET /api/v1/lookup/{id} and reads /openapi.yaml.
func runUpstream(args []string) error {
	fs := flag.NewFlagSet(cmdUpstream, flag.ContinueOnError)
	if err := fs.Parse(args); err != nil {
		return err
	}
	return serveUntilSignal(crm.NewServer(crm.Options{Customers: -1}))
}

// lookupIn is the plain server's tool input; the go-sdk derives the input
// schema from it.
type lookupIn struct {
	ID string `json:"id" jsonschema:"the item id"`
}

// lookupOut is the upstream's answer, decoded and re-encoded as structured
// content, as a hand-written server would.
type lookupOut struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Value uint32 `json:"value"`
}

// runPlainMCP serves a go-sdk Streamable HTTP server with one tool that
// calls the upstream directly: the floor for any MCP gateway.
func runPlainMCP(args []string) error {
	fs := flag.NewFlagSet(cmdPlainMCP, flag.ContinueOnError)
	upstream := fs.String("upstream", "", "upstream base URL, ending in /api/v1")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *upstream == "" {
		return fmt.Errorf("%s: -upstream is required", cmdPlainMCP)
	}
	hc := target.NewHTTPClient()
	server := mcp.NewServer(&mcp.Implementation{Name: "plain-mcp", Version: "1"}, nil)
	mcp.AddTool(server, &mcp.Tool{Name: "lookup", Description: "Return the item with the given id."},
		func(ctx context.Context, _ *mcp.CallToolRequest, in lookupIn) (*mcp.CallToolResult, lookupOut, error) {
			var out lookupOut
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, *upstream+"/lookup/"+url.PathEscape(in.ID), nil)
			if err != nil {
				return nil, out, err
			}
			resp, err := hc.Do(req)
			if err != nil {
				return nil, out, err
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				return nil, out, err
			}
			if resp.StatusCode != http.StatusOK {
				return nil, out, fmt.Errorf("upstream status %d: %.200s", resp.StatusCode, body)
			}
			if err := json.Unmarshal(body, &out); err != nil {
				return nil, out, fmt.Errorf("upstream answer: %w", err)
			}
			return nil, out, nil
		})
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, nil)
	mux := http.NewServeMux()
	mux.Handle("/mcp", h)
	return serveUntilSignal(mux)
}
