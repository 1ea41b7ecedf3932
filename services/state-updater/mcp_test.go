package stateupdater_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/toolbus/toolbus/bus/bustest"
	"github.com/toolbus/toolbus/projection"
	"github.com/toolbus/toolbus/projection/projectiontest"
	webhookingest "github.com/toolbus/toolbus/services/webhook-ingest"
	"github.com/toolbus/toolbus/webhookcli"
)

// TestMCPSurface: events posted to webhook-ingest (signed by the send
// command) reach the projection; a go-sdk client reads the resources, calls
// get_/list_ tools, and a subscribed client hears about the update.
func TestMCPSurface(t *testing.T) {
	b := newBus(t)
	b.start(t, "one")
	ingest, err := webhookingest.New(webhookingest.Options{Catalog: b.cat, NC: b.nc, JS: b.js, Logger: bustest.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := ingest.Start(ctx); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(ingest.Handler())
	defer hs.Close()
	defer ingest.Shutdown(context.Background())

	send := func(e event) {
		t.Helper()
		resp, err := webhookcli.Send(ctx, hs.URL, b.cat.Sources[e.source], []byte(e.body), e.typ)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("send %s: status %d", e.id, resp.StatusCode)
		}
	}
	send(pay("evt_1", "cus_42", 100, 1000))
	send(pay("evt_2", "cus_7", 100, 500))
	b.waitIdle(t)

	reader := projection.NewReader(b.js, b.cat)
	srv := projectiontest.Server(reader, b.cat)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	watching := make(chan string, 4)
	wg.Go(func() {
		_ = projection.NotifyWith(ctx, srv, reader, b.cat, projection.NotifyOptions{
			Logger:   bustest.Logger(),
			Watching: func(p string) { watching <- p },
		})
	})
	cs := projectiontest.ConnectInMemory(t, ctx, srv)

	uri := projection.EntityURI("payments", "cus_42")
	res, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: uri})
	if err != nil {
		t.Fatal(err)
	}
	var ent projection.EntityView
	if err := json.Unmarshal([]byte(res.Contents[0].Text), &ent); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]any{"amount": 1000.0, "payment": "pi_evt_1", "status": "succeeded"}, ent.Value); diff != "" {
		t.Errorf("resource value (-want +got):\n%s", diff)
	}
	if _, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: projection.EntityURI("payments", "cus_none")}); err == nil {
		t.Error("reading a missing entity succeeded")
	}
	list, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: projection.ListURI("payments")})
	if err != nil {
		t.Fatal(err)
	}
	var lo projection.ListOutput
	if err := json.Unmarshal([]byte(list.Contents[0].Text), &lo); err != nil {
		t.Fatal(err)
	}
	if len(lo.Items) != 2 || lo.Items[0].Key != "cus_42" || lo.Items[1].Key != "cus_7" {
		t.Errorf("listing = %+v", lo.Items)
	}

	tools := []struct {
		name    string
		args    map[string]any
		want    string
		wantErr bool
	}{
		{"get_payments", map[string]any{"key": "cus_7"}, "cus_7", false},
		{"get_payments", map[string]any{"key": "cus_none"}, `payments "cus_none" not found`, true},
		{"list_payments", map[string]any{"where": map[string]any{"amount": 500}}, "cus_7", false},
		{"list_payments", map[string]any{"limit": 1}, "cus_42", false},
		{"list_payments", map[string]any{"prefix": "cus_4"}, "cus_42", false},
	}
	for _, tt := range tools {
		r, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tt.name, Arguments: tt.args})
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if r.IsError != tt.wantErr {
			t.Errorf("%s(%v): IsError = %v, want %v (%v)", tt.name, tt.args, r.IsError, tt.wantErr, r.Content)
			continue
		}
		if tt.wantErr {
			if got := r.Content[0].(*mcp.TextContent).Text; got != tt.want {
				t.Errorf("%s(%v): error %q, want %q", tt.name, tt.args, got, tt.want)
			}
			continue
		}
		b, _ := json.Marshal(r.StructuredContent)
		var out struct {
			Key        string
			Items      []struct{ Key string }
			NextCursor string `json:"next_cursor"`
		}
		_ = json.Unmarshal(b, &out)
		got := out.Key
		if len(out.Items) > 0 {
			got = out.Items[0].Key
		}
		if got != tt.want || (tt.args["limit"] == 1 && out.NextCursor == "") {
			t.Errorf("%s(%v) = %s, want key %s and a cursor when paged", tt.name, tt.args, b, tt.want)
		}
	}

	if err := cs.Subscribe(ctx, uri); err != nil {
		t.Fatal(err)
	}
	// The watch sees updates only: wait until the one of payments is in
	// place (open_prs is watched too, in any order).
	for w := ""; w != "payments"; {
		select {
		case w = <-watching:
		case <-time.After(10 * time.Second):
			t.Fatal("the watch of payments was not established")
		}
	}
	send(pay("evt_3", "cus_42", 200, 1500))
	select {
	case got := <-cs.Updated:
		if got != uri {
			t.Errorf("notification for %s, want %s", got, uri)
		}
	case <-time.After(30 * time.Second): // "eventually", on a loaded runner
		t.Fatal("no notifications/resources/updated after the event")
	}
	res, err = cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: uri})
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(res.Contents[0].Text), &ent); err != nil {
		t.Fatal(err)
	}
	if ent.EventID != "evt_3" {
		t.Errorf("after the update the resource shows event %s, want evt_3", ent.EventID)
	}
}
