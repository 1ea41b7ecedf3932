package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/toolbus/toolbus/bench/proc"
	"github.com/toolbus/toolbus/bench/report"
	"github.com/toolbus/toolbus/catalog"
)

// generateCatalog writes a catalog of n GET tools with input and output
// schemas and descriptions of realistic size, all on the bench upstream.
func generateCatalog(baseURL string, n int) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "version: 1\nupstreams:\n  crm:\n    kind: rest\n    base_url: %s\n    timeout: 10s\n    concurrency: 256\ntools:\n", baseURL)
	for i := range n {
		fmt.Fprintf(&b, `  - name: lookup_%04d
    title: Lookup %d
    description: Fetch item %d of the CRM by id, with optional expansions; the answer carries the id asked for.
    upstream: crm
    method: GET
    path: /lookup/{id}
    input_schema:
      type: object
      properties:
        id: {type: string, minLength: 1, description: Item id}
        expand: {type: array, items: {type: string}, description: Related records to include}
      required: [id]
    output_schema:
      type: object
      properties:
        id: {type: string}
        name: {type: string}
        value: {type: integer}
      required: [id]
`, i, i, i)
	}
	return []byte(b.String())
}

// measureCatalog times catalog.Load of the large OpenAPI documents (each
// in a child process), times parsing a generated catalog in process, then
// serves it with toolbus (all-in-one) and times tools/list through the
// run's MCP client.
func measureCatalog(ctx context.Context, e *env, o *options) (*report.Catalog, error) {
	src := generateCatalog(e.apiURL(), o.catalogSize)
	path := filepath.Join(e.tmp, fmt.Sprintf("catalog-%d.yaml", o.catalogSize))
	if err := os.WriteFile(path, src, 0o644); err != nil {
		return nil, err
	}
	c := &report.Catalog{Tools: o.catalogSize, CatalogBytes: len(src)}
	c.Imports = measureImports(ctx, e, o)

	// Parse a few times; report the fastest (the first pays for warming up).
	var ms runtime.MemStats
	best := time.Duration(1 << 62)
	for range 3 {
		runtime.GC()
		runtime.ReadMemStats(&ms)
		before := ms.TotalAlloc
		start := time.Now()
		cat, err := catalog.Parse(path, src)
		d := time.Since(start)
		runtime.ReadMemStats(&ms)
		if err != nil {
			return nil, fmt.Errorf("generated catalog does not parse: %w", err)
		}
		if len(cat.Tools) != o.catalogSize {
			return nil, fmt.Errorf("generated catalog parsed to %d tools, want %d", len(cat.Tools), o.catalogSize)
		}
		best = min(best, d)
		c.ParseAllocMB = float64(ms.TotalAlloc-before) / (1 << 20)
	}
	c.ParseMs = float64(best.Microseconds()) / 1e3

	if err := e.ensureToolbus(ctx); err != nil {
		return nil, err
	}
	data, err := os.MkdirTemp(e.tmp, "catalog-data-")
	if err != nil {
		return nil, err
	}
	start := time.Now()
	p, addr, err := startToolbus(ctx, e, "toolbus-catalog", "--catalog", path, "--nats-listen", "none", "--http", "127.0.0.1:0", "--grpc", "none", "--data", data)
	if err != nil {
		return nil, err
	}
	defer p.Stop(10 * time.Second)
	c.StartupMs = float64(time.Since(start).Milliseconds())

	cs, err := e.mcpTarget("http://"+addr+"/mcp", "").OpenSession(ctx)
	if err != nil {
		return nil, err
	}
	defer cs.Close()
	var lats, answers []time.Duration
	timed, _ := cs.(interface{ LastListAnswer() time.Duration })
	deadline := time.Now().Add(o.warmup + o.duration)
	warmEnd := time.Now().Add(o.warmup)
	for time.Now().Before(deadline) && len(lats) < 20000 && ctx.Err() == nil {
		// The previous answer's decoding (626 KB for 1,000 tools) leaves the
		// generator's heap full of garbage; collect it before the clock
		// starts, so that the generator's own GC does not land inside the
		// next measurement (it would inflate the tail of what is the
		// server's time).
		runtime.GC()
		t0 := time.Now()
		tools, size, err := cs.ListAll(ctx)
		d := time.Since(t0)
		switch {
		case err != nil:
			c.ListErrors++
		case len(tools) != o.catalogSize:
			c.ListErrors++
		case t0.After(warmEnd):
			lats = append(lats, d)
			if timed != nil {
				answers = append(answers, timed.LastListAnswer())
			}
			c.ListedTools, c.ListResponseBytes = len(tools), size
		}
	}
	if len(lats) == 0 {
		return nil, fmt.Errorf("no successful tools/list (%d errors)", c.ListErrors)
	}
	slices.Sort(lats)
	c.ListCalls = len(lats)
	c.ListP50us = float64(lats[len(lats)/2].Nanoseconds()) / 1e3
	c.ListP99us = float64(lats[min(len(lats)-1, len(lats)*99/100)].Nanoseconds()) / 1e3
	if len(answers) == len(lats) {
		slices.Sort(answers)
		c.ListAnswerP50us = float64(answers[len(answers)/2].Nanoseconds()) / 1e3
		c.ListAnswerP99us = float64(answers[min(len(answers)-1, len(answers)*99/100)].Nanoseconds()) / 1e3
	}
	if rss, err := proc.PeakRSS(p.Pid()); err == nil {
		c.ServerPeakMB = float64(rss) / (1 << 20)
	}
	return c, nil
}
