package mcpfront

import (
	"context"
	"errors"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/toolbus/toolbus/catalog"
	toolbusv1 "github.com/toolbus/toolbus/gen/toolbus/v1"
	"github.com/toolbus/toolbus/mcpauth"
)

// RegisterGRPC registers toolbus.v1.ToolService on g. Its calls take the
// same path as MCP tools/call; status codes are used only for protocol
// faults, and upstream failures come back in CallToolResponse.error.
func (s *Service) RegisterGRPC(g *grpc.Server) {
	toolbusv1.RegisterToolServiceServer(g, toolService{s: s})
}

type toolService struct {
	toolbusv1.UnimplementedToolServiceServer
	s *Service
}

var _ toolbusv1.ToolServiceServer = toolService{}

func (ts toolService) ListTools(context.Context, *toolbusv1.ListToolsRequest) (*toolbusv1.ListToolsResponse, error) {
	cur := ts.s.current()
	tools := make([]*toolbusv1.Tool, 0, len(cur.cat.Tools))
	for _, t := range cur.cat.Tools {
		tools = append(tools, cur.tools[t.Name].proto)
	}
	return &toolbusv1.ListToolsResponse{Tools: tools}, nil
}

func (ts toolService) CallTool(ctx context.Context, req *toolbusv1.CallToolRequest) (*toolbusv1.CallToolResponse, error) {
	ft, ok := ts.s.current().tools[req.GetName()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "unknown tool %q", req.GetName())
	}
	var args []byte
	if req.GetArguments() != nil {
		var err error
		if args, err = protojson.Marshal(req.GetArguments()); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "arguments: %v", err)
		}
	}
	caller, _ := mcpauth.FromContext(ctx)
	res, err := ts.s.call(grpcTraceContext(ctx), callRequest{tool: ft, args: args, idempotencyKey: req.GetIdempotencyKey(), via: "grpc", caller: caller})
	if err != nil {
		return nil, grpcStatus(err)
	}
	return &toolbusv1.CallToolResponse{Json: string(res.GetJson()), Text: res.GetText(), Error: res.GetError()}, nil
}

// grpcStatus maps a protocol fault of the call path to a status. Invalid
// arguments list every field in the message and as BadRequest details.
func grpcStatus(err error) error {
	var argErr *catalog.ArgumentError
	switch {
	case errors.As(err, &argErr):
		st := status.New(codes.InvalidArgument, argErr.Error())
		br := &errdetails.BadRequest{}
		for _, p := range argErr.Problems {
			br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{Field: p.Path, Description: p.Message})
		}
		if withDetails, derr := st.WithDetails(br); derr == nil {
			st = withDetails
		}
		return st.Err()
	case errors.Is(err, errBadIdempotencyKey):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return status.FromContextError(err).Err()
	}
	return status.Error(codes.Internal, err.Error())
}
