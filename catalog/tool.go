package catalog

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/toolbus/toolbus/gqlop"
)

// MaxToolNameLen is the longest tool name MCP clients accept everywhere.
const MaxToolNameLen = 64

var toolNameRE = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)

var toolFields = []string{"name", "title", "description", "upstream", "method", "path", "input_schema", "params", "output_schema", "annotations", "timeout", "meta", "retry", "scopes",
	"operation", "operation_file", "operation_name", "pagination", "payload_errors", // graphql.go
	"steps", "merge", "batch", "soap", // composite.go, batch.go, soap.go
	"response", "cache", "result_meta"} // response.go

var methods = []string{"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"}

// defaultInputSchema is used when a tool declares no input_schema.
const defaultInputSchema = `{"type":"object","properties":{}}`

// override is one entry of a tool's params.
type override struct {
	in       ParamIn
	inNode   *yaml.Node
	name     string
	nameNode *yaml.Node
	key      *yaml.Node
}

// tool parses tools[i]. It returns the tool (nil if it has problems) and
// its name when the name is valid, for the uniqueness check.
func (p *parser) tool(i int, n *yaml.Node, cat *Catalog, declared map[string]bool, sc *schemaCompiler) (*Tool, string) {
	field := fmt.Sprintf("tools[%d]", i)
	before := len(p.problems)
	t := &Tool{Pos: p.pos(n)}
	// The name labels every problem of the tool, so it is read first.
	if nn := lookup(n, "name"); nn != nil {
		if s, ok := p.str(nn, field+".name"); ok {
			switch {
			case s == "":
				p.errorf(nn, field+".name", "must not be empty")
			case len(s) > MaxToolNameLen:
				p.errorf(nn, field+".name", "tool name is %d characters long; the limit is %d", len(s), MaxToolNameLen)
			case !toolNameRE.MatchString(s):
				p.errorf(nn, field+".name", "tool name %q may contain only letters, digits, '_' and '-'", s)
			default:
				t.Name = s
				field = fmt.Sprintf("tools[%d] (%s)", i, s)
			}
		}
	}
	ms, ok := p.mapping(n, field, toolFields)
	if !ok {
		return nil, ""
	}
	gql := isGraphQLTool(ms)
	virtual, soap := isVirtualTool(ms), isSOAPTool(ms, cat)
	mustHave := []string{"name", "description", "upstream", "method", "path"}
	switch {
	case gql:
		mustHave = []string{"name", "upstream"} // the description may come from the operation
	case virtual:
		mustHave = []string{"name", "description"}
	case soap:
		mustHave = []string{"name", "description", "upstream"}
	}
	for _, req := range mustHave {
		if ms.get(req) == nil {
			p.errorf(n, field+"."+req, "required field is missing")
		}
	}

	var pathNames []string
	var pathNode *yaml.Node
	for _, f := range ms {
		ff := field + "." + f.name
		switch f.name {
		case "title":
			t.Title, _ = p.str(f.val, ff)
		case "description":
			if s, ok := p.str(f.val, ff); ok {
				if strings.TrimSpace(s) == "" {
					p.errorf(f.val, ff, "must not be empty: models choose tools by their description")
				}
				t.Description = s
			}
		case "upstream":
			s, ok := p.str(f.val, ff)
			if !ok {
				break
			}
			u := cat.Upstreams[s]
			switch {
			case !declared[s]:
				p.errorf(f.val, ff, "unknown upstream %q (%s)", s, describeNames(sortedKeys(declared)))
			case u != nil && gql && u.Kind != KindGraphQL:
				p.errorf(f.val, ff, "upstream %s is of kind %s; operation and operation_file are for graphql upstreams", s, u.Kind)
			case u != nil && !gql && u.Kind == KindGraphQL:
				p.errorf(f.val, ff, "upstream %s is of kind graphql; give the tool an operation or an operation_file", s)
			case virtual:
				u = nil // reported by virtualTool
			}
			t.Upstream = u
		case "method":
			if s, ok := p.str(f.val, ff); ok {
				t.Method = strings.ToUpper(s)
				if !contains(methods, t.Method) {
					p.errorf(f.val, ff, "unsupported method %q: want GET, POST, PUT, PATCH, DELETE or HEAD", s)
				}
			}
		case "path":
			if s, ok := p.str(f.val, ff); ok {
				names, probs := parsePathTemplate(s)
				for _, msg := range probs {
					p.errorf(f.val, ff, "invalid path template: %s", msg)
				}
				t.Path, pathNames, pathNode = s, names, f.val
			}
		case "timeout":
			t.Timeout, _ = p.duration(f.val, ff)
		case "scopes":
			t.Scopes = p.requiredScopes(f.val, ff)
		case "meta":
			t.Meta = p.meta(f.val, ff)
		}
	}

	if virtual || soap {
		if virtual {
			p.virtualTool(t, ms, field, sc)
		} else {
			p.soapTool(t, ms, n, field, sc)
			if on := ms.get("output_schema"); on != nil {
				t.OutputSchema = p.outputSchema(on, field+".output_schema", sc)
			}
			p.annotations(t, ms.get("annotations"), field+".annotations")
		}
		if rn := ms.get("retry"); rn != nil && !virtual {
			p.toolRetry(t, rn, field+".retry")
		} else if rn != nil {
			p.errorf(ms.key("retry"), field+".retry", "a composite or batch tool has no retry policy: each call it makes uses its tool's")
		}
		p.shapingFields(t, ms, field) // response.go
		if len(p.problems) > before {
			return nil, t.Name
		}
		return t, t.Name
	}
	for _, f := range virtualOnlyFields {
		if k := ms.key(f); k != nil {
			p.errorf(k, field+"."+f, "a tool with an upstream has no %s; %s belongs to composite and batch tools", f, f)
		}
	}
	if gql {
		if p.graphqlTool(t, ms, n, field, sc) {
			// The upstream's schema is still to be introspected: the tool
			// joins the catalog when ResolveGraphQLSchemas loads it again.
			return nil, t.Name
		}
		p.annotations(t, ms.get("annotations"), field+".annotations")
		if rn := ms.get("retry"); rn != nil {
			p.toolRetry(t, rn, field+".retry")
		}
		p.shapingFields(t, ms, field) // response.go
		if len(p.problems) > before {
			return nil, t.Name
		}
		return t, t.Name
	}
	for _, f := range graphqlToolFields {
		if k := ms.key(f); k != nil && f != "pagination" { // REST pagination: pagination.go
			p.errorf(k, field+"."+f, "only tools on graphql upstreams have %s", f)
		}
	}
	// The schema-related fields need method and path.
	schemaNode := ms.get("input_schema")
	if pn := ms.get("pagination"); pn != nil && !isNull(pn) {
		schemaNode = p.restPagination(t, pn, schemaNode, field+".pagination") // pagination.go
	}
	props, required := p.inputSchema(t, schemaNode, field+".input_schema", sc)
	overrides := p.params(ms.get("params"), field+".params", props)
	p.placeParams(t, field, props, required, overrides, pathNames, pathNode)
	if on := ms.get("output_schema"); on != nil {
		t.OutputSchema = p.outputSchema(on, field+".output_schema", sc)
	}
	p.annotations(t, ms.get("annotations"), field+".annotations")
	if rn := ms.get("retry"); rn != nil {
		p.toolRetry(t, rn, field+".retry")
	}
	p.shapingFields(t, ms, field) // response.go

	if len(p.problems) > before {
		return nil, t.Name
	}
	return t, t.Name
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (p *parser) meta(n *yaml.Node, field string) map[string]any {
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		p.errorf(n, field, "must be a mapping, got %s", kindName(n))
		return nil
	}
	raw, ok := p.toJSON(n, field)
	if !ok {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		p.errorf(n, field, "%v", err)
	}
	return m
}

// property is one top-level property of an input schema.
type property struct {
	name     string
	key, val *yaml.Node
}

// inputSchema encodes and compiles the input schema and returns its
// properties in file order and its required set.
func (p *parser) inputSchema(t *Tool, n *yaml.Node, field string, sc *schemaCompiler) ([]property, map[string]bool) {
	if n == nil {
		t.InputSchema = json.RawMessage(defaultInputSchema)
		return nil, nil
	}
	if n.Kind != yaml.MappingNode {
		p.errorf(n, field, "must be a JSON Schema mapping with type: object, got %s", kindName(n))
		return nil, nil
	}
	raw, ok := p.toJSON(n, field)
	if !ok {
		return nil, nil
	}
	typ := lookup(n, "type")
	switch {
	case typ == nil:
		p.errorf(n, field, "must declare type: object (tool arguments are a JSON object)")
	case typ.Kind != yaml.ScalarNode || typ.Value != "object":
		p.errorf(typ, field+".type", "must be object (tool arguments are a JSON object)")
	}
	var props []property
	if pn := lookup(n, "properties"); pn != nil && pn.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(pn.Content); i += 2 {
			props = append(props, property{name: pn.Content[i].Value, key: pn.Content[i], val: deref(pn.Content[i+1])})
		}
	}
	required := map[string]bool{}
	if rn := lookup(n, "required"); rn != nil && rn.Kind == yaml.SequenceNode {
		for _, c := range rn.Content {
			if c = deref(c); c.Kind == yaml.ScalarNode {
				required[c.Value] = true
			}
		}
	}
	if s := p.compileSchema(sc, raw, n, field); s != nil {
		t.args = schemaValidator{schema: s}
	}
	t.InputSchema = raw
	return props, required
}

func (p *parser) outputSchema(n *yaml.Node, field string, sc *schemaCompiler) json.RawMessage {
	if n.Kind != yaml.MappingNode {
		p.errorf(n, field, "must be a JSON Schema mapping with type: object, got %s", kindName(n))
		return nil
	}
	raw, ok := p.toJSON(n, field)
	if !ok {
		return nil
	}
	if typ := lookup(n, "type"); typ == nil || typ.Kind != yaml.ScalarNode || typ.Value != "object" {
		at := n
		if typ != nil {
			at = typ
		}
		p.errorf(at, field+".type", "must be object: MCP structured results are JSON objects")
	}
	p.compileSchema(sc, raw, n, field)
	return raw
}

// params reads the optional overrides of where arguments go.
func (p *parser) params(n *yaml.Node, field string, props []property) map[string]override {
	if n == nil || isNull(n) {
		return nil
	}
	ms, ok := p.mapping(n, field, nil)
	if !ok {
		return nil
	}
	out := map[string]override{}
	for _, m := range ms {
		ff := joinField(field, m.name)
		if !hasProperty(props, m.name) {
			p.errorf(m.key, ff, "%q is not a property of input_schema", m.name)
			continue
		}
		fs, ok := p.mapping(m.val, ff, []string{"in", "name"})
		if !ok {
			continue
		}
		o := override{key: m.key}
		if in := fs.get("in"); in != nil {
			if s, ok := p.str(in, ff+".in"); ok {
				switch ParamIn(s) {
				case InPath, InQuery, InHeader, InBody:
					o.in, o.inNode = ParamIn(s), in
				default:
					p.errorf(in, ff+".in", "unknown location %q: want path, query, header or body", s)
				}
			}
		}
		if nn := fs.get("name"); nn != nil {
			if s, ok := p.str(nn, ff+".name"); ok {
				if s == "" {
					p.errorf(nn, ff+".name", "must not be empty")
				}
				o.name, o.nameNode = s, nn
			}
		}
		out[m.name] = o
	}
	return out
}

func hasProperty(props []property, name string) bool {
	for _, pr := range props {
		if pr.name == name {
			return true
		}
	}
	return false
}

// placeParams fills t.Params in property order: a path placeholder goes in
// the path, then an explicit override applies, then the method decides
// (query for GET, HEAD and DELETE, body otherwise).
func (p *parser) placeParams(t *Tool, field string, props []property, required map[string]bool, overrides map[string]override, pathNames []string, pathNode *yaml.Node) {
	isPath := map[string]bool{}
	for _, name := range pathNames {
		isPath[name] = true
		if !hasProperty(props, name) {
			p.errorf(pathNode, field+".path", "parameter {%s} is not a property of input_schema", name)
		}
	}
	def := InBody
	switch t.Method {
	case "GET", "HEAD", "DELETE":
		def = InQuery
	}
	wire := map[string]string{}
	for _, pr := range props {
		pf := joinField(field+".input_schema.properties", pr.name)
		prm := Param{Name: pr.name, In: def, WireName: pr.name, Required: required[pr.name]}
		o, hasOverride := overrides[pr.name]
		of := joinField(field+".params", pr.name)
		if isPath[pr.name] {
			prm.In = InPath
			if !prm.Required {
				p.errorf(pr.key, pf, "path parameter {%s} must be listed in input_schema.required", pr.name)
			}
			if typ := lookup(pr.val, "type"); typ == nil || typ.Kind != yaml.ScalarNode ||
				(typ.Value != "string" && typ.Value != "integer" && typ.Value != "number") {
				p.errorf(pr.key, pf, "path parameter {%s} must have type string, integer or number", pr.name)
			}
			if hasOverride && o.in != "" && o.in != InPath {
				p.errorf(o.inNode, of+".in", "%s is a path parameter ({%s} in path); it cannot go in %s", pr.name, pr.name, o.in)
			}
			if hasOverride && o.name != "" {
				p.errorf(o.nameNode, of+".name", "a path parameter has no wire name")
			}
			t.Params = append(t.Params, prm)
			continue
		}
		if hasOverride {
			if o.in == InPath {
				p.errorf(o.inNode, of+".in", "in: path needs a {%s} placeholder in path", pr.name)
			} else if o.in != "" {
				prm.In = o.in
			}
			if o.name != "" {
				prm.WireName = o.name
			}
		}
		key := string(prm.In) + ":" + prm.WireName
		if prm.In == InHeader {
			if hasOverride && o.nameNode != nil {
				p.headerName(o.nameNode, of+".name", prm.WireName, argumentHeaders)
			} else {
				p.headerName(pr.key, pf, prm.WireName, argumentHeaders)
			}
			key = strings.ToLower(key)
		}
		if first, dup := wire[key]; dup {
			p.errorf(pr.key, pf, "%s and %s are both sent as %s %q", first, pr.name, prm.In, prm.WireName)
		}
		wire[key] = pr.name
		t.Params = append(t.Params, prm)
	}
}

var annotationFields = []string{"read_only", "destructive", "idempotent", "open_world"}

// annotations fills every hint: given values first, then defaults from the
// method. A read-only tool defaults to not destructive and idempotent,
// whatever its method.
func (p *parser) annotations(t *Tool, n *yaml.Node, field string) {
	a := &t.Annotations
	a.Title = t.Title
	if n != nil && !isNull(n) {
		ms, _ := p.mapping(n, field, annotationFields)
		for _, m := range ms {
			b, ok := p.boolean(m.val, field+"."+m.name)
			if !ok {
				continue
			}
			switch m.name {
			case "read_only":
				a.ReadOnly = &b
			case "destructive":
				a.Destructive = &b
			case "idempotent":
				a.Idempotent = &b
			case "open_world":
				a.OpenWorld = &b
			}
		}
		if a.ReadOnly != nil && *a.ReadOnly && a.Destructive != nil && *a.Destructive {
			p.errorf(n, field, "read_only and destructive cannot both be true")
		}
	}
	var ro, destructive, idempotent bool
	method := t.Method
	if t.GraphQL != nil { // a query reads like GET, a mutation writes like POST
		method = "POST"
		if t.GraphQL.Operation.Kind() == gqlop.KindQuery {
			method = "GET"
		}
	}
	switch method {
	case "GET", "HEAD":
		ro, idempotent = true, true
	case "DELETE":
		destructive, idempotent = true, true
	case "PUT":
		destructive, idempotent = true, true
	default: // POST, PATCH
		destructive = true
	}
	if a.ReadOnly == nil {
		a.ReadOnly = &ro
	}
	if *a.ReadOnly {
		destructive, idempotent = false, true
	}
	if a.Destructive == nil {
		a.Destructive = &destructive
	}
	if a.Idempotent == nil {
		a.Idempotent = &idempotent
	}
	if a.OpenWorld == nil {
		openWorld := true
		a.OpenWorld = &openWorld
	}
}
