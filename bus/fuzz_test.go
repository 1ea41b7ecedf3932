package bus

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	toolbusv1 "github.com/toolbus/toolbus/gen/toolbus/v1"
)

// FuzzDecodeToolCall feeds arbitrary bytes to what a worker and a caller
// do with a message from the bus: decode a ToolCall (its deadline and
// acceptance time), strip the caller's token before a dead letter is kept,
// and decode a ToolResult. None of it may panic, and a stripped payload
// must never still carry the token.
func FuzzDecodeToolCall(f *testing.F) {
	for _, c := range []*toolbusv1.ToolCall{
		{Id: "c1", Tool: "get_customer", Upstream: "crm", Arguments: []byte(`{"id":1}`), Deadline: timestamppb.Now()},
		{Id: "c2", Tool: "t", Caller: &toolbusv1.Caller{Subject: "u", Token: "secret-token-value"}, AcceptedAt: &timestamppb.Timestamp{Seconds: -1 << 40, Nanos: -5}},
	} {
		b, err := proto.Marshal(c)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, data []byte) {
		call := &toolbusv1.ToolCall{}
		if proto.Unmarshal(data, call) == nil {
			_ = call.GetDeadline().AsTime()
			_ = call.GetAcceptedAt().AsTime()
			_ = call.GetDeadline().CheckValid()
		}
		kept := withoutCallerToken(data)
		again := &toolbusv1.ToolCall{}
		if proto.Unmarshal(kept, again) == nil {
			if tok := again.GetCaller().GetToken(); tok != "" {
				// Only a payload that did not decode is kept verbatim.
				if proto.Unmarshal(data, &toolbusv1.ToolCall{}) == nil || !bytes.Equal(kept, data) {
					t.Fatalf("dead-letter payload still carries the caller token %q", tok)
				}
			}
		}
		_ = proto.Unmarshal(data, &toolbusv1.ToolResult{})
	})
}
