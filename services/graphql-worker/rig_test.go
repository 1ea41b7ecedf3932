package graphqlworker_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/toolbus/toolbus/bus/bustest"
	"github.com/toolbus/toolbus/catalog"
	"github.com/toolbus/toolbus/examples/crmgraphql"
	graphqlworker "github.com/toolbus/toolbus/services/graphql-worker"
	mcpfront "github.com/toolbus/toolbus/services/mcp-front"
)

// loadCatalog loads testdata/catalog.yaml with the upstream at host.
func loadCatalog(tb testing.TB, host string) *catalog.Catalog {
	tb.Helper()
	cat, err := catalog.Load("testdata/catalog.yaml", catalog.WithLookupEnv(func(name string) (string, bool) {
		return host, name == "CRM_HOST"
	}))
	if err != nil {
		tb.Fatalf("catalog:\n%v", err)
	}
	return cat
}

// counting wraps the upstream and counts the requests it receives.
type counting struct {
	next     http.Handler
	requests atomic.Int64
}

func (c *counting) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.requests.Add(1)
	c.next.ServeHTTP(w, r)
}

// rig is the whole GraphQL call path on real parts: the example GraphQL
// server, embedded NATS JetStream, the graphql-worker, mcp-front over
// Streamable HTTP, and a go-sdk MCP client.
type rig struct {
	upstream *counting
	session  *mcp.ClientSession
}

func newRig(tb testing.TB) *rig {
	tb.Helper()
	up := &counting{next: crmgraphql.NewHandler()}
	srv := httptest.NewServer(up)
	tb.Cleanup(srv.Close)
	cat := loadCatalog(tb, strings.TrimPrefix(srv.URL, "http://"))

	ns := bustest.Server(tb)
	nc, js := bustest.Connect(tb, ns)
	log := slog.New(slog.DiscardHandler)

	w, err := graphqlworker.New(graphqlworker.Options{Catalog: cat, NC: nc, JS: js, Instance: "gql-test", Logger: log})
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.Start(ctx); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { shutdown(tb, w) })

	front, err := mcpfront.New(mcpfront.Options{Catalog: cat, NC: nc, JS: js, Instance: "front-test", Logger: log, Version: "test"})
	if err != nil {
		tb.Fatal(err)
	}
	if err := front.Start(ctx); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { shutdown(tb, front) })
	hs := httptest.NewServer(front.MCPHandler())
	tb.Cleanup(hs.Close)

	client := mcp.NewClient(&mcp.Implementation{Name: "test-client", Version: "v0"}, nil)
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: hs.URL}, nil)
	if err != nil {
		tb.Fatalf("connect: %v", err)
	}
	tb.Cleanup(func() { _ = cs.Close() })
	return &rig{upstream: up, session: cs}
}

func shutdown(tb testing.TB, s interface{ Shutdown(context.Context) error }) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		tb.Errorf("shutdown: %v", err)
	}
}

// outcome is what a model sees of a call: the structured content, and the
// text items after the first (which repeats the JSON) or, for an error,
// all of them.
type outcome struct {
	IsError    bool
	Structured any
	Notes      []string
}

func (r *rig) call(tb testing.TB, tool string, args any) outcome {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := r.session.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		tb.Fatalf("call %s: %v", tool, err)
	}
	o := outcome{IsError: res.IsError, Structured: res.StructuredContent}
	for i, c := range res.Content {
		tc, ok := c.(*mcp.TextContent)
		if !ok {
			tb.Fatalf("non-text content %T", c)
		}
		if i == 0 && !res.IsError {
			// The first item is the JSON of the structured content.
			if diff := cmp.Diff(res.StructuredContent, parseJSON(tb, tc.Text)); diff != "" {
				tb.Errorf("text item differs from structured content (-structured +text):\n%s", diff)
			}
			continue
		}
		o.Notes = append(o.Notes, tc.Text)
	}
	return o
}

// parseJSON decodes s for comparisons with decoded results.
func parseJSON(tb testing.TB, s string) any {
	tb.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		tb.Fatalf("bad JSON in test: %v\n%s", err, s)
	}
	return v
}

func readFile(tb testing.TB, name string) string {
	tb.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}
