package mcpfront_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkListToolsOpenAPI is tools/list over the real imported documents
// (Stripe and GitHub: about 1,800 tools with full-size schemas), measured
// at the server like BenchmarkListTools' raw-http case: the first page, as
// a client sees it. The documents are fetched by `make openapi-specs`.
func BenchmarkListToolsOpenAPI(b *testing.B) {
	var files []string
	for _, f := range []string{"stripe-spec3.json", "github-api.json"} {
		p, _ := filepath.Abs(filepath.Join("..", "..", "openapi", "testdata", ".cache", f))
		if _, err := os.Stat(p); err != nil {
			b.Fatalf("%v: the large OpenAPI documents are fetched by `make openapi-specs` (openapi/testdata/fetch.sh); run it first", err)
		}
		files = append(files, p)
	}
	src := fmt.Sprintf(`version: 1
upstreams:
  crm:
    base_url: http://${env:CRM_HOST}/
  stripe:
    base_url: http://${env:CRM_HOST}/
    openapi: {file: %q}
  github:
    base_url: http://${env:CRM_HOST}/
    openapi: {file: %q}
`, files[0], files[1])
	r := newRig(b, rigOptions{catalog: src, logTo: io.Discard, stateless: true})
	tr := &http.Transport{}
	b.Cleanup(tr.CloseIdleConnections)
	hc := &http.Client{Transport: tr}
	body := []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}`)
	b.ReportAllocs()
	var size int
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
		if err != nil || resp.StatusCode != http.StatusOK || !bytes.Contains(got, []byte(`"GetCustomersCustomer"`)) {
			b.Fatalf("tools/list: %s %v: %.200s", resp.Status, err, got)
		}
		size = len(got)
	}
	b.ReportMetric(float64(size)/1e6, "response-MB")
}
