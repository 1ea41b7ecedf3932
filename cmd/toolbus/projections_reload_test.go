package main

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/toolbus/toolbus/projection"
	"github.com/toolbus/toolbus/projection/projectiontest"
)

const (
	// No projection at first: the reload adds the front's first.
	projReloadV1 = `version: 1
sources:
  stripe: {scheme: stripe, secrets: ["${env:RELOAD_PROJ_SECRET}"]}
`
	projReloadRefunds = `projections:
  refunds:
    sources: [stripe]
    events: [charge.refunded]
    key: data.object.customer
    fields: {refunded: data.object.amount_refunded}
`
)

// TestHotReloadProjections: a projection added to the catalog file (the
// front's first) is built from the events already stored, and served by
// mcp-front (tools, resources, change notifications) without a restart;
// removing it removes its tools.
func TestHotReloadProjections(t *testing.T) {
	t.Setenv("RELOAD_PROJ_SECRET", traceWebhookSecret)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	f := newFileRig(t, ctx, projReloadV1)
	stack := startStateStack(t, ctx, f.cat, f.nc, f.js, nil)
	f.reload(ctx, stack.services()...)

	changed := make(chan struct{}, 100)
	cs := projectiontest.Connect(t, ctx, &mcp.StreamableClientTransport{Endpoint: stack.url + "/mcp"}, &mcp.ClientOptions{
		ToolListChangedHandler: func(context.Context, *mcp.ToolListChangedRequest) { changed <- struct{}{} },
	})
	if got := toolNames(t, cs.ClientSession); len(got) != 0 {
		t.Fatalf("tools = %v, want none", got)
	}

	refund := func(id string, amount int) {
		t.Helper()
		body := fmt.Sprintf(`{"id":%q,"type":"charge.refunded","created":1700000000,"data":{"object":{"customer":"cus_1","amount_refunded":%d}}}`, id, amount)
		if st := sendStripe(t, stack.url, id, body, nil); st != http.StatusAccepted {
			t.Fatalf("refund %s answered %d, want 202", id, st)
		}
	}
	refund("evt_refund_1", 500) // stored before the projection exists

	f.write(projReloadV1 + projReloadRefunds)
	waitChanged(t, changed)
	if got, want := toolNames(t, cs.ClientSession), []string{"get_refunds", "list_refunds"}; !slices.Equal(got, want) {
		t.Fatalf("tools after adding refunds = %v, want %v", got, want)
	}
	// Built from the event stored before: eventually there.
	for {
		res := callTool(t, cs.ClientSession, "get_refunds", map[string]any{"key": "cus_1"})
		if !res.IsError {
			if v, _ := structuredOf(t, res)["value"].(map[string]any); v["refunded"] != 500.0 {
				t.Fatalf("get_refunds = %v, want refunded 500 from the stored event", structuredOf(t, res))
			}
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the added projection never had the stored event: %s", textOf(res))
		}
		time.Sleep(50 * time.Millisecond)
	}
	uri := projection.EntityURI("refunds", "cus_1")
	if err := cs.Subscribe(ctx, uri); err != nil {
		t.Fatal(err)
	}
	refund("evt_refund_2", 700)
	select {
	case got := <-cs.Updated:
		if got != uri {
			t.Errorf("notified of %s, want %s", got, uri)
		}
	case <-ctx.Done():
		t.Fatal("no notification for the projection added by the reload")
	}

	f.write(projReloadV1)
	waitChanged(t, changed)
	if got := toolNames(t, cs.ClientSession); len(got) != 0 {
		t.Errorf("tools after removing refunds = %v, want none", got)
	}
	if _, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: uri}); err == nil {
		t.Error("a resource of the removed projection was read")
	}
}
