package gqlop

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/vektah/gqlparser/v2/validator"
)

// introspectionTimeout bounds Introspect when the caller's context has no
// deadline.
const introspectionTimeout = 30 * time.Second

// maxIntrospectionBody bounds the answer read; large real schemas are a few MB.
const maxIntrospectionBody = 64 << 20

// introspectionQuery is the classic introspection query. It asks nothing
// newer than the June 2018 spec (no isRepeatable, specifiedByURL or input
// value deprecation) so that older servers answer it too.
const introspectionQuery = `query IntrospectionQuery {
  __schema {
    queryType { name }
    mutationType { name }
    subscriptionType { name }
    types { ...FullType }
    directives {
      name
      description
      locations
      args { ...InputValue }
    }
  }
}

fragment FullType on __Type {
  kind
  name
  description
  fields(includeDeprecated: true) {
    name
    description
    args { ...InputValue }
    type { ...TypeRef }
    isDeprecated
    deprecationReason
  }
  inputFields { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) {
    name
    description
    isDeprecated
    deprecationReason
  }
  possibleTypes { ...TypeRef }
}

fragment InputValue on __InputValue {
  name
  description
  type { ...TypeRef }
  defaultValue
}

fragment TypeRef on __Type {
  kind
  name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name
    ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } } }
}
`

// Introspect posts the standard introspection query to endpoint (with header
// added, for authentication) and builds the schema from the answer. Store
// Schema.SDL to skip this at the next start. A server that refuses
// introspection gives an error reading "introspection is disabled or refused
// by <endpoint>: …".
func Introspect(ctx context.Context, client *http.Client, endpoint string, header http.Header) (*Schema, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, introspectionTimeout)
		defer cancel()
	}
	if client == nil {
		client = http.DefaultClient
	}
	body, err := json.Marshal(map[string]any{"query": introspectionQuery, "operationName": "IntrospectionQuery"})
	if err != nil {
		return nil, fmt.Errorf("introspect %s: %w", endpoint, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("introspect %s: %w", endpoint, err)
	}
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/graphql-response+json, application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("introspect %s: %w", endpoint, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxIntrospectionBody+1))
	if err != nil {
		return nil, fmt.Errorf("introspect %s: reading the answer: %w", endpoint, err)
	}
	if len(raw) > maxIntrospectionBody {
		return nil, fmt.Errorf("introspect %s: the answer is larger than %d bytes", endpoint, maxIntrospectionBody)
	}
	return FromIntrospection(endpoint, raw, resp.StatusCode)
}

// FromIntrospection builds a schema from the body of an introspection answer
// (status is its HTTP status; 200 when it came from elsewhere, such as a
// file). name is used in messages.
func FromIntrospection(name string, body []byte, status int) (*Schema, error) {
	refused := func(format string, args ...any) error {
		return fmt.Errorf("introspection is disabled or refused by %s: %s", name, fmt.Sprintf(format, args...))
	}
	r, perr := ParseResponse(body)
	switch {
	case perr != nil && status/100 != 2:
		return nil, refused("HTTP %d: %q", status, snippet(body))
	case perr != nil:
		return nil, fmt.Errorf("introspect %s: %w", name, perr)
	case len(r.Errors) > 0:
		return nil, refused("%s", r.ErrorText())
	case status/100 != 2:
		return nil, refused("HTTP %d", status)
	}
	var data struct {
		Schema *introSchema `json:"__schema"`
	}
	if err := json.Unmarshal(r.Data, &data); err != nil {
		return nil, fmt.Errorf("introspect %s: decoding __schema: %w", name, err)
	}
	if data.Schema == nil {
		return nil, refused("the answer has no __schema")
	}
	sdl, err := data.Schema.sdl()
	if err != nil {
		return nil, fmt.Errorf("introspect %s: %w", name, err)
	}
	s, err := LoadSDL(name, sdl)
	if err != nil {
		return nil, fmt.Errorf("introspect %s: the schema it describes does not load: %w", name, err)
	}
	return s, nil
}

type introSchema struct {
	QueryType        *introName       `json:"queryType"`
	MutationType     *introName       `json:"mutationType"`
	SubscriptionType *introName       `json:"subscriptionType"`
	Types            []introType      `json:"types"`
	Directives       []introDirective `json:"directives"`
}

type introName struct {
	Name string `json:"name"`
}

type introType struct {
	Kind          string           `json:"kind"`
	Name          string           `json:"name"`
	Description   string           `json:"description"`
	Fields        []introField     `json:"fields"`
	InputFields   []introInput     `json:"inputFields"`
	Interfaces    []introTypeRef   `json:"interfaces"`
	EnumValues    []introEnumValue `json:"enumValues"`
	PossibleTypes []introTypeRef   `json:"possibleTypes"`
}

type introField struct {
	Name              string       `json:"name"`
	Description       string       `json:"description"`
	Args              []introInput `json:"args"`
	Type              introTypeRef `json:"type"`
	IsDeprecated      bool         `json:"isDeprecated"`
	DeprecationReason *string      `json:"deprecationReason"`
}

type introInput struct {
	Name         string       `json:"name"`
	Description  string       `json:"description"`
	Type         introTypeRef `json:"type"`
	DefaultValue *string      `json:"defaultValue"`
}

type introEnumValue struct {
	Name              string  `json:"name"`
	Description       string  `json:"description"`
	IsDeprecated      bool    `json:"isDeprecated"`
	DeprecationReason *string `json:"deprecationReason"`
}

type introDirective struct {
	Name        string       `json:"name"`
	Description string       `json:"description"`
	Locations   []string     `json:"locations"`
	Args        []introInput `json:"args"`
}

type introTypeRef struct {
	Kind   string        `json:"kind"`
	Name   string        `json:"name"`
	OfType *introTypeRef `json:"ofType"`
}

func (t *introTypeRef) sdl() (string, error) {
	switch t.Kind {
	case "NON_NULL":
		if t.OfType == nil {
			return "", errors.New("NON_NULL type reference without ofType")
		}
		inner, err := t.OfType.sdl()
		return inner + "!", err
	case "LIST":
		if t.OfType == nil {
			return "", errors.New("LIST type reference without ofType")
		}
		inner, err := t.OfType.sdl()
		return "[" + inner + "]", err
	}
	if t.Name == "" {
		return "", fmt.Errorf("%s type reference without a name", t.Kind)
	}
	return t.Name, nil
}

// sdl writes the schema the introspection answer describes as SDL, leaving
// out what gqlparser's prelude declares (built-in scalars, directives and
// introspection types).
func (s *introSchema) sdl() (string, error) {
	if s.QueryType == nil || s.QueryType.Name == "" {
		return "", errors.New("__schema has no queryType")
	}
	builtin := map[string]bool{}
	prelude := validator.PreludeDocument()
	for _, d := range prelude.Definitions {
		builtin[d.Name] = true
	}
	builtinDirective := map[string]bool{}
	for _, d := range prelude.Directives {
		builtinDirective[d.Name] = true
	}

	w := &sdlWriter{}
	w.line("schema {")
	w.line("  query: " + s.QueryType.Name)
	if s.MutationType != nil && s.MutationType.Name != "" {
		w.line("  mutation: " + s.MutationType.Name)
	}
	if s.SubscriptionType != nil && s.SubscriptionType.Name != "" {
		w.line("  subscription: " + s.SubscriptionType.Name)
	}
	w.line("}")

	for _, d := range s.Directives {
		if builtinDirective[d.Name] {
			continue
		}
		w.line("")
		w.description("", d.Description)
		w.str("directive @" + d.Name)
		w.args(d.Args)
		w.line(" on " + strings.Join(d.Locations, " | "))
	}

	types := slices.Clone(s.Types)
	slices.SortFunc(types, func(a, b introType) int { return strings.Compare(a.Name, b.Name) })
	for _, t := range types {
		if builtin[t.Name] || strings.HasPrefix(t.Name, "__") {
			continue
		}
		w.line("")
		w.description("", t.Description)
		switch t.Kind {
		case "SCALAR":
			w.line("scalar " + t.Name)
		case "ENUM":
			w.line("enum " + t.Name + " {")
			for _, v := range t.EnumValues {
				w.description("  ", v.Description)
				w.line("  " + v.Name + deprecated(v.IsDeprecated, v.DeprecationReason))
			}
			w.line("}")
		case "UNION":
			names := make([]string, len(t.PossibleTypes))
			for i, p := range t.PossibleTypes {
				names[i] = p.Name
			}
			w.line("union " + t.Name + " = " + strings.Join(names, " | "))
		case "INPUT_OBJECT":
			w.line("input " + t.Name + " {")
			for _, f := range t.InputFields {
				w.description("  ", f.Description)
				w.str("  ")
				w.inputValue(f)
				w.line("")
			}
			w.line("}")
		case "OBJECT", "INTERFACE":
			kw := "type "
			if t.Kind == "INTERFACE" {
				kw = "interface "
			}
			w.str(kw + t.Name)
			if len(t.Interfaces) > 0 {
				names := make([]string, len(t.Interfaces))
				for i, p := range t.Interfaces {
					names[i] = p.Name
				}
				w.str(" implements " + strings.Join(names, " & "))
			}
			w.line(" {")
			for _, f := range t.Fields {
				w.description("  ", f.Description)
				w.str("  " + f.Name)
				w.args(f.Args)
				w.str(": ")
				w.typeRef(f.Type)
				w.line(deprecated(f.IsDeprecated, f.DeprecationReason))
			}
			w.line("}")
		default:
			return "", fmt.Errorf("type %s has unknown kind %q", t.Name, t.Kind)
		}
	}
	return w.b.String(), w.err
}

func deprecated(is bool, reason *string) string {
	if !is {
		return ""
	}
	if reason == nil || *reason == "" {
		return " @deprecated"
	}
	return " @deprecated(reason: " + quote(*reason) + ")"
}

// quote writes s as a GraphQL string; JSON's escapes are a subset of
// GraphQL's.
func quote(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return strings.TrimSuffix(b.String(), "\n")
}

type sdlWriter struct {
	b   strings.Builder
	err error
}

func (w *sdlWriter) str(s string)  { w.b.WriteString(s) }
func (w *sdlWriter) line(s string) { w.b.WriteString(s); w.b.WriteByte('\n') }

func (w *sdlWriter) description(indent, d string) {
	if d != "" {
		w.line(indent + quote(d))
	}
}

func (w *sdlWriter) typeRef(t introTypeRef) {
	s, err := t.sdl()
	if err != nil && w.err == nil {
		w.err = err
	}
	w.str(s)
}

func (w *sdlWriter) args(args []introInput) {
	if len(args) == 0 {
		return
	}
	w.str("(")
	for i, a := range args {
		if i > 0 {
			w.str(", ")
		}
		if a.Description != "" {
			w.str(quote(a.Description) + " ")
		}
		w.inputValue(a)
	}
	w.str(")")
}

func (w *sdlWriter) inputValue(v introInput) {
	w.str(v.Name + ": ")
	w.typeRef(v.Type)
	if v.DefaultValue != nil {
		// Introspection gives defaults as GraphQL literals, ready to print.
		w.str(" = " + *v.DefaultValue)
	}
}
