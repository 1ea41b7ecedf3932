package bus

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/proto"

	toolbusv1 "github.com/toolbus/toolbus/gen/toolbus/v1"
)

func TestDeadLetterPayloadDropsCallerToken(t *testing.T) {
	in, _ := proto.Marshal(&toolbusv1.ToolCall{Id: "c1", Caller: &toolbusv1.Caller{Subject: "alice", Token: "eyJ-secret-token"}})
	var out toolbusv1.ToolCall
	if err := proto.Unmarshal(withoutCallerToken(in), &out); err != nil {
		t.Fatal(err)
	}
	if out.GetCaller().GetToken() != "" || out.GetCaller().GetSubject() != "alice" || out.GetId() != "c1" {
		t.Errorf("got %v, want the call with its caller but no token", &out)
	}
	plain, _ := proto.Marshal(&toolbusv1.ToolCall{Id: "c2", Caller: &toolbusv1.Caller{Subject: "bob"}})
	poison := []byte{0xff, 0x01}
	for _, p := range [][]byte{plain, poison} {
		if got := withoutCallerToken(p); !bytes.Equal(got, p) {
			t.Errorf("payload %x changed to %x", p, got)
		}
	}
}
