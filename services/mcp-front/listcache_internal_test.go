package mcpfront

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// The cached answer must be byte for byte what the SDK would have sent,
// including fields the SDK sets after middleware (_meta, resultType).
func TestCachedToolsListEncodesLikeSDK(t *testing.T) {
	tools := []*mcp.Tool{
		{Name: "a", Description: "<b>&</b>", InputSchema: json.RawMessage(`{"type": "object"}`)},
		{Name: "b", InputSchema: json.RawMessage(`{"type":"object","properties":{"x":{"type":"string"}}}`), Meta: mcp.Meta{"k": "v"}},
	}
	c := &listCache{}
	mw := listCacheMiddleware(c, nil)
	for _, tc := range []struct {
		name   string
		result func() *mcp.ListToolsResult
	}{
		{"plain", func() *mcp.ListToolsResult { return &mcp.ListToolsResult{Tools: tools} }},
		{"cursor and meta", func() *mcp.ListToolsResult {
			r := &mcp.ListToolsResult{Tools: tools, NextCursor: "abc"}
			r.TTLMs, r.CacheScope = 5, "public"
			r.SetMeta(map[string]any{"io.modelcontextprotocol/serverInfo": map[string]string{"name": "toolbus"}})
			return r
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := mw(func(context.Context, string, mcp.Request) (mcp.Result, error) { return tc.result(), nil })
			for range 2 { // a miss, then a hit
				got, err := h(context.Background(), "tools/list", nil)
				if err != nil {
					t.Fatal(err)
				}
				if _, ok := got.(*cachedToolsList); !ok {
					t.Fatalf("result is %T, want the cached form", got)
				}
				gotJSON, err := encodeNoEscape(got)
				if err != nil {
					t.Fatal(err)
				}
				want, err := encodeNoEscape(tc.result())
				if err != nil {
					t.Fatal(err)
				}
				var compact bytes.Buffer
				_ = json.Compact(&compact, want)
				if !bytes.Equal(gotJSON, compact.Bytes()) {
					t.Errorf("cached:\n%s\nSDK:\n%s", gotJSON, compact.Bytes())
				}
			}
		})
	}
}

// A different tool set (a reload replaces every *mcp.Tool) is never
// answered from an older entry.
func TestListCacheKeyedByToolSet(t *testing.T) {
	c := &listCache{}
	one := []*mcp.Tool{{Name: "a", InputSchema: json.RawMessage(`{}`)}}
	two := []*mcp.Tool{{Name: "a", Description: "changed", InputSchema: json.RawMessage(`{}`)}}
	e1, _ := c.lookup(one)
	e2, _ := c.lookup(two)
	if bytes.Equal(e1.encoded, e2.encoded) {
		t.Fatalf("same encoding for different tool sets: %s", e1.encoded)
	}
	if again, _ := c.lookup(slicesClone(one)); again != e1 {
		t.Errorf("same tools, new slice: %s, want %s", again.encoded, e1.encoded)
	}
	for i := range listCacheEntries + 2 {
		c.lookup([]*mcp.Tool{{Name: string(rune('c' + i)), InputSchema: json.RawMessage(`{}`)}})
	}
	if len(c.entries) != listCacheEntries {
		t.Errorf("%d entries kept, want %d", len(c.entries), listCacheEntries)
	}
}

func slicesClone(s []*mcp.Tool) []*mcp.Tool { return append([]*mcp.Tool(nil), s...) }
