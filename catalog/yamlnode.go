package catalog

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Limits on free-form YAML (schemas, meta): nesting depth, and the nodes
// that aliases may add to the whole file.
const (
	maxValueDepth = 128
	maxAliasNodes = 100_000
)

// parser walks the YAML node tree and collects every problem it finds.
type parser struct {
	file     string
	src      []byte // the catalog's text, for positions inside block scalars
	opts     options
	problems []Problem
	// aliasNodes is what remains of the maxAliasNodes budget.
	aliasNodes int
	// upstreamGroups are the secret groups of the references of the
	// upstream being parsed (secretgroups.go).
	upstreamGroups SecretGroups
}

func (p *parser) pos(n *yaml.Node) Pos {
	return Pos{File: p.file, Line: n.Line, Col: n.Column}
}

func (p *parser) errorf(n *yaml.Node, field, format string, args ...any) {
	p.problems = append(p.problems, Problem{Pos: p.pos(n), Field: field, Message: fmt.Sprintf(format, args...)})
}

// deref follows an alias to its anchored node.
func deref(n *yaml.Node) *yaml.Node {
	if n != nil && n.Kind == yaml.AliasNode && n.Alias != nil {
		return n.Alias
	}
	return n
}

// kindName describes a node for "must be X, got Y" messages.
func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return "null"
		case "!!bool":
			return "a boolean"
		case "!!int":
			return "an integer"
		case "!!float":
			return "a number"
		}
		return "a string"
	}
	return "nothing"
}

// joinField appends a map key to a field path, quoting keys that would make
// the path ambiguous.
func joinField(field, key string) string {
	if key == "" || strings.ContainsAny(key, ". []\"'\t\n") {
		key = strconv.Quote(key)
	}
	if field == "" {
		return key
	}
	return field + "." + key
}

// member is one key/value pair of a mapping.
type member struct {
	name     string
	key, val *yaml.Node
	// index of key in the mapping's Content.
	index int
}

// members is a mapping's pairs in file order.
type members []member

func (ms members) get(name string) *yaml.Node {
	for _, m := range ms {
		if m.name == name {
			return m.val
		}
	}
	return nil
}

func (ms members) key(name string) *yaml.Node {
	for _, m := range ms {
		if m.name == name {
			return m.key
		}
	}
	return nil
}

// mapping returns the pairs of mapping node n. Keys must be scalars and
// unique; when known is not nil, keys outside it are reported as unknown
// fields (the strictness of yaml's KnownFields). Problems are reported and
// the offending pairs skipped. ok is false when n is not a mapping.
func (p *parser) mapping(n *yaml.Node, field string, known []string) (ms members, ok bool) {
	n = deref(n)
	if n.Kind != yaml.MappingNode {
		p.errorf(n, field, "must be a mapping, got %s", kindName(n))
		return nil, false
	}
	seen := make(map[string]*yaml.Node, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.AliasNode {
			p.errorf(k, field, "aliases are not allowed as keys")
			continue
		}
		if k.Kind != yaml.ScalarNode || k.ShortTag() == "!!null" {
			p.errorf(k, field, "keys must be strings, got %s", kindName(k))
			continue
		}
		if k.ShortTag() == "!!merge" {
			p.errorf(k, field, "merge keys (<<) are not supported")
			continue
		}
		name := k.Value
		if first, dup := seen[name]; dup {
			p.errorf(k, joinField(field, name), "duplicate key %q (first at line %d)", name, first.Line)
			continue
		}
		seen[name] = k
		if known != nil && !contains(known, name) {
			p.errorf(k, joinField(field, name), "unknown field (known fields: %s)", strings.Join(known, ", "))
			continue
		}
		ms = append(ms, member{name: name, key: k, val: deref(v), index: i})
	}
	return ms, true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// str returns the text of a scalar. Numbers and booleans are accepted as
// their text; null, lists and mappings are not.
func (p *parser) str(n *yaml.Node, field string) (string, bool) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() == "!!null" {
		p.errorf(n, field, "must be a string, got %s", kindName(n))
		return "", false
	}
	return n.Value, true
}

func (p *parser) integer(n *yaml.Node, field string) (int64, bool) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
		p.errorf(n, field, "must be an integer, got %s", kindName(n))
		return 0, false
	}
	var v int64
	if err := n.Decode(&v); err != nil {
		p.errorf(n, field, "must be an integer that fits in 64 bits")
		return 0, false
	}
	return v, true
}

func (p *parser) boolean(n *yaml.Node, field string) (bool, bool) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
		p.errorf(n, field, "must be true or false, got %s", kindName(n))
		return false, false
	}
	var v bool
	if err := n.Decode(&v); err != nil {
		p.errorf(n, field, "must be true or false")
		return false, false
	}
	return v, true
}

// toJSON encodes free-form YAML (a JSON Schema, meta) as JSON, keeping the
// order of mapping keys, so that schemas are served as they were written.
// Numbers keep their written digits when they are valid JSON numbers, so
// big integers survive.
func (p *parser) toJSON(n *yaml.Node, field string) (json.RawMessage, bool) {
	e := jsonEncoder{p: p, root: field, active: map[*yaml.Node]bool{}}
	before := len(p.problems)
	e.encode(n, field, 0, false)
	if len(p.problems) > before {
		return nil, false
	}
	return e.buf.Bytes(), true
}

type jsonEncoder struct {
	p    *parser
	buf  bytes.Buffer
	root string
	// active holds the anchored nodes being encoded, to detect an alias
	// inside its own anchor.
	active map[*yaml.Node]bool
	// stop ends the walk after a problem that would repeat on every branch.
	stop bool
}

func (e *jsonEncoder) encode(n *yaml.Node, field string, depth int, viaAlias bool) {
	p := e.p
	if e.stop {
		return
	}
	if depth > maxValueDepth {
		// The path down here would be as long as the nesting.
		p.errorf(n, e.root, "nested deeper than %d levels", maxValueDepth)
		e.stop = true
		return
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		if e.active[n.Alias] {
			p.errorf(n, field, "alias *%s refers to its own anchor", n.Value)
			e.stop = true
			return
		}
		n, viaAlias = n.Alias, true
	}
	// Nodes reached through aliases are counted: a few anchors can expand
	// to billions of nodes. Other nodes are bounded by the file size.
	if viaAlias {
		if p.aliasNodes--; p.aliasNodes < 0 {
			if p.aliasNodes == -1 {
				p.errorf(n, field, "aliases expand to more than %d YAML nodes", maxAliasNodes)
			}
			e.stop = true
			return
		}
	}
	if n.Anchor != "" {
		e.active[n] = true
		defer delete(e.active, n)
	}
	switch n.Kind {
	case yaml.MappingNode:
		ms, _ := p.mapping(n, field, nil)
		e.buf.WriteByte('{')
		for i, m := range ms {
			if i > 0 {
				e.buf.WriteByte(',')
			}
			writeJSONString(&e.buf, m.name)
			e.buf.WriteByte(':')
			// mapping dereferenced the value; pass the original to
			// catch cycles.
			e.encode(n.Content[m.index+1], joinField(field, m.name), depth+1, viaAlias)
		}
		e.buf.WriteByte('}')
	case yaml.SequenceNode:
		e.buf.WriteByte('[')
		for i, c := range n.Content {
			if i > 0 {
				e.buf.WriteByte(',')
			}
			e.encode(c, fmt.Sprintf("%s[%d]", field, i), depth+1, viaAlias)
		}
		e.buf.WriteByte(']')
	case yaml.ScalarNode:
		p.encodeScalar(&e.buf, n, field)
	default:
		p.errorf(n, field, "unsupported YAML node")
	}
}

func (p *parser) encodeScalar(buf *bytes.Buffer, n *yaml.Node, field string) {
	switch tag := n.ShortTag(); tag {
	case "!!str", "!!timestamp", "!!binary":
		// A date written without quotes is still the string it looks like.
		writeJSONString(buf, n.Value)
	case "!!null":
		buf.WriteString("null")
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err != nil {
			p.errorf(n, field, "invalid boolean %q", n.Value)
			return
		}
		buf.WriteString(strconv.FormatBool(b))
	case "!!int", "!!float":
		if isJSONNumber(n.Value) {
			buf.WriteString(n.Value)
			return
		}
		var f float64
		if err := n.Decode(&f); err != nil {
			p.errorf(n, field, "invalid number %q", n.Value)
			return
		}
		if math.IsInf(f, 0) || math.IsNaN(f) {
			p.errorf(n, field, "%s cannot be represented in JSON", n.Value)
			return
		}
		buf.WriteString(strconv.FormatFloat(f, 'g', -1, 64))
	default:
		p.errorf(n, field, "unsupported YAML tag %s", tag)
	}
}

func writeJSONString(buf *bytes.Buffer, s string) {
	b, _ := json.Marshal(s) // cannot fail for a string
	buf.Write(b)
}

// isJSONNumber reports whether s is a number literal in JSON syntax.
func isJSONNumber(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		start := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == start {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		start := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == start {
			return false
		}
	}
	return i == len(s)
}
