package gqlop

import (
	"errors"
	"slices"
	"strconv"
	"strings"

	"github.com/vektah/gqlparser/v2/gqlerror"
)

// Error is one problem found in a schema or operation document, located in
// its file.
type Error struct {
	File    string
	Line    int // 1-based; 0 when unknown
	Column  int // 1-based; 0 when unknown
	Message string
	// Rule is the GraphQL validation rule that failed (for example
	// "FieldsOnCorrectType"), or a gqlop rule ("SingleOperation",
	// "NoSubscriptions", "RelayConnection"). It is empty for syntax errors.
	Rule string
}

// Error formats the problem as "file:line:column: message (rule: Rule)".
func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteByte(':')
	}
	if e.Line > 0 {
		b.WriteString(strconv.Itoa(e.Line))
		b.WriteByte(':')
		if e.Column > 0 {
			b.WriteString(strconv.Itoa(e.Column))
			b.WriteByte(':')
		}
	}
	if b.Len() > 0 {
		b.WriteByte(' ')
	}
	b.WriteString(e.Message)
	if e.Rule != "" {
		b.WriteString(" (rule: ")
		b.WriteString(e.Rule)
		b.WriteByte(')')
	}
	return b.String()
}

// Errors is every problem found in one document, in the order found. It is
// the error type ParseOperation and LoadSDL return; use errors.As to list them.
type Errors []*Error

// Error prints one problem per line.
func (l Errors) Error() string {
	lines := make([]string, len(l))
	for i, e := range l {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// fromGQL converts gqlparser errors, which keep the file in an extension and
// the rule name in a field their Error method does not print.
func fromGQL(file string, err error) Errors {
	var list gqlerror.List
	var one *gqlerror.Error
	switch {
	case errors.As(err, &list):
	case errors.As(err, &one):
		list = gqlerror.List{one}
	default:
		return Errors{{File: file, Message: err.Error()}}
	}
	out := make(Errors, 0, len(list))
	for _, g := range list {
		e := &Error{File: file, Message: g.Message, Rule: g.Rule}
		if f, ok := g.Extensions["file"].(string); ok && f != "" {
			e.File = f
		}
		if len(g.Locations) > 0 {
			e.Line, e.Column = g.Locations[0].Line, g.Locations[0].Column
		}
		out = append(out, e)
	}
	// gqlparser reports rule by rule; a reader wants the file top to bottom.
	slices.SortStableFunc(out, func(a, b *Error) int {
		if a.Line != b.Line {
			return a.Line - b.Line
		}
		return a.Column - b.Column
	})
	return out
}
