package mcpfront_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// BenchmarkCallTool measures the whole path: go-sdk client → Streamable
// HTTP → mcp-front → embedded JetStream (file store) → test worker →
// loopback upstream and back. ns/op is wall time per call across all
// clients; p50/p99 are per-call latencies.
func BenchmarkCallTool(b *testing.B) {
	for _, clients := range []int{1, 64} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			// The log line is part of the cost of a call.
			r := newRig(b, rigOptions{logTo: io.Discard})
			css := make([]*mcp.ClientSession, clients)
			for i := range css {
				css[i] = r.connect(b)
			}
			params := &mcp.CallToolParams{Name: "get_customer", Arguments: map[string]any{"id": "42"}}
			lat := make([][]time.Duration, clients)
			var next atomic.Int64
			var failed atomic.Value
			var wg sync.WaitGroup
			b.ReportAllocs()
			b.ResetTimer()
			for i, cs := range css {
				wg.Add(1)
				go func() {
					defer wg.Done()
					ctx := context.Background()
					for next.Add(1) <= int64(b.N) {
						start := time.Now()
						res, err := cs.CallTool(ctx, params)
						lat[i] = append(lat[i], time.Since(start))
						if err == nil && res.IsError {
							err = fmt.Errorf("tool error: %v", outcomeOf(res).Text)
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
			all := slices.Concat(lat...)
			slices.Sort(all)
			b.ReportMetric(float64(all[len(all)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99-µs")
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
		})
	}
}

// BenchmarkListTools lists a 1,000-tool catalog over Streamable HTTP.
func BenchmarkListTools(b *testing.B) {
	var src strings.Builder
	src.WriteString("version: 1\nupstreams:\n  crm:\n    base_url: http://${env:CRM_HOST}/\ntools:\n")
	for i := range 1000 {
		fmt.Fprintf(&src, `  - name: tool_%04d
    title: Tool %d
    description: Fetch record %d of the CRM by id, with optional expansions.
    upstream: crm
    method: GET
    path: /records/%d/{id}
    input_schema:
      type: object
      properties:
        id: {type: string, description: Record id}
        expand: {type: array, items: {type: string}}
      required: [id]
    output_schema:
      type: object
      properties:
        id: {type: string}
        name: {type: string}
    meta: {openai/outputTemplate: "ui://widget/record.html"}
`, i, i, i, i)
	}
	// The go-sdk client spends most of the time decoding and checking the
	// schemas; raw-http measures the server alone (what the 5 ms budget
	// is about): one JSON-RPC POST, response read but not decoded.
	b.Run("client=go-sdk", func(b *testing.B) {
		r := newRig(b, rigOptions{catalog: src.String(), logTo: io.Discard})
		cs := r.connect(b)
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			res, err := cs.ListTools(ctx, nil)
			if err != nil {
				b.Fatal(err)
			}
			if len(res.Tools) != 1000 || res.NextCursor != "" {
				b.Fatalf("listed %d tools (next cursor %q), want all 1000 in one page", len(res.Tools), res.NextCursor)
			}
		}
		checkListFastPath(b, r)
	})
	b.Run("client=raw-http", func(b *testing.B) {
		r := newRig(b, rigOptions{catalog: src.String(), logTo: io.Discard, stateless: true})
		tr := &http.Transport{}
		b.Cleanup(tr.CloseIdleConnections)
		hc := &http.Client{Transport: tr}
		body := []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}`)
		b.ReportAllocs()
		for b.Loop() {
			req, err := http.NewRequest(http.MethodPost, r.url, bytes.NewReader(body))
			if err != nil {
				b.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			req.Header.Set("MCP-Protocol-Version", "2025-11-25")
			resp, err := hc.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			got, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK || !bytes.Contains(got, []byte(`"tool_0999"`)) {
				b.Fatalf("tools/list: %s %v: %.200s", resp.Status, err, got)
			}
		}
		checkListFastPath(b, r)
	})
}

// checkListFastPath fails a benchmark whose lists did not all take the
// tools/list fast path (listfast.go): it would measure something else.
func checkListFastPath(b *testing.B, r *rig) {
	b.Helper()
	if n := r.svc.ListsSpliced(); n < int64(b.N) {
		b.Fatalf("%d of %d lists took the tools/list fast path", n, b.N)
	}
}
