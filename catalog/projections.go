package catalog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Defaults and limits of projections.
const (
	// DefaultHistory is how many of an entity's latest events are kept with
	// it, for the console and for spotting redeliveries.
	DefaultHistory = 10
	MaxHistory     = 100
)

// Projection turns the events of some sources into per-entity state.
type Projection struct {
	Name string
	// Sources feed the projection, in file order.
	Sources []*Source
	// Events are type globs (* matches any run of characters); empty means
	// every event of the sources.
	Events []string
	// Key renders the entity key from the event body.
	Key Template
	// Fields are the kept values, output name to body path, in file order.
	// Empty keeps the whole body.
	Fields []Field
	// Version orders events of one entity; nil means stream order.
	Version *Path
	// DeleteWhen, when not nil, says which events delete the entity.
	DeleteWhen *DeleteWhen
	// History is how many recent events are kept per entity.
	History int
	// Scopes are what a caller needs to read the projection (its get_ and
	// list_ tools, resources and subscriptions); nil means the read-only
	// default scopes of the auth section.
	Scopes []string
	Pos    Pos
}

// ProjectionURIPrefix starts every MCP resource URI of a projection:
// toolbus://state/<projection> and toolbus://state/<projection>/<key>.
const ProjectionURIPrefix = "toolbus://state/"

// ProjectionOfURI names the projection a resource URI belongs to; false
// for URIs that are not projection URIs.
func ProjectionOfURI(uri string) (string, bool) {
	rest, ok := strings.CutPrefix(uri, ProjectionURIPrefix)
	if !ok || rest == "" {
		return "", false
	}
	name, _, _ := strings.Cut(rest, "/")
	return name, true
}

// FedBy reports whether events of the source reach the projection.
func (p *Projection) FedBy(source string) bool {
	for _, s := range p.Sources {
		if s.Name == source {
			return true
		}
	}
	return false
}

// Accepts reports whether an event of the source and type is applied.
func (p *Projection) Accepts(source, eventType string) bool {
	if !p.FedBy(source) {
		return false
	}
	if len(p.Events) == 0 {
		return true
	}
	return matchAny(p.Events, eventType)
}

// Field is one kept value.
type Field struct {
	Name string
	Path Path
}

// DeleteWhen says which events turn an entity into a tombstone: an event
// whose type matches one of Events, or whose body has Value at Path.
type DeleteWhen struct {
	Events []string
	Path   *Path
	// Value is a JSON scalar (string, json.Number, bool or nil).
	Value any
}

// Matches reports whether the event deletes its entity.
func (d *DeleteWhen) Matches(eventType string, body any) bool {
	if d == nil {
		return false
	}
	if matchAny(d.Events, eventType) {
		return true
	}
	if d.Path == nil {
		return false
	}
	v, ok := d.Path.Lookup(body)
	return ok && ScalarEqual(v, d.Value)
}

func matchAny(globs []string, s string) bool {
	for _, g := range globs {
		if MatchGlob(g, s) {
			return true
		}
	}
	return false
}

// MatchGlob reports whether s matches pattern, where * matches any run of
// characters (dots and slashes included: event types use both) and every
// other character matches itself.
func MatchGlob(pattern, s string) bool {
	// Classic greedy matching with one backtrack point: linear enough for
	// short event types, and free of recursion.
	pi, si, star, mark := 0, 0, -1, 0
	for si < len(s) {
		switch {
		case pi < len(pattern) && pattern[pi] == '*':
			star, mark = pi, si
			pi++
		case pi < len(pattern) && pattern[pi] == s[si]:
			pi++
			si++
		case star >= 0:
			pi, mark = star+1, mark+1
			si = mark
		default:
			return false
		}
	}
	for pi < len(pattern) && pattern[pi] == '*' {
		pi++
	}
	return pi == len(pattern)
}

// Path is a dotted path into a JSON document, such as data.object.customer
// or $.items.0.id: a segment made of digits also indexes an array.
type Path struct {
	text string
	segs []string
}

var pathSegRE = regexp.MustCompile(`^[^.{}\s\[\]]+$`)

// ParsePath parses a dotted path; a leading "$." is allowed.
func ParsePath(s string) (Path, error) {
	t := strings.TrimPrefix(strings.TrimPrefix(s, "$"), ".")
	if t == "" {
		return Path{}, errors.New("empty path")
	}
	segs := strings.Split(t, ".")
	for _, seg := range segs {
		if !pathSegRE.MatchString(seg) {
			return Path{}, fmt.Errorf("invalid path %q: want dotted names such as data.object.id", s)
		}
	}
	return Path{text: s, segs: segs}, nil
}

// String returns the path as written.
func (p Path) String() string { return p.text }

// Lookup returns the value at p in doc (decoded JSON), and whether it exists.
func (p Path) Lookup(doc any) (any, bool) {
	cur := doc
	for _, seg := range p.segs {
		switch v := cur.(type) {
		case map[string]any:
			next, ok := v[seg]
			if !ok {
				return nil, false
			}
			cur = next
		case []any:
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(v) {
				return nil, false
			}
			cur = v[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

// Template renders a string from a JSON document: literal text with {path}
// placeholders, e.g. {repository.full_name}#{pull_request.number}. A
// template without braces is a single path.
type Template struct {
	text  string
	parts []templatePart
}

type templatePart struct {
	lit  string
	path *Path
}

// ParseTemplate parses a key template.
func ParseTemplate(s string) (Template, error) {
	if s == "" {
		return Template{}, errors.New("empty template")
	}
	if !strings.ContainsAny(s, "{}") {
		p, err := ParsePath(s)
		if err != nil {
			return Template{}, err
		}
		return Template{text: s, parts: []templatePart{{path: &p}}}, nil
	}
	t := Template{text: s}
	rest := s
	for rest != "" {
		open := strings.IndexByte(rest, '{')
		if close := strings.IndexByte(rest, '}'); close >= 0 && (open < 0 || close < open) {
			return Template{}, fmt.Errorf("unmatched '}' in %q", s)
		}
		if open < 0 {
			t.parts = append(t.parts, templatePart{lit: rest})
			break
		}
		if open > 0 {
			t.parts = append(t.parts, templatePart{lit: rest[:open]})
		}
		end := strings.IndexByte(rest[open:], '}')
		if end < 0 {
			return Template{}, fmt.Errorf("unclosed '{' in %q", s)
		}
		p, err := ParsePath(rest[open+1 : open+end])
		if err != nil {
			return Template{}, err
		}
		t.parts = append(t.parts, templatePart{path: &p})
		rest = rest[open+end+1:]
	}
	return t, nil
}

// String returns the template as written.
func (t Template) String() string { return t.text }

// Render fills the template from doc. Every placeholder must reach a
// string, number or boolean.
func (t Template) Render(doc any) (string, error) {
	var b strings.Builder
	for _, part := range t.parts {
		if part.path == nil {
			b.WriteString(part.lit)
			continue
		}
		v, ok := part.path.Lookup(doc)
		if !ok {
			return "", fmt.Errorf("%s is missing", part.path)
		}
		s, ok := ScalarText(v)
		if !ok {
			return "", fmt.Errorf("%s is not a string or number", part.path)
		}
		b.WriteString(s)
	}
	return b.String(), nil
}

// ScalarText renders a decoded JSON scalar as text; objects, arrays and
// null have none.
func ScalarText(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case json.Number:
		return v.String(), true
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), true
	case bool:
		return strconv.FormatBool(v), true
	}
	return "", false
}

// ScalarEqual compares decoded JSON values; numbers compare by value
// whatever their spelling (1, 1.0, 1e0).
func ScalarEqual(a, b any) bool {
	ra, aNum := numberRat(a)
	rb, bNum := numberRat(b)
	if aNum || bNum {
		return aNum && bNum && ra.Cmp(rb) == 0
	}
	return reflect.DeepEqual(a, b)
}

func numberRat(v any) (*big.Rat, bool) {
	var s string
	switch v := v.(type) {
	case json.Number:
		s = v.String()
	case float64:
		s = strconv.FormatFloat(v, 'g', -1, 64)
	default:
		return nil, false
	}
	r, ok := new(big.Rat).SetString(s)
	return r, ok
}

// webhooks parses the top-level sources and projections into cat.
func (p *parser) webhooks(ms members, cat *Catalog) {
	declared := map[string]bool{}
	if n := ms.get("sources"); n != nil {
		cat.Sources, declared = p.sources(n)
	}
	if n := ms.get("projections"); n != nil {
		cat.Projections = p.projections(n, cat.Sources, declared)
	}
}

var projectionNameRE = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,32}$`)

var projectionFields = []string{"sources", "events", "key", "fields", "version", "delete_when", "history", "scopes"}

func (p *parser) projections(n *yaml.Node, sources map[string]*Source, declared map[string]bool) map[string]*Projection {
	out := map[string]*Projection{}
	if isNull(n) {
		return out
	}
	ms, _ := p.mapping(n, "projections", nil)
	for _, m := range ms {
		if pr := p.projection(m, sources, declared); pr != nil {
			out[m.name] = pr
		}
	}
	return out
}

func (p *parser) projection(m member, sources map[string]*Source, declared map[string]bool) *Projection {
	field := joinField("projections", m.name)
	before := len(p.problems)
	if !projectionNameRE.MatchString(m.name) {
		p.errorf(m.key, field, "projection name must match [a-zA-Z0-9_-]{1,32}")
	}
	ms, ok := p.mapping(m.val, field, projectionFields)
	if !ok {
		return nil
	}
	pr := &Projection{Name: m.name, History: DefaultHistory, Pos: p.pos(m.key)}
	for _, f := range ms {
		ff := field + "." + f.name
		switch f.name {
		case "sources":
			for i, item := range p.strList(f.val, ff) {
				name, node := item.s, item.n
				iff := fmt.Sprintf("%s[%d]", ff, i)
				switch {
				case sources[name] != nil:
					pr.Sources = append(pr.Sources, sources[name])
				case declared[name]:
					// Already reported where the source is declared.
				default:
					p.errorf(node, iff, "unknown source %q: declare it under sources", name)
				}
			}
			if len(f.val.Content) == 0 && f.val.Kind == yaml.SequenceNode {
				p.errorf(f.val, ff, "must list at least one source")
			}
		case "events":
			pr.Events = p.globs(f.val, ff)
		case "key":
			if s, ok := p.str(f.val, ff); ok {
				t, err := ParseTemplate(s)
				if err != nil {
					p.errorf(f.val, ff, "%v", err)
				}
				pr.Key = t
			}
		case "fields":
			fms, _ := p.mapping(f.val, ff, nil)
			for _, fm := range fms {
				fff := joinField(ff, fm.name)
				if path, ok := p.path(fm.val, fff); ok {
					pr.Fields = append(pr.Fields, Field{Name: fm.name, Path: path})
				}
			}
		case "version":
			if path, ok := p.path(f.val, ff); ok {
				pr.Version = &path
			}
		case "delete_when":
			pr.DeleteWhen = p.deleteWhen(f.val, ff)
		case "history":
			if n, ok := p.integer(f.val, ff); ok {
				if n < 1 || n > MaxHistory {
					p.errorf(f.val, ff, "must be between 1 and %d, got %d", MaxHistory, n)
				}
				pr.History = int(n)
			}
		case "scopes":
			pr.Scopes = p.requiredScopes(f.val, ff)
		}
	}
	if ms.get("sources") == nil {
		p.errorf(m.key, field+".sources", "required field is missing; list the sources that feed the projection")
	}
	if ms.get("key") == nil {
		p.errorf(m.key, field+".key", "required field is missing; want a path such as data.object.customer or a template such as {repository.full_name}#{number}")
	}
	if len(p.problems) > before {
		return nil
	}
	return pr
}

type strItem struct {
	s string
	n *yaml.Node
}

func (p *parser) strList(n *yaml.Node, field string) []strItem {
	if n.Kind != yaml.SequenceNode {
		p.errorf(n, field, "must be a list, got %s", kindName(n))
		return nil
	}
	var out []strItem
	for i, item := range n.Content {
		item = deref(item)
		if s, ok := p.str(item, fmt.Sprintf("%s[%d]", field, i)); ok {
			out = append(out, strItem{s, item})
		}
	}
	return out
}

func (p *parser) globs(n *yaml.Node, field string) []string {
	var out []string
	for i, item := range p.strList(n, field) {
		if item.s == "" {
			p.errorf(item.n, fmt.Sprintf("%s[%d]", field, i), "empty event type")
			continue
		}
		out = append(out, item.s)
	}
	return out
}

func (p *parser) path(n *yaml.Node, field string) (Path, bool) {
	s, ok := p.str(n, field)
	if !ok {
		return Path{}, false
	}
	path, err := ParsePath(s)
	if err != nil {
		p.errorf(n, field, "%v", err)
		return Path{}, false
	}
	return path, true
}

func (p *parser) deleteWhen(n *yaml.Node, field string) *DeleteWhen {
	ms, ok := p.mapping(n, field, []string{"events", "path", "value"})
	if !ok {
		return nil
	}
	d := &DeleteWhen{}
	for _, f := range ms {
		ff := field + "." + f.name
		switch f.name {
		case "events":
			d.Events = p.globs(f.val, ff)
		case "path":
			if path, ok := p.path(f.val, ff); ok {
				d.Path = &path
			}
		case "value":
			if f.val.Kind != yaml.ScalarNode {
				p.errorf(f.val, ff, "must be a string, number, boolean or null, got %s", kindName(f.val))
				continue
			}
			raw, ok := p.toJSON(f.val, ff)
			if !ok {
				continue
			}
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.UseNumber()
			_ = dec.Decode(&d.Value) // toJSON wrote valid JSON
		}
	}
	hasPath, hasValue := ms.get("path") != nil, ms.get("value") != nil
	switch {
	case hasPath != hasValue:
		p.errorf(n, field, "path and value go together: the entity is deleted when the body has value at path")
	case !hasPath && ms.get("events") == nil:
		p.errorf(n, field, "want events, or path and value")
	}
	return d
}
