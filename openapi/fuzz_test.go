package openapi

import (
	"encoding/json"
	"testing"
)

// FuzzImport feeds arbitrary documents to Import: it must not panic, and
// every tool it returns has a JSON object input schema of type object and
// an output schema (if any) of type object, with valid names.
func FuzzImport(f *testing.F) {
	f.Add([]byte(petstore))
	f.Add([]byte(`{"openapi":"3.1.0","paths":{"/a/{b}":{"get":{"parameters":[{"name":"b","in":"path","schema":{"$ref":"#/x"}}]}}},"x":{"$ref":"#/x"}}`))
	f.Add([]byte("swagger: '2.0'\npaths: {/a: {post: {parameters: [{name: f, in: formData, type: string}]}}}\n"))
	f.Add([]byte(`{"openapi":"3.0.0","paths":{"/":{"post":{"requestBody":{"content":{"application/json":{"schema":{"allOf":[{"$ref":"#/components/schemas/A"}]}}}}}}},"components":{"schemas":{"A":{"properties":{"a":{"$ref":"#/components/schemas/A"}}}}}}`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		res, err := Import(doc, Options{})
		if err != nil {
			return
		}
		for _, tl := range res.Tools {
			if !ValidName(tl.Name) {
				t.Fatalf("invalid name %q", tl.Name)
			}
			for _, raw := range [][]byte{tl.InputSchema, tl.OutputSchema} {
				if raw == nil {
					continue
				}
				var top map[string]any
				if err := json.Unmarshal(raw, &top); err != nil {
					t.Fatalf("%s: schema is not a JSON object: %v: %s", tl.Name, err, raw)
				}
				if top["type"] != "object" {
					t.Fatalf("%s: schema is not type object: %s", tl.Name, raw)
				}
			}
		}
	})
}
