package catalog

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
)

func FuzzParse(f *testing.F) {
	full, err := os.ReadFile("testdata/full.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(full)
	f.Add([]byte(orderCatalog))
	for _, s := range []string{
		"", "version: 1\n", "- 1", "version: 1\nupstreams: {crm: [}\n", "a: &a [*a]\n",
		"version: 1\nx: &a {base_url: http://h}\nupstreams:\n  crm: {<<: *a}\n",
		tool + "    input_schema: {type: object, properties: {n: {$ref: '#/$defs/x'}}, $defs: {x: {type: integer}}}\n",
		tool + "    meta: {a: 1e400, b: .nan, c: 0x1F, d: 2024-01-01, e: !!binary aGk=}\n",
	} {
		f.Add([]byte(s))
	}
	opts := testOptions()
	f.Fuzz(func(t *testing.T, src []byte) {
		cat, err := Parse("f.yaml", src, opts...)
		if err == nil {
			if cat == nil || len(cat.Digest) != 64 {
				t.Fatalf("no error but catalog %v", cat)
			}
			for _, tl := range cat.Tools {
				if tl.Annotations.ReadOnly == nil || tl.Annotations.Destructive == nil || tl.Annotations.Idempotent == nil || tl.Annotations.OpenWorld == nil {
					t.Fatalf("tool %s has unset annotations", tl.Name)
				}
				_, _ = tl.ValidateArguments([]byte(`{"a":1}`))
			}
			return
		}
		var le *LoadError
		if !errors.As(err, &le) || len(le.Problems) == 0 {
			t.Fatalf("error %T %v is not a *LoadError with problems", err, err)
		}
		for _, p := range le.Problems {
			if p.Pos.File != "f.yaml" || p.Pos.Line < 1 || p.Message == "" {
				t.Fatalf("problem without position or message: %#v", p)
			}
		}
	})
}

// generatedCatalog has n tools spread over 10 upstreams.
func generatedCatalog(n int) []byte {
	var b strings.Builder
	b.WriteString("version: 1\nupstreams:\n")
	for u := range 10 {
		fmt.Fprintf(&b, "  api%d:\n    base_url: https://api%d.example.com/v1\n    headers: {X-Api-Key: \"${env:CRM_API_KEY}\"}\n", u, u)
	}
	b.WriteString("tools:\n")
	for i := range n {
		fmt.Fprintf(&b, `  - name: tool_%d
    description: Tool number %d fetches a thing.
    upstream: api%d
    method: %s
    path: /things/{id}/parts
    input_schema:
      type: object
      properties:
        id: {type: string, description: Id of thing %d}
        limit: {type: integer, minimum: 1, maximum: 100}
        email: {type: string, format: email}
        tags: {type: array, items: {type: string}}
      required: [id]
`, i, i, i%10, []string{"GET", "POST", "DELETE"}[i%3], i)
	}
	return []byte(b.String())
}

func BenchmarkLoad(b *testing.B) {
	src := generatedCatalog(1000)
	opts := testOptions()
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	for b.Loop() {
		cat, err := Parse("bench.yaml", src, opts...)
		if err != nil {
			b.Fatal(err)
		}
		if len(cat.Tools) != 1000 {
			b.Fatalf("%d tools", len(cat.Tools))
		}
	}
}

// TestDocsExample keeps the complete example of docs/catalog.md loadable.
func TestDocsExample(t *testing.T) {
	doc, err := os.ReadFile("../docs/catalog.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, _ := strings.Cut(string(doc), "```yaml\n")
	example, _, _ := strings.Cut(rest, "```")
	cat, err := Parse("docs/catalog.md", []byte(example), testOptions()...)
	if err != nil {
		t.Fatalf("the documented example does not load:\n%v", err)
	}
	if len(cat.Tools) != 4 {
		t.Errorf("example has %d tools, want 4", len(cat.Tools))
	}
}
