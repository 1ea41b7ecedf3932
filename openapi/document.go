package openapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/getkin/kin-openapi/openapi2"
	"github.com/getkin/kin-openapi/openapi2conv"
	"gopkg.in/yaml.v3"
)

// document is a decoded OpenAPI document: plain JSON values (objects as
// map[string]any, numbers as json.Number so big integers keep their digits).
//
// The import walks these values directly instead of a typed model: on the
// large real documents the typed loaders spent most of their time building
// objects the import never reads (see BenchmarkImport and docs/catalog.md).
type document struct {
	root    map[string]any
	version string // the openapi field, or "2.0 (converted)"
	// v31 is true for OpenAPI 3.1 and later, whose schemas are JSON Schema
	// 2020-12 already (no nullable, numeric exclusive bounds).
	v31 bool
}

// maxRefChain bounds a chain of $refs that point at other $refs.
const maxRefChain = 32

// decode parses JSON or YAML and converts Swagger 2.0 to OpenAPI 3.0.
func decode(data []byte) (*document, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	var v any
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) > 0 && trimmed[0] == '{' {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("invalid JSON: %w", err)
		}
	} else {
		var y any
		if err := yaml.Unmarshal(data, &y); err != nil {
			return nil, fmt.Errorf("invalid YAML: %w", err)
		}
		// One path for both syntaxes: YAML values become what the JSON
		// decoder gives (string keys, json.Number).
		b, err := json.Marshal(y)
		if err != nil {
			return nil, fmt.Errorf("the YAML cannot be read as JSON (mapping keys must be strings): %w", err)
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("invalid YAML: %w", err)
		}
	}
	root, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("not an OpenAPI document: the top level must be an object")
	}
	if sw, ok := root["swagger"]; ok {
		if s, _ := sw.(string); s != "2.0" {
			return nil, fmt.Errorf("swagger %v is not supported: want OpenAPI 3.0, 3.1 or Swagger 2.0", sw)
		}
		return convertSwagger2(root)
	}
	ver, _ := root["openapi"].(string)
	switch {
	case ver == "":
		return nil, errors.New("not an OpenAPI document: no openapi (3.x) or swagger (2.0) field")
	case strings.HasPrefix(ver, "3.0"):
		return &document{root: root, version: ver}, nil
	case strings.HasPrefix(ver, "3.1"), strings.HasPrefix(ver, "3.2"):
		return &document{root: root, version: ver, v31: true}, nil
	}
	return nil, fmt.Errorf("openapi %s is not supported: want 3.0, 3.1 or Swagger 2.0", ver)
}

// convertSwagger2 converts with kin-openapi's openapi2conv, which maps
// formData parameters to form bodies and definitions to components.
func convertSwagger2(root map[string]any) (*document, error) {
	b, err := json.Marshal(root)
	if err != nil {
		return nil, err
	}
	var d2 openapi2.T
	if err := json.Unmarshal(b, &d2); err != nil {
		return nil, fmt.Errorf("invalid Swagger 2.0 document: %w", err)
	}
	d3, err := openapi2conv.ToV3(&d2)
	if err != nil {
		return nil, fmt.Errorf("converting Swagger 2.0 to OpenAPI 3.0: %w", err)
	}
	b, err = json.Marshal(d3)
	if err != nil {
		return nil, fmt.Errorf("converting Swagger 2.0 to OpenAPI 3.0: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v map[string]any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return &document{root: v, version: "2.0 (converted to 3.0)"}, nil
}

// resolve follows $ref (and chains of them) inside the document. It
// returns the target and the name of the last reference followed ("" when
// v was not a reference).
func (d *document) resolve(v any) (map[string]any, string, error) {
	name := ""
	for range maxRefChain {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, name, fmt.Errorf("expected an object, got %s", jsonKind(v))
		}
		ref, ok := m["$ref"].(string)
		if !ok {
			return m, name, nil
		}
		target, err := d.pointer(ref)
		if err != nil {
			return nil, name, err
		}
		v, name = target, ref
	}
	return nil, name, fmt.Errorf("more than %d $refs in a chain at %s", maxRefChain, name)
}

// pointer looks up a local reference such as #/components/schemas/Customer.
func (d *document) pointer(ref string) (any, error) {
	if !strings.HasPrefix(ref, "#") {
		return nil, fmt.Errorf("$ref %q points outside the document; bundle the document into one file first", ref)
	}
	frag, err := url.PathUnescape(ref[1:])
	if err != nil {
		return nil, fmt.Errorf("$ref %q: %v", ref, err)
	}
	var cur any = d.root
	if frag == "" {
		return cur, nil
	}
	if !strings.HasPrefix(frag, "/") {
		return nil, fmt.Errorf("$ref %q: only JSON pointers (#/…) are supported", ref)
	}
	for _, tok := range strings.Split(frag[1:], "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch c := cur.(type) {
		case map[string]any:
			next, ok := c[tok]
			if !ok {
				return nil, fmt.Errorf("$ref %q: %q not found", ref, tok)
			}
			cur = next
		case []any:
			var i int
			if _, err := fmt.Sscanf(tok, "%d", &i); err != nil || i < 0 || i >= len(c) {
				return nil, fmt.Errorf("$ref %q: bad index %q", ref, tok)
			}
			cur = c[i]
		default:
			return nil, fmt.Errorf("$ref %q: %q not found", ref, tok)
		}
	}
	return cur, nil
}

// refName is the last segment of a reference, for notes: "Customer".
func refName(ref string) string {
	if i := strings.LastIndexByte(ref, '/'); i >= 0 {
		return strings.ReplaceAll(strings.ReplaceAll(ref[i+1:], "~1", "/"), "~0", "~")
	}
	return ref
}

func jsonKind(v any) string {
	switch v.(type) {
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case string:
		return "a string"
	case json.Number, float64:
		return "a number"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", v)
}

func str(m map[string]any, key string) string {
	s, _ := m[key].(string)
	return s
}

func obj(m map[string]any, key string) map[string]any {
	o, _ := m[key].(map[string]any)
	return o
}
