package events_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/toolbus/toolbus/bus/bustest"
	"github.com/toolbus/toolbus/events"
)

// BenchmarkPublishCall is what mcp-front adds to every call for the feed.
func BenchmarkPublishCall(b *testing.B) {
	nc, _ := bustest.Connect(b, bustest.Server(b))
	ev := &events.Call{Time: time.Now(), ID: "8GiNOLPjzASTL73N0UgQKX", Tool: "get_customer", Upstream: "crm", Via: "mcp",
		Caller: "api_key:apikey:app", Outcome: "ok", Attempts: 1, Delivery: 1, UpstreamStatus: 200, DurationMS: 0.42,
		Worker: "host-1a2b3c4d", TraceID: "0af7651916cd43dd8448eb211c80319c", Instance: "host-1a2b3c4d"}
	b.ReportAllocs()
	for b.Loop() {
		if err := events.Publish(nc, events.SubjectCall, ev); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncodeCall is the encoding part of BenchmarkPublishCall.
func BenchmarkEncodeCall(b *testing.B) {
	ev := &events.Call{Time: time.Now(), ID: "8GiNOLPjzASTL73N0UgQKX", Tool: "get_customer", Upstream: "crm", Via: "mcp",
		Caller: "api_key:apikey:app", Outcome: "ok", Attempts: 1, Delivery: 1, UpstreamStatus: 200, DurationMS: 0.42,
		Worker: "host-1a2b3c4d", TraceID: "0af7651916cd43dd8448eb211c80319c", Instance: "host-1a2b3c4d"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := json.Marshal(ev); err != nil {
			b.Fatal(err)
		}
	}
}
