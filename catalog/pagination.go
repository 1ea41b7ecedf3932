package catalog

import (
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// PageStyle is how a REST API asks for the next page.
type PageStyle string

// Page styles of REST pagination.
const (
	// StyleCursor sends the previous answer's cursor (next_cursor_path) in
	// a query parameter (cursor_param).
	StyleCursor PageStyle = "cursor"
	// StylePage counts pages (page_param) of per_page_param items.
	StylePage PageStyle = "page"
	// StyleOffset skips offset_param items, limit_param at a time.
	StyleOffset PageStyle = "offset"
	// StyleLink follows the RFC 8288 Link header's rel="next" URL.
	StyleLink PageStyle = "link"
)

// RESTPagination is how a REST tool walks a paginated list (catalog field
// pagination on a REST tool). Page parameters always go in the query.
type RESTPagination struct {
	Style PageStyle
	Mode  PaginationMode
	// CursorParam and NextCursorPath: style cursor.
	CursorParam    string
	NextCursorPath []string
	// PageParam, PerPageParam: style page (pages count from 1).
	PageParam, PerPageParam string
	// OffsetParam, LimitParam: style offset.
	OffsetParam, LimitParam string
	// ResultsPath is where the list is in each answer (dot path); empty
	// when the answer is the list itself.
	ResultsPath []string
	// MaxPages and MaxItems bound one call (follow mode).
	MaxPages, MaxItems int
	// CursorArgument is the argument added to the input schema in cursor
	// mode: the model passes back the opaque token Toolbus gave it.
	CursorArgument string
}

var restPaginationFields = []string{"style", "mode", "cursor_param", "next_cursor_path", "page_param", "per_page_param",
	"offset_param", "limit_param", "results_path", "max_pages", "max_items", "cursor_argument"}

// restPagination parses a REST tool's pagination. It returns the input
// schema node to use: in cursor mode a copy with the cursor argument added.
func (p *parser) restPagination(t *Tool, n *yaml.Node, schema *yaml.Node, field string) *yaml.Node {
	ms, ok := p.mapping(n, field, restPaginationFields)
	if !ok {
		return schema
	}
	pg := &RESTPagination{Mode: PaginateFollow, MaxPages: DefaultMaxPages, CursorParam: "cursor",
		NextCursorPath: []string{"next_cursor"}, PageParam: "page", PerPageParam: "per_page",
		OffsetParam: "offset", LimitParam: "limit", CursorArgument: "cursor"}
	for _, f := range ms {
		ff := field + "." + f.name
		switch f.name {
		case "style":
			if s, ok := p.str(f.val, ff); ok {
				switch st := PageStyle(s); st {
				case StyleCursor, StylePage, StyleOffset, StyleLink:
					pg.Style = st
				default:
					p.errorf(f.val, ff, "unknown style %q: want cursor, page, offset or link", s)
				}
			}
		case "mode":
			if s, ok := p.str(f.val, ff); ok {
				switch m := PaginationMode(s); m {
				case PaginateFollow, PaginateCursor:
					pg.Mode = m
				default:
					p.errorf(f.val, ff, "unknown mode %q: want follow (request and merge pages) or cursor (return the cursor to the model)", s)
				}
			}
		case "cursor_param", "page_param", "per_page_param", "offset_param", "limit_param", "cursor_argument":
			s, ok := p.str(f.val, ff)
			if !ok {
				continue
			}
			if s == "" {
				p.errorf(f.val, ff, "must not be empty")
				continue
			}
			*map[string]*string{"cursor_param": &pg.CursorParam, "page_param": &pg.PageParam, "per_page_param": &pg.PerPageParam,
				"offset_param": &pg.OffsetParam, "limit_param": &pg.LimitParam, "cursor_argument": &pg.CursorArgument}[f.name] = s
		case "next_cursor_path", "results_path":
			if s, ok := p.str(f.val, ff); ok {
				var path []string
				if s = strings.TrimPrefix(s, "."); s != "" {
					path = strings.Split(s, ".")
				}
				if f.name == "results_path" {
					pg.ResultsPath = path
				} else {
					pg.NextCursorPath = path
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
	if ms.get("style") == nil {
		p.errorf(n, field+".style", "required field is missing: cursor, page, offset or link")
	}
	if pg.Style == StyleCursor && len(pg.NextCursorPath) == 0 {
		p.errorf(ms.key("next_cursor_path"), field+".next_cursor_path", "style cursor needs the answer's path of the next cursor")
	}
	if t.Method != "" && t.Method != "GET" {
		p.errorf(n, field, "only GET tools can be paginated (page parameters go in the query), not %s", t.Method)
	}
	t.Paging = pg
	if pg.Mode != PaginateCursor {
		return schema
	}
	return p.addCursorArgument(schema, pg.CursorArgument, n, field)
}

// addCursorArgument returns a copy of the input schema node with an
// optional string property for the model's continuation token. The copy
// keeps a schema shared through an anchor unchanged for other tools.
func (p *parser) addCursorArgument(schema *yaml.Node, name string, at *yaml.Node, field string) *yaml.Node {
	str := func(v string) *yaml.Node {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v, Line: at.Line, Column: at.Column}
	}
	prop := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: at.Line, Column: at.Column, Content: []*yaml.Node{
		str("type"), str("string"),
		str("description"), str("Continuation token from a previous call's MORE RESULTS note; leave out for the first page."),
	}}
	if schema == nil {
		return &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: at.Line, Column: at.Column, Content: []*yaml.Node{
			str("type"), str("object"),
			str("properties"), {Kind: yaml.MappingNode, Tag: "!!map", Line: at.Line, Column: at.Column, Content: []*yaml.Node{str(name), prop}},
		}}
	}
	schema = deref(schema)
	if schema.Kind != yaml.MappingNode {
		return schema // reported by inputSchema
	}
	cp := *schema
	cp.Content = append([]*yaml.Node(nil), schema.Content...)
	for i := 0; i+1 < len(cp.Content); i += 2 {
		if cp.Content[i].Value != "properties" {
			continue
		}
		props := *deref(cp.Content[i+1])
		for j := 0; j+1 < len(props.Content); j += 2 {
			if props.Content[j].Value == name {
				p.errorf(props.Content[j], field, "mode cursor adds the argument %s; rename the property or set cursor_argument", name)
				return schema
			}
		}
		props.Content = append(append([]*yaml.Node(nil), props.Content...), str(name), prop)
		cp.Content[i+1] = &props
		return &cp
	}
	cp.Content = append(cp.Content, str("properties"), &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: []*yaml.Node{str(name), prop}})
	return &cp
}

// Lookup returns the value at path in decoded JSON, and whether it exists.
func Lookup(v any, path []string) (any, bool) {
	for _, k := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[k]; !ok {
			return nil, false
		}
	}
	return v, true
}

// String describes the pagination for tool listings.
func (pg *RESTPagination) String() string {
	return fmt.Sprintf("%s/%s", pg.Style, pg.Mode)
}
