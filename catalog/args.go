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
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// Limits on the arguments of one tool call, checked before decoding.
const (
	MaxArgumentBytes = 1 << 20
	MaxArgumentDepth = 64
)

// argValidator checks decoded arguments against a tool's input schema.
type argValidator interface {
	validate(args map[string]any) []FieldProblem
}

// schemaValidator is an argValidator backed by a compiled JSON Schema.
type schemaValidator struct {
	schema *jsonschema.Schema
}

var _ argValidator = schemaValidator{}

var printer = message.NewPrinter(language.English)

func (v schemaValidator) validate(args map[string]any) []FieldProblem {
	err := v.schema.Validate(args)
	if err == nil {
		return nil
	}
	var verr *jsonschema.ValidationError
	if !errors.As(err, &verr) {
		return []FieldProblem{{Message: err.Error()}}
	}
	var out []FieldProblem
	for _, l := range flattenValidation(verr, false, nil) {
		out = append(out, FieldProblem{Path: strings.Join(l.loc, "/"), Message: l.msg})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return dedupe(out)
}

func dedupe(ps []FieldProblem) []FieldProblem {
	out := ps[:0]
	for i, p := range ps {
		if i > 0 && p == ps[i-1] {
			continue
		}
		out = append(out, p)
	}
	return out
}

// ValidateArguments decodes the arguments of a call (empty or null means
// {}), checks size and nesting limits, and validates them against the
// input schema. Numbers are decoded as json.Number, so big integers keep
// their digits. Every invalid field is listed in the returned
// *ArgumentError, which matches ErrInvalidArguments.
//
// A Tool that was not produced by the loader has no compiled schema; its
// arguments are only decoded and checked against the limits.
func (t *Tool) ValidateArguments(raw json.RawMessage) (map[string]any, error) {
	if len(raw) > MaxArgumentBytes {
		return nil, t.argError(fmt.Sprintf("arguments are %d bytes, the limit is %d bytes (1 MiB)", len(raw), MaxArgumentBytes))
	}
	if exceedsDepth(raw, MaxArgumentDepth) {
		return nil, t.argError(fmt.Sprintf("arguments are nested deeper than %d levels", MaxArgumentDepth))
	}
	raw = bytes.TrimSpace(raw)
	var args map[string]any
	if len(raw) == 0 || string(raw) == "null" {
		args = map[string]any{}
	} else {
		if raw[0] != '{' {
			return nil, t.argError("arguments must be a JSON object, got " + jsonKind(raw[0]))
		}
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			return nil, t.argError("arguments are not valid JSON: " + err.Error())
		}
		args = v.(map[string]any) // raw starts with '{'
	}
	if t.args != nil {
		if ps := t.args.validate(args); len(ps) > 0 {
			return nil, &ArgumentError{Tool: t.Name, Problems: ps}
		}
	}
	return args, nil
}

func (t *Tool) argError(msg string) *ArgumentError {
	return &ArgumentError{Tool: t.Name, Problems: []FieldProblem{{Message: msg}}}
}

func jsonKind(c byte) string {
	switch {
	case c == '[':
		return "an array"
	case c == '"':
		return "a string"
	case c == 't' || c == 'f':
		return "a boolean"
	case c == '-' || (c >= '0' && c <= '9'):
		return "a number"
	}
	return "invalid JSON"
}

// exceedsDepth reports whether JSON text nests arrays and objects deeper
// than max. It is one pass over the bytes, cheaper than decoding.
func exceedsDepth(b []byte, max int) bool {
	depth, inStr := 0, false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inStr {
			switch c {
			case '\\':
				i++
			case '"':
				inStr = false
			}
			continue
		}
		switch c {
		case '"':
			inStr = true
		case '{', '[':
			if depth++; depth > max {
				return true
			}
		case '}', ']':
			depth--
		}
	}
	return false
}

// leaf is one validation failure at an instance location.
type leaf struct {
	loc []string
	msg string
}

// flattenValidation turns the library's error tree into one message per
// failing value. For arguments (firstBranch false) a failed anyOf/oneOf is
// one message, since the failures of every branch would bury the point.
// For metaschema errors (firstBranch true) the first branch is followed,
// which names what is wrong with a schema keyword.
func flattenValidation(e *jsonschema.ValidationError, firstBranch bool, out []leaf) []leaf {
	loc := e.InstanceLocation
	switch k := e.ErrorKind.(type) {
	case *kind.Schema, *kind.Group, *kind.AllOf, *kind.Reference:
		for _, c := range e.Causes {
			out = flattenValidation(c, firstBranch, out)
		}
		return out
	case *kind.AnyOf, *kind.OneOf:
		if firstBranch && len(e.Causes) > 0 {
			return flattenValidation(e.Causes[0], firstBranch, out)
		}
		msg := "does not match any of the allowed schemas (anyOf)"
		if o, ok := k.(*kind.OneOf); ok {
			msg = "does not match any of the allowed schemas (oneOf)"
			if len(o.Subschemas) > 1 {
				msg = "matches more than one of the allowed schemas (oneOf)"
			}
		}
		return append(out, leaf{loc, msg})
	case *kind.Required:
		for _, m := range k.Missing {
			out = append(out, leaf{appendLoc(loc, m), "missing required property"})
		}
		return out
	case *kind.AdditionalProperties:
		for _, m := range k.Properties {
			out = append(out, leaf{appendLoc(loc, m), "unknown property"})
		}
		return out
	case *kind.Format:
		return append(out, leaf{loc, fmt.Sprintf("%s is not valid %s", displayValue(k.Got), k.Want)})
	case *kind.FalseSchema:
		return append(out, leaf{loc, "value is not allowed"})
	}
	return append(out, leaf{loc, e.ErrorKind.LocalizedString(printer)})
}

func appendLoc(loc []string, s string) []string {
	out := make([]string, len(loc), len(loc)+1)
	copy(out, loc)
	return append(out, s)
}

func displayValue(v any) string {
	switch v := v.(type) {
	case string:
		q := strconv.Quote(v)
		return "'" + strings.ReplaceAll(q[1:len(q)-1], `\"`, `"`) + "'"
	case map[string]any, []any:
		return "value"
	}
	return fmt.Sprint(v)
}
