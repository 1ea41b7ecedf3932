package catalog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/toolbus/toolbus/gqlop"
)

// Defaults and limits of GraphQL pagination.
const (
	DefaultMaxPages = 10
	MaxMaxPages     = 1000
	MaxMaxItems     = 100_000
)

// GraphQLUpstream says where a graphql upstream's schema comes from, and
// holds it once loaded.
type GraphQLUpstream struct {
	// Schema is the schema every operation was validated against. It is nil
	// only while an introspected schema has no cache yet: such an upstream
	// is listed by PendingGraphQLSchemas and its tools are left out until
	// ResolveGraphQLSchemas fetches it.
	Schema *gqlop.Schema
	// SchemaFile is the SDL file the schema was read from (schema.file).
	SchemaFile string
	// Introspect is set when the schema comes from introspecting the
	// endpoint (schema.introspect: true).
	Introspect bool
	// Cache is the SDL file that keeps the introspected schema
	// (schema.cache), resolved against the catalog's directory; empty when
	// the schema is not cached.
	Cache string
}

// PaginationMode says how a paginated GraphQL tool walks its connection.
type PaginationMode string

// Pagination modes.
const (
	// PaginateFollow requests page after page and merges them, up to the
	// tool's limits.
	PaginateFollow PaginationMode = "follow"
	// PaginateCursor returns one page and, when there is more, the cursor
	// the model passes back to get the next one.
	PaginateCursor PaginationMode = "cursor"
)

// Pagination is how a GraphQL tool walks a Relay connection.
type Pagination struct {
	Connection gqlop.Connection
	Mode       PaginationMode
	// MaxPages bounds the pages requested by one call (follow mode).
	MaxPages int
	// MaxItems stops requesting pages once this many edges or nodes were
	// collected; 0 means no limit but MaxPages. Pages are kept whole so the
	// cursor to continue from stays exact.
	MaxItems int
}

// CursorVariable is the variable the cursor is passed in.
func (p *Pagination) CursorVariable() string {
	if p.Connection.CursorVariable == "" {
		return "after"
	}
	return p.Connection.CursorVariable
}

// GraphQLTool is the GraphQL side of a tool on a graphql upstream.
type GraphQLTool struct {
	// Operation is the validated query or mutation sent upstream.
	Operation *gqlop.Operation
	// Pagination is set when the tool walks a Relay connection.
	Pagination *Pagination
	// PayloadErrors is the response path of the mutation payload whose
	// userErrors (or errors) list turns a successful answer into a tool
	// error; empty when the catalog marks none.
	PayloadErrors string
}

var graphqlToolFields = []string{"operation", "operation_file", "operation_name", "pagination", "payload_errors"}

// restOnlyToolFields describe an HTTP request; a GraphQL operation
// determines all of them.
var restOnlyToolFields = []string{"method", "path", "input_schema", "params", "output_schema"}

// WithFS reads the files a catalog references by relative path (GraphQL
// schemas and operations) from fsys instead of the catalog's directory: for
// catalogs embedded in a binary. fsys is rooted at the catalog's directory.
// A nil fsys changes nothing.
func WithFS(fsys fs.FS) Option {
	return func(o *options) {
		if fsys != nil {
			o.fsys = fsys
		}
	}
}

// withGraphQLSchemas supplies introspected schemas by upstream name; used
// by ResolveGraphQLSchemas when the schema could not be cached.
func withGraphQLSchemas(m map[string]*gqlop.Schema) Option {
	return func(o *options) { o.schemas = m }
}

// PendingGraphQLSchemas lists, sorted, the graphql upstreams whose schema is
// to be introspected and has no cache yet. Their tools are not in the
// catalog until ResolveGraphQLSchemas has fetched the schemas.
func (c *Catalog) PendingGraphQLSchemas() []string {
	var out []string
	for name, u := range c.Upstreams {
		if u.GraphQL != nil && u.GraphQL.Schema == nil {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// ResolveGraphQLSchemas introspects the endpoint of every upstream listed
// by PendingGraphQLSchemas (with the upstream's headers, through hc, or
// http.DefaultClient when hc is nil), writes each schema to its cache file
// when one is configured, and returns the catalog loaded again with those
// schemas, its operations validated. It returns c itself when nothing is
// pending. It is the one place where the catalog package talks to the
// network; Load and Parse never do. Services call it once at start-up.
//
// An upstream whose headers were not resolved (the catalog was loaded
// without SecretsGraphQLIntrospection, see WithSecrets) is not introspected
// and stays pending: such a process serves no tools, and an empty
// credential is never sent.
func ResolveGraphQLSchemas(ctx context.Context, c *Catalog, hc *http.Client) (*Catalog, error) {
	var pending []string
	for _, name := range c.PendingGraphQLSchemas() {
		if headersResolved(c.Upstreams[name]) {
			pending = append(pending, name)
		}
	}
	if len(pending) == 0 {
		return c, nil
	}
	schemas := map[string]*gqlop.Schema{}
	for _, name := range pending {
		u := c.Upstreams[name]
		header := http.Header{}
		for _, h := range u.Headers {
			header.Set(h.Name, h.Value.Reveal())
		}
		s, err := gqlop.Introspect(ctx, hc, u.BaseURL.String(), header)
		if err != nil {
			return nil, fmt.Errorf("catalog: schema of upstream %s: %w", name, err)
		}
		if u.GraphQL.Cache != "" {
			if err := writeFileAtomic(u.GraphQL.Cache, []byte(s.SDL())); err != nil {
				return nil, fmt.Errorf("catalog: caching the schema of upstream %s: %w", name, err)
			}
		}
		schemas[name] = s
	}
	opts := append(slices.Clip(c.opts), withGraphQLSchemas(schemas))
	return Parse(c.File, c.src, opts...)
}

func writeFileAtomic(name string, data []byte) error {
	dir := filepath.Dir(name)
	f, err := os.CreateTemp(dir, ".schema-*.graphql")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, werr := f.Write(data)
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, name); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// graphqlUpstream finishes a graphql upstream after its fields were read:
// the schema is required, endpoint and base_url are one field.
func (p *parser) graphqlUpstream(u *Upstream, ms members, key *yaml.Node, field string) {
	sn := ms.get("schema")
	if u.Kind != KindGraphQL {
		for _, f := range []string{"schema", "endpoint"} {
			if k := ms.key(f); k != nil && !(f == "endpoint" && u.Kind == KindSOAP) {
				p.errorf(k, field+"."+f, "only graphql upstreams have %s (this upstream is of kind %s)", f, u.Kind)
			}
		}
		return
	}
	if ms.get("endpoint") != nil && ms.get("base_url") != nil {
		p.errorf(ms.key("base_url"), field+".base_url", "set endpoint or base_url, not both: they are the same URL for a graphql upstream")
	}
	if sn == nil {
		p.errorf(key, field+".schema", "required field is missing: give schema: {file: schema.graphql} or schema: {introspect: true, cache: schema.graphql}")
		return
	}
	u.GraphQL = p.graphqlSchema(u.Name, sn, field+".schema")
}

func (p *parser) graphqlSchema(upstream string, n *yaml.Node, field string) *GraphQLUpstream {
	ms, ok := p.mapping(n, field, []string{"file", "introspect", "cache"})
	if !ok {
		return nil
	}
	g := &GraphQLUpstream{}
	fileNode, introNode, cacheNode := ms.get("file"), ms.get("introspect"), ms.get("cache")
	if introNode != nil {
		g.Introspect, _ = p.boolean(introNode, field+".introspect")
	}
	switch {
	case fileNode != nil && g.Introspect:
		p.errorf(n, field, "give file or introspect: true, not both")
		return nil
	case fileNode == nil && !g.Introspect:
		p.errorf(n, field, "give file: schema.graphql (SDL) or introspect: true")
		return nil
	case fileNode != nil && cacheNode != nil:
		p.errorf(ms.key("cache"), field+".cache", "cache is for introspected schemas; a schema file needs none")
		return nil
	}
	if fileNode != nil {
		name, ok := p.str(fileNode, field+".file")
		if !ok {
			return nil
		}
		display, data, ok := p.readRef(fileNode, field+".file", name)
		if !ok {
			return nil
		}
		g.SchemaFile = display
		g.Schema = p.loadSDL(fileNode, field+".file", display, data)
		if g.Schema == nil {
			return nil
		}
		return g
	}
	if s := p.opts.schemas[upstream]; s != nil {
		g.Schema = s
	}
	if cacheNode != nil {
		name, ok := p.str(cacheNode, field+".cache")
		if !ok {
			return nil
		}
		if p.opts.fsys != nil {
			p.errorf(cacheNode, field+".cache", "an embedded catalog cannot keep a schema cache; use schema.file")
			return nil
		}
		if name == "" {
			p.errorf(cacheNode, field+".cache", "must not be empty")
			return nil
		}
		g.Cache = p.localPath(name)
		if g.Schema != nil {
			return g
		}
		data, err := p.opts.readFile(g.Cache)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return g // pending: ResolveGraphQLSchemas introspects and writes the cache
		case err != nil:
			p.errorf(cacheNode, field+".cache", "cannot read %s: %v", g.Cache, err)
			return nil
		}
		g.Schema = p.loadSDL(cacheNode, field+".cache", g.Cache, data)
		if g.Schema == nil {
			return nil
		}
	}
	return g
}

func (p *parser) loadSDL(n *yaml.Node, field, display string, data []byte) *gqlop.Schema {
	s, err := gqlop.LoadSDL(display, string(data))
	if err != nil {
		p.gqlErrors(err, field, func(e *gqlop.Error) Pos {
			if e.Line == 0 {
				return p.pos(n)
			}
			return Pos{File: e.File, Line: e.Line, Col: e.Column}
		})
		return nil
	}
	return s
}

// localPath resolves a relative reference against the catalog's directory.
func (p *parser) localPath(name string) string {
	if filepath.IsAbs(name) {
		return name
	}
	return filepath.Join(filepath.Dir(p.file), name)
}

// readRef reads a file the catalog references. display is the name used in
// messages (and in gqlop errors).
func (p *parser) readRef(n *yaml.Node, field, name string) (display string, data []byte, ok bool) {
	if name == "" {
		p.errorf(n, field, "must not be empty")
		return "", nil, false
	}
	if p.opts.fsys != nil {
		clean := path.Clean(filepath.ToSlash(name))
		if !fs.ValidPath(clean) {
			p.errorf(n, field, "%q must be a relative path inside the catalog's directory (the catalog is embedded)", name)
			return "", nil, false
		}
		display = filepath.Join(filepath.Dir(p.file), clean)
		data, err := fs.ReadFile(p.opts.fsys, clean)
		if err != nil {
			p.errorf(n, field, "cannot read %s: %v", display, errors.Unwrap(err))
			return "", nil, false
		}
		return display, data, true
	}
	display = p.localPath(name)
	data, err := p.opts.readFile(display)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			p.errorf(n, field, "file %s does not exist (relative paths start at the catalog's directory)", display)
		} else {
			p.errorf(n, field, "cannot read %s: %v", display, err)
		}
		return "", nil, false
	}
	return display, data, true
}

// gqlErrors reports gqlop errors as problems at the positions where maps
// them to.
func (p *parser) gqlErrors(err error, field string, where func(*gqlop.Error) Pos) {
	var list gqlop.Errors
	if !errors.As(err, &list) {
		p.problems = append(p.problems, Problem{Pos: where(&gqlop.Error{}), Field: field, Message: err.Error()})
		return
	}
	for _, e := range list {
		pos := where(e) // may add to the message
		msg := e.Message
		if e.Rule != "" {
			msg += " (rule: " + e.Rule + ")"
		}
		p.problems = append(p.problems, Problem{Pos: pos, Field: field, Message: msg})
	}
}

// isGraphQLTool tells a GraphQL tool by its operation: the upstream's kind
// could be unknown when the upstream itself is invalid.
func isGraphQLTool(ms members) bool {
	return ms.get("operation") != nil || ms.get("operation_file") != nil
}

// graphqlTool reads the GraphQL fields of tool t: parses and validates the
// operation against its upstream's schema and derives the input and output
// schemas. pending reports a tool whose upstream's schema is still to be
// introspected: it is checked again then.
func (p *parser) graphqlTool(t *Tool, ms members, n *yaml.Node, field string, sc *schemaCompiler) (pending bool) {
	for _, f := range restOnlyToolFields {
		if k := ms.key(f); k != nil {
			p.errorf(k, field+"."+f, "a GraphQL tool has no %s: its operation defines the request, arguments and result", f)
		}
	}
	opNode, fileNode := ms.get("operation"), ms.get("operation_file")
	if opNode != nil && fileNode != nil {
		p.errorf(ms.key("operation_file"), field+".operation_file", "give operation or operation_file, not both")
		return false
	}
	var opName string
	if nn := ms.get("operation_name"); nn != nil {
		opName, _ = p.str(nn, field+".operation_name")
	}
	u := t.Upstream
	if u == nil || u.GraphQL == nil {
		return false // the upstream's own problem is reported already
	}
	if u.GraphQL.Schema == nil {
		return true
	}

	var op *gqlop.Operation
	var err error
	var where func(*gqlop.Error) Pos
	opField := field + ".operation"
	if opNode != nil {
		src, ok := p.str(opNode, opField)
		if !ok {
			return false
		}
		where = p.inlinePositions(opNode)
		op, err = gqlop.ParseOperation(u.GraphQL.Schema, p.file, src, opName)
	} else {
		opField = field + ".operation_file"
		name, ok := p.str(fileNode, opField)
		if !ok {
			return false
		}
		display, data, ok := p.readRef(fileNode, opField, name)
		if !ok {
			return false
		}
		where = func(e *gqlop.Error) Pos {
			if e.Line == 0 {
				return p.pos(fileNode)
			}
			return Pos{File: e.File, Line: e.Line, Col: e.Column}
		}
		op, err = gqlop.ParseOperation(u.GraphQL.Schema, display, string(data), opName)
	}
	if err != nil {
		p.gqlErrors(err, opField, where)
		return false
	}

	g := &GraphQLTool{Operation: op}
	t.GraphQL = g
	if t.Description == "" {
		if d := strings.TrimSpace(op.Description()); d != "" {
			t.Description = d
		} else {
			p.errorf(n, field+".description", "required field is missing (the operation has no description string to use instead)")
		}
	}

	in, err := json.Marshal(op.InputSchema())
	if err != nil {
		p.errorf(n, field, "input schema: %v", err)
		return false
	}
	t.InputSchema = in
	if s := p.compileSchema(sc, in, n, field+" (input schema from the operation's variables)"); s != nil {
		t.args = schemaValidator{schema: s}
	}
	outSchema := op.OutputSchema()
	if out, err := json.Marshal(outSchema); err == nil {
		t.OutputSchema = out
	}
	if pn := ms.get("pagination"); pn != nil && !isNull(pn) {
		g.Pagination = p.pagination(op, pn, field+".pagination")
	}
	if en := ms.get("payload_errors"); en != nil && !isNull(en) {
		g.PayloadErrors = p.payloadErrors(op, outSchema, en, field+".payload_errors")
	}
	return false
}

// inlinePositions maps a position inside an operation written in the
// catalog to the catalog file. A literal block (|) keeps lines and columns
// exactly; a one-line scalar keeps columns; other styles fold lines, so the
// operation's own line and column are quoted instead.
func (p *parser) inlinePositions(n *yaml.Node) func(*gqlop.Error) Pos {
	at := p.pos(n)
	switch {
	case n.Style&yaml.LiteralStyle != 0:
		indent := p.blockIndent(n.Line)
		return func(e *gqlop.Error) Pos {
			if e.Line == 0 {
				return at
			}
			return Pos{File: p.file, Line: n.Line + e.Line, Col: indent + e.Column}
		}
	case !strings.Contains(n.Value, "\n") && n.Style&yaml.FoldedStyle == 0:
		shift := 0
		if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 {
			shift = 1
		}
		return func(e *gqlop.Error) Pos {
			if e.Line != 1 {
				return at
			}
			return Pos{File: p.file, Line: n.Line, Col: n.Column + shift + e.Column - 1}
		}
	}
	return func(e *gqlop.Error) Pos {
		if e.Line > 0 {
			e.Message += fmt.Sprintf(" (at line %d, column %d of the operation)", e.Line, e.Column)
		}
		return at
	}
}

// blockIndent is the indentation of a block scalar whose indicator is on
// line (1-based): that of its first non-blank content line.
func (p *parser) blockIndent(line int) int {
	lines := bytes.Split(p.src, []byte("\n"))
	for i := line; i < len(lines); i++ {
		l := bytes.TrimRight(lines[i], "\r")
		if len(bytes.TrimSpace(l)) == 0 {
			continue
		}
		return len(l) - len(bytes.TrimLeft(l, " "))
	}
	return 0
}

var paginationFields = []string{"connection", "cursor_variable", "mode", "max_pages", "max_items"}

func (p *parser) pagination(op *gqlop.Operation, n *yaml.Node, field string) *Pagination {
	ms, ok := p.mapping(n, field, paginationFields)
	if !ok {
		return nil
	}
	pg := &Pagination{Mode: PaginateFollow, MaxPages: DefaultMaxPages}
	before := len(p.problems)
	for _, f := range ms {
		ff := field + "." + f.name
		switch f.name {
		case "connection":
			pg.Connection.Path, _ = p.str(f.val, ff)
		case "cursor_variable":
			pg.Connection.CursorVariable, _ = p.str(f.val, ff)
		case "mode":
			if s, ok := p.str(f.val, ff); ok {
				switch m := PaginationMode(s); m {
				case PaginateFollow, PaginateCursor:
					pg.Mode = m
				default:
					p.errorf(f.val, ff, "unknown mode %q: want follow (request and merge pages) or cursor (return the cursor to the model)", s)
				}
			}
		case "max_pages":
			if v, ok := p.integer(f.val, ff); ok {
				if v < 1 || v > MaxMaxPages {
					p.errorf(f.val, ff, "must be between 1 and %d, got %d", MaxMaxPages, v)
				}
				pg.MaxPages = int(v)
			}
		case "max_items":
			if v, ok := p.integer(f.val, ff); ok {
				if v < 1 || v > MaxMaxItems {
					p.errorf(f.val, ff, "must be between 1 and %d, got %d", MaxMaxItems, v)
				}
				pg.MaxItems = int(v)
			}
		}
	}
	if ms.get("connection") == nil {
		p.errorf(n, field+".connection", "required field is missing: the response path of the Relay connection, such as customers")
	}
	if len(p.problems) > before {
		return nil
	}
	if op.Kind() != gqlop.KindQuery {
		p.errorf(n, field, "only queries can be paginated; %s is a mutation", opDisplayName(op))
		return nil
	}
	if err := op.CheckConnection(pg.Connection); err != nil {
		at := ms.get("connection")
		p.gqlErrors(err, field+".connection", func(*gqlop.Error) Pos { return p.pos(at) })
		return nil
	}
	return pg
}

func opDisplayName(op *gqlop.Operation) string {
	if op.Name() == "" {
		return "the operation"
	}
	return "operation " + op.Name()
}

// payloadErrors checks that path names, in the operation's result, a
// mutation payload that selects userErrors or errors, or that list itself,
// and returns the payload's path.
func (p *parser) payloadErrors(op *gqlop.Operation, out map[string]any, n *yaml.Node, field string) string {
	s, ok := p.str(n, field)
	if !ok {
		return ""
	}
	keys := strings.Split(s, ".")
	if slices.Contains(keys, "") {
		p.errorf(n, field, "%q is not a response path such as createCustomer or createCustomer.userErrors", s)
		return ""
	}
	if last := keys[len(keys)-1]; len(keys) > 1 && (last == "userErrors" || last == "errors") {
		keys = keys[:len(keys)-1]
	}
	cur := out
	for i, k := range keys {
		props, _ := cur["properties"].(map[string]any)
		next, ok := props[k].(map[string]any)
		if !ok {
			p.errorf(n, field, "%s selects no field %q at %s", opDisplayName(op), k, strings.Join(append([]string{"data"}, keys[:i]...), "."))
			return ""
		}
		cur = next
	}
	props, _ := cur["properties"].(map[string]any)
	if props["userErrors"] == nil && props["errors"] == nil {
		p.errorf(n, field, "%s must select userErrors { field message } (or errors) under %s", opDisplayName(op), strings.Join(keys, "."))
		return ""
	}
	return strings.Join(keys, ".")
}

// headersResolved reports whether every header of u can be sent.
func headersResolved(u *Upstream) bool {
	for _, h := range u.Headers {
		if !h.Value.Resolved() {
			return false
		}
	}
	return true
}
