package mcpauth

import (
	"context"
	"errors"
	"slices"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	toolbusv1 "github.com/toolbus/toolbus/gen/toolbus/v1"
)

// toolServicePrefix limits the interceptor to ToolService: health checks on
// the same server stay open to probes.
var toolServicePrefix = "/" + toolbusv1.ToolService_ServiceDesc.ServiceName + "/"

// UnaryServerInterceptor authenticates ToolService calls with the
// "authorization: Bearer <token>" metadata: Unauthenticated without valid
// credentials, PermissionDenied for a tool the caller lacks scopes for,
// and ListTools filtered like MCP's tools/list. The caller is put into the
// context (FromContext).
func (a *Authenticator) UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if !a.Enabled() || !strings.HasPrefix(info.FullMethod, toolServicePrefix) {
			return handler(ctx, req)
		}
		var token string
		if md, ok := metadata.FromIncomingContext(ctx); ok {
			if v := md.Get("authorization"); len(v) == 1 {
				token = bearer(v[0])
			}
		}
		id, err := a.Verify(ctx, token)
		if err != nil {
			if errors.Is(err, ErrInvalidToken) {
				a.log.InfoContext(ctx, "gRPC call refused", "method", info.FullMethod, "reason", err.Error())
				return nil, status.Error(codes.Unauthenticated, err.Error()+"; send metadata authorization: Bearer <token>")
			}
			a.log.ErrorContext(ctx, "gRPC credentials could not be checked", "error", err.Error())
			return nil, status.Error(codes.Unavailable, "credentials cannot be checked right now; retry shortly")
		}
		ctx = NewContext(ctx, id)
		if ct, ok := req.(*toolbusv1.CallToolRequest); ok {
			if need, known := a.table().byTool[ct.GetName()]; known {
				if missing := id.Missing(need); len(missing) > 0 {
					a.log.InfoContext(ctx, "tool call refused: insufficient scope", "tool", ct.GetName(), "caller", id, "missing", strings.Join(missing, " "))
					return nil, status.Error(codes.PermissionDenied, "insufficient_scope: tool "+ct.GetName()+" requires scopes "+strings.Join(need, " "))
				}
			}
		}
		resp, err := handler(ctx, req)
		if lr, ok := resp.(*toolbusv1.ListToolsResponse); ok && err == nil && a.table().auth.FilterToolsList {
			lr.Tools = slices.DeleteFunc(slices.Clone(lr.Tools), func(t *toolbusv1.Tool) bool {
				return !id.Has(a.table().byTool[t.GetName()])
			})
		}
		return resp, err
	}
}
