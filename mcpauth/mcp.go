package mcpauth

import (
	"context"
	"slices"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/toolbus/toolbus/catalog"
)

// CodeInsufficientScope is the JSON-RPC error code of a tools/call refused
// for lack of scopes inside the MCP layer (the HTTP layer normally answers
// 403 first). It is in the implementation-defined server error range.
const CodeInsufficientScope = -32003

// MCPMiddleware is the MCP server's receiving middleware: it hides from
// tools/list the tools the caller may not call (unless filtering is off)
// and refuses such a tools/call. Requests without a caller (stdio, auth
// off) pass untouched: a local process is trusted by whoever started it.
func (a *Authenticator) MCPMiddleware() mcp.Middleware {
	return func(next mcp.MethodHandler) mcp.MethodHandler {
		if !a.Enabled() {
			return next
		}
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			var id *Identity
			if ex := req.GetExtra(); ex != nil {
				id, _ = FromTokenInfo(ex.TokenInfo)
			}
			if id == nil {
				return next(ctx, method, req)
			}
			switch method {
			case "tools/call":
				if ct, ok := req.(*mcp.CallToolRequest); ok && ct.Params != nil {
					if need, known := a.table().byTool[ct.Params.Name]; known {
						if missing := id.Missing(need); len(missing) > 0 {
							return nil, &jsonrpc.Error{Code: CodeInsufficientScope, Message: "insufficient scope: tool " + ct.Params.Name + " requires scopes " + strings.Join(need, " ")}
						}
					}
				}
			case "resources/read", "resources/subscribe":
				// A projection's resources need what its tools need.
				var uri string
				switch r := req.(type) {
				case *mcp.ReadResourceRequest:
					if r.Params != nil {
						uri = r.Params.URI
					}
				case *mcp.SubscribeRequest:
					if r.Params != nil {
						uri = r.Params.URI
					}
				}
				if name, ok := catalog.ProjectionOfURI(uri); ok {
					if need, known := a.table().byProjection[name]; known {
						if missing := id.Missing(need); len(missing) > 0 {
							return nil, &jsonrpc.Error{Code: CodeInsufficientScope, Message: "insufficient scope: projection " + name + " requires scopes " + strings.Join(need, " ")}
						}
					}
				}
			case "tools/list":
				res, err := next(ctx, method, req)
				if err != nil || !a.table().auth.FilterToolsList {
					return res, err
				}
				if lr, ok := res.(*mcp.ListToolsResult); ok {
					filtered := *lr
					filtered.Tools = slices.DeleteFunc(slices.Clone(lr.Tools), func(t *mcp.Tool) bool {
						return !id.Has(a.table().byTool[t.Name])
					})
					return &filtered, nil
				}
				return res, err
			case "resources/list", "resources/templates/list":
				// Like tools/list: a projection the caller may not read is
				// not listed.
				res, err := next(ctx, method, req)
				if err != nil || !a.table().auth.FilterToolsList {
					return res, err
				}
				switch lr := res.(type) {
				case *mcp.ListResourcesResult:
					filtered := *lr
					filtered.Resources = slices.DeleteFunc(slices.Clone(lr.Resources), func(r *mcp.Resource) bool {
						return !a.mayRead(id, r.URI)
					})
					return &filtered, nil
				case *mcp.ListResourceTemplatesResult:
					filtered := *lr
					filtered.ResourceTemplates = slices.DeleteFunc(slices.Clone(lr.ResourceTemplates), func(r *mcp.ResourceTemplate) bool {
						return !a.mayRead(id, r.URITemplate)
					})
					return &filtered, nil
				}
				return res, err
			}
			return next(ctx, method, req)
		}
	}
}

// mayRead reports whether id holds the scopes of the projection a
// resource URI (or URI template) belongs to; true for other resources.
func (a *Authenticator) mayRead(id *Identity, uri string) bool {
	name, ok := catalog.ProjectionOfURI(uri)
	if !ok {
		return true
	}
	need, known := a.table().byProjection[name]
	return !known || id.Has(need)
}
