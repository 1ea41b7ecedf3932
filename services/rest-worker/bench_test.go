package restworker

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

// BenchmarkHandle measures the worker's own cost per call: decoding
// arguments, building the request, the loopback round trip and mapping the
// answer, without the bus.
func BenchmarkHandle(b *testing.B) {
	body := []byte(`{"id":"42","name":"Ada Lovelace","email":"ada@example.com","tier":"pro"}`)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}))
	defer srv.Close()
	cat := loadCatalog(b, srv.URL, "http://dead.test", "http://demo.test")
	h, err := newHandler(cat, []*catalog.Upstream{cat.Upstreams["crm"]}, upstream.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer h.closeIdle()
	call := &toolbusv1.ToolCall{Id: "c1", Tool: "get_customer", Upstream: "crm", Kind: "rest",
		Arguments: []byte(`{"id":"42","expand":["orders"],"limit":10}`)}
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
