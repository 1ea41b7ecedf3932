package openapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
)

// direction says which side of the exchange a schema describes: readOnly
// properties are left out of inputs, writeOnly ones out of outputs.
type direction int

const (
	dirInput direction = iota
	dirOutput
)

// converter turns OpenAPI schemas into self-contained JSON Schema 2020-12:
// every $ref is expanded in place, a schema that refers to itself is cut at
// its second appearance, and references nested deeper than maxDepth are
// cut, each cut with a description and a note. Self-contained schemas are
// what MCP clients handle best; $defs would carry the whole connected
// component of a large API into every tool.
type converter struct {
	d        *document
	dir      direction
	maxDepth int
	// active holds the references being expanded on the current path.
	active map[string]bool
	depth  int
	notes  *notes
	// expansions counts the references expanded for one tool; past
	// maxExpansions the rest are cut, so a document whose schemas all
	// refer to each other cannot make a tool's schema explode.
	expansions int
	shared     *int
	// topObject makes the next object written declare type object (and
	// nothing else): the top of an output schema, which MCP requires to
	// be an object even where the document says "object or null".
	topObject bool
}

// maxExpansions bounds the references expanded for one operation (its
// input and output schemas together). The largest real operations use a
// few hundred.
const maxExpansions = 4000

// expansionsPtr is the counter shared by the input and output converters
// of one operation.
func (c *converter) expansionsPtr() *int {
	if c.shared != nil {
		return c.shared
	}
	return &c.expansions
}

// keywords copied as they are, in output order.
var plainKeywords = []string{
	"title", "description", "format", "enum", "const", "default",
	"minimum", "maximum", "multipleOf", "minLength", "maxLength",
	"minItems", "maxItems", "uniqueItems", "minProperties", "maxProperties",
	"deprecated", "readOnly", "writeOnly", "contentMediaType", "contentEncoding",
	"dependentRequired",
}

func (c *converter) schema(b *bytes.Buffer, v any) {
	m, ok := v.(map[string]any)
	if !ok {
		if bv, ok := v.(bool); ok && c.d.v31 {
			fmt.Fprint(b, bv)
			return
		}
		b.WriteString("{}")
		return
	}
	if ref, ok := m["$ref"].(string); ok {
		c.ref(b, ref)
		return
	}
	w := objWriter{b: b}
	w.open()
	if c.topObject {
		c.topObject = false
		w.key("type")
		b.WriteString(`"object"`)
	} else {
		c.typeKeyword(&w, m)
	}
	for _, k := range plainKeywords {
		val, ok := m[k]
		if !ok {
			continue
		}
		if k == "enum" && !c.d.v31 && m["nullable"] == true {
			if list, ok := val.([]any); ok && !containsNull(list) {
				val = append(append([]any{}, list...), nil)
			}
		}
		w.key(k)
		writeValue(b, val)
	}
	c.bounds(&w, m)
	if p, ok := m["pattern"].(string); ok {
		// JSON Schema validators here use Go's RE2; a pattern it cannot
		// compile (look-around, back-references) is dropped, not fatal.
		if _, err := regexp.Compile(p); err == nil {
			w.key("pattern")
			writeValue(b, p)
		} else {
			c.notes.add("a pattern that RE2 cannot compile was dropped: %q", p)
		}
	}
	if ex, ok := m["example"]; ok && isScalar(ex) {
		w.key("examples")
		b.WriteByte('[')
		writeValue(b, ex)
		b.WriteByte(']')
	} else if exs, ok := m["examples"].([]any); ok && len(exs) > 0 && isScalar(exs[0]) {
		w.key("examples")
		writeValue(b, exs[:1])
	}
	if props, ok := m["properties"].(map[string]any); ok {
		names := c.propertyNames(props)
		w.key("properties")
		pw := objWriter{b: b}
		pw.open()
		for _, name := range names {
			pw.key(name)
			c.schema(b, props[name])
		}
		pw.close()
		if req := c.required(m, props); len(req) > 0 {
			w.key("required")
			writeValue(b, req)
		}
	} else if req, ok := m["required"].([]any); ok && len(req) > 0 {
		w.key("required")
		writeValue(b, req)
	}
	if pp, ok := m["patternProperties"].(map[string]any); ok {
		w.key("patternProperties")
		pw := objWriter{b: b}
		pw.open()
		for _, name := range sortedKeys(pp) {
			pw.key(name)
			c.schema(b, pp[name])
		}
		pw.close()
	}
	if ap, ok := m["additionalProperties"]; ok {
		w.key("additionalProperties")
		if bv, ok := ap.(bool); ok {
			fmt.Fprint(b, bv)
		} else {
			c.schema(b, ap)
		}
	}
	if items, ok := m["items"]; ok {
		if list, ok := items.([]any); ok { // draft-4 tuple form
			w.key("prefixItems")
			c.list(b, list)
		} else {
			w.key("items")
			c.schema(b, items)
		}
	}
	for _, k := range []string{"prefixItems", "allOf", "anyOf", "oneOf"} {
		if list, ok := m[k].([]any); ok && len(list) > 0 {
			w.key(k)
			c.list(b, list)
		}
	}
	for _, k := range []string{"not", "contains"} {
		if s, ok := m[k]; ok {
			w.key(k)
			c.schema(b, s)
		}
	}
	w.close()
}

// typeKeyword writes type, mapping OpenAPI 3.0's nullable to a type list
// and Swagger's file type to string.
func (c *converter) typeKeyword(w *objWriter, m map[string]any) {
	t, ok := m["type"]
	if !ok {
		return
	}
	nullable := !c.d.v31 && m["nullable"] == true
	switch t := t.(type) {
	case string:
		if t == "file" {
			t = "string"
		}
		w.key("type")
		if nullable && t != "null" {
			writeValue(w.b, []any{t, "null"})
		} else {
			writeValue(w.b, t)
		}
	case []any:
		w.key("type")
		writeValue(w.b, t)
	}
}

// bounds writes exclusive bounds in 2020-12 form: OpenAPI 3.0's boolean
// exclusiveMinimum turns minimum into an exclusive bound.
func (c *converter) bounds(w *objWriter, m map[string]any) {
	for _, k := range [][2]string{{"exclusiveMinimum", "minimum"}, {"exclusiveMaximum", "maximum"}} {
		switch v := m[k[0]].(type) {
		case bool:
			// OpenAPI 3.0: true makes minimum (maximum) exclusive. The
			// inclusive bound was written already; the exclusive one of
			// the same value is tighter, so both together are exact.
			if bound, ok := m[k[1]]; ok && v {
				w.key(k[0])
				writeValue(w.b, bound)
			}
		case json.Number, float64:
			w.key(k[0])
			writeValue(w.b, v)
		}
	}
}

// ref expands a reference in place, or cuts it.
func (c *converter) ref(b *bytes.Buffer, ref string) {
	target, err := c.d.pointer(ref)
	if err != nil {
		c.notes.add("%v", err)
		b.WriteString("{}")
		return
	}
	name := refName(ref)
	switch {
	case c.active[ref]:
		c.notes.add("recursive schema %s cut at its second appearance", name)
		c.cut(b, target, fmt.Sprintf("%s (recursive: not expanded again)", name))
		return
	case *c.expansionsPtr() >= maxExpansions:
		c.notes.add("more than %d references expanded for this operation; the rest are not expanded", maxExpansions)
		c.cut(b, target, fmt.Sprintf("%s (not expanded: the schema is too large)", name))
		return
	case c.depth >= c.maxDepth:
		c.notes.add("schemas nested more than %d references deep are not expanded", c.maxDepth)
		c.cut(b, target, fmt.Sprintf("%s (not expanded: nested more than %d references deep)", name, c.maxDepth))
		return
	}
	c.active[ref] = true
	c.depth++
	*c.expansionsPtr()++
	c.schema(b, target)
	c.depth--
	delete(c.active, ref)
}

// cut writes a permissive stand-in that keeps the target's simple type.
func (c *converter) cut(b *bytes.Buffer, target any, desc string) {
	w := objWriter{b: b}
	w.open()
	if m, ok := target.(map[string]any); ok {
		if _, isRef := m["$ref"]; !isRef {
			c.typeKeyword(&w, m)
		}
	}
	w.key("description")
	writeValue(b, desc)
	w.close()
}

func (c *converter) list(b *bytes.Buffer, list []any) {
	b.WriteByte('[')
	for i, s := range list {
		if i > 0 {
			b.WriteByte(',')
		}
		c.schema(b, s)
	}
	b.WriteByte(']')
}

// propertyNames lists properties in name order, without the ones that do
// not belong on this side (readOnly in inputs, writeOnly in outputs).
func (c *converter) propertyNames(props map[string]any) []string {
	names := make([]string, 0, len(props))
	for name, s := range props {
		if c.skipProperty(s) {
			continue
		}
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

func (c *converter) skipProperty(s any) bool {
	m, _, err := c.d.resolve(s)
	if err != nil || m == nil {
		return false
	}
	if c.dir == dirInput {
		return m["readOnly"] == true
	}
	return m["writeOnly"] == true
}

// required keeps the required names that remain properties.
func (c *converter) required(m map[string]any, props map[string]any) []any {
	req, _ := m["required"].([]any)
	out := make([]any, 0, len(req))
	for _, r := range req {
		name, ok := r.(string)
		if !ok {
			continue
		}
		if s, ok := props[name]; ok && c.skipProperty(s) {
			continue
		}
		out = append(out, name)
	}
	return out
}

// shape is the kind of value a schema describes, for output wrapping.
type shape int

const (
	shapeUnknown shape = iota
	shapeObject
	shapeOther
)

// shapeOf tells whether a schema certainly describes objects, certainly
// something else, or cannot tell.
func (d *document) shapeOf(v any, depth int) shape {
	m, _, err := d.resolve(v)
	if err != nil || m == nil || depth > 8 {
		return shapeUnknown
	}
	switch t := m["type"].(type) {
	case string:
		if t == "object" {
			return shapeObject
		}
		return shapeOther
	case []any:
		obj, other := false, false
		for _, x := range t {
			switch x {
			case "object":
				obj = true
			case "null":
			default:
				other = true
			}
		}
		switch {
		case obj && !other:
			return shapeObject
		case other && !obj:
			return shapeOther
		}
		return shapeUnknown
	}
	if _, ok := m["properties"]; ok {
		return shapeObject
	}
	if list, ok := m["allOf"].([]any); ok {
		for _, s := range list {
			if k := d.shapeOf(s, depth+1); k != shapeUnknown {
				return k
			}
		}
	}
	for _, k := range []string{"anyOf", "oneOf"} {
		list, ok := m[k].([]any)
		if !ok || len(list) == 0 {
			continue
		}
		first := d.shapeOf(list[0], depth+1)
		for _, s := range list[1:] {
			if d.shapeOf(s, depth+1) != first {
				return shapeUnknown
			}
		}
		return first
	}
	return shapeUnknown
}

// objWriter writes the members of one JSON object.
type objWriter struct {
	b *bytes.Buffer
	n int
}

func (w *objWriter) open() { w.b.WriteByte('{') }

func (w *objWriter) close() { w.b.WriteByte('}') }

func (w *objWriter) key(k string) {
	if w.n > 0 {
		w.b.WriteByte(',')
	}
	w.n++
	writeValue(w.b, k)
	w.b.WriteByte(':')
}

// writeValue writes a plain JSON value (no HTML escaping, json.Number as
// written).
func writeValue(b *bytes.Buffer, v any) {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // values come from a JSON decoder: always encodable
	b.Truncate(b.Len() - 1)
}

func isScalar(v any) bool {
	switch v.(type) {
	case string, bool, json.Number, float64, nil:
		return true
	}
	return false
}

func containsNull(list []any) bool {
	for _, x := range list {
		if x == nil {
			return true
		}
	}
	return false
}

func sortedKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// notes collects distinct messages in order.
type notes struct {
	list []string
	seen map[string]bool
}

func (n *notes) add(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	if n.seen == nil {
		n.seen = map[string]bool{}
	}
	if !n.seen[s] {
		n.seen[s] = true
		n.list = append(n.list, s)
	}
}
