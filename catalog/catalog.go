// Package catalog provides the Toolbus catalog: the one file in which a team
// declares its upstream APIs and the tools built on them. It loads YAML,
// validates it strictly (every error names file, line and field), resolves
// secret references and compiles argument schemas.
//
// The catalog is configuration only: Load and Parse must not perform network
// calls (other than reading files it references) and it must not know about
// NATS or MCP. ResolveGraphQLSchemas is the one explicit step that introspects
// GraphQL endpoints, run by services at start-up.
package catalog

import (
	"encoding/json"
	"fmt"
	"net/url"
	"time"

	"github.com/toolbus/toolbus/gqlop"
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
	// Sources are the webhook providers, by name (see sources.go).
	Sources map[string]*Source
	// Projections turn webhook events into state, by name (projections.go).
	Projections map[string]*Projection
	// Auth is how MCP clients authenticate (auth.go); nil when the
	// catalog has no auth section.
	Auth *ServerAuth
	// Widgets are HTML templates served as ui:// resources (widgets.go).
	Widgets map[string]*Widget

	toolsByName map[string]*Tool
	// src and opts load the catalog again (ResolveGraphQLSchemas).
	src  []byte
	opts []Option
	// secrets are the groups resolved at load (WithSecrets).
	secrets SecretGroups
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
	// GraphQL is set for graphql upstreams: where the schema comes from,
	// and the schema (graphql.go).
	GraphQL *GraphQLUpstream
	// Reliability holds the retry policy, rate limit and circuit breaker
	// (reliability.go).
	Reliability
	// Auth is how Toolbus authenticates to the upstream (auth.go); nil
	// means none.
	Auth *UpstreamAuth
	// OpenAPI is set when the upstream's tools are generated from an
	// OpenAPI document (openapi.go).
	OpenAPI *OpenAPISource
	// SOAP is set for soap upstreams: version, WSDL, WS-Security (soap.go).
	SOAP *SOAPUpstream
	Pos  Pos
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
	// Deep sends object and array query values in brackets (name[key]=v,
	// name[0]=v), OpenAPI's deepObject style; otherwise objects go as JSON
	// text and arrays as repeated parameters.
	Deep bool
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
	// Retry overrides the upstream's retry policy; nil means the
	// upstream's (see RetryPolicy in reliability.go).
	Retry *RetryPolicy
	// GraphQL is set for tools on graphql upstreams: the validated
	// operation, pagination and payload errors (graphql.go).
	GraphQL *GraphQLTool
	// Scopes a caller needs to call the tool; nil means the default for
	// its annotations (ServerAuth.ToolScopes), empty means none.
	Scopes []string
	// BodyEncoding of the body arguments: JSON (the zero value) or form
	// (openapi.go).
	BodyEncoding BodyEncoding
	// Fixed arguments are not in the input schema; the worker always sends
	// them with these values (OpenAPI overrides' hidden parameters).
	Fixed map[string]any
	// Composite and Batch are set for tools mcp-front runs itself, which
	// have no upstream (composite.go, batch.go); SOAP for tools on soap
	// upstreams (soap.go).
	Composite *Composite
	Batch     *Batch
	SOAP      *SOAPTool
	// Response, Cache, Paging and ResultMeta: response.go, pagination.go.
	Response   *ResponseShaping
	Cache      *CachePolicy
	Paging     *RESTPagination
	ResultMeta map[string]any
	Pos        Pos

	args    argValidator
	virtual *virtualSpec
}

// CallTimeout is the effective deadline budget of one call.
func (t *Tool) CallTimeout() time.Duration {
	if t.Timeout > 0 || t.Upstream == nil {
		return t.Timeout
	}
	return t.Upstream.Timeout
}

// Mutating reports whether the tool's request may change upstream state, so
// that it is retried only with an idempotency key.
func (t *Tool) Mutating() bool {
	if t.GraphQL != nil {
		return t.GraphQL.Operation.Kind() == gqlop.KindMutation
	}
	switch t.Method {
	case "GET", "HEAD", "OPTIONS":
		return false
	}
	return true
}
