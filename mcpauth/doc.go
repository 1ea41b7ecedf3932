// Package mcpauth provides authentication and authorization for Toolbus's
// MCP endpoint and gRPC ToolService, configured by the catalog's auth:
// section: an OAuth 2.1 resource server (JWT access tokens checked against
// the issuer's JWKS, or opaque tokens through RFC 7662 introspection),
// static API keys for service callers, per-tool scopes, RFC 9728
// protected-resource metadata, and CORS for browser clients.
//
// # Decisions
//
//   - Bearer tokens only, in the Authorization header (no query or body
//     tokens, RFC 6750 §2.1). API keys travel the same way; they are told
//     apart by their SHA-256 matching a configured hash.
//   - A tools/call for a tool the caller lacks scopes for is refused at
//     the HTTP layer with 403 and WWW-Authenticate: Bearer
//     error="insufficient_scope", scope="<the tool's scopes>", as the MCP
//     authorization spec's step-up flow expects: a client such as the
//     go-sdk's AuthorizationCodeHandler then asks the user for the extra
//     scopes and retries. A JSON-RPC error would end the call instead. The
//     same check runs again in the MCP layer (defence in depth) and in the
//     gRPC interceptor (PermissionDenied).
//   - tools/list shows only the tools the caller may call, unless
//     auth.filter_tools_list is false.
//   - The package uses the go-sdk's auth.RequireBearerToken, so the SDK
//     binds sessions to the caller (a stolen session id is useless) and
//     hands the caller to tool handlers.
//
// # What it must not do
//
// It must never log, return in an error, or put into a response a token or
// API key; Identity prints without its token. It makes no network call
// when constructed: signing keys and metadata are fetched on first use.
package mcpauth
