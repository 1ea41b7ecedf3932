package bus

import (
	"google.golang.org/protobuf/proto"

	toolbusv1 "github.com/toolbus/toolbus/gen/toolbus/v1"
)

// withoutCallerToken returns a call payload fit to keep: the caller's
// bearer token (present only for upstreams that forward or exchange it)
// is removed, since dead letters are stored for weeks and a replay must
// not act as the user. A payload that does not decode is kept as it is.
func withoutCallerToken(data []byte) []byte {
	var call toolbusv1.ToolCall
	if proto.Unmarshal(data, &call) != nil || call.GetCaller().GetToken() == "" {
		return data
	}
	call.Caller.Token = ""
	out, err := proto.Marshal(&call)
	if err != nil {
		return data
	}
	return out
}
