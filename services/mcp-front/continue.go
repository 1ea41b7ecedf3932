package mcpfront

import (
	"context"
	"errors"
	"fmt"
	"maps"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/toolbus/toolbus/bus"
	"github.com/toolbus/toolbus/catalog"
	toolbusv1 "github.com/toolbus/toolbus/gen/toolbus/v1"
	"github.com/toolbus/toolbus/shape"
)

// openStores binds the cache and continuation buckets. Both are optional
// comforts: without them calls are published as usual and a capped answer
// says the rest could not be read.
func (s *Service) openStores(ctx context.Context) {
	if c, err := bus.OpenResultCache(ctx, s.js); err != nil {
		s.log.Warn("tool cache unavailable; cached tools call their upstream every time", "error", err)
	} else {
		s.cache = &frontCache{store: c}
	}
	if c, err := bus.OpenContinuations(ctx, s.js); err != nil {
		s.log.Warn("continuations unavailable", "error", err)
	} else {
		s.conts = c
	}
}

// metaCache marks an answer served from the cache.
const metaCache = "toolbus/cache"

// withResultMeta adds the tool's result_meta (and a cache mark) to a
// successful result's _meta.
func withResultMeta(out *mcp.CallToolResult, t *catalog.Tool, res *toolbusv1.ToolResult) *mcp.CallToolResult {
	if out.IsError {
		return out
	}
	if len(t.ResultMeta) > 0 || res.GetWorker() == cacheWorker {
		if out.Meta == nil {
			out.Meta = mcp.Meta{}
		}
		maps.Copy(out.Meta, t.ResultMeta)
		if res.GetWorker() == cacheWorker {
			out.Meta[metaCache] = "hit"
		}
	}
	return out
}

// continueArgs are the arguments of a <tool>_continue tool.
type continueArgs struct {
	Continuation string `json:"continuation" jsonschema:"the handle from the TRUNCATED note of the previous part"`
}

// addCatalogExtras serves what the catalog adds around its tools: the
// <tool>_continue companion of every capped tool, and the widgets.
func (s *Service) addCatalogExtras(cat *catalog.Catalog) {
	for _, t := range cat.Tools {
		if t.Response == nil || t.Response.MaxBytes <= 0 {
			continue
		}
		mcp.AddTool(s.server, continueTool(t), s.continueHandler(t))
	}
	s.addWidgets(cat) // widgets.go
}

func continueTool(t *catalog.Tool) *mcp.Tool {
	return &mcp.Tool{
		Name:        t.Name + catalog.ContinueSuffix,
		Description: fmt.Sprintf("Returns the next part of an answer of %s that was too long to send at once. Pass the continuation handle from the TRUNCATED note.", t.Name),
		Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true, IdempotentHint: true, OpenWorldHint: new(false), DestructiveHint: new(false)},
	}
}

func (s *Service) continueHandler(t *catalog.Tool) mcp.ToolHandlerFor[continueArgs, any] {
	return func(ctx context.Context, _ *mcp.CallToolRequest, in continueArgs) (*mcp.CallToolResult, any, error) {
		fail := func(msg string) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: msg}}}, nil, nil
		}
		id, offset, ok := shape.ParseHandle(in.Continuation)
		if !ok {
			return fail("continuation: not a handle from a TRUNCATED note; call " + t.Name + " again")
		}
		if s.conts == nil {
			return fail("the rest of this answer is not available on this Toolbus instance; call " + t.Name + " again with narrower arguments")
		}
		text, err := s.conts.Get(ctx, id)
		switch {
		case errors.Is(err, bus.ErrContinuationExpired):
			return fail(fmt.Sprintf("this continuation has expired (they are kept %s); call %s again", bus.ContinuationTTL, t.Name))
		case err != nil:
			return fail("the rest of this answer could not be read (the message bus is unavailable); retry shortly")
		case offset >= len(text):
			return fail("continuation: the offset is past the end of the answer")
		}
		part, next := shape.Part(text, offset, t.Response.MaxBytes)
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{
			Text: string(part) + "\n\n" + shape.Note(t.Name, offset, next, len(text), id, nil),
		}}}, nil, nil
	}
}
