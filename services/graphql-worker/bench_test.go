package graphqlworker

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/toolbus/toolbus/bus"
	"github.com/toolbus/toolbus/catalog"
	toolbusv1 "github.com/toolbus/toolbus/gen/toolbus/v1"
	"github.com/toolbus/toolbus/upstream"
)

// BenchmarkHandle measures the worker's own cost per call: decoding the
// arguments, encoding the GraphQL request, the loopback round trip and
// classifying the answer, without the bus. The upstream answers a canned
// body so the figure is the worker's, not a GraphQL server's.
func BenchmarkHandle(b *testing.B) {
	body := []byte(`{"data":{"customer":{"id":"c1","name":"Ada Lovelace"}}}`)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}))
	defer srv.Close()
	cat := scriptCatalog(b, srv.URL+"/graphql")
	h, err := newHandler(cat, []*catalog.Upstream{cat.Upstreams["crm"]}, upstream.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer h.closeIdle()
	call := &toolbusv1.ToolCall{Id: "c1", Tool: "get_customer", Upstream: "crm", Kind: "graphql", Arguments: []byte(`{"id":"c1"}`)}
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	b.ReportAllocs()
	for b.Loop() {
		res, err := h.handle(ctx, call, bus.Delivery{Number: 1})
		if err != nil || res.Error != nil {
			b.Fatalf("handle: %v %v", err, res.GetError())
		}
	}
}
