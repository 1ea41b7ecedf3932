package openapi

import (
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
)

// Large real documents, fetched by testdata/fetch.sh (make openapi-specs)
// from pinned package versions.
var largeSpecs = []struct {
	name, file string
	// minTools: the document's operations minus the few it cannot serve.
	minTools int
	// recursive: the document has self-referencing schemas within the
	// default expansion depth.
	recursive bool
}{
	{name: "stripe", file: "stripe-spec3.json", minTools: 590, recursive: true},
	{name: "github", file: "github-api.json", minTools: 1200},
}

// LargeSpec reads a fetched document; a missing one fails the test: the
// suite must not pass without having imported the real documents.
func LargeSpec(tb testing.TB, file string) []byte {
	tb.Helper()
	path := filepath.Join("testdata", ".cache", file)
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatalf("%v: the large OpenAPI documents are fetched by `make openapi-specs` (openapi/testdata/fetch.sh); run it first", err)
	}
	return b
}

func TestImportLargeSpecs(t *testing.T) {
	for _, spec := range largeSpecs {
		t.Run(spec.name, func(t *testing.T) {
			data := LargeSpec(t, spec.file)
			start := time.Now()
			res, err := Import(data, Options{})
			elapsed := time.Since(start)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %.1f MB, %d operations, %d tools in %v", spec.name, float64(len(data))/1e6, res.Operations, len(res.Tools), elapsed)
			if len(res.Tools) < spec.minTools {
				t.Fatalf("%d tools, want at least %d (notes: %q)", len(res.Tools), spec.minTools, res.Notes)
			}
			seen := map[string]bool{}
			var form, recursive, deep, wrapped, withOutput int
			for _, tl := range res.Tools {
				if !ValidName(tl.Name) || seen[strings.ToLower(tl.Name)] {
					t.Errorf("tool name %q is invalid or not unique", tl.Name)
				}
				seen[strings.ToLower(tl.Name)] = true
				compile(t, tl.InputSchema)
				if tl.OutputSchema != nil {
					withOutput++
					var top map[string]any
					if err := json.Unmarshal(tl.OutputSchema, &top); err != nil || top["type"] != "object" {
						t.Errorf("%s: output schema is not type object: %.200s", tl.Name, tl.OutputSchema)
					}
					compile(t, tl.OutputSchema)
					if strings.HasPrefix(string(tl.OutputSchema), `{"type":"object","properties":{"result":`) {
						wrapped++
					}
				}
				if tl.BodyEncoding == BodyForm {
					form++
				}
				for _, n := range tl.Notes {
					if strings.HasPrefix(n, "recursive schema") {
						recursive++
						break
					}
				}
				for _, n := range tl.Notes {
					if strings.HasPrefix(n, "schemas nested more than") {
						deep++
						break
					}
				}
			}
			t.Logf("%s: %d form bodies, %d with output schemas (%d wrapped), %d with cut recursion, %d with cut depth", spec.name, form, withOutput, wrapped, recursive, deep)
			if spec.recursive && recursive == 0 {
				t.Error("no recursive schema was cut: the document should exercise it")
			}
			if deep == 0 {
				t.Error("no reference was cut for depth: the document should exercise it")
			}
			if withOutput < len(res.Tools)/2 {
				t.Errorf("only %d of %d tools have output schemas", withOutput, len(res.Tools))
			}
			if spec.name == "stripe" && form < 300 {
				t.Errorf("%d form-encoded tools, want Stripe's POST operations (300+)", form)
			}
		})
	}
}

func TestImportStripeDetails(t *testing.T) {
	res, err := Import(LargeSpec(t, "stripe-spec3.json"), Options{Select: Selection{Paths: []string{"/v1/customers*"}}})
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*Tool{}
	for _, tl := range res.Tools {
		byName[tl.Name] = tl
	}
	get := byName["GetCustomersCustomer"]
	if get == nil || get.Path != "/v1/customers/{customer}" || get.Params[0] != (Param{Name: "customer", In: InPath, WireName: "customer", Required: true}) {
		t.Fatalf("GetCustomersCustomer = %+v", get)
	}
	var expand *Param
	for i, p := range get.Params {
		if p.Name == "expand" {
			expand = &get.Params[i]
		}
	}
	if expand == nil || !expand.Deep || expand.In != InQuery {
		t.Errorf("expand = %+v, want a deepObject query parameter", expand)
	}
	post := byName["PostCustomers"]
	if post == nil || post.BodyEncoding != BodyForm || post.Method != "POST" {
		t.Fatalf("PostCustomers = %+v", post)
	}
	in := decodeJSON(t, post.InputSchema)
	meta, ok := in["properties"].(map[string]any)["metadata"].(map[string]any)
	if !ok || meta["anyOf"] == nil {
		t.Errorf("metadata = %v, want Stripe's emptyable object (anyOf)", meta)
	}
	if len(res.Servers) != 1 || res.Servers[0] != "https://api.stripe.com" {
		t.Errorf("servers = %v", res.Servers)
	}
}

// BenchmarkImport measures importing every operation of the large
// documents: time, allocations (B/op) and the document size.
// BenchmarkKinOpenAPILoad is the baseline that decided against a typed
// model: kin-openapi's loader alone, before any conversion.
func BenchmarkImport(b *testing.B) {
	for _, spec := range largeSpecs {
		b.Run(spec.name, func(b *testing.B) {
			data := LargeSpec(b, spec.file)
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			var tools int
			var peak uint64
			for b.Loop() {
				res, err := Import(data, Options{})
				if err != nil {
					b.Fatal(err)
				}
				tools = len(res.Tools)
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapInuse)
			}
			b.ReportMetric(float64(len(data))/1e6, "doc-MB")
			b.ReportMetric(float64(tools), "tools")
			b.ReportMetric(float64(peak)/1e6, "heap-MB")
		})
	}
}

func BenchmarkKinOpenAPILoad(b *testing.B) {
	for _, spec := range largeSpecs {
		b.Run(spec.name, func(b *testing.B) {
			data := LargeSpec(b, spec.file)
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := openapi3.NewLoader().LoadFromData(data); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(data))/1e6, "doc-MB")
		})
	}
}
