package catalog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"
)

// schemaCompiler compiles the JSON Schemas of one catalog.
type schemaCompiler struct {
	c *jsonschema.Compiler
	n int
}

// errExternalRef refuses $ref to anything outside the schema: loading the
// catalog must not reach the network or read files it does not name.
var errExternalRef = errors.New("external $ref is not allowed; put shared definitions under $defs")

type noLoader struct{}

func (noLoader) Load(string) (any, error) { return nil, errExternalRef }

func newSchemaCompiler() *schemaCompiler {
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	c.UseLoader(noLoader{})
	return &schemaCompiler{c: c}
}

// compile reports problems at the position of the offending schema keyword.
func (p *parser) compileSchema(sc *schemaCompiler, raw json.RawMessage, n *yaml.Node, field string) *jsonschema.Schema {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		p.errorf(n, field, "invalid JSON Schema: %v", err)
		return nil
	}
	sc.n++
	loc := "toolbus:///schema/" + strconv.Itoa(sc.n) + ".json"
	if err := sc.c.AddResource(loc, doc); err != nil {
		p.errorf(n, field, "invalid JSON Schema: %v", err)
		return nil
	}
	s, err := sc.c.Compile(loc)
	if err == nil {
		return s
	}
	var sve *jsonschema.SchemaValidationError
	var verr *jsonschema.ValidationError
	if errors.As(err, &sve) && errors.As(sve.Err, &verr) {
		for _, l := range flattenValidation(verr, true, nil) {
			at, f := locate(n, field, l.loc)
			p.errorf(at, f, "invalid JSON Schema: %s", l.msg)
		}
		return nil
	}
	var lerr *jsonschema.LoadURLError
	if errors.As(err, &lerr) {
		at, f := n, field
		if k, path := findRef(n, field, lerr.URL, 0); k != nil {
			at, f = k, path
		}
		p.errorf(at, f, "invalid JSON Schema: $ref %q: %v", lerr.URL, lerr.Err)
		return nil
	}
	msg := strings.ReplaceAll(err.Error(), loc, "")
	p.errorf(n, field, "invalid JSON Schema: %s", msg)
	return nil
}

// findRef finds the $ref whose value names url (ignoring any fragment).
func findRef(n *yaml.Node, field, url string, depth int) (*yaml.Node, string) {
	n = deref(n)
	if depth > maxValueDepth {
		return nil, ""
	}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], deref(n.Content[i+1])
			if k.Value == "$ref" && v.Kind == yaml.ScalarNode {
				if ref, _, _ := strings.Cut(v.Value, "#"); ref != "" && strings.HasSuffix(url, ref) {
					return v, joinField(field, "$ref")
				}
			}
			if at, f := findRef(v, joinField(field, k.Value), url, depth+1); at != nil {
				return at, f
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			if at, f := findRef(c, fmt.Sprintf("%s[%d]", field, i), url, depth+1); at != nil {
				return at, f
			}
		}
	}
	return nil, ""
}

// locate finds the node at a JSON pointer (as tokens) below n, as deep as
// it exists, and its field path.
func locate(n *yaml.Node, field string, tokens []string) (*yaml.Node, string) {
	for _, tok := range tokens {
		n = deref(n)
		var next *yaml.Node
		switch n.Kind {
		case yaml.MappingNode:
			if k, v := lookupPair(n, tok); k != nil {
				next = v
				field = joinField(field, tok)
			}
		case yaml.SequenceNode:
			if i, err := strconv.Atoi(tok); err == nil && i >= 0 && i < len(n.Content) {
				next = n.Content[i]
				field = fmt.Sprintf("%s[%d]", field, i)
			}
		}
		if next == nil {
			break
		}
		n = next
	}
	return n, field
}

// lookupPair finds key in mapping n without reporting anything (the
// mapping was checked when it was encoded).
func lookupPair(n *yaml.Node, key string) (k, v *yaml.Node) {
	n = deref(n)
	if n.Kind != yaml.MappingNode {
		return nil, nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Kind == yaml.ScalarNode && n.Content[i].Value == key {
			return n.Content[i], deref(n.Content[i+1])
		}
	}
	return nil, nil
}

func lookup(n *yaml.Node, key string) *yaml.Node {
	_, v := lookupPair(n, key)
	return v
}
