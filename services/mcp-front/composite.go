package mcpfront

import (
	"context"
	"errors"
	"fmt"

	"github.com/toolbus/toolbus/bus"
	"github.com/toolbus/toolbus/catalog"
	"github.com/toolbus/toolbus/composite"
	toolbusv1 "github.com/toolbus/toolbus/gen/toolbus/v1"
)

// newVirtualTool prepares a composite or batch tool: it has no upstream
// and no subject; package composite runs it, each inner call through the
// bus.
func newVirtualTool(t *catalog.Tool) (*frontTool, error) {
	kind := "composite"
	if t.Batch != nil {
		kind = "batch"
	}
	probe := *t
	probe.Upstream = &catalog.Upstream{Name: "", Kind: catalog.Kind(kind), Timeout: t.CallTimeout()}
	probe.Composite, probe.Batch = nil, nil
	ft, err := newFrontTool(&probe)
	if err != nil {
		return nil, err
	}
	ft.cat, ft.subject = t, ""
	ft.proto.Upstream = ""
	return ft, nil
}

// runVirtual runs a composite or batch tool within ctx's deadline. The
// composite's idempotency key (the client's, or its call id) derives each
// inner call's key.
func (s *Service) runVirtual(ctx context.Context, caller *bus.Caller, req callRequest, tc *toolbusv1.ToolCall, args map[string]any) (*toolbusv1.ToolResult, error, error) {
	key := req.idempotencyKey
	if key == "" {
		key = tc.Id
	}
	r := &composite.Runner{Bus: caller, Tracer: s.tracer, CatalogDigest: s.current().cat.Digest,
		CallerFor: func(t *catalog.Tool) *toolbusv1.Caller {
			if req.caller == nil {
				return nil
			}
			return req.caller.Proto(t.Upstream.Auth.NeedsCallerToken())
		}}
	res, err := r.Run(ctx, composite.Call{Tool: req.tool.cat, Args: args, IdempotencyKey: key})
	switch {
	case err == nil:
		return res, nil, nil
	case errors.Is(err, context.Canceled):
		return nil, nil, err
	}
	return &toolbusv1.ToolResult{Error: &toolbusv1.ToolError{
		Class:   toolbusv1.ErrorClass_ERROR_CLASS_INTERNAL,
		Code:    "internal",
		Message: fmt.Sprintf("tool %s could not be run because of a fault inside Toolbus (%v); retrying may help", req.tool.name, err),
	}}, err, nil
}
