package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/toolbus/toolbus/bus"
	"github.com/toolbus/toolbus/bus/bustest"
	"github.com/toolbus/toolbus/catalog"
)

const reloadCatalogV1 = `version: 1
upstreams:
  crm: {base_url: "%[1]s/api/v1", timeout: 5s}
tools:
  - name: get_customer
    description: One customer.
    upstream: crm
    method: GET
    path: /customers/{id}
    input_schema: {type: object, properties: {id: {type: integer}}, required: [id]}
  - name: list_customers
    description: Customers.
    upstream: crm
    method: GET
    path: /customers
`

// V2 drops list_customers, adds get_order and shapes get_customer.
const reloadCatalogV2 = `version: 1
upstreams:
  crm: {base_url: "%[1]s/api/v1", timeout: 5s}
tools:
  - name: get_customer
    description: One customer, email only.
    upstream: crm
    method: GET
    path: /customers/{id}
    input_schema: {type: object, properties: {id: {type: integer}}, required: [id]}
    response: {jq: '{email}'}
  - name: get_order
    description: One order.
    upstream: crm
    method: GET
    path: /orders/{id}
    input_schema: {type: object, properties: {id: {type: integer}}, required: [id]}
`

const reloadCatalogInvalid = `version: 1
upstreams:
  crm: {base_url: "%[1]s/api/v1", timeout: 5s}
tools:
  - name: get_customer
    description: One customer.
    upstream: crm
    method: GET
    path: /customers/{id}
    response: {jq: '.['}
`

func toolNames(t *testing.T, s *mcp.ClientSession) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := s.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tl := range res.Tools {
		names = append(names, tl.Name)
	}
	slices.Sort(names)
	return names
}

// reloadSession connects a client that counts list-changed notifications.
func reloadSession(t *testing.T, rig *powerRig) (*mcp.ClientSession, chan struct{}) {
	changed := make(chan struct{}, 100)
	s := rig.session(t, &mcp.ClientOptions{ToolListChangedHandler: func(context.Context, *mcp.ToolListChangedRequest) {
		changed <- struct{}{}
	}}, "")
	return s, changed
}

func waitChanged(t *testing.T, changed chan struct{}) {
	t.Helper()
	select {
	case <-changed:
	case <-time.After(10 * time.Second):
		t.Fatal("no notifications/tools/list_changed")
	}
	// The SDK notifies per change; let the burst pass.
	time.Sleep(100 * time.Millisecond)
	for len(changed) > 0 {
		<-changed
	}
}

func writeRigCatalog(t *testing.T, rig *powerRig, src string) {
	t.Helper()
	if err := os.WriteFile(rig.path, []byte(fmt.Sprintf(src, rig.crmURL)), 0o600); err != nil {
		t.Fatal(err)
	}
}

// newReloadRig is a power rig whose worker and front follow the catalog
// bucket (as every `toolbus serve` process does).
func newReloadRig(t *testing.T, src string, o rigOptions) *powerRig {
	t.Helper()
	rig := newPowerRig(t, src, "", o)
	r, err := startCatalogReload(context.Background(), rig.js, 0, rig.cat, []lifecycle{rig.worker, rig.front}, "", bustest.Logger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	return rig
}

// applyAndWait writes src as the rig's catalog, applies it as `toolbus
// catalog apply` does and waits for the list-changed notification.
func applyAndWait(t *testing.T, rig *powerRig, src string, changed chan struct{}) {
	t.Helper()
	writeRigCatalog(t, rig, src)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, _, err := applyBundle(ctx, rig.js, 0, rig.path); err != nil {
		t.Fatal(err)
	}
	waitChanged(t, changed)
}

// TestHotReloadApply applies a new catalog through the KV bucket (as
// `toolbus catalog apply` does): clients are told the list changed, see
// the new tools, and both mcp-front and the worker use the new catalog.
// An invalid catalog is refused by apply and, stored behind its back, by
// the watching process; the previous catalog keeps serving.
func TestHotReloadApply(t *testing.T) {
	rig := newReloadRig(t, reloadCatalogV1, rigOptions{})
	s, changed := reloadSession(t, rig)
	if got, want := toolNames(t, s), []string{"get_customer", "list_customers"}; !slices.Equal(got, want) {
		t.Fatalf("tools = %v, want %v", got, want)
	}

	applyAndWait(t, rig, reloadCatalogV2, changed)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if got, want := toolNames(t, s), []string{"get_customer", "get_order"}; !slices.Equal(got, want) {
		t.Fatalf("tools after reload = %v, want %v", got, want)
	}
	// The worker shapes with the new catalog's jq.
	got := structuredOf(t, callTool(t, s, "get_customer", map[string]any{"id": 1}))
	if _, ok := got["email"]; !ok || len(got) != 1 {
		t.Errorf("get_customer after reload = %v, want only email", got)
	}
	if res := callTool(t, s, "get_order", map[string]any{"id": 1}); res.IsError {
		t.Errorf("new tool get_order: %s", textOf(res))
	}

	// apply refuses an invalid catalog and stores nothing.
	writeRigCatalog(t, rig, reloadCatalogInvalid)
	if _, _, err := applyBundle(ctx, rig.js, 0, rig.path); err == nil || !strings.Contains(err.Error(), "catalog.yaml:10:") {
		t.Fatalf("apply of an invalid catalog: %v, want a file:line error", err)
	}
	// Stored behind apply's back, the process refuses it too.
	bad, err := encodeBundle(&catalogBundleInvalid)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bus.PutCatalog(ctx, rig.js, bad); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if got, want := toolNames(t, s), []string{"get_customer", "get_order"}; !slices.Equal(got, want) {
		t.Errorf("tools after an invalid catalog = %v, want the previous %v", got, want)
	}
	if res := callTool(t, s, "get_order", map[string]any{"id": 2}); res.IsError {
		t.Errorf("previous catalog stopped serving: %s", textOf(res))
	}
}

// V3 adds an upstream: its worker consumer must start on reload.
const reloadCatalogNewUpstream = `version: 1
upstreams:
  crm: {base_url: "%[1]s/api/v1", timeout: 5s}
  orders: {base_url: "%[1]s/api/v1", timeout: 5s}
tools:
  - name: get_customer
    description: One customer.
    upstream: crm
    method: GET
    path: /customers/{id}
    input_schema: {type: object, properties: {id: {type: integer}}, required: [id]}
  - name: get_order
    description: One order, from an upstream the first catalog did not have.
    upstream: orders
    method: GET
    path: /orders/{id}
    input_schema: {type: object, properties: {id: {type: integer}}, required: [id]}
`

// TestHotReloadNewUpstream applies a catalog with an upstream the worker did
// not serve: its tools answer without a restart (the worker creates the
// upstream's consumer once the new routes are in place), and a second
// reload that keeps it leaves it served.
func TestHotReloadNewUpstream(t *testing.T) {
	rig := newReloadRig(t, reloadCatalogV1, rigOptions{})
	s, changed := reloadSession(t, rig)

	applyAndWait(t, rig, reloadCatalogNewUpstream, changed)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if got, want := toolNames(t, s), []string{"get_customer", "get_order"}; !slices.Equal(got, want) {
		t.Fatalf("tools after reload = %v, want %v", got, want)
	}
	if res := callTool(t, s, "get_order", map[string]any{"id": 1}); res.IsError {
		t.Fatalf("get_order on the new upstream: %s", textOf(res))
	}
	info, err := rig.js.Consumer(ctx, bus.StreamCalls, bus.CallConsumerName("rest", "orders"))
	if err != nil {
		t.Fatalf("no consumer for the new upstream: %v", err)
	}
	if n := info.CachedInfo().Delivered.Consumer; n < 1 {
		t.Errorf("the new upstream's consumer delivered %d calls, want the call above", n)
	}
	// A second reload that keeps the new upstream (only a description
	// changes, so the digest differs and the services really reload):
	// both upstreams keep answering.
	applyAndWait(t, rig, strings.Replace(reloadCatalogNewUpstream, "One order,", "One order (v2),", 1), changed)
	for _, tool := range []string{"get_customer", "get_order"} {
		if res := callTool(t, s, tool, map[string]any{"id": 2}); res.IsError {
			t.Errorf("%s after a second reload: %s", tool, textOf(res))
		}
	}
}

// TestHotReloadFile is the all-in-one: editing the catalog file reloads
// it; an invalid edit is refused.
func TestHotReloadFile(t *testing.T) {
	rig := newPowerRig(t, reloadCatalogV1, "", rigOptions{})
	r, err := startCatalogReload(context.Background(), rig.js, 0, rig.cat, []lifecycle{rig.worker, rig.front}, rig.path, bustest.Logger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	s, changed := reloadSession(t, rig)
	// Modification times can be coarse: make the edit visibly later.
	time.Sleep(10 * time.Millisecond)
	writeRigCatalog(t, rig, reloadCatalogInvalid)
	bump(t, rig.path, 2*time.Second)
	time.Sleep(2 * pollEvery)
	if got, want := toolNames(t, s), []string{"get_customer", "list_customers"}; !slices.Equal(got, want) {
		t.Fatalf("tools after an invalid edit = %v, want %v", got, want)
	}
	writeRigCatalog(t, rig, reloadCatalogV2)
	bump(t, rig.path, 4*time.Second)
	waitChanged(t, changed)
	if got, want := toolNames(t, s), []string{"get_customer", "get_order"}; !slices.Equal(got, want) {
		t.Fatalf("tools after editing the file = %v, want %v", got, want)
	}
}

func bump(t *testing.T, path string, by time.Duration) {
	t.Helper()
	at := time.Now().Add(by)
	if err := os.Chtimes(path, at, at); err != nil {
		t.Fatal(err)
	}
}

// catalogBundleInvalid is a bundle whose catalog does not validate.
var catalogBundleInvalid = catalogBundle("bad.yaml", "version: 1\ntools:\n  - {name: t}\n")

func catalogBundle(file, src string) catalog.Bundle {
	return catalog.Bundle{File: file, Files: map[string][]byte{file: []byte(src)}}
}

const reloadScopesV1 = `version: 1
upstreams:
  crm: {base_url: "%[1]s/api/v1", timeout: 5s}
auth:
  resource: https://mcp.example.com/mcp
  api_keys:
    - {name: reader, sha256: READER_SHA, scopes: [tools.read]}
    - {name: admin, sha256: ADMIN_SHA, scopes: ["*"]}
tools:
  - name: get_customer
    description: One customer.
    upstream: crm
    method: GET
    path: /customers/{id}
    input_schema: {type: object, properties: {id: {type: integer}}, required: [id]}
`

// V2 adds a tool that requires a scope the reader lacks.
const reloadScopesV2 = reloadScopesV1 + `  - name: get_order
    description: One order, for order managers only.
    upstream: crm
    method: GET
    path: /orders/{id}
    scopes: [orders.read]
    input_schema: {type: object, properties: {id: {type: integer}}, required: [id]}
`

// TestHotReloadScopes: a tool added by a reload requires its scopes from
// the first call; before, the running authenticator did not know it and
// let every authenticated caller through.
func TestHotReloadScopes(t *testing.T) {
	keys := strings.NewReplacer("READER_SHA", sha("reader-key-0123456789"), "ADMIN_SHA", sha("admin-key-0123456789"))
	rig := newReloadRig(t, keys.Replace(reloadScopesV1), rigOptions{auth: true})
	changed := make(chan struct{}, 100)
	reader := rig.session(t, &mcp.ClientOptions{ToolListChangedHandler: func(context.Context, *mcp.ToolListChangedRequest) {
		changed <- struct{}{}
	}}, "reader-key-0123456789")
	admin := rig.session(t, nil, "admin-key-0123456789")

	applyAndWait(t, rig, keys.Replace(reloadScopesV2), changed)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if got, want := toolNames(t, admin), []string{"get_customer", "get_order"}; !slices.Equal(got, want) {
		t.Fatalf("admin's tools after reload = %v, want %v", got, want)
	}
	if got, want := toolNames(t, reader), []string{"get_customer"}; !slices.Equal(got, want) {
		t.Errorf("reader's tools after reload = %v, want %v (get_order needs orders.read)", got, want)
	}
	if res := callTool(t, admin, "get_order", map[string]any{"id": 1}); res.IsError {
		t.Errorf("admin's get_order: %s", textOf(res))
	}
	if res := callTool(t, reader, "get_customer", map[string]any{"id": 1}); res.IsError {
		t.Errorf("reader's get_customer: %s", textOf(res))
	}
	// Revoking the admin key takes effect with the next request.
	revoked := strings.Replace(keys.Replace(reloadScopesV2), "    - {name: admin, sha256: "+sha("admin-key-0123456789")+", scopes: [\"*\"]}\n", "", 1)
	if revoked == keys.Replace(reloadScopesV2) {
		t.Fatal("the test catalog has no admin key line to remove")
	}
	writeRigCatalog(t, rig, revoked)
	if _, _, err := applyBundle(ctx, rig.js, 0, rig.path); err != nil {
		t.Fatal(err)
	}
	for {
		_, err := admin.CallTool(ctx, &mcp.CallToolParams{Name: "get_customer", Arguments: map[string]any{"id": 1}})
		if err != nil {
			if !strings.Contains(err.Error(), "Unauthorized") {
				t.Errorf("the revoked admin key: %v, want 401 Unauthorized", err)
			}
			break
		}
		if ctx.Err() != nil {
			t.Fatal("the admin key still works after the catalog that revokes it was applied")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if res := callTool(t, reader, "get_customer", map[string]any{"id": 1}); res.IsError {
		t.Errorf("reader's get_customer after revoking admin: %s", textOf(res))
	}
	// Refused with 403 insufficient_scope (the SDK client then closes).
	res, err := reader.CallTool(ctx, &mcp.CallToolParams{Name: "get_order", Arguments: map[string]any{"id": 1}})
	if err == nil {
		t.Fatalf("the reader called get_order, which requires orders.read: error %v, %s", res.IsError, textOf(res))
	}
	if !strings.Contains(err.Error(), "Forbidden") {
		t.Errorf("reader's get_order refused with %v, want 403 Forbidden (insufficient scope)", err)
	}
}
