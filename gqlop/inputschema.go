package gqlop

import (
	"fmt"
	"slices"
	"strings"

	"github.com/vektah/gqlparser/v2/ast"
)

// maxInputDepth bounds how many input objects deep InputSchema describes.
const maxInputDepth = 6

// maxInputRepeat bounds how often one input type is described along one
// path, so that recursive types (a filter with and/or/not) end early: with
// three recursive fields, depth alone would describe 3^6 copies.
const maxInputRepeat = 2

// InputSchema returns the JSON Schema of the operation's variables: the tool's
// input. Variables are properties; a non-null variable without a default is
// required; nullable ones also accept null; defaults, enum values and the
// schema's descriptions are kept; custom scalars are strings. The result is a
// fresh map on each call, and encodes to the same JSON every time.
func (o *Operation) InputSchema() map[string]any {
	props := make(map[string]any, len(o.op.VariableDefinitions))
	required := []string{}
	for _, v := range o.op.VariableDefinitions {
		p := o.inputType(v.Type, map[string]int{}, 0)
		describe(p, v.Description)
		setDefault(p, v.DefaultValue)
		if v.Type.NonNull && v.DefaultValue == nil {
			required = append(required, v.Variable)
		}
		props[v.Variable] = p
	}
	s := map[string]any{
		"type":                 "object",
		"properties":           props,
		"additionalProperties": false,
	}
	if len(required) > 0 {
		slices.Sort(required)
		s["required"] = required
	}
	return s
}

func (o *Operation) inputType(t *ast.Type, seen map[string]int, depth int) map[string]any {
	var s map[string]any
	if t.Elem != nil {
		s = map[string]any{"type": "array", "items": o.inputType(t.Elem, seen, depth)}
	} else {
		s = o.inputNamed(o.schema.ast.Types[t.NamedType], seen, depth)
	}
	if !t.NonNull {
		allowNull(s)
	}
	return s
}

func (o *Operation) inputNamed(def *ast.Definition, seen map[string]int, depth int) map[string]any {
	if def == nil { // validation guarantees the type exists; stay permissive anyway
		return map[string]any{}
	}
	var s map[string]any
	switch def.Kind {
	case ast.Scalar:
		s = scalarSchema(def)
		if _, ok := s["type"]; !ok {
			s["type"] = "string"
			if d := strings.TrimSpace(def.Description); d != "" {
				s["description"] = "custom scalar " + def.Name + ": pass its string form. " + d
			} else {
				s["description"] = "custom scalar " + def.Name + ": pass its string form"
			}
			return s
		}
	case ast.Enum:
		s = map[string]any{"type": "string", "enum": enumValues(def)}
		describe(s, enumValueDocs(def))
	case ast.InputObject:
		switch {
		case seen[def.Name] >= maxInputRepeat:
			return map[string]any{
				"type": "object",
				"description": fmt.Sprintf("%s again, as described above; nested this deep its fields are not repeated here, but the upstream checks them",
					def.Name),
			}
		case depth >= maxInputDepth:
			return map[string]any{
				"type": "object",
				"description": fmt.Sprintf("%s nested deeper than %d levels: its fields are not described here, but the upstream checks them",
					def.Name, maxInputDepth),
			}
		}
		seen[def.Name]++
		s = o.inputObject(def, seen, depth+1)
		seen[def.Name]--
	default:
		s = map[string]any{}
	}
	if !def.BuiltIn {
		describe(s, def.Description)
	}
	return s
}

func (o *Operation) inputObject(def *ast.Definition, seen map[string]int, depth int) map[string]any {
	props := make(map[string]any, len(def.Fields))
	required := []string{}
	for _, f := range def.Fields {
		p := o.inputType(f.Type, seen, depth)
		describe(p, f.Description)
		setDefault(p, f.DefaultValue)
		if f.Type.NonNull && f.DefaultValue == nil {
			required = append(required, f.Name)
		}
		props[f.Name] = p
	}
	s := map[string]any{
		"type":                 "object",
		"properties":           props,
		"additionalProperties": false,
	}
	if len(required) > 0 {
		slices.Sort(required)
		s["required"] = required
	}
	if def.Directives.ForName("oneOf") != nil {
		s["minProperties"] = 1
		s["maxProperties"] = 1
	}
	return s
}

// scalarSchema maps the built-in scalars; custom scalars get no type.
func scalarSchema(def *ast.Definition) map[string]any {
	switch def.Name {
	case "Int":
		return map[string]any{"type": "integer"}
	case "Float":
		return map[string]any{"type": "number"}
	case "String", "ID":
		return map[string]any{"type": "string"}
	case "Boolean":
		return map[string]any{"type": "boolean"}
	}
	return map[string]any{}
}

func enumValues(def *ast.Definition) []any {
	vals := make([]any, len(def.EnumValues))
	for i, v := range def.EnumValues {
		vals[i] = v.Name
	}
	return vals
}

// enumValueDocs lists the documented values of an enum, one a line, so a
// model can choose among them.
func enumValueDocs(def *ast.Definition) string {
	var b strings.Builder
	for _, v := range def.EnumValues {
		if d := strings.TrimSpace(v.Description); d != "" {
			if b.Len() > 0 {
				b.WriteByte('\n')
			}
			b.WriteString(v.Name + ": " + d)
		}
	}
	return b.String()
}

// allowNull widens s to accept null: "type": "string" becomes ["string",
// "null"], an enum gains null, an anyOf gains a null branch.
func allowNull(s map[string]any) {
	switch t := s["type"].(type) {
	case string:
		s["type"] = []string{t, "null"}
	case nil:
		if alts, ok := s["anyOf"].([]any); ok {
			s["anyOf"] = append(alts, map[string]any{"type": "null"})
		}
	}
	if e, ok := s["enum"].([]any); ok {
		s["enum"] = append(e, nil)
	}
}

// describe puts text ahead of the description s already has: the more
// specific text (a field's or variable's) comes first, the type's after.
func describe(s map[string]any, text string) {
	text = strings.TrimSpace(text)
	if text == "" {
		return
	}
	if old, ok := s["description"].(string); ok && old != "" {
		text += "\n" + old
	}
	s["description"] = text
}

func setDefault(s map[string]any, v *ast.Value) {
	if v == nil {
		return
	}
	val, err := v.Value(nil)
	if err != nil { // validation checked the literal; skip rather than guess
		return
	}
	s["default"] = val
}
