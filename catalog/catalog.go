// Package catalog provides the Toolbus catalog: the one file in which a team
// declares its upstream APIs and the tools built on them. It loads YAML,
// validates it strictly (every error names file, line and field), resolves
// secret references and compiles argument schemas.
//
// The catalog is configuration only: it must not perform network calls
// (other than reading files it references) and must not know about NATS or MCP.
package catalog

import (
	"encoding/json"
	"fmt"
	"net/url"
	"time"
)

// Kind is the protocol an upstream speaks.
type Kind string

// Upstream kinds.
const (
	KindREST    Kind = "rest"
	KindGraphQL Kind = "graphql"
)

// Pos is a position in a catalog file, for error messages.
type Pos struct {
	File string
	Line int
	Col  int
}

func (p Pos) String() string {
	switch {
	case p.Line == 0:
		return p.File
	case p.Col == 0: // the YAML parser reports syntax errors without a column
		return fmt.Sprintf("%s:%d", p.File, p.Line)
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
}

// Catalog is a loaded, validated catalog. It is immutable once loaded and safe
// for concurrent use; a reload produces a new Catalog.
type Catalog struct {
	// File the catalog was loaded from.
	File string
	// Digest identifies the catalog content (hex SHA-256 of the source bytes).
	Digest string
	// Upstreams by name.
	Upstreams map[string]*Upstream
	// Tools in file order.
	Tools []*Tool

	toolsByName map[string]*Tool
}

// Tool returns the tool with the given name.
func (c *Catalog) Tool(name string) (*Tool, bool) {
	t, ok := c.toolsByName[name]
	return t, ok
}

// Upstream is an API that tools call.
type Upstream struct {
	Name string
	Kind Kind
	// BaseURL fixes scheme, host, port and path prefix. Tool arguments can
	// never change them.
	BaseURL *url.URL
	// Timeout bounds one call (all attempts) unless the tool sets its own.
	Timeout time.Duration
	// Concurrency is the cluster-wide limit of calls in flight to this
	// upstream (the consumer's MaxAckPending).
	Concurrency int
	// Headers sent on every request, in file order.
	Headers []Header
	// MaxResponseBytes refuses larger answers with a clear tool error.
	MaxResponseBytes int64
	// IdempotencyHeader, when set (e.g. "Idempotency-Key"), is sent with the
	// call's idempotency key on mutating requests, which makes them safe to retry.
	IdempotencyHeader string
	Pos               Pos
}

// Header is a header name with its value, which may come from a secret reference.
type Header struct {
	Name  string
	Value Secret
}

// ParamIn says where an argument goes in the upstream request.
type ParamIn string

// Parameter locations.
const (
	InPath   ParamIn = "path"
	InQuery  ParamIn = "query"
	InHeader ParamIn = "header"
	InBody   ParamIn = "body"
)

// Param maps one top-level argument (a property of the input schema) to its
// place in the request.
type Param struct {
	// Name of the argument (input schema property).
	Name string
	In   ParamIn
	// Wire name: the query parameter, header or body field name; defaults to Name.
	WireName string
	Required bool
}

// Annotations are the MCP tool hints. Nil means "not set"; the loader fills
// defaults from the method (GET/HEAD → read-only and idempotent, DELETE →
// destructive, PUT → idempotent), so after loading every field is set.
type Annotations struct {
	Title       string
	ReadOnly    *bool
	Destructive *bool
	Idempotent  *bool
	OpenWorld   *bool
}

// Tool is one MCP tool backed by an upstream request.
type Tool struct {
	Name        string
	Title       string
	Description string
	Upstream    *Upstream
	// Method is the HTTP method (REST tools), upper case.
	Method string
	// Path is the path template relative to the upstream's base URL, with
	// {name} placeholders for path parameters.
	Path string
	// Params in input-schema property order.
	Params []Param
	// InputSchema is the JSON Schema of the arguments (type object).
	InputSchema json.RawMessage
	// OutputSchema is the JSON Schema of a successful structured result, or nil.
	OutputSchema json.RawMessage
	Annotations  Annotations
	// Timeout bounds the whole call; zero means the upstream's timeout.
	Timeout time.Duration
	// Meta is passed through as the MCP tool's _meta.
	Meta map[string]any
	Pos  Pos

	args argValidator
}

// CallTimeout is the effective deadline budget of one call.
func (t *Tool) CallTimeout() time.Duration {
	if t.Timeout > 0 {
		return t.Timeout
	}
	return t.Upstream.Timeout
}

// Mutating reports whether the tool's request may change upstream state, so
// that it is retried only with an idempotency key.
func (t *Tool) Mutating() bool {
	switch t.Method {
	case "GET", "HEAD", "OPTIONS":
		return false
	}
	return true
}
