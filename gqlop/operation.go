package gqlop

import (
	"fmt"
	"slices"
	"strings"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/formatter"
	"github.com/vektah/gqlparser/v2/parser"
	"github.com/vektah/gqlparser/v2/validator"
)

// Kind is what an operation does upstream.
type Kind string

// The kinds of operation that can become tools. Subscriptions cannot.
const (
	KindQuery    Kind = "query"
	KindMutation Kind = "mutation"
)

// Operation is one validated GraphQL query or mutation, the body of one tool.
// It is immutable and safe for concurrent use.
type Operation struct {
	schema *Schema
	file   string
	op     *ast.OperationDefinition
	frags  ast.FragmentDefinitionList // the fragments op uses, in document order
	text   string
}

// ParseOperation parses src (read from file, used in messages), picks the
// operation called name (or the only one when name is empty) and validates
// the document against schema with the standard GraphQL rules. Fragments are
// allowed. Subscriptions are refused. Every error is an *Error in an Errors
// list, printed as "file:line:column: message (rule: RuleName)".
func ParseOperation(schema *Schema, file string, src string, name string) (*Operation, error) {
	if schema == nil {
		return nil, Errors{{File: file, Message: "no schema to validate the operation against"}}
	}
	doc, err := parser.ParseQuery(&ast.Source{Name: file, Input: src})
	if err != nil {
		return nil, fromGQL(file, err)
	}
	op, perr := pickOperation(doc, file, name)
	if perr != nil {
		return nil, Errors{perr}
	}
	if errs := validator.ValidateWithRules(schema.ast, doc, nil); len(errs) > 0 {
		return nil, fromGQL(file, errs)
	}
	o := &Operation{schema: schema, file: file, op: op, frags: usedFragments(doc, op)}
	o.text = o.format()
	return o, nil
}

func pickOperation(doc *ast.QueryDocument, file, name string) (*ast.OperationDefinition, *Error) {
	at := func(pos *ast.Position, rule, format string, args ...any) *Error {
		e := &Error{File: file, Message: fmt.Sprintf(format, args...), Rule: rule}
		if pos != nil {
			e.Line, e.Column = pos.Line, pos.Column
		}
		return e
	}
	var op *ast.OperationDefinition
	switch {
	case len(doc.Operations) == 0:
		return nil, at(nil, "SingleOperation", "the document has no operation; a tool needs one query or mutation")
	case name != "":
		op = doc.Operations.ForName(name)
		if op == nil {
			return nil, at(nil, "SingleOperation", "the document has no operation named %q; it has %s", name, opNames(doc.Operations))
		}
	case len(doc.Operations) > 1:
		return nil, at(doc.Operations[1].Position, "SingleOperation",
			"the document has %d operations (%s); a tool runs exactly one, so name the one to use",
			len(doc.Operations), opNames(doc.Operations))
	default:
		op = doc.Operations[0]
	}
	if op.Operation == ast.Subscription {
		return nil, at(op.Position, "NoSubscriptions",
			"subscriptions are not supported as tools: %s is a subscription; use a query or a mutation", opLabel(op))
	}
	return op, nil
}

func opLabel(op *ast.OperationDefinition) string {
	if op.Name == "" {
		return "the anonymous operation"
	}
	return "operation " + op.Name
}

func opNames(ops ast.OperationList) string {
	names := make([]string, len(ops))
	for i, op := range ops {
		names[i] = op.Name
		if names[i] == "" {
			names[i] = "<anonymous>"
		}
	}
	return strings.Join(names, ", ")
}

// usedFragments follows fragment spreads from op, transitively, so that the
// text sent upstream carries no fragment that only another operation needs
// (servers reject unused fragments).
func usedFragments(doc *ast.QueryDocument, op *ast.OperationDefinition) ast.FragmentDefinitionList {
	used := map[string]bool{}
	var walk func(ast.SelectionSet)
	walk = func(set ast.SelectionSet) {
		for _, sel := range set {
			switch s := sel.(type) {
			case *ast.Field:
				walk(s.SelectionSet)
			case *ast.InlineFragment:
				walk(s.SelectionSet)
			case *ast.FragmentSpread:
				if used[s.Name] {
					continue
				}
				used[s.Name] = true
				if f := doc.Fragments.ForName(s.Name); f != nil {
					walk(f.SelectionSet)
				}
			}
		}
	}
	walk(op.SelectionSet)
	var out ast.FragmentDefinitionList
	for _, f := range doc.Fragments {
		if used[f.Name] {
			out = append(out, f)
		}
	}
	return out
}

func (o *Operation) format() string {
	var b strings.Builder
	// Descriptions on executable definitions are recent in the spec and many
	// servers reject them; they serve the tool definition, not the upstream.
	formatter.NewFormatter(&b, formatter.WithIndent("  "), formatter.WithoutDescription()).FormatQueryDocument(&ast.QueryDocument{
		Operations: ast.OperationList{o.op},
		Fragments:  o.frags,
	})
	return b.String()
}

// Kind reports whether the operation is a query or a mutation. Mutations are
// not idempotent: retry them only with an idempotency key.
func (o *Operation) Kind() Kind {
	if o.op.Operation == ast.Mutation {
		return KindMutation
	}
	return KindQuery
}

// Name is the operation's name; empty for an anonymous operation. Send it as
// operationName.
func (o *Operation) Name() string { return o.op.Name }

// Description is the operation's description string, if the document has one.
func (o *Operation) Description() string { return o.op.Description }

// Text is the document to send: the operation and the fragments it uses.
func (o *Operation) Text() string { return o.text }

// File is the file name the operation was read from.
func (o *Operation) File() string { return o.file }

// Variables lists the operation's variable names in declaration order.
func (o *Operation) Variables() []string {
	out := make([]string, len(o.op.VariableDefinitions))
	for i, v := range o.op.VariableDefinitions {
		out[i] = v.Variable
	}
	return slices.Clip(out)
}
