package gqlop

import (
	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
)

// Schema is a validated GraphQL schema that operations are checked against.
// It is immutable and safe for concurrent use.
type Schema struct {
	name string
	sdl  string
	ast  *ast.Schema
}

// LoadSDL parses and validates a schema written in the GraphQL schema
// definition language. name is the file name used in error messages. The
// built-in scalars and directives are implied. Errors are of type Errors.
func LoadSDL(name string, sdl string) (*Schema, error) {
	s, err := gqlparser.LoadSchema(&ast.Source{Name: name, Input: sdl})
	if err != nil {
		return nil, fromGQL(name, err)
	}
	return &Schema{name: name, sdl: sdl, ast: s}, nil
}

// Name is the file name or endpoint the schema came from.
func (s *Schema) Name() string { return s.name }

// SDL returns the schema in the schema definition language: the text given to
// LoadSDL, or the text rebuilt from an introspection answer. Write it to a
// file and pass it to LoadSDL at the next start to skip introspection.
func (s *Schema) SDL() string { return s.sdl }

// AST exposes the parsed schema for callers that need more than this package
// offers. It must not be modified.
func (s *Schema) AST() *ast.Schema { return s.ast }
