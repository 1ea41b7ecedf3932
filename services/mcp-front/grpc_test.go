package mcpfront_test

import (
	"net"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"

	toolbusv1 "github.com/toolbus/toolbus/gen/toolbus/v1"
)

// grpcClient serves the rig's ToolService on a loopback listener.
func grpcClient(t *testing.T, r *rig) toolbusv1.ToolServiceClient {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	r.svc.RegisterGRPC(g)
	served := make(chan error, 1)
	go func() { served <- g.Serve(lis) }()
	t.Cleanup(func() {
		g.Stop()
		if err := <-served; err != nil {
			t.Errorf("grpc serve: %v", err)
		}
	})
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return toolbusv1.NewToolServiceClient(cc)
}

func TestGRPCListTools(t *testing.T) {
	r := newRig(t, rigOptions{})
	c := grpcClient(t, r)
	res, err := c.ListTools(ctxTimeout(t, 5*time.Second), &toolbusv1.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var want []*toolbusv1.Tool
	for _, ct := range r.cat.Tools {
		a := ct.Annotations
		want = append(want, &toolbusv1.Tool{
			Name: ct.Name, Title: ct.Title, Description: ct.Description,
			InputSchemaJson: string(ct.InputSchema), OutputSchemaJson: string(ct.OutputSchema),
			ReadOnly: *a.ReadOnly, Destructive: *a.Destructive, Idempotent: *a.Idempotent, OpenWorld: *a.OpenWorld,
			Upstream: ct.Upstream.Name,
		})
	}
	if diff := cmp.Diff(want, res.Tools, protocmp.Transform()); diff != "" {
		t.Errorf("tools (-want +got):\n%s", diff)
	}
}

func TestGRPCCallTool(t *testing.T) {
	r := newRig(t, rigOptions{})
	c := grpcClient(t, r)
	args := func(m map[string]any) *structpb.Struct {
		s, err := structpb.NewStruct(m)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	tests := []struct {
		name string
		give *toolbusv1.CallToolRequest
		want *toolbusv1.CallToolResponse
	}{
		{
			name: "json",
			give: &toolbusv1.CallToolRequest{Name: "get_customer", Arguments: args(map[string]any{"id": "42"})},
			want: &toolbusv1.CallToolResponse{Json: `{"id":"42","name":"Ada"}` + "\n"},
		},
		{
			name: "text without arguments",
			give: &toolbusv1.CallToolRequest{Name: "ping"},
			want: &toolbusv1.CallToolResponse{Text: "pong"},
		},
		{
			name: "idempotency key reaches the upstream",
			give: &toolbusv1.CallToolRequest{Name: "echo", Arguments: args(map[string]any{"tag": "t1"}), IdempotencyKey: "k-1"},
			want: &toolbusv1.CallToolResponse{Json: `{"idempotencyKey":"k-1","tag":"t1"}` + "\n"},
		},
		{
			name: "upstream failure is a response, not a status",
			give: &toolbusv1.CallToolRequest{Name: "limited"},
			want: &toolbusv1.CallToolResponse{Error: &toolbusv1.ToolError{
				Class: toolbusv1.ErrorClass_ERROR_CLASS_RATE_LIMITED, Code: "upstream_rate_limited",
				Message: "rate limited by crm, retry after 30s", Retryable: true,
				RetryAfter: durationpb.New(30 * time.Second), UpstreamStatus: 429,
			}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.CallTool(ctxTimeout(t, 5*time.Second), tt.give)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, protocmp.Transform()); diff != "" {
				t.Errorf("response (-want +got):\n%s", diff)
			}
		})
	}
}

func TestGRPCProtocolFaults(t *testing.T) {
	r := newRig(t, rigOptions{})
	c := grpcClient(t, r)
	bad, err := structpb.NewStruct(map[string]any{"tier": "gold", "age": -1})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		give        *toolbusv1.CallToolRequest
		wantCode    codes.Code
		wantMessage string
		wantFields  []string
	}{
		{
			name:        "unknown tool",
			give:        &toolbusv1.CallToolRequest{Name: "nope"},
			wantCode:    codes.NotFound,
			wantMessage: `unknown tool "nope"`,
		},
		{
			name:        "invalid arguments",
			give:        &toolbusv1.CallToolRequest{Name: "create_customer", Arguments: bad},
			wantCode:    codes.InvalidArgument,
			wantMessage: "invalid arguments for tool create_customer: age: minimum: got -1, want 0; name: missing required property; tier: value must be one of 'free', 'pro'",
			wantFields:  []string{"age", "name", "tier"},
		},
		{
			name:        "invalid idempotency key",
			give:        &toolbusv1.CallToolRequest{Name: "ping", IdempotencyKey: "has space"},
			wantCode:    codes.InvalidArgument,
			wantMessage: "invalid idempotency key: character 4 is not visible ASCII",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.CallTool(ctxTimeout(t, 5*time.Second), tt.give)
			st := status.Convert(err)
			var fields []string
			for _, d := range st.Details() {
				if br, ok := d.(*errdetails.BadRequest); ok {
					for _, v := range br.FieldViolations {
						fields = append(fields, v.Field)
					}
				}
			}
			type fault struct {
				Code    codes.Code
				Message string
				Fields  []string
			}
			want := fault{tt.wantCode, tt.wantMessage, tt.wantFields}
			if diff := cmp.Diff(want, fault{st.Code(), st.Message(), fields}); diff != "" {
				t.Errorf("status (-want +got):\n%s", diff)
			}
		})
	}
	if n := r.callsStored(t); n != 0 {
		t.Errorf("CALLS stored %d messages, want none", n)
	}
}
