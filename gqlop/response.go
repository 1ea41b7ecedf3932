package gqlop

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ErrMalformedResponse is wrapped by ParseResponse when the body is not a
// GraphQL response at all (not JSON, neither data nor errors, data not an
// object). It usually means a proxy or error page answered instead.
var ErrMalformedResponse = errors.New("malformed GraphQL response")

// Outcome classifies a GraphQL response.
type Outcome string

const (
	// Success: data and no errors.
	Success Outcome = "success"
	// Partial: data and errors; some fields are null because they failed.
	// Return the data, and tell the caller about the errors.
	Partial Outcome = "partial"
	// Failure: errors and no data (absent or null).
	Failure Outcome = "failure"
)

// Response is a parsed GraphQL response.
type Response struct {
	Outcome Outcome
	// Data is the data object, undecoded; nil on Failure.
	Data json.RawMessage
	// Errors lists the response's errors; empty on Success.
	Errors []GraphQLError
	// Extensions is the response's extensions object, undecoded, if any.
	Extensions json.RawMessage
}

// Err is nil unless the response is a Failure, in which case it is a
// *ResponseError listing every error.
func (r Response) Err() error {
	if r.Outcome != Failure {
		return nil
	}
	return &ResponseError{Errors: r.Errors}
}

// GraphQLError is one entry of a response's errors list.
type GraphQLError struct {
	Message string
	// Path is where in data the error happened: keys (string) and list
	// indexes (int).
	Path       []any
	Locations  []Location
	Extensions map[string]any
}

// Location is a line and column in the document sent.
type Location struct {
	Line   int `json:"line"`
	Column int `json:"column"`
}

// Code is extensions.code, the machine-readable error code many servers set.
func (e GraphQLError) Code() string {
	c, _ := e.Extensions["code"].(string)
	return c
}

// PathString prints Path as "customer.orders[2]".
func (e GraphQLError) PathString() string {
	var b strings.Builder
	for _, p := range e.Path {
		switch p := p.(type) {
		case int:
			b.WriteByte('[')
			b.WriteString(strconv.Itoa(p))
			b.WriteByte(']')
		default:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			fmt.Fprint(&b, p)
		}
	}
	return b.String()
}

// String reads "GraphQL error at customer.orders[2]: not authorized (code:
// FORBIDDEN)", a sentence a model can act on.
func (e GraphQLError) String() string {
	var b strings.Builder
	b.WriteString("GraphQL error")
	if p := e.PathString(); p != "" {
		b.WriteString(" at ")
		b.WriteString(p)
	}
	b.WriteString(": ")
	msg := e.Message
	if msg == "" {
		msg = "(no message)"
	}
	b.WriteString(msg)
	if c := e.Code(); c != "" {
		b.WriteString(" (code: ")
		b.WriteString(c)
		b.WriteByte(')')
	}
	return b.String()
}

// ResponseError is a GraphQL response that carries errors and no data.
type ResponseError struct {
	Errors []GraphQLError
}

func (e *ResponseError) Error() string {
	return joinErrors(e.Errors)
}

// ErrorText joins the errors of a response, one sentence each; for a Partial
// response, append it to the data so the model knows what is missing.
func (r Response) ErrorText() string { return joinErrors(r.Errors) }

func joinErrors(errs []GraphQLError) string {
	switch len(errs) {
	case 0:
		return ""
	case 1:
		return errs[0].String()
	}
	parts := make([]string, len(errs))
	for i, e := range errs {
		parts[i] = e.String()
	}
	return strconv.Itoa(len(errs)) + " GraphQL errors: " + strings.Join(parts, "; ")
}

type wireResponse struct {
	Data       json.RawMessage `json:"data"`
	Errors     json.RawMessage `json:"errors"`
	Extensions json.RawMessage `json:"extensions"`
}

type wireError struct {
	Message    string            `json:"message"`
	Path       []json.RawMessage `json:"path"`
	Locations  []Location        `json:"locations"`
	Extensions map[string]any    `json:"extensions"`
}

// ParseResponse decodes and classifies a GraphQL response body (the JSON of
// application/json or application/graphql-response+json). The error is
// non-nil only for a body that is not a GraphQL response; it wraps
// ErrMalformedResponse. GraphQL errors are in the Response: see Outcome and
// Err.
func ParseResponse(body []byte) (Response, error) {
	var w wireResponse
	if err := json.Unmarshal(body, &w); err != nil {
		return Response{}, fmt.Errorf("%w: %v (body starts %q)", ErrMalformedResponse, err, snippet(body))
	}
	r := Response{Extensions: w.Extensions}
	if !isNull(w.Errors) {
		var list []wireError
		if err := json.Unmarshal(w.Errors, &list); err != nil {
			return Response{}, fmt.Errorf("%w: errors is not a list of error objects: %v", ErrMalformedResponse, err)
		}
		r.Errors = make([]GraphQLError, len(list))
		for i, we := range list {
			r.Errors[i] = GraphQLError{
				Message:    we.Message,
				Path:       decodePath(we.Path),
				Locations:  we.Locations,
				Extensions: we.Extensions,
			}
		}
	}
	hasData := !isNull(w.Data)
	if hasData {
		if d := bytes.TrimSpace(w.Data); d[0] != '{' {
			return Response{}, fmt.Errorf("%w: data is not an object (starts %q)", ErrMalformedResponse, snippet(d))
		}
		r.Data = w.Data
	}
	switch {
	case hasData && len(r.Errors) == 0:
		r.Outcome = Success
	case hasData:
		r.Outcome = Partial
	case len(r.Errors) > 0:
		r.Outcome = Failure
	default:
		return Response{}, fmt.Errorf("%w: neither data nor errors (body starts %q)", ErrMalformedResponse, snippet(body))
	}
	return r, nil
}

// decodePath keeps string keys and integer indexes; anything else a server
// invents is kept in its JSON form rather than dropped.
func decodePath(raw []json.RawMessage) []any {
	if len(raw) == 0 {
		return nil
	}
	out := make([]any, len(raw))
	for i, p := range raw {
		var s string
		if json.Unmarshal(p, &s) == nil {
			out[i] = s
			continue
		}
		var n int
		if json.Unmarshal(p, &n) == nil {
			out[i] = n
			continue
		}
		out[i] = string(p)
	}
	return out
}

// snippet is the start of a body, enough to recognise an HTML error page.
func snippet(b []byte) string {
	const limit = 120
	if len(b) <= limit {
		return string(b)
	}
	cut := limit
	for cut > 0 && !utf8.RuneStart(b[cut]) {
		cut--
	}
	return string(b[:cut]) + "…"
}

// FieldError is one entry of a mutation payload's userErrors (or errors)
// list: the upstream refused the input.
type FieldError struct {
	// Field is the path to the offending input field, for example
	// ["input", "email"]; empty when the error concerns no one field.
	Field   []string
	Message string
	// Code is the entry's code, when the schema has one.
	Code string
}

// String reads "invalid argument input.email: email is not valid".
func (e FieldError) String() string {
	msg := e.Message
	if msg == "" {
		msg = "(no message)"
	}
	if e.Code != "" {
		msg += " (code: " + e.Code + ")"
	}
	if len(e.Field) == 0 {
		return msg
	}
	return "invalid argument " + strings.Join(e.Field, ".") + ": " + msg
}

// FieldErrors is the non-empty result of PayloadErrors; as an error it reads
// as one sentence per entry.
type FieldErrors []FieldError

func (l FieldErrors) Error() string {
	parts := make([]string, len(l))
	for i, e := range l {
		parts[i] = e.String()
	}
	return strings.Join(parts, "; ")
}

type wireFieldError struct {
	Field   json.RawMessage `json:"field"`
	Message string          `json:"message"`
	Code    json.RawMessage `json:"code"`
}

// PayloadErrors reads the user errors of a mutation payload at path in data
// (the response's data object): the list under userErrors, or under errors
// when there is no userErrors. field may be a list of strings or a string.
// It returns nil when the payload is null or has no errors.
func PayloadErrors(data json.RawMessage, path string) (FieldErrors, error) {
	raw, err := lookup(data, path)
	if err != nil {
		return nil, fmt.Errorf("payload errors: %w", err)
	}
	if isNull(raw) {
		return nil, nil
	}
	payload, err := object(raw, "payload "+path)
	if err != nil {
		return nil, fmt.Errorf("payload errors: %w", err)
	}
	list, ok := payload["userErrors"]
	if !ok {
		list = payload["errors"]
	}
	if isNull(list) {
		return nil, nil
	}
	var entries []wireFieldError
	if err := json.Unmarshal(list, &entries); err != nil {
		return nil, fmt.Errorf("payload errors: the error list of %s: %w", path, err)
	}
	if len(entries) == 0 {
		return nil, nil
	}
	out := make(FieldErrors, len(entries))
	for i, we := range entries {
		out[i] = FieldError{Message: we.Message, Field: fieldPath(we.Field), Code: scalarText(we.Code)}
	}
	return out, nil
}

func fieldPath(raw json.RawMessage) []string {
	if isNull(raw) {
		return nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if s == "" {
			return nil
		}
		return []string{s}
	}
	var list []any
	if json.Unmarshal(raw, &list) == nil {
		out := make([]string, 0, len(list))
		for _, p := range list {
			out = append(out, fmt.Sprint(p))
		}
		return out
	}
	return []string{string(raw)}
}

func scalarText(raw json.RawMessage) string {
	if isNull(raw) {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}
