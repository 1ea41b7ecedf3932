package mcpfront

import (
	"bytes"
	"context"
	"encoding/json"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// tools/list answer cache.
//
// The go-sdk encodes the whole tool list on every tools/list: with 1,000
// tools that is ~600 KB of JSON (schemas, annotations, _meta) per request.
// listCacheMiddleware keeps the encoded "tools" array of the last few
// answers and reuses it while the answer lists the very same tools.
//
// The key is the tool set itself: the SDK's own handler still runs on every
// request (it only collects pointers under a lock), and the cached bytes are
// reused only when its answer holds the same *mcp.Tool pointers in the same
// order. AddTool and RemoveTools (Reload, hot reload, extras) replace those
// pointers, so a changed tool set can never be served from the cache, and
// notifications/tools/list_changed is sent by the SDK as before. The
// middleware is the outermost one, so an answer filtered per caller by the
// auth middleware is cached as filtered (one entry per distinct list).
//
// Only the tools array is cached: the rest of the result (cursor, _meta,
// resultType and cache hints, which the SDK sets after middleware for new
// protocol versions) is encoded afresh for every request. Over Streamable
// HTTP the cached array does not even pass through the SDK's encoder: it
// is written into the response directly (listfast.go).

// listCacheEntries bounds the distinct lists kept (pages, per-scope views).
const listCacheEntries = 4

type listCacheEntry struct {
	tools   []*mcp.Tool
	encoded []byte // the JSON array of tools

	// The last whole answer built from it, and the encoding of everything
	// but the tools it was built with: the rest of the result is normally
	// the same for every request, so the answer is not copied again.
	mu   sync.Mutex
	head []byte
	full []byte
}

type listCache struct {
	mu      sync.Mutex
	entries []*listCacheEntry // most recently used first
}

// lookup returns the encoded array for tools, encoding and remembering it
// on a miss.
func (c *listCache) lookup(tools []*mcp.Tool) (*listCacheEntry, error) {
	c.mu.Lock()
	for i, e := range c.entries {
		if sameTools(e.tools, tools) {
			if i > 0 {
				copy(c.entries[1:i+1], c.entries[:i])
				c.entries[0] = e
			}
			c.mu.Unlock()
			return e, nil
		}
	}
	c.mu.Unlock()
	enc, err := encodeNoEscape(tools)
	if err != nil {
		return nil, err
	}
	e := &listCacheEntry{tools: tools, encoded: enc}
	c.mu.Lock()
	c.entries = append([]*listCacheEntry{e}, c.entries...)
	if len(c.entries) > listCacheEntries {
		c.entries[listCacheEntries] = nil
		c.entries = c.entries[:listCacheEntries]
	}
	c.mu.Unlock()
	return e, nil
}

func sameTools(a, b []*mcp.Tool) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// encodeNoEscape marshals v like the SDK's JSON-RPC layer does (no HTML
// escaping), without the encoder's trailing newline.
func encodeNoEscape(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// listCacheMiddleware answers tools/list from the cache (see above). With
// sp, a request that came through sp's fast path has its tools array
// written directly into the HTTP response (listfast.go); sp may be nil.
func listCacheMiddleware(c *listCache, sp *listSplicer) mcp.Middleware {
	return func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			res, err := next(ctx, method, req)
			if err != nil || method != "tools/list" {
				return res, err
			}
			lr, ok := res.(*mcp.ListToolsResult)
			if !ok || len(lr.Tools) == 0 {
				return res, err
			}
			e, cerr := c.lookup(lr.Tools)
			if cerr != nil {
				return res, nil // the SDK encodes it the usual way
			}
			return &cachedToolsList{ListToolsResult: lr, entry: e, splice: sp.claim(req, e)}, nil
		}
	}
}

// cachedToolsList is a ListToolsResult whose tools array is already
// encoded. Embedding keeps the SDK's result methods (_meta, resultType),
// which the SDK may still call after middleware.
type cachedToolsList struct {
	*mcp.ListToolsResult
	entry *listCacheEntry
	// splice, when set, is the fast-path slot of the POST being answered:
	// the tools are encoded as its token, which the slot's writer replaces
	// with entry.encoded (listfast.go).
	splice *spliceSlot
}

// toolsSuffix ends the encoding of a ListToolsResult whose Tools is empty:
// Tools is the struct's last field and is never omitted.
var toolsSuffix = []byte(`"tools":[]}`)

func (r *cachedToolsList) MarshalJSON() ([]byte, error) {
	h := *r.ListToolsResult
	h.Tools = []*mcp.Tool{}
	b, err := encodeNoEscape(&h)
	if err != nil {
		return nil, err
	}
	if !bytes.HasSuffix(b, toolsSuffix) {
		// An SDK whose field order differs: encode it all.
		return encodeNoEscape(r.ListToolsResult)
	}
	head := b[:len(b)-len(toolsSuffix)]
	if r.splice != nil {
		out := append(head, `"tools":`...)
		out = append(out, r.splice.quoted...)
		return append(out, '}'), nil
	}
	e := r.entry
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.full != nil && bytes.Equal(e.head, head) {
		// Shared read-only: encoding/json copies it while compacting.
		return e.full, nil
	}
	out := make([]byte, 0, len(head)+len(`"tools":}`)+len(e.encoded))
	out = append(out, head...)
	out = append(out, `"tools":`...)
	out = append(out, e.encoded...)
	out = append(out, '}')
	e.head, e.full = head, out
	return out, nil
}
