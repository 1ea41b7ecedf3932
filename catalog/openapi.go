package catalog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"

	"github.com/toolbus/toolbus/openapi"
)

// InCookie sends an argument as a cookie (imported OpenAPI parameters).
const InCookie ParamIn = "cookie"

// BodyEncoding is how body arguments are encoded.
type BodyEncoding string

// Body encodings. The zero value is JSON.
const (
	BodyJSON BodyEncoding = "json"
	// BodyForm is application/x-www-form-urlencoded with nested values in
	// brackets, the way Stripe and Rails-style APIs read them:
	// metadata[key]=value, items[0][price]=p_1.
	BodyForm BodyEncoding = "form"
)

// OpenAPISource is an upstream's openapi: section: the document its tools
// are generated from.
type OpenAPISource struct {
	// File is the document as written in the catalog; Path where it was read.
	File, Path string
	// Title and Version are the document's info.title and openapi version.
	Title, Version string
	// Operations in the document, and tools generated from it.
	Operations, Tools int
	// SecuritySchemes the document declares, for `catalog import-openapi`
	// and for the lead's auth mapping (see docs/catalog.md).
	SecuritySchemes []openapi.SecurityScheme
	// Notes say what the import left out or adapted, per operation.
	Notes []string
	Pos   Pos

	doc   *openapi.Document
	opts  openapi.Options
	nodes openapiNodes
}

// openapiNodes remember where options were written, for problems the
// import finds.
type openapiNodes struct {
	section, file *yaml.Node
	field         string
	selects       map[string]*yaml.Node // "select.tags" → list node
	overrides     map[string]*yaml.Node // operation key → key node
	overrideVals  map[string]*yaml.Node // operation key → value node
}

var (
	openapiFields  = []string{"file", "select", "overrides", "name_prefix", "max_ref_depth", "max_output_ref_depth"}
	selectFields   = []string{"operation_ids", "tags", "paths", "methods"}
	overrideFields = []string{"name", "title", "description", "annotations", "hidden"}
)

// maxOpenAPIDepth bounds max_ref_depth and max_output_ref_depth.
const maxOpenAPIDepth = 16

// openapiSource parses an upstream's openapi: section and reads the
// document (tools are made later by openapiTools, once every name in the
// catalog is known).
func (p *parser) openapiSource(n *yaml.Node, field string) *OpenAPISource {
	ms, ok := p.mapping(n, field, openapiFields)
	if !ok {
		return nil
	}
	before := len(p.problems)
	s := &OpenAPISource{Pos: p.pos(n), nodes: openapiNodes{section: n, field: field,
		selects: map[string]*yaml.Node{}, overrides: map[string]*yaml.Node{}, overrideVals: map[string]*yaml.Node{}}}
	for _, f := range ms {
		ff := field + "." + f.name
		switch f.name {
		case "file":
			s.File, _ = p.str(f.val, ff)
			s.nodes.file = f.val
		case "select":
			p.openapiSelect(s, f.val, ff)
		case "overrides":
			p.openapiOverrides(s, f.val, ff)
		case "name_prefix":
			if v, ok := p.str(f.val, ff); ok {
				if v != "" && !toolNameRE.MatchString(v) {
					p.errorf(f.val, ff, "may contain only letters, digits, '_' and '-'")
				}
				s.opts.NamePrefix = v
			}
		case "max_ref_depth", "max_output_ref_depth":
			if v, ok := p.integer(f.val, ff); ok {
				if v < 1 || v > int64(maxOpenAPIDepth) {
					p.errorf(f.val, ff, "must be between 1 and %d, got %d", maxOpenAPIDepth, v)
				}
				if f.name == "max_ref_depth" {
					s.opts.MaxRefDepth = int(v)
				} else {
					s.opts.MaxOutputRefDepth = int(v)
				}
			}
		}
	}
	if ms.get("file") == nil {
		p.errorf(n, field+".file", "required field is missing: the path of the OpenAPI document (relative to the catalog's directory)")
		return nil
	}
	if len(p.problems) > before {
		return nil
	}
	display, data, ok := p.readRef(s.nodes.file, field+".file", s.File)
	if !ok {
		return nil
	}
	s.Path = display
	doc, err := openapi.Parse(data)
	if err != nil {
		p.errorf(s.nodes.file, field+".file", "%s: %v", display, err)
		return nil
	}
	s.doc = doc
	return s
}

func (p *parser) openapiSelect(s *OpenAPISource, n *yaml.Node, field string) {
	ms, ok := p.mapping(n, field, selectFields)
	if !ok {
		return
	}
	for _, f := range ms {
		ff := field + "." + f.name
		s.nodes.selects["select."+f.name] = f.val
		list := p.stringList(f.val, ff)
		switch f.name {
		case "operation_ids":
			s.opts.Select.OperationIDs = list
		case "tags":
			s.opts.Select.Tags = list
		case "paths":
			s.opts.Select.Paths = list
		case "methods":
			for i, m := range list {
				if !contains(methods, strings.ToUpper(m)) {
					p.errorf(f.val.Content[i], fmt.Sprintf("%s[%d]", ff, i), "unsupported method %q: want GET, POST, PUT, PATCH, DELETE or HEAD", m)
				}
			}
			s.opts.Select.Methods = list
		}
	}
}

// stringList reads a list of strings (a single string counts as a list of one).
func (p *parser) stringList(n *yaml.Node, field string) []string {
	if n.Kind == yaml.ScalarNode && !isNull(n) {
		s, _ := p.str(n, field)
		return []string{s}
	}
	if n.Kind != yaml.SequenceNode {
		p.errorf(n, field, "must be a list of strings, got %s", kindName(n))
		return nil
	}
	var out []string
	for i, c := range n.Content {
		if s, ok := p.str(deref(c), fmt.Sprintf("%s[%d]", field, i)); ok {
			out = append(out, s)
		}
	}
	return out
}

func (p *parser) openapiOverrides(s *OpenAPISource, n *yaml.Node, field string) {
	ms, ok := p.mapping(n, field, nil)
	if !ok {
		return
	}
	s.opts.Overrides = map[string]openapi.Override{}
	for _, m := range ms {
		ff := joinField(field, m.name)
		s.nodes.overrides[m.name] = m.key
		s.nodes.overrideVals[m.name] = m.val
		fs, ok := p.mapping(m.val, ff, overrideFields)
		if !ok {
			continue
		}
		var o openapi.Override
		for _, f := range fs {
			fff := ff + "." + f.name
			switch f.name {
			case "name":
				if v, ok := p.str(f.val, fff); ok {
					switch {
					case v == "":
						p.errorf(f.val, fff, "must not be empty")
					case len(v) > MaxToolNameLen:
						p.errorf(f.val, fff, "tool name is %d characters long; the limit is %d", len(v), MaxToolNameLen)
					case !toolNameRE.MatchString(v):
						p.errorf(f.val, fff, "tool name %q may contain only letters, digits, '_' and '-'", v)
					default:
						o.Name = v
					}
				}
			case "title":
				o.Title, _ = p.str(f.val, fff)
			case "description":
				if v, ok := p.str(f.val, fff); ok {
					if strings.TrimSpace(v) == "" {
						p.errorf(f.val, fff, "must not be empty: models choose tools by their description")
					}
					o.Description = v
				}
			case "annotations":
				var t Tool
				before := len(p.problems)
				p.annotations(&t, f.val, fff)
				if len(p.problems) == before {
					// Only what was written overrides the method's defaults.
					am, _ := p.mapping(f.val, fff, annotationFields)
					for _, a := range am {
						switch a.name {
						case "read_only":
							o.ReadOnly = t.Annotations.ReadOnly
						case "destructive":
							o.Destructive = t.Annotations.Destructive
						case "idempotent":
							o.Idempotent = t.Annotations.Idempotent
						case "open_world":
							o.OpenWorld = t.Annotations.OpenWorld
						}
					}
				}
			case "hidden":
				hm, ok := p.mapping(f.val, fff, nil)
				if !ok {
					continue
				}
				o.Hidden = map[string]any{}
				for _, h := range hm {
					raw, ok := p.toJSON(h.val, joinField(fff, h.name))
					if !ok {
						continue
					}
					dec := json.NewDecoder(bytes.NewReader(raw))
					dec.UseNumber()
					var v any
					if err := dec.Decode(&v); err != nil {
						p.errorf(h.val, joinField(fff, h.name), "%v", err)
						continue
					}
					o.Hidden[h.name] = v
				}
			}
		}
		s.opts.Overrides[m.name] = o
	}
}

// openapiBaseURL fills the base URL of an upstream without base_url from
// its document's first absolute server. It reports whether the upstream
// has an openapi: section (then the missing base_url is handled here).
func (p *parser) openapiBaseURL(u *Upstream, ms members, key *yaml.Node, field string) bool {
	if ms.get("openapi") == nil {
		return false
	}
	s := u.OpenAPI
	if s == nil || s.doc == nil {
		return true // the section has problems of its own
	}
	servers := s.doc.Servers()
	if len(servers) == 0 {
		p.errorf(key, field+".base_url", "required field is missing: %s declares no absolute http(s) server URL", s.Path)
		return true
	}
	u.BaseURL = p.baseURL(&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: strings.ReplaceAll(servers[0], "${", "$${"),
		Line: key.Line, Column: key.Column}, field+".base_url (from the document's servers)")
	return true
}

// openapiTools generates the tools of every upstream with an openapi:
// section, in upstream name order, after the catalog's own tools.
func (p *parser) openapiTools(cat *Catalog) {
	var names []string
	for name, u := range cat.Upstreams {
		if u.OpenAPI != nil && u.OpenAPI.doc != nil {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return
	}
	sort.Strings(names)
	sc := newSchemaCompiler()
	// Names compare without case, as within one import.
	taken := map[string]bool{}
	for name := range cat.toolsByName {
		taken[strings.ToLower(name)] = true
	}
	reserved := func(name string) bool { return taken[strings.ToLower(name)] }
	for _, name := range names {
		u := cat.Upstreams[name]
		s := u.OpenAPI
		opts := s.opts
		opts.Reserved = reserved
		res, err := s.doc.Import(opts)
		if err != nil {
			p.openapiProblems(s, err)
			continue
		}
		s.Title, s.Version, s.Operations, s.Tools = res.Title, res.Version, res.Operations, len(res.Tools)
		s.SecuritySchemes = res.SecuritySchemes
		s.Notes = append(s.Notes, res.Notes...)
		for _, it := range res.Tools {
			for _, n := range it.Notes {
				s.Notes = append(s.Notes, it.OperationID+": "+n)
			}
			if t := p.importedTool(u, it, sc); t != nil {
				cat.Tools = append(cat.Tools, t)
				cat.toolsByName[t.Name] = t
				taken[strings.ToLower(t.Name)] = true
			}
		}
	}
}

// importedTool turns a definition into a tool, with the same checks as a
// hand-written one. A tool that fails them is left out with a note: one
// odd operation must not keep a large API from loading.
func (p *parser) importedTool(u *Upstream, it *openapi.Tool, sc *schemaCompiler) *Tool {
	s := u.OpenAPI
	at := s.nodes.section
	if k := s.nodes.overrides[it.OperationID]; k != nil {
		at = k
	}
	t := &Tool{Name: it.Name, Title: it.Title, Description: it.Description, Upstream: u,
		Method: it.Method, Path: it.Path, InputSchema: it.InputSchema, OutputSchema: it.OutputSchema,
		BodyEncoding: BodyEncoding(it.BodyEncoding), Fixed: it.Fixed, Pos: p.pos(at)}
	t.Annotations = Annotations{ReadOnly: it.ReadOnly, Destructive: it.Destructive, Idempotent: it.Idempotent, OpenWorld: it.OpenWorld}
	leaveOut := func(format string, args ...any) *Tool {
		s.Notes = append(s.Notes, it.OperationID+": left out: "+fmt.Sprintf(format, args...))
		return nil
	}
	if _, probs := parsePathTemplate(t.Path); len(probs) > 0 {
		return leaveOut("path %s: %s", t.Path, probs[0])
	}
	for _, prm := range it.Params {
		t.Params = append(t.Params, Param{Name: prm.Name, In: ParamIn(prm.In), WireName: prm.WireName, Required: prm.Required, Deep: prm.Deep})
		if prm.In == openapi.InHeader && (!isToken(prm.WireName) || argumentHeaders[strings.ToLower(prm.WireName)]) {
			return leaveOut("header parameter %q cannot be sent", prm.WireName)
		}
		if prm.In == openapi.InCookie && !isToken(prm.WireName) {
			return leaveOut("cookie parameter %q is not a valid cookie name", prm.WireName)
		}
	}
	schema, err := compileGenerated(sc, it.InputSchema)
	if err != nil {
		return leaveOut("input schema: %v", err)
	}
	t.args = schemaValidator{schema: schema}
	// Output schemas are not compiled here: nothing validates against
	// them at run time, the import always makes them type object, and
	// compiling them would double the load time of a large document
	// (openapi's tests compile every one of the large documents').
	p.annotations(t, nil, "")
	return t
}

// compileGenerated compiles a schema the import generated.
func compileGenerated(sc *schemaCompiler, raw []byte) (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	sc.n++
	loc := "toolbus:///openapi/" + strconv.Itoa(sc.n) + ".json"
	if err := sc.c.AddResource(loc, doc); err != nil {
		return nil, err
	}
	s, err := sc.c.Compile(loc)
	if err != nil {
		return nil, errors.New(strings.ReplaceAll(err.Error(), loc, ""))
	}
	return s, nil
}

// openapiProblems places the import's problems on the options' nodes.
func (p *parser) openapiProblems(s *OpenAPISource, err error) {
	var ie *openapi.Error
	if !errors.As(err, &ie) {
		p.errorf(s.nodes.section, s.nodes.field, "%s: %v", s.Path, err)
		return
	}
	for _, pr := range ie.Problems {
		at, field := s.nodes.section, s.nodes.field
		switch {
		case pr.Override != "":
			field = joinField(field+".overrides", pr.Override)
			if k := s.nodes.overrides[pr.Override]; k != nil {
				at = k
			}
			if pr.Field != "" {
				parts := strings.SplitN(pr.Field, ".", 2)
				node := lookup(s.nodes.overrideVals[pr.Override], parts[0])
				field = joinField(field, parts[0])
				if len(parts) == 2 {
					if k, _ := lookupPair(node, parts[1]); k != nil {
						node = k
					}
					field = joinField(field, parts[1])
				}
				if node != nil {
					at = node
				}
			}
		case strings.HasPrefix(pr.Field, "select."):
			field = s.nodes.field + "." + pr.Field
			if list := s.nodes.selects[pr.Field]; list != nil {
				at = list
				for i, c := range list.Content {
					if deref(c).Value == pr.Value {
						at, field = c, fmt.Sprintf("%s[%d]", field, i)
						break
					}
				}
			}
		}
		p.errorf(at, field, "%s", pr.Message)
	}
}
