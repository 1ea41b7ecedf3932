package mcpfront

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/toolbus/toolbus/bus"
	"github.com/toolbus/toolbus/catalog"
	toolbusv1 "github.com/toolbus/toolbus/gen/toolbus/v1"
	"github.com/toolbus/toolbus/mcpauth"
)

// frontTool is a catalog tool prepared once for serving: everything the hot
// path needs is computed here, not per call.
type frontTool struct {
	cat      *catalog.Tool
	name     string
	upstream string
	kind     string
	subject  string
	timeout  time.Duration
	mcp      *mcp.Tool
	proto    *toolbusv1.Tool
}

func newFrontTool(t *catalog.Tool) (*frontTool, error) {
	if t.IsVirtual() {
		return newVirtualTool(t) // composite.go
	}
	if t.Upstream == nil {
		return nil, fmt.Errorf("mcpfront: tool %s has no upstream", t.Name)
	}
	if len(t.InputSchema) == 0 {
		return nil, fmt.Errorf("mcpfront: tool %s has no input schema", t.Name)
	}
	kind := string(t.Upstream.Kind)
	if kind == "" {
		kind = string(catalog.KindREST)
	}
	timeout := t.CallTimeout()
	if timeout <= 0 {
		timeout = catalog.DefaultTimeout
	}
	a := t.Annotations
	readOnly, destructive := flag(a.ReadOnly, false), flag(a.Destructive, true)
	idempotent, openWorld := flag(a.Idempotent, false), flag(a.OpenWorld, true)
	mt := &mcp.Tool{
		Name:        t.Name,
		Title:       t.Title,
		Description: t.Description,
		InputSchema: t.InputSchema,
		Annotations: &mcp.ToolAnnotations{
			Title:           a.Title,
			ReadOnlyHint:    readOnly,
			DestructiveHint: &destructive,
			IdempotentHint:  idempotent,
			OpenWorldHint:   &openWorld,
		},
	}
	// Only a declared schema may be set: a nil RawMessage in the interface
	// would be sent as "outputSchema": null.
	if len(t.OutputSchema) > 0 {
		mt.OutputSchema = t.OutputSchema
	}
	if len(t.Meta) > 0 {
		mt.Meta = mcp.Meta(t.Meta)
	}
	return &frontTool{
		cat:      t,
		name:     t.Name,
		upstream: t.Upstream.Name,
		kind:     kind,
		subject:  bus.CallSubject(kind, t.Upstream.Name, t.Name),
		timeout:  timeout,
		mcp:      mt,
		proto: &toolbusv1.Tool{
			Name:             t.Name,
			Title:            t.Title,
			Description:      t.Description,
			InputSchemaJson:  string(t.InputSchema),
			OutputSchemaJson: string(t.OutputSchema),
			ReadOnly:         readOnly,
			Destructive:      destructive,
			Idempotent:       idempotent,
			OpenWorld:        openWorld,
			Upstream:         t.Upstream.Name,
		},
	}, nil
}

// flag reads an annotation the loader normally fills; def is MCP's default
// for a hint left unset by a hand-built catalog.
func flag(b *bool, def bool) bool {
	if b == nil {
		return def
	}
	return *b
}

// mcpToolHandler adapts the shared call path to tools/call. The SDK answers
// unknown tools with a protocol error before this runs.
func (s *Service) mcpToolHandler(ft *frontTool) mcp.ToolHandler {
	return func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		key, err := idempotencyKeyFromMeta(req.Params.Meta)
		if err != nil {
			return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: err.Error()}
		}
		var caller *mcpauth.Identity
		if req.Extra != nil {
			caller, _ = mcpauth.FromTokenInfo(req.Extra.TokenInfo)
		}
		var session string
		if req.Session != nil {
			session = req.Session.ID()
		}
		ctx = mcpTraceContext(ctx, req)
		res, err := s.call(ctx, callRequest{tool: ft, args: req.Params.Arguments, idempotencyKey: key, via: "mcp", caller: caller, sessionID: session,
			progress: mcpProgress(req)}) // progress.go
		if err != nil {
			var argErr *catalog.ArgumentError
			switch {
			case errors.As(err, &argErr):
				// The model can fix its arguments: a tool error, listing
				// every invalid field so one retry can fix them all.
				return &mcp.CallToolResult{
					IsError: true,
					Content: []mcp.Content{&mcp.TextContent{Text: argErr.Error()}},
					Meta: mcp.Meta{metaError: errorMeta{
						Class: className(toolbusv1.ErrorClass_ERROR_CLASS_INVALID_ARGUMENT),
						Code:  "invalid_arguments",
					}},
				}, nil
			case errors.Is(err, errBadIdempotencyKey):
				return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: err.Error()}
			}
			return nil, err
		}
		return withResultMeta(mcpResult(res), ft.cat, res), nil // continue.go
	}
}

// metaError is the result _meta key that explains a failed call.
const metaError = "toolbus/error"

// mcpResult maps a worker's answer to an MCP result:
//   - Error set: isError, the error's one-line message as text, and
//     _meta["toolbus/error"] = {class, code, retryable, retryAfterSeconds,
//     upstreamStatus};
//   - JSON body: structuredContent is the object, or {"result": value} for an
//     array or scalar (structured content must be an object), and one text
//     item holds the JSON text for clients without structured support;
//     a text set next to the JSON (a note such as GraphQL errors beside
//     partial data) is a second text item;
//   - text body: one text item.
func mcpResult(r *toolbusv1.ToolResult) *mcp.CallToolResult {
	if e := r.GetError(); e != nil {
		return &mcp.CallToolResult{
			IsError: true,
			Content: []mcp.Content{&mcp.TextContent{Text: e.GetMessage()}},
			Meta:    mcp.Meta{metaError: newErrorMeta(e)},
		}
	}
	if len(r.Json) > 0 {
		content := []mcp.Content{&mcp.TextContent{Text: string(r.Json)}}
		if r.Text != "" {
			// A note on the data (GraphQL errors next to partial data, a
			// cursor for more pages) follows it, so the model sees both.
			content = append(content, &mcp.TextContent{Text: r.Text})
		}
		if sc, ok := structured(r.Json); ok {
			return &mcp.CallToolResult{Content: content, StructuredContent: sc}
		}
		return &mcp.CallToolResult{Content: content}
	}
	text := r.Text
	if text == "" {
		// An empty text item tells a model nothing; say what happened.
		text = "The upstream answered with an empty body"
		if r.UpstreamStatus != 0 {
			text += " (HTTP " + strconv.Itoa(int(r.UpstreamStatus)) + ")"
		}
		text += "."
	}
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: text}}}
}
