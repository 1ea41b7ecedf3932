package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/toolbus/toolbus/bus"
	"github.com/toolbus/toolbus/bus/bustest"
	"github.com/toolbus/toolbus/catalog"
	"github.com/toolbus/toolbus/examples/crmgraphql"
	graphqlworker "github.com/toolbus/toolbus/services/graphql-worker"
	mcpfront "github.com/toolbus/toolbus/services/mcp-front"
)

// gqlReloadV1 has one GraphQL tool; %[1]s is the endpoint of
// examples/crmgraphql.
const gqlReloadV1 = `version: 1
upstreams:
  crm: {kind: graphql, endpoint: "%[1]s/graphql", timeout: 5s, schema: {file: crm.graphql}}
tools:
  - name: customer_name
    description: A customer's name.
    upstream: crm
    operation: |
      query CustomerName($id: ID!) { customer(id: $id) { id name } }
`

// gqlReloadV2 changes the operation of customer_name (it asks for the
// tier too) and adds customer_city on the same upstream.
const gqlReloadV2 = `version: 1
upstreams:
  crm: {kind: graphql, endpoint: "%[1]s/graphql", timeout: 5s, schema: {file: crm.graphql}}
tools:
  - name: customer_name
    description: A customer's name and tier.
    upstream: crm
    operation: |
      query CustomerName($id: ID!) { customer(id: $id) { id name tier } }
  - name: customer_city
    description: The city a customer lives in.
    upstream: crm
    operation: |
      query CustomerCity($id: ID!) { customer(id: $id) { address { city } } }
`

// gqlReloadInvalid asks for a field the schema does not have.
const gqlReloadInvalid = `version: 1
upstreams:
  crm: {kind: graphql, endpoint: "%[1]s/graphql", timeout: 5s, schema: {file: crm.graphql}}
tools:
  - name: customer_name
    description: A customer's name.
    upstream: crm
    operation: |
      query CustomerName($id: ID!) { customer(id: $id) { id nickname } }
`

// gqlReloadPending introspects its schema and has no cache: a reload
// cannot serve it.
const gqlReloadPending = `version: 1
upstreams:
  crm: {kind: graphql, endpoint: "%[1]s/graphql", timeout: 5s, schema: {introspect: true}}
tools:
  - name: customer_name
    description: A customer's name.
    upstream: crm
    operation: |
      query CustomerName($id: ID!) { customer(id: $id) { id } }
`

// gqlReloadRig is mcp-front and the graphql-worker over
// examples/crmgraphql and embedded NATS, with the catalog watch running.
type gqlReloadRig struct {
	url, path string
	js        jetstream.JetStream
	worker    *graphqlworker.Service
	session   *mcp.ClientSession
	changed   chan struct{}
	logs      *syncLog // what the catalog watch logged
}

// syncLog is a log buffer safe for concurrent writes.
type syncLog struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func newGQLReloadRig(t *testing.T) *gqlReloadRig {
	t.Helper()
	up := httptest.NewServer(crmgraphql.NewHandler())
	t.Cleanup(up.Close)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "crm.graphql"), []byte(crmgraphql.Schema), 0o600); err != nil {
		t.Fatal(err)
	}
	rig := &gqlReloadRig{url: up.URL, path: filepath.Join(dir, "catalog.yaml")}
	rig.write(t, gqlReloadV1)
	cat, err := catalog.Load(rig.path)
	if err != nil {
		t.Fatal(err)
	}
	ns := bustest.Server(t)
	nc, js := bustest.Connect(t, ns)
	ctx := context.Background()
	if err := bus.DefaultTopology().Ensure(ctx, js); err != nil {
		t.Fatal(err)
	}
	log := bustest.Logger()
	w, err := graphqlworker.New(graphqlworker.Options{Catalog: cat, NC: nc, JS: js, Instance: "gw1", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	front, err := mcpfront.New(mcpfront.Options{Catalog: cat, NC: nc, JS: js, Instance: "f1", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	startServices(t, ctx, w, front)
	rig.logs = &syncLog{}
	r, err := startCatalogReload(ctx, js, 0, cat, []lifecycle{w, front}, "", slog.New(slog.NewTextHandler(rig.logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	srv := httptest.NewServer(front.MCPHandler())
	t.Cleanup(srv.Close)
	rig.js, rig.worker = js, w
	rig.changed = make(chan struct{}, 100)
	pr := &powerRig{url: srv.URL}
	rig.session = pr.session(t, &mcp.ClientOptions{ToolListChangedHandler: func(context.Context, *mcp.ToolListChangedRequest) {
		rig.changed <- struct{}{}
	}}, "")
	return rig
}

func (r *gqlReloadRig) write(t *testing.T, src string) {
	t.Helper()
	if err := os.WriteFile(r.path, []byte(fmt.Sprintf(src, r.url)), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestHotReloadGraphQL applies catalogs to a running graphql-worker: a
// changed operation and a new tool on the served upstream work at once;
// a catalog with an invalid operation, or with a schema still to be
// introspected, is refused and the previous catalog keeps serving.
func TestHotReloadGraphQL(t *testing.T) {
	rig := newGQLReloadRig(t)
	s := rig.session
	if got, want := toolNames(t, s), []string{"customer_name"}; !slices.Equal(got, want) {
		t.Fatalf("tools = %v, want %v", got, want)
	}
	got := structuredOf(t, callTool(t, s, "customer_name", map[string]any{"id": "c1"}))
	if c, _ := got["customer"].(map[string]any); c["name"] != "Ada Lovelace" || c["tier"] != nil {
		t.Fatalf("customer_name before reload = %v", got)
	}

	rig.write(t, gqlReloadV2)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, _, err := applyBundle(ctx, rig.js, 0, rig.path); err != nil {
		t.Fatal(err)
	}
	waitChanged(t, rig.changed)
	want := []string{"customer_city", "customer_name"}
	if got := toolNames(t, s); !slices.Equal(got, want) {
		t.Fatalf("tools after reload = %v, want %v", got, want)
	}
	// The changed operation is the one sent.
	got = structuredOf(t, callTool(t, s, "customer_name", map[string]any{"id": "c2"}))
	if c, _ := got["customer"].(map[string]any); c["name"] != "Grace Hopper" || c["tier"] != "PRO" {
		t.Errorf("customer_name after reload = %v, want name and tier of c2", got)
	}
	// The new tool answers through the worker without a restart.
	got = structuredOf(t, callTool(t, s, "customer_city", map[string]any{"id": "c1"}))
	if c, _ := got["customer"].(map[string]any); fmt.Sprint(c["address"]) != "map[city:London]" {
		t.Errorf("customer_city = %v, want London", got)
	}

	// apply refuses an invalid operation and stores nothing.
	rig.write(t, gqlReloadInvalid)
	if _, _, err := applyBundle(ctx, rig.js, 0, rig.path); err == nil || !strings.Contains(err.Error(), "nickname") {
		t.Fatalf("apply of an invalid operation: %v, want an error naming the field", err)
	}
	// Stored behind apply's back, the process refuses it too.
	schema := []byte(crmgraphql.Schema)
	bad := catalogBundle(rig.path, fmt.Sprintf(gqlReloadInvalid, rig.url))
	bad.Files[filepath.Join(filepath.Dir(rig.path), "crm.graphql")] = schema
	putBundle(t, rig.js, &bad)
	// A schema still to be introspected is stored by apply (nothing is
	// fetched to validate it) but refused by the process.
	rig.write(t, gqlReloadPending)
	if _, _, err := applyBundle(ctx, rig.js, 0, rig.path); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	logs := rig.logs.String()
	for _, why := range []string{"nickname", "graphql upstreams crm are not cached"} {
		if !strings.Contains(logs, why) {
			t.Errorf("no refusal mentioning %q in the logs:\n%s", why, logs)
		}
	}
	if got := toolNames(t, s); !slices.Equal(got, want) {
		t.Errorf("tools after refused catalogs = %v, want the previous %v", got, want)
	}
	got = structuredOf(t, callTool(t, s, "customer_city", map[string]any{"id": "c2"}))
	if c, _ := got["customer"].(map[string]any); fmt.Sprint(c["address"]) != "map[city:Arlington]" {
		t.Errorf("previous catalog stopped serving: customer_city = %v", got)
	}

	// Handed to the worker directly, the pending catalog is refused with
	// a clear error.
	pending, err := catalog.Load(rig.path)
	if err != nil {
		t.Fatal(err)
	}
	if err := rig.worker.Reload(pending); err == nil || !strings.Contains(err.Error(), "schemas of upstreams crm are not loaded") {
		t.Errorf("Reload of a pending catalog: %v", err)
	}
	if res := callTool(t, s, "customer_name", map[string]any{"id": "c1"}); res.IsError {
		t.Errorf("previous catalog stopped serving after a refused Reload: %s", textOf(res))
	}
}

func putBundle(t *testing.T, js jetstream.JetStream, b *catalog.Bundle) {
	t.Helper()
	data, err := encodeBundle(b)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := bus.PutCatalog(ctx, js, data); err != nil {
		t.Fatal(err)
	}
}
