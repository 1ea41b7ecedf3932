package catalog

import (
	"errors"
	"strings"
)

// Problem is one error found in a catalog file.
type Problem struct {
	Pos Pos
	// Field is the path of the offending field, e.g.
	// "tools[2] (get_customer).path"; empty for file-level problems.
	Field   string
	Message string
}

func (p Problem) String() string {
	if p.Field == "" {
		return p.Pos.String() + ": " + p.Message
	}
	return p.Pos.String() + ": " + p.Field + ": " + p.Message
}

// LoadError lists every problem found in a catalog file, in file order.
type LoadError struct {
	Problems []Problem
}

// Error prints one problem per line.
func (e *LoadError) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(p.String())
	}
	return b.String()
}

// ErrInvalidArguments matches every *ArgumentError with errors.Is.
var ErrInvalidArguments = errors.New("invalid arguments")

// ArgumentError reports tool arguments that do not satisfy the tool's input
// schema. It lists every invalid field, so that a model can fix all of them
// in one retry.
type ArgumentError struct {
	Tool     string
	Problems []FieldProblem
}

// FieldProblem is one invalid argument.
type FieldProblem struct {
	// Path is the slash-separated location of the value in the arguments,
	// e.g. "email" or "items/2/qty"; empty for the arguments as a whole.
	Path    string
	Message string
}

func (p FieldProblem) String() string {
	if p.Path == "" {
		return p.Message
	}
	return p.Path + ": " + p.Message
}

// Error reads like "invalid arguments for tool create_customer: email: 'bob'
// is not valid email; name: missing required property".
func (e *ArgumentError) Error() string {
	var b strings.Builder
	b.WriteString("invalid arguments for tool ")
	b.WriteString(e.Tool)
	b.WriteString(": ")
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(p.String())
	}
	return b.String()
}

// Is makes errors.Is(err, ErrInvalidArguments) true.
func (e *ArgumentError) Is(target error) bool { return target == ErrInvalidArguments }
