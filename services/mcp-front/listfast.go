package mcpfront

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// tools/list fast path over Streamable HTTP ("splicing").
//
// listCacheMiddleware (listcache.go) keeps the encoded tools array, but the
// go-sdk's JSON-RPC layer still compacts the whole ~600 KB result twice
// (jsonrpc2.marshalToRaw validating a Marshaler's output, then
// EncodeMessage on the json.RawMessage) and copies it into the SSE event.
// No Result a middleware can return avoids that.
//
// The fast path does not answer tools/list itself. The SDK still serves the
// request exactly as before: session lookup and its errors, protocol
// version and header checks, Accept and Content-Type, initialization gate,
// auth and the per-caller filtering middleware, the result's _meta and
// resultType per protocol version, JSON or SSE framing, status and
// headers. The only difference is how the tools array reaches the wire:
//
//  1. For a POST whose body is a single JSON-RPC object naming tools/list,
//     wrap serves it with a one-request slot: an unguessable token (random
//     per process, plus a counter) passed to the MCP layer in an internal
//     request header, and a ResponseWriter that knows the slot. A header of
//     that name sent by a client is removed first.
//  2. listCacheMiddleware, once the SDK's handler (and the auth filter)
//     produced the list and the cache found its encoded array, claims the
//     slot named by the request's header (RequestExtra.Header is that very
//     POST's header) and stores the cache entry in it, at most once.
//  3. The result then encodes the tools as the JSON string "<token>": the
//     SDK compacts and frames a few hundred bytes instead of 600 KB.
//  4. The ResponseWriter replaces the quoted token with the cached array as
//     it writes the response, so the client receives the very bytes the SDK
//     would have sent.
//
// The SDK routes the response to a request to that request's own POST
// stream (never the standalone GET stream), and without an EventStore
// (mcp-front configures none) it keeps no copy to replay, so the token can
// only reach the writer that replaces it. Any request the slot is not
// claimed for (other methods, batches, stdio, a token that is not pending,
// an empty list, a second tools/list) is encoded by the SDK as before.

// listSpliceHeader carries the slot's token from wrap to the middleware.
// It is internal: wrap deletes it from every incoming request.
const listSpliceHeader = "X-Toolbus-Internal-List-Splice"

// listPeekBytes bounds the body wrap reads to recognise a tools/list
// request. tools/list bodies are tiny; larger bodies go to the SDK unread.
const listPeekBytes = 16 << 10

type listSplicer struct {
	prefix  string // random per process, so tokens cannot be guessed
	seq     atomic.Uint64
	pending sync.Map // token → *spliceSlot, while its POST is being served

	// off makes every request take the SDK's own path (tests compare both).
	off atomic.Bool
	// spliced counts the answers whose tools array was written directly.
	spliced atomic.Int64
}

func newListSplicer() *listSplicer {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return &listSplicer{prefix: "toolbus-list-" + hex.EncodeToString(b[:]) + "-"}
}

// spliceSlot is one armed POST.
type spliceSlot struct {
	sp     *listSplicer
	token  string
	quoted []byte // the token as a JSON string: what the result encodes
	entry  atomic.Pointer[listCacheEntry]
}

// claim returns the slot of the POST that carried req, with e stored in it,
// or nil when the answer must be encoded the usual way.
func (sp *listSplicer) claim(req mcp.Request, e *listCacheEntry) *spliceSlot {
	if sp == nil || req == nil {
		return nil
	}
	ex := req.GetExtra()
	if ex == nil || ex.Header == nil {
		return nil
	}
	tok := ex.Header.Get(listSpliceHeader)
	if tok == "" {
		return nil
	}
	v, ok := sp.pending.Load(tok)
	if !ok {
		return nil
	}
	slot := v.(*spliceSlot)
	if !slot.entry.CompareAndSwap(nil, e) {
		return nil
	}
	return slot
}

// wrap puts the fast paths in front of the SDK's Streamable HTTP handler:
// tools/list splicing here, tools/call in direct (directcall.go; nil for
// none). The body is read once for both.
func (sp *listSplicer) wrap(next http.Handler, direct *directCalls) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, forged := r.Header[listSpliceHeader]; forged {
			r2 := *r
			r2.Header = r.Header.Clone()
			r2.Header.Del(listSpliceHeader)
			r = &r2
		}
		if !sp.mayArm(r) {
			next.ServeHTTP(w, r)
			return
		}
		body, complete := peekBody(r)
		if !complete {
			next.ServeHTTP(w, r)
			return
		}
		if sp.off.Load() || !isSingleToolsList(body) {
			if !direct.serve(w, r, body) {
				next.ServeHTTP(w, r)
			}
			return
		}
		slot := &spliceSlot{sp: sp, token: sp.prefix + strconv.FormatUint(sp.seq.Add(1), 10)}
		slot.quoted = append(append(append(make([]byte, 0, len(slot.token)+2), '"'), slot.token...), '"')
		sp.pending.Store(slot.token, slot)
		defer sp.pending.Delete(slot.token)

		r2 := *r
		r2.Header = r.Header.Clone()
		r2.Header.Set(listSpliceHeader, slot.token)
		next.ServeHTTP(&spliceWriter{ResponseWriter: w, slot: slot}, &r2)
	})
}

// mayArm reports whether r could be a tools/list POST the SDK answers with
// a result, judged from its headers alone. It only saves reading bodies:
// the SDK still makes every check itself.
func (sp *listSplicer) mayArm(r *http.Request) bool {
	if r.Method != http.MethodPost || r.Body == nil || r.Body == http.NoBody {
		return false
	}
	// Reading the body early would answer a 100-continue the SDK may not.
	if r.Header.Get("Expect") != "" || r.ContentLength > listPeekBytes {
		return false
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mt == "application/json"
}

// peekBody reads up to listPeekBytes of r's body and puts back a body that
// yields the same bytes and the same error. complete reports that the
// whole body was read without error.
func peekBody(r *http.Request) (body []byte, complete bool) {
	orig := r.Body
	buf, err := io.ReadAll(io.LimitReader(orig, listPeekBytes+1))
	complete = err == nil && len(buf) <= listPeekBytes
	r.Body = &peekedBody{buf: buf, err: err, rest: orig}
	return buf, complete
}

// peekedBody replays what peekBody read, then the read error it met (if
// any), then the rest of the original body.
type peekedBody struct {
	buf  []byte
	err  error
	rest io.ReadCloser
}

func (b *peekedBody) Read(p []byte) (int, error) {
	if len(b.buf) > 0 {
		n := copy(p, b.buf)
		b.buf = b.buf[n:]
		return n, nil
	}
	if b.err != nil {
		return 0, b.err
	}
	return b.rest.Read(p)
}

func (b *peekedBody) Close() error { return b.rest.Close() }

// isSingleToolsList reports whether body looks like one JSON-RPC request
// for tools/list. It only arms the slot; the middleware claims it only if
// the SDK, parsing the body itself, dispatches a tools/list.
func isSingleToolsList(body []byte) bool {
	body = bytes.TrimLeft(body, " \t\r\n")
	if len(body) == 0 || body[0] != '{' || !bytes.Contains(body, []byte("tools/list")) {
		return false
	}
	var m struct {
		Method string          `json:"method"`
		ID     json.RawMessage `json:"id"`
	}
	return json.Unmarshal(body, &m) == nil && m.Method == "tools/list" && len(m.ID) > 0
}

// spliceWriter writes the SDK's response, with the quoted token replaced by
// the cached tools array once the slot is claimed. The SDK (v1.8.0) writes
// each SSE event and each JSON body with one Write; should that change, the
// token would reach the client and the byte-for-byte tests would fail.
type spliceWriter struct {
	http.ResponseWriter
	slot *spliceSlot
}

func (w *spliceWriter) Write(p []byte) (int, error) {
	e := w.slot.entry.Load()
	if e == nil {
		return w.ResponseWriter.Write(p)
	}
	i := bytes.Index(p, w.slot.quoted)
	if i < 0 {
		return w.ResponseWriter.Write(p)
	}
	written := 0
	for i >= 0 {
		if _, err := w.ResponseWriter.Write(p[written : written+i]); err != nil {
			return written, err
		}
		if _, err := w.ResponseWriter.Write(e.encoded); err != nil {
			return written + i, err
		}
		written += i + len(w.slot.quoted)
		w.slot.sp.spliced.Add(1)
		i = bytes.Index(p[written:], w.slot.quoted)
	}
	if _, err := w.ResponseWriter.Write(p[written:]); err != nil {
		return written, err
	}
	return len(p), nil
}

// Unwrap lets http.ResponseController (the SDK flushes each SSE event)
// reach the server's writer.
func (w *spliceWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush serves callers that assert http.Flusher directly.
func (w *spliceWriter) Flush() { _ = http.NewResponseController(w.ResponseWriter).Flush() }
