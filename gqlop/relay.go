package gqlop

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/vektah/gqlparser/v2/ast"
)

// Connection names the Relay connection that a paginated tool walks.
type Connection struct {
	// Path is the dotted response path of the connection field in data, for
	// example "customers" or "viewer.repositories" (aliases, not field
	// names, when the operation aliases them).
	Path string
	// CursorVariable is the variable passed as the connection's cursor
	// argument; "after" when empty.
	CursorVariable string
}

func (c Connection) cursorVariable() string {
	if c.CursorVariable == "" {
		return "after"
	}
	return c.CursorVariable
}

// CheckConnection verifies at load time that the operation can be paginated
// along c: every key of c.Path is selected and is not a list, the connection
// selects pageInfo { hasNextPage endCursor } and edges or nodes, and the
// cursor variable is declared, optional, and passed to the connection field.
// Errors are Errors located at the offending field, with rule RelayConnection.
func (o *Operation) CheckConnection(c Connection) error {
	fail := func(pos *ast.Position, format string, args ...any) error {
		e := &Error{File: o.file, Message: fmt.Sprintf("pagination along %q: ", c.Path) + fmt.Sprintf(format, args...), Rule: "RelayConnection"}
		if pos != nil {
			e.Line, e.Column = pos.Line, pos.Column
		}
		return Errors{e}
	}
	keys, err := splitPath(c.Path)
	if err != nil || len(keys) == 0 {
		return fail(o.op.Position, "the connection path is empty or malformed")
	}
	typ := o.rootType()
	sets := []ast.SelectionSet{o.op.SelectionSet}
	pos := o.op.Position
	var conn *selected
	for _, k := range keys {
		conn = findKey(o.collect(typ, sets), k)
		if conn == nil {
			return fail(pos, "%s selects no field %q", typ.Name, k)
		}
		f := conn.fields[0]
		pos = f.Position
		if f.Definition == nil || f.Definition.Type.Elem != nil {
			return fail(pos, "field %q is a list or unknown; a connection path cannot go through lists", k)
		}
		typ = o.schema.ast.Types[f.Definition.Type.NamedType]
		if typ == nil {
			return fail(pos, "type of field %q is unknown", k)
		}
		sets = sets[:0:0]
		for _, f := range conn.fields {
			sets = append(sets, f.SelectionSet)
		}
	}
	fields := o.collect(typ, sets)
	pageInfo := findKey(fields, "pageInfo")
	if pageInfo == nil {
		return fail(pos, "the connection must select pageInfo { hasNextPage endCursor }")
	}
	var piSets []ast.SelectionSet
	for _, f := range pageInfo.fields {
		piSets = append(piSets, f.SelectionSet)
	}
	if def := pageInfo.fields[0].Definition; def != nil {
		if piType := o.schema.ast.Types[def.Type.Name()]; piType != nil {
			pi := o.collect(piType, piSets)
			for _, want := range []string{"hasNextPage", "endCursor"} {
				if findKey(pi, want) == nil {
					return fail(pageInfo.fields[0].Position, "pageInfo must select %s (it selects hasNextPage and endCursor to page on)", want)
				}
			}
		}
	}
	if findKey(fields, "edges") == nil && findKey(fields, "nodes") == nil {
		return fail(pos, "the connection selects neither edges nor nodes, so pages have nothing to merge")
	}
	name := c.cursorVariable()
	v := o.op.VariableDefinitions.ForName(name)
	if v == nil {
		return fail(o.op.Position, "the operation declares no $%s variable for the cursor", name)
	}
	if v.Type.NonNull && v.DefaultValue == nil {
		return fail(v.Position, "$%s must be optional (nullable): the first page has no cursor", name)
	}
	for _, f := range conn.fields {
		for _, a := range f.Arguments {
			if a.Value != nil && a.Value.Kind == ast.Variable && a.Value.Raw == name {
				return nil
			}
		}
	}
	return fail(pos, "$%s is not passed to the connection field (for example %s(after: $%s))", name, keys[len(keys)-1], name)
}

func findKey(list []*selected, key string) *selected {
	for _, e := range list {
		if e.key == key {
			return e
		}
	}
	return nil
}

type pageInfo struct {
	HasNextPage *bool   `json:"hasNextPage"`
	EndCursor   *string `json:"endCursor"`
}

// NextCursor reads the connection at path in data (the response's data
// object) and returns the cursor of the next page and whether there is one.
func NextCursor(data json.RawMessage, path string) (cursor string, hasNext bool, err error) {
	raw, err := lookup(data, path)
	if err != nil {
		return "", false, fmt.Errorf("next cursor: %w", err)
	}
	conn, err := object(raw, "connection "+path)
	if err != nil {
		return "", false, fmt.Errorf("next cursor: %w", err)
	}
	piRaw, ok := conn["pageInfo"]
	if !ok || isNull(piRaw) {
		return "", false, fmt.Errorf("next cursor: connection %s has no pageInfo", path)
	}
	var pi pageInfo
	if err := json.Unmarshal(piRaw, &pi); err != nil {
		return "", false, fmt.Errorf("next cursor: pageInfo of %s: %w", path, err)
	}
	if pi.HasNextPage == nil {
		return "", false, fmt.Errorf("next cursor: pageInfo of %s has no hasNextPage", path)
	}
	if !*pi.HasNextPage {
		return "", false, nil
	}
	if pi.EndCursor == nil || *pi.EndCursor == "" {
		return "", false, fmt.Errorf("next cursor: pageInfo of %s says hasNextPage but gives no endCursor", path)
	}
	return *pi.EndCursor, true, nil
}

// MergePages joins the data objects of successive pages into one: the first
// page's data with the connection at path holding the edges and nodes of all
// pages in order, and the last page's pageInfo. Other fields keep the first
// page's values.
func MergePages(pages []json.RawMessage, path string) (json.RawMessage, error) {
	if len(pages) == 0 {
		return nil, errors.New("merge pages: no page to merge")
	}
	keys, err := splitPath(path)
	if err != nil {
		return nil, fmt.Errorf("merge pages: %w", err)
	}
	if len(keys) == 0 {
		return nil, errors.New("merge pages: the connection path is empty")
	}
	var merged map[string]json.RawMessage
	lists := map[string][]json.RawMessage{}
	for i, page := range pages {
		raw, err := lookup(page, path)
		if err != nil {
			return nil, fmt.Errorf("merge pages: page %d: %w", i+1, err)
		}
		conn, err := object(raw, "connection "+path)
		if err != nil {
			return nil, fmt.Errorf("merge pages: page %d: %w", i+1, err)
		}
		if i == 0 {
			merged = conn
		}
		for _, k := range []string{"edges", "nodes"} {
			v, ok := conn[k]
			if !ok || isNull(v) {
				continue
			}
			var items []json.RawMessage
			if err := json.Unmarshal(v, &items); err != nil {
				return nil, fmt.Errorf("merge pages: page %d: %s.%s is not a list: %w", i+1, path, k, err)
			}
			lists[k] = append(lists[k], items...)
		}
		if pi, ok := conn["pageInfo"]; ok {
			merged["pageInfo"] = pi
		}
	}
	for k, items := range lists {
		if items == nil {
			items = []json.RawMessage{}
		}
		b, err := json.Marshal(items)
		if err != nil {
			return nil, fmt.Errorf("merge pages: %w", err)
		}
		merged[k] = b
	}
	conn, err := json.Marshal(merged)
	if err != nil {
		return nil, fmt.Errorf("merge pages: %w", err)
	}
	out, err := replace(pages[0], keys, conn)
	if err != nil {
		return nil, fmt.Errorf("merge pages: %w", err)
	}
	return out, nil
}
