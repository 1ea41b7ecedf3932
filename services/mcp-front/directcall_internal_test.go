package mcpfront

import (
	"testing"
)

func TestParseDirect(t *testing.T) {
	for _, tc := range []struct {
		body     string
		ok       bool
		name     string
		idKey    string
		args     string
		metaKeys int
	}{
		{`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","arguments":{"x":1}}}`, true, "a", "1", `{"x":1}`, 0},
		{`{"jsonrpc":"2.0","id":"s","method":"tools/call","params":{"name":"a"}}`, true, "a", `"s"`, ``, 0},
		{`{"jsonrpc":"2.0","id":-12,"method":"tools/call","params":{"name":"a","_meta":{"toolbus/idempotencyKey":"k"}}}`, true, "a", "-12", ``, 1},
		{`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","_meta":{"progressToken":1}}}`, false, "", "", "", 0},
		{`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","_meta":{"io.modelcontextprotocol/protocolVersion":"x"}}}`, false, "", "", "", 0},
		{`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","_meta":null}}`, false, "", "", "", 0},
		{`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":""}}`, false, "", "", "", 0},
		{`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a\"b"}}`, false, "", "", "", 0},
		{`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","arguments":null}}`, false, "", "", "", 0},
		{`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":null}`, false, "", "", "", 0},
		{`{"jsonrpc":"2.0","id":null,"method":"tools/call","params":{"name":"a"}}`, false, "", "", "", 0},
		{`{"jsonrpc":"2.0","id":01,"method":"tools/call","params":{"name":"a"}}`, false, "", "", "", 0},
		{`{"jsonrpc":"2.0","id":1e3,"method":"tools/call","params":{"name":"a"}}`, false, "", "", "", 0},
		{`{"jsonrpc":"2.0","id":"a\\nb","method":"tools/call","params":{"name":"a"}}`, false, "", "", "", 0},
		{`{"jsonrpc":"2.0","id":123456789012345,"method":"tools/call","params":{"name":"a"}}`, true, "a", "123456789012345", ``, 0},
		{`{"jsonrpc":"2.0","id":1234567890123456,"method":"tools/call","params":{"name":"a"}}`, false, "", "", "", 0},
		{`{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"name":"a"}}`, false, "", "", "", 0},
		{`{"jsonrpc":"2.0","id":1,"method":"tools/call"}`, false, "", "", "", 0},
		{`[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a"}}]`, false, "", "", "", 0},
		{`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a"}} x`, false, "", "", "", 0},
	} {
		dr, ok := parseDirect([]byte(tc.body))
		if ok != tc.ok {
			t.Errorf("%s: ok = %v, want %v", tc.body, ok, tc.ok)
			continue
		}
		if !ok {
			continue
		}
		if dr.name != tc.name || dr.idKey != tc.idKey || string(dr.args) != tc.args || len(dr.meta) != tc.metaKeys {
			t.Errorf("%s: got name %q id %q args %q meta %v", tc.body, dr.name, dr.idKey, dr.args, dr.meta)
		}
	}
}

func TestAcceptsBoth(t *testing.T) {
	for _, tc := range []struct {
		values []string
		want   bool
	}{
		{[]string{"application/json, text/event-stream"}, true},
		{[]string{"text/event-stream", "Application/JSON"}, true},
		{[]string{"application/json"}, false},
		{[]string{"*/*"}, false},
		{[]string{"application/json;q=0, text/event-stream"}, false},
		{nil, false},
	} {
		if got := acceptsBoth(tc.values); got != tc.want {
			t.Errorf("acceptsBoth(%q) = %v, want %v", tc.values, got, tc.want)
		}
	}
}
