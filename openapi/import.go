// Package openapi provides the conversion of an OpenAPI document (3.0, 3.1,
// or Swagger 2.0 converted to 3.0) into tool definitions: one per selected
// operation, with an input schema built from its parameters and request
// body, an output schema from its success response, and where each
// argument goes in the request.
//
// It works on the document's bytes only: it must not read files, reach the
// network, or know about the catalog's YAML. The catalog loader calls
// Import for upstreams with an openapi: section and turns the definitions
// into catalog tools; the CLI calls it to write catalog skeletons.
package openapi

import (
	"bytes"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// Defaults of Options.
const (
	// DefaultMaxRefDepth bounds nested references in input schemas:
	// arguments are what a model must fill in, so they are expanded deeply.
	DefaultMaxRefDepth = 6
	// DefaultMaxOutputRefDepth bounds nested references in output
	// schemas, which only describe the answer; large APIs link every
	// object to many others, and a deep expansion would weigh megabytes.
	DefaultMaxOutputRefDepth = 1
	// MaxDescriptionLen caps tool descriptions (bytes).
	MaxDescriptionLen = 2000
)

// Options select and adjust what Import produces.
type Options struct {
	Select Selection
	// Overrides by operationId, or "METHOD /path" for an operation without one.
	Overrides map[string]Override
	// MaxRefDepth and MaxOutputRefDepth bound $ref expansion (defaults above).
	MaxRefDepth       int
	MaxOutputRefDepth int
	// NamePrefix is put before every generated tool name (not before
	// names given in Overrides).
	NamePrefix string
	// Reserved reports names already used elsewhere (other upstreams,
	// hand-written tools); generated names avoid them.
	Reserved func(name string) bool
}

// Selection keeps the operations that match every non-empty filter (and any
// entry within one filter).
type Selection struct {
	// OperationIDs are exact operationIds (or "METHOD /path").
	OperationIDs []string
	Tags         []string
	// Paths are globs on the path template: * matches any run of
	// characters, '/' included ("/v1/customers*").
	Paths []string
	// Methods such as GET, in any case.
	Methods []string
}

// Override changes one operation's tool.
type Override struct {
	Name, Title, Description string
	// Annotation hints; nil leaves the default from the method.
	ReadOnly, Destructive, Idempotent, OpenWorld *bool
	// Hidden removes arguments from the input schema and always sends
	// them with the given value (keys: argument or parameter names).
	Hidden map[string]any
}

// Location is where an argument goes in the request.
type Location string

// Locations.
const (
	InPath   Location = "path"
	InQuery  Location = "query"
	InHeader Location = "header"
	InCookie Location = "cookie"
	InBody   Location = "body"
)

// Body encodings.
const (
	BodyJSON = "json"
	BodyForm = "form"
)

// Param maps one argument (a top-level property of the input schema, or a
// hidden argument) to its place in the request.
type Param struct {
	Name     string
	In       Location
	WireName string
	Required bool
	// Deep is set for query parameters of style deepObject: objects and
	// arrays go as name[key]=v and name[0]=v.
	Deep bool
}

// Tool is one operation as a tool definition.
type Tool struct {
	Name        string
	Title       string
	Description string
	// OperationID is the operation's key: its operationId, or "METHOD /path".
	OperationID string
	Tags        []string
	Method      string
	// Path is the template with {placeholder} names that are argument names.
	Path   string
	Params []Param
	// InputSchema is a self-contained JSON Schema 2020-12 with type object.
	InputSchema []byte
	// OutputSchema has type object, or is nil when the success response is
	// not JSON or its shape cannot be told; arrays and scalars are wrapped
	// as {"result": …}, which is how results carry them.
	OutputSchema []byte
	// BodyEncoding is BodyJSON, BodyForm, or "" without a body.
	BodyEncoding string
	// Hidden arguments and their fixed values.
	Fixed map[string]any
	// Annotation hints from the override; nil means "from the method".
	ReadOnly, Destructive, Idempotent, OpenWorld *bool
	// Notes say what was adapted: cut recursion, dropped parameters.
	Notes []string
}

// Result is an imported document.
type Result struct {
	// Version is the document's openapi version, e.g. "3.0.0".
	Version string
	Title   string
	// Servers are the absolute http(s) server URLs, variables filled with
	// their defaults, in document order.
	Servers []string
	// SecuritySchemes by name order; Security names the schemes of the
	// document's top-level security requirement, in order.
	SecuritySchemes []SecurityScheme
	Security        []string
	// Operations counts every operation in the document.
	Operations int
	Tools      []*Tool
	// Notes are about operations left out (unsupported methods or bodies).
	Notes []string
}

// SecurityScheme is a components.securitySchemes entry.
type SecurityScheme struct {
	Name string
	// Type is apiKey, http, oauth2, openIdConnect or mutualTLS.
	Type string
	// Scheme is the http scheme (bearer, basic).
	Scheme string
	// In and ParamName locate an apiKey (header, query or cookie).
	In, ParamName string
	// TokenURL and Scopes of the oauth2 clientCredentials flow, if any.
	TokenURL    string
	Scopes      []string
	Description string
}

// Problem is one error in the options, as they relate to the document.
type Problem struct {
	// Override is the Overrides key the problem is about, or "".
	Override string
	// Field is the option's field: "name", "hidden.<arg>",
	// "select.operation_ids", "select.tags", "select.paths", "select.methods".
	Field string
	// Value is the offending entry for select problems.
	Value   string
	Message string
}

func (p Problem) String() string {
	s := p.Field
	if p.Override != "" {
		s = "overrides." + p.Override + "." + p.Field
	}
	return s + ": " + p.Message
}

// Error lists the problems of the options.
type Error struct{ Problems []Problem }

func (e *Error) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.String()
	}
	return strings.Join(parts, "; ")
}

var methodOrder = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// supportedMethods are the methods tools can use.
var supportedMethods = map[string]bool{"GET": true, "PUT": true, "POST": true, "DELETE": true, "HEAD": true, "PATCH": true}

// operation is one operation of the document.
type operation struct {
	key, id, method, path string
	item, op              map[string]any
	tags                  []string
}

// Import converts the operations of an OpenAPI document that opts select.
// A document it cannot read gives a plain error; options that do not fit
// the document (an unknown operationId, a hidden argument the operation
// does not have) give an *Error listing all of them.
func Import(data []byte, opts Options) (*Result, error) {
	doc, err := Parse(data)
	if err != nil {
		return nil, err
	}
	return doc.Import(opts)
}

// Document is a parsed OpenAPI document, to import from more than once
// (the catalog reads its servers before its tools).
type Document struct{ d *document }

// Parse reads an OpenAPI 3.0 or 3.1 document, or a Swagger 2.0 one
// (converted to 3.0), as JSON or YAML.
func Parse(data []byte) (*Document, error) {
	d, err := decode(data)
	if err != nil {
		return nil, err
	}
	return &Document{d: d}, nil
}

// Servers are the document's absolute http(s) server URLs.
func (doc *Document) Servers() []string { return servers(doc.d.root) }

// Import converts the operations that opts select; see the package Import.
func (doc *Document) Import(opts Options) (*Result, error) {
	d := doc.d
	if opts.MaxRefDepth <= 0 {
		opts.MaxRefDepth = DefaultMaxRefDepth
	}
	if opts.MaxOutputRefDepth <= 0 {
		opts.MaxOutputRefDepth = DefaultMaxOutputRefDepth
	}
	res := &Result{Version: d.version, Title: str(obj(d.root, "info"), "title")}
	res.Servers = servers(d.root)
	res.SecuritySchemes, res.Security = securitySchemes(d)

	ops := d.operations()
	res.Operations = len(ops)
	var problems []Problem
	selected, probs := selectOps(ops, opts.Select)
	problems = append(problems, probs...)

	byKey := map[string]*operation{}
	for _, op := range ops {
		byKey[op.key] = op
	}
	isSelected := map[string]bool{}
	for _, op := range selected {
		isSelected[op.key] = true
	}
	names := newNamer()
	for _, key := range sortedOverrideKeys(opts.Overrides) {
		o := opts.Overrides[key]
		switch {
		case byKey[key] == nil:
			problems = append(problems, Problem{Override: key, Message: fmt.Sprintf("the document has no operation %q", key)})
			continue
		case !isSelected[key]:
			problems = append(problems, Problem{Override: key, Message: fmt.Sprintf("operation %q is not selected", key)})
			continue
		}
		if o.Name == "" {
			continue
		}
		switch {
		case !ValidName(o.Name):
			problems = append(problems, Problem{Override: key, Field: "name", Message: fmt.Sprintf("tool name %q must be 1 to 64 characters from a-z A-Z 0-9 _ -", o.Name)})
		case names.has(o.Name) || (opts.Reserved != nil && opts.Reserved(o.Name)):
			problems = append(problems, Problem{Override: key, Field: "name", Message: fmt.Sprintf("tool name %q is already used", o.Name)})
		default:
			names.take(o.Name)
		}
	}

	for _, op := range selected {
		if !supportedMethods[op.method] {
			res.Notes = append(res.Notes, fmt.Sprintf("%s: method %s is not supported for tools; left out", op.key, op.method))
			continue
		}
		o := opts.Overrides[op.key]
		t, skip, probs := d.tool(op, o, opts)
		problems = append(problems, probs...)
		if skip != "" {
			res.Notes = append(res.Notes, op.key+": "+skip)
			continue
		}
		if o.Name != "" {
			t.Name = o.Name
		} else {
			base := op.id
			if base == "" {
				base = operationName(op.method, op.path)
			}
			t.Name = names.unique(SanitizeName(opts.NamePrefix+base), opts.Reserved)
		}
		res.Tools = append(res.Tools, t)
	}
	if len(problems) > 0 {
		return nil, &Error{Problems: problems}
	}
	return res, nil
}

func sortedOverrideKeys(m map[string]Override) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// operations lists every operation, by path then method.
func (d *document) operations() []*operation {
	paths := obj(d.root, "paths")
	var out []*operation
	for _, p := range sortedKeys(paths) {
		item, _, err := d.resolve(paths[p])
		if err != nil {
			continue
		}
		for _, m := range methodOrder {
			op, ok := item[m].(map[string]any)
			if !ok {
				continue
			}
			o := &operation{id: str(op, "operationId"), method: strings.ToUpper(m), path: p, item: item, op: op}
			o.key = o.id
			if o.key == "" {
				o.key = o.method + " " + p
			}
			if tags, ok := op["tags"].([]any); ok {
				for _, t := range tags {
					if s, ok := t.(string); ok {
						o.tags = append(o.tags, s)
					}
				}
			}
			out = append(out, o)
		}
	}
	return out
}

// selectOps applies the selection and reports filter entries that match
// no operation at all.
func selectOps(ops []*operation, sel Selection) ([]*operation, []Problem) {
	var problems []Problem
	globs := make([]*regexp.Regexp, len(sel.Paths))
	for i, g := range sel.Paths {
		globs[i] = globRE(g)
	}
	used := map[string]bool{}
	var out []*operation
	for _, op := range ops {
		okID := len(sel.OperationIDs) == 0
		for _, id := range sel.OperationIDs {
			if id == op.key {
				okID, used["id:"+id] = true, true
			}
		}
		okTag := len(sel.Tags) == 0
		for _, t := range sel.Tags {
			if slices.Contains(op.tags, t) {
				okTag, used["tag:"+t] = true, true
			}
		}
		okPath := len(sel.Paths) == 0
		for i, g := range globs {
			if g.MatchString(op.path) {
				okPath, used["path:"+sel.Paths[i]] = true, true
			}
		}
		okMethod := len(sel.Methods) == 0
		for _, m := range sel.Methods {
			if strings.EqualFold(m, op.method) {
				okMethod, used["method:"+strings.ToUpper(m)] = true, true
			}
		}
		if okID && okTag && okPath && okMethod {
			out = append(out, op)
		}
	}
	report := func(field, prefix string, vals []string, what string) {
		for _, v := range vals {
			k := prefix + v
			if prefix == "method:" {
				k = prefix + strings.ToUpper(v)
			}
			if !used[k] {
				problems = append(problems, Problem{Field: field, Value: v, Message: fmt.Sprintf("%s %q matches no operation of the document", what, v)})
			}
		}
	}
	report("select.operation_ids", "id:", sel.OperationIDs, "operationId")
	report("select.tags", "tag:", sel.Tags, "tag")
	report("select.paths", "path:", sel.Paths, "path pattern")
	report("select.methods", "method:", sel.Methods, "method")
	return out, problems
}

// globRE compiles a path glob: * is any run of characters, ? one character.
func globRE(g string) *regexp.Regexp {
	var b strings.Builder
	b.WriteByte('^')
	for _, r := range g {
		switch r {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteByte('.')
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteByte('$')
	return regexp.MustCompile(b.String())
}

// forbiddenHeaders are parameters the upstream client or the catalog's
// auth owns: an argument must never set them.
var forbiddenHeaders = map[string]bool{
	"host": true, "content-length": true, "content-type": true, "connection": true, "keep-alive": true,
	"proxy-connection": true, "te": true, "trailer": true, "transfer-encoding": true, "upgrade": true,
	"proxy-authenticate": true, "proxy-authorization": true, "authorization": true, "accept": true,
}

// property is one top-level argument being built.
type property struct {
	param  Param
	schema []byte
}

// tool builds one operation's tool. skip, when not empty, says why the
// operation is left out.
func (d *document) tool(op *operation, o Override, opts Options) (t *Tool, skip string, problems []Problem) {
	nt := &notes{}
	t = &Tool{OperationID: op.key, Tags: op.tags, Method: op.method, Path: op.path,
		ReadOnly: o.ReadOnly, Destructive: o.Destructive, Idempotent: o.Idempotent, OpenWorld: o.OpenWorld}
	in := &converter{d: d, dir: dirInput, maxDepth: opts.MaxRefDepth, active: map[string]bool{}, notes: nt}

	var props []property
	taken := map[string]bool{}
	add := func(p Param, schema []byte) {
		if taken[p.Name] {
			p.Name = string(p.In) + "_" + p.Name
			for i := 2; taken[p.Name]; i++ {
				p.Name = fmt.Sprintf("%s_%s_%d", p.In, p.WireName, i)
			}
		}
		taken[p.Name] = true
		props = append(props, property{param: p, schema: schema})
	}

	params, err := d.parameters(op)
	if err != nil {
		return nil, "parameters: " + err.Error(), nil
	}
	path := op.path
	for _, pm := range params {
		name, where := str(pm, "name"), Location(str(pm, "in"))
		p := Param{Name: name, In: where, WireName: name, Required: pm["required"] == true}
		switch where {
		case InPath:
			p.Name = placeholderName(name)
			p.Required = true
			path = strings.ReplaceAll(path, "{"+name+"}", "{"+p.Name+"}")
		case InQuery:
			p.Deep = str(pm, "style") == "deepObject"
		case InHeader:
			if forbiddenHeaders[strings.ToLower(name)] {
				nt.add("header parameter %s is left out: the upstream client sets it", name)
				continue
			}
		case InCookie:
		default:
			nt.add("parameter %s in %q is left out", name, where)
			continue
		}
		schema := pm["schema"]
		if schema == nil {
			if c := obj(pm, "content"); c != nil {
				for _, mt := range sortedKeys(c) {
					schema = obj(c, mt)["schema"]
					break
				}
			}
		}
		add(p, in.property(schema, str(pm, "description"), pm["deprecated"] == true))
	}
	t.Path = path

	if rb := op.op["requestBody"]; rb != nil {
		body, _, err := d.resolve(rb)
		if err != nil {
			return nil, "request body: " + err.Error(), nil
		}
		enc, schema, mediaType := pickBody(obj(body, "content"))
		required := body["required"] == true
		switch {
		case enc == "" && required:
			return nil, fmt.Sprintf("request body of type %s is not supported (JSON and form bodies are)", mediaType), nil
		case enc == "":
			nt.add("optional request body of type %s is left out", mediaType)
		default:
			fields, req, ok := d.objectFields(schema, 0)
			switch {
			case !ok && required:
				return nil, "the request body is not a JSON object with properties; such bodies are not supported yet", nil
			case !ok:
				nt.add("the optional request body is not an object with properties; left out")
			default:
				for _, f := range fields {
					if in.skipProperty(f.schema) {
						continue
					}
					t.BodyEncoding = enc
					add(Param{Name: f.name, In: InBody, WireName: f.name, Required: req[f.name]}, in.property(f.schema, "", false))
				}
			}
		}
	}

	// Hidden arguments leave the schema but keep their place.
	if len(o.Hidden) > 0 {
		t.Fixed = map[string]any{}
		for _, h := range sortedKeys(o.Hidden) {
			i := slices.IndexFunc(props, func(p property) bool { return p.param.Name == h })
			if i < 0 {
				i = slices.IndexFunc(props, func(p property) bool { return p.param.WireName == h })
			}
			if i < 0 {
				var known []string
				for _, p := range props {
					known = append(known, p.param.Name)
				}
				problems = append(problems, Problem{Override: op.key, Field: "hidden." + h,
					Message: fmt.Sprintf("operation %s has no parameter %q (it has: %s)", op.key, h, strings.Join(known, ", "))})
				continue
			}
			p := props[i]
			t.Fixed[p.param.Name] = o.Hidden[h]
			p.param.Required = false
			t.Params = append(t.Params, p.param)
			props = slices.Delete(props, i, i+1)
		}
	}

	var b bytes.Buffer
	b.WriteString(`{"type":"object","properties":{`)
	var required []any
	for i, p := range props {
		if i > 0 {
			b.WriteByte(',')
		}
		writeValue(&b, p.param.Name)
		b.WriteByte(':')
		b.Write(p.schema)
		if p.param.Required {
			required = append(required, p.param.Name)
		}
		t.Params = append(t.Params, p.param)
	}
	b.WriteByte('}')
	if len(required) > 0 {
		b.WriteString(`,"required":`)
		writeValue(&b, required)
	}
	b.WriteByte('}')
	t.InputSchema = b.Bytes()

	out := &converter{d: d, dir: dirOutput, maxDepth: opts.MaxOutputRefDepth, active: map[string]bool{}, notes: nt, shared: &in.expansions}
	t.OutputSchema = d.outputSchema(op, out, nt)

	t.Title = oneLine(str(op.op, "summary"))
	t.Description = description(op)
	if o.Title != "" {
		t.Title = o.Title
	}
	if o.Description != "" {
		t.Description = o.Description
	}
	if op.op["deprecated"] == true {
		t.Description = "Deprecated. " + t.Description
	}
	t.Notes = nt.list
	return t, "", problems
}

// property converts an argument's schema, adding the parameter's
// description and deprecation when the schema has none.
func (c *converter) property(schema any, desc string, deprecated bool) []byte {
	var b bytes.Buffer
	if _, ok := schema.(bool); ok {
		c.schema(&b, schema)
		return b.Bytes()
	}
	m, ref, err := c.d.resolve(schema)
	if err != nil || m == nil {
		b.WriteString("{}")
		return b.Bytes()
	}
	if (desc != "" && m["description"] == nil) || (deprecated && m["deprecated"] == nil) {
		cp := make(map[string]any, len(m)+2)
		for k, v := range m {
			cp[k] = v
		}
		if desc != "" && m["description"] == nil {
			cp["description"] = desc
		}
		if deprecated {
			cp["deprecated"] = true
		}
		m = cp
	}
	if ref != "" {
		c.active[ref] = true
		c.depth++
		defer func() { delete(c.active, ref); c.depth-- }()
	}
	c.schema(&b, m)
	return b.Bytes()
}

// parameters merges path-level and operation-level parameters; the
// operation's win on the same name and location.
func (d *document) parameters(op *operation) ([]map[string]any, error) {
	var out []map[string]any
	idx := map[string]int{}
	for _, list := range [][]any{anyList(op.item["parameters"]), anyList(op.op["parameters"])} {
		for _, p := range list {
			pm, _, err := d.resolve(p)
			if err != nil {
				return nil, err
			}
			k := str(pm, "in") + ":" + str(pm, "name")
			if i, ok := idx[k]; ok {
				out[i] = pm
				continue
			}
			idx[k] = len(out)
			out = append(out, pm)
		}
	}
	return out, nil
}

func anyList(v any) []any {
	l, _ := v.([]any)
	return l
}

// pickBody chooses the request body media type: JSON first, then form.
func pickBody(content map[string]any) (enc string, schema any, mediaType string) {
	keys := sortedKeys(content)
	for _, k := range keys {
		mt := strings.ToLower(strings.TrimSpace(strings.Split(k, ";")[0]))
		if mt == "application/json" || strings.HasSuffix(mt, "+json") {
			return BodyJSON, obj(content, k)["schema"], k
		}
	}
	for _, k := range keys {
		mt := strings.ToLower(strings.TrimSpace(strings.Split(k, ";")[0]))
		if mt == "application/x-www-form-urlencoded" {
			return BodyForm, obj(content, k)["schema"], k
		}
	}
	if len(keys) > 0 {
		return "", nil, keys[0]
	}
	return "", nil, "(none)"
}

type field struct {
	name   string
	schema any
}

// objectFields lists the properties of an object schema, merging allOf
// parts, in name order.
func (d *document) objectFields(schema any, depth int) ([]field, map[string]bool, bool) {
	m, _, err := d.resolve(schema)
	if err != nil || m == nil || depth > 8 {
		return nil, nil, false
	}
	req := map[string]bool{}
	for _, r := range anyList(m["required"]) {
		if s, ok := r.(string); ok {
			req[s] = true
		}
	}
	var fields []field
	props, hasProps := m["properties"].(map[string]any)
	for _, k := range sortedKeys(props) {
		fields = append(fields, field{k, props[k]})
	}
	ok := hasProps
	for _, part := range anyList(m["allOf"]) {
		fs, r, pok := d.objectFields(part, depth+1)
		if !pok {
			continue
		}
		ok = true
		for _, f := range fs {
			if !slices.ContainsFunc(fields, func(x field) bool { return x.name == f.name }) {
				fields = append(fields, f)
			}
		}
		for k := range r {
			req[k] = true
		}
	}
	if !ok {
		// A body that is one of several objects: the first object variant
		// is taken, which covers the common "object or legacy form" case.
		for _, k := range []string{"oneOf", "anyOf"} {
			for _, part := range anyList(m[k]) {
				if fs, r, pok := d.objectFields(part, depth+1); pok {
					return fs, r, true
				}
			}
		}
	}
	return fields, req, ok
}

// successCodes are tried in order for the output schema.
var successCodes = []string{"200", "201", "202", "203", "206", "2XX", "2xx"}

func (d *document) outputSchema(op *operation, c *converter, nt *notes) []byte {
	responses := obj(op.op, "responses")
	var resp any
	for _, code := range successCodes {
		if r, ok := responses[code]; ok {
			resp = r
			break
		}
	}
	if resp == nil {
		return nil
	}
	r, _, err := d.resolve(resp)
	if err != nil {
		return nil
	}
	content := obj(r, "content")
	var schema any
	for _, k := range sortedKeys(content) {
		mt := strings.ToLower(strings.TrimSpace(strings.Split(k, ";")[0]))
		if mt == "application/json" || strings.HasSuffix(mt, "+json") {
			schema = obj(content, k)["schema"]
			break
		}
	}
	if schema == nil {
		return nil
	}
	var b bytes.Buffer
	switch d.shapeOf(schema, 0) {
	case shapeObject:
		c.topObject = true
		c.schema(&b, schema)
		return b.Bytes()
	case shapeOther:
		b.WriteString(`{"type":"object","properties":{"result":`)
		c.schema(&b, schema)
		b.WriteString(`},"required":["result"]}`)
		return b.Bytes()
	}
	nt.add("the success response may or may not be an object; no output schema")
	return nil
}

var (
	tagRE   = regexp.MustCompile(`<[^>]{0,200}>`)
	spaceRE = regexp.MustCompile(`[ \t]+`)
)

// description is the operation's description (HTML tags removed), its
// summary, or its method and path, capped at MaxDescriptionLen.
func description(op *operation) string {
	s := str(op.op, "description")
	if strings.TrimSpace(s) == "" {
		s = str(op.op, "summary")
	}
	s = strings.TrimSpace(spaceRE.ReplaceAllString(tagRE.ReplaceAllString(s, ""), " "))
	if s == "" {
		s = op.method + " " + op.path
	}
	if len(s) > MaxDescriptionLen {
		cut := MaxDescriptionLen - len("…")
		for cut > 0 && !utf8Start(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

func utf8Start(c byte) bool { return c&0xC0 != 0x80 }

func oneLine(s string) string {
	return strings.TrimSpace(strings.Join(strings.Fields(s), " "))
}

// servers lists absolute http(s) server URLs with variables filled in.
func servers(root map[string]any) []string {
	var out []string
	for _, s := range anyList(root["servers"]) {
		m, ok := s.(map[string]any)
		if !ok {
			continue
		}
		u := str(m, "url")
		for name, v := range obj(m, "variables") {
			if vm, ok := v.(map[string]any); ok {
				u = strings.ReplaceAll(u, "{"+name+"}", fmt.Sprint(vm["default"]))
			}
		}
		pu, err := url.Parse(u)
		if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" || strings.Contains(u, "{") {
			continue
		}
		out = append(out, strings.TrimRight(u, "/"))
	}
	return out
}

func securitySchemes(d *document) ([]SecurityScheme, []string) {
	schemes := obj(obj(d.root, "components"), "securitySchemes")
	var out []SecurityScheme
	for _, name := range sortedKeys(schemes) {
		m, _, err := d.resolve(schemes[name])
		if err != nil {
			continue
		}
		s := SecurityScheme{Name: name, Type: str(m, "type"), Scheme: strings.ToLower(str(m, "scheme")),
			In: str(m, "in"), ParamName: str(m, "name"), Description: oneLine(str(m, "description"))}
		if cc := obj(obj(m, "flows"), "clientCredentials"); cc != nil {
			s.TokenURL = str(cc, "tokenUrl")
			s.Scopes = sortedKeys(obj(cc, "scopes"))
		}
		out = append(out, s)
	}
	var req []string
	for _, r := range anyList(d.root["security"]) {
		if m, ok := r.(map[string]any); ok {
			for _, k := range sortedKeys(m) {
				if !slices.Contains(req, k) {
					req = append(req, k)
				}
			}
		}
	}
	return out, req
}
