package gqlop

import (
	"encoding/json"
	"slices"
	"strings"

	"github.com/vektah/gqlparser/v2/ast"
)

// OutputSchema returns the JSON Schema of the response's data object for this
// operation: one property per selected field under its response name (alias),
// objects closed to other properties, lists, enums and nullability as the
// schema declares them. Fields from fragments are merged in. A field under
// @skip or @include, or only in a conditional fragment, is not required. An
// interface or union whose selection depends on the concrete type becomes an
// anyOf with one branch per distinct shape. Custom scalars are left
// unconstrained: their JSON form is the server's choice.
func (o *Operation) OutputSchema() map[string]any {
	root := o.rootType()
	if root == nil {
		return map[string]any{"type": "object"}
	}
	s := o.objectOut(root, []ast.SelectionSet{o.op.SelectionSet}, nil)
	delete(s, "description")
	return s
}

func (o *Operation) rootType() *ast.Definition {
	if o.op.Operation == ast.Mutation {
		return o.schema.ast.Mutation
	}
	return o.schema.ast.Query
}

// selected is one response key of a selection set seen from one concrete
// type: every field selected under that key, merged as the spec merges them.
type selected struct {
	key      string
	fields   []*ast.Field
	required bool // at least one occurrence is selected unconditionally
}

// collect gathers the fields that a value of type typ gets from sets, in
// first-seen order, following fragments whose type condition applies.
func (o *Operation) collect(typ *ast.Definition, sets []ast.SelectionSet) []*selected {
	var out []*selected
	index := map[string]*selected{}
	seen := map[string]bool{} // fragment spreads already followed on this path set
	var walk func(set ast.SelectionSet, conditional bool)
	walk = func(set ast.SelectionSet, conditional bool) {
		for _, sel := range set {
			switch s := sel.(type) {
			case *ast.Field:
				e := index[s.Alias]
				if e == nil {
					e = &selected{key: s.Alias}
					index[s.Alias] = e
					out = append(out, e)
				}
				e.fields = append(e.fields, s)
				if !conditional && !isConditional(s.Directives) {
					e.required = true
				}
			case *ast.InlineFragment:
				if s.TypeCondition == "" || o.applies(s.TypeCondition, typ) {
					walk(s.SelectionSet, conditional || isConditional(s.Directives))
				}
			case *ast.FragmentSpread:
				f := o.frags.ForName(s.Name)
				if f == nil || !o.applies(f.TypeCondition, typ) {
					continue
				}
				cond := conditional || isConditional(s.Directives)
				// A second spread of the same fragment adds no field, but may
				// make them unconditional.
				if seen[s.Name] && cond {
					continue
				}
				seen[s.Name] = true
				walk(f.SelectionSet, cond)
			}
		}
	}
	for _, set := range sets {
		walk(set, false)
	}
	return out
}

func isConditional(dirs ast.DirectiveList) bool {
	return dirs.ForName("skip") != nil || dirs.ForName("include") != nil
}

// applies reports whether a fragment on cond applies to values of type typ.
func (o *Operation) applies(cond string, typ *ast.Definition) bool {
	if cond == typ.Name {
		return true
	}
	c := o.schema.ast.Types[cond]
	if c == nil || !c.IsAbstractType() || typ.IsAbstractType() {
		return false
	}
	return slices.ContainsFunc(o.schema.ast.GetPossibleTypes(c), func(d *ast.Definition) bool {
		return d.Name == typ.Name
	})
}

// objectOut describes a value of the concrete type typ. typenames is what
// __typename may hold there: nil means typ's own name.
func (o *Operation) objectOut(typ *ast.Definition, sets []ast.SelectionSet, typenames []any) map[string]any {
	if typenames == nil {
		typenames = []any{typ.Name}
	}
	props := map[string]any{}
	required := []string{}
	for _, e := range o.collect(typ, sets) {
		props[e.key] = o.fieldOut(typ, e, typenames)
		if e.required {
			required = append(required, e.key)
		}
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
	describe(s, typ.Description)
	return s
}

func (o *Operation) fieldOut(parent *ast.Definition, e *selected, typenames []any) map[string]any {
	name := e.fields[0].Name
	switch name {
	case "__typename":
		return map[string]any{"type": "string", "enum": typenames}
	case "__schema", "__type":
		return map[string]any{"type": []string{"object", "null"}}
	}
	def := parent.Fields.ForName(name)
	if def == nil { // validation guarantees the field exists
		return map[string]any{}
	}
	var sets []ast.SelectionSet
	for _, f := range e.fields {
		if len(f.SelectionSet) > 0 {
			sets = append(sets, f.SelectionSet)
		}
	}
	s := o.typeOut(def.Type, sets)
	describe(s, def.Description)
	return s
}

func (o *Operation) typeOut(t *ast.Type, sets []ast.SelectionSet) map[string]any {
	var s map[string]any
	if t.Elem != nil {
		s = map[string]any{"type": "array", "items": o.typeOut(t.Elem, sets)}
	} else {
		s = o.namedOut(o.schema.ast.Types[t.NamedType], sets)
	}
	if !t.NonNull {
		allowNull(s)
	}
	return s
}

func (o *Operation) namedOut(def *ast.Definition, sets []ast.SelectionSet) map[string]any {
	if def == nil {
		return map[string]any{}
	}
	switch def.Kind {
	case ast.Scalar:
		s := scalarSchema(def)
		if _, ok := s["type"]; !ok {
			s["description"] = "custom scalar " + def.Name
		}
		if !def.BuiltIn {
			describe(s, def.Description)
		}
		return s
	case ast.Enum:
		s := map[string]any{"type": "string", "enum": enumValues(def)}
		describe(s, def.Description)
		return s
	case ast.Object:
		return o.objectOut(def, sets, nil)
	case ast.Interface, ast.Union:
		return o.abstractOut(def, sets)
	}
	return map[string]any{}
}

// abstractOut describes an interface or union value. Each possible type gets
// the shape its own fields give; types with the same shape share one branch,
// so a selection made only on the interface gives one plain object.
func (o *Operation) abstractOut(def *ast.Definition, sets []ast.SelectionSet) map[string]any {
	possible := slices.Clone(o.schema.ast.GetPossibleTypes(def))
	slices.SortFunc(possible, func(a, b *ast.Definition) int { return strings.Compare(a.Name, b.Name) })
	type branch struct {
		first *ast.Definition
		names []any
	}
	var branches []*branch
	byShape := map[string]*branch{}
	for _, p := range possible {
		// Shape without the type names, which differ by definition.
		shape := o.objectOut(p, sets, []any{})
		delete(shape, "description")
		key, _ := json.Marshal(shape)
		b := byShape[string(key)]
		if b == nil {
			b = &branch{first: p}
			byShape[string(key)] = b
			branches = append(branches, b)
		}
		b.names = append(b.names, p.Name)
	}
	var s map[string]any
	switch len(branches) {
	case 0:
		s = map[string]any{"type": "object"}
	case 1:
		s = o.objectOut(branches[0].first, sets, branches[0].names)
		delete(s, "description")
	default:
		alts := make([]any, len(branches))
		for i, b := range branches {
			alt := o.objectOut(b.first, sets, b.names)
			delete(alt, "description") // one type's doc would mislabel a shared branch
			alts[i] = alt
		}
		s = map[string]any{"anyOf": alts}
	}
	describe(s, def.Description)
	return s
}
