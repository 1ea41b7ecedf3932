package deadletter

import (
	"testing"

	"google.golang.org/protobuf/proto"

	toolbusv1 "github.com/toolbus/toolbus/gen/toolbus/v1"
)

// FuzzDecode feeds arbitrary bytes to the dead-letter decoder used by
// `toolbus dlq` and the console: it never panics, and an entry's Call is
// set only for a "call" dead letter whose payload names a tool.
func FuzzDecode(f *testing.F) {
	call, _ := proto.Marshal(&toolbusv1.ToolCall{Id: "c", Tool: "t", Upstream: "crm"})
	for _, dl := range []*toolbusv1.DeadLetter{
		{Id: "d1", Kind: "call", Payload: call, Reason: "retries exhausted"},
		{Id: "d2", Kind: "call", Payload: []byte{0xff, 0x01}},
		{Id: "d3", Kind: "webhook", Payload: []byte(`{"id":"evt"}`), Headers: map[string]string{"a": "b"}},
	} {
		b, err := proto.Marshal(dl)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := decode(7, data)
		if err != nil {
			return
		}
		if e.Seq != 7 || e.DeadLetter == nil {
			t.Fatalf("decoded entry %+v", e)
		}
		if e.Call != nil && (e.Kind != "call" || e.Call.Tool == "") {
			t.Fatalf("kind %q has a call %v", e.Kind, e.Call)
		}
	})
}
