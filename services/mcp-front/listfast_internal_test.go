package mcpfront

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// listHarness is a bare go-sdk server over Streamable HTTP: the reference
// (the SDK alone) or the same server with the list cache and fast path.
type listHarness struct {
	url string
	sp  *listSplicer // nil for the reference
}

func harnessTools() []*mcp.Tool {
	var tools []*mcp.Tool
	for i := range 5 {
		tools = append(tools, &mcp.Tool{
			Name:        fmt.Sprintf("tool_%d", i),
			Title:       fmt.Sprintf("Tool <%d> & co", i),
			Description: "Fetch «record» " + strings.Repeat("x", i) + " by id.\nSecond line\t\"quoted\"",
			InputSchema: json.RawMessage(`{"type": "object", "properties": {"id": {"type": "string", "description": "<id>"}}, "required": ["id"]}`),
			OutputSchema: map[string]any{"type": "object", "properties": map[string]any{
				"name": map[string]any{"type": "string"},
			}},
			Annotations: &mcp.ToolAnnotations{ReadOnlyHint: i%2 == 0, Title: "T"},
			Meta:        mcp.Meta{"openai/outputTemplate": "ui://widget/r.html", "rank": i},
		})
	}
	return tools
}

func newListHarness(t *testing.T, fast, stateless, jsonResponse bool, pageSize int) *listHarness {
	t.Helper()
	srv := mcp.NewServer(&mcp.Implementation{Name: "toolbus", Title: "Toolbus", Version: "test"}, &mcp.ServerOptions{HasTools: true, PageSize: pageSize})
	for _, tl := range harnessTools() {
		srv.AddTool(tl, func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "ok"}}}, nil
		})
	}
	var h http.Handler = mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv },
		&mcp.StreamableHTTPOptions{Stateless: stateless, JSONResponse: jsonResponse})
	lh := &listHarness{}
	if fast {
		lh.sp = newListSplicer()
		srv.AddReceivingMiddleware(listCacheMiddleware(&listCache{}, lh.sp))
		h = lh.sp.wrap(h, nil)
	}
	hs := httptest.NewServer(h)
	t.Cleanup(func() {
		hs.Close()
		for ss := range srv.Sessions() {
			_ = ss.Close()
		}
	})
	lh.url = hs.URL
	return lh
}

// rawPost sends one POST with the usual client headers, overridden (or
// removed, with "") by hdr, and returns the whole answer as text: status,
// headers but Date and Mcp-Session-Id, and body.
func rawPost(t *testing.T, url string, hdr map[string]string, body string) (dump, sessionID string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return DumpResponse(t, resp), resp.Header.Get("Mcp-Session-Id")
}

// DumpResponse reads resp whole and returns it as text: status, headers
// but Date and Mcp-Session-Id (sorted), a blank line and the body. Both
// fast paths' tests compare these dumps (also from mcpfront_test).
func DumpResponse(t testing.TB, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "%d\n", resp.StatusCode)
	keys := make([]string, 0, len(resp.Header))
	for k := range resp.Header {
		if k != "Date" && k != "Mcp-Session-Id" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(&sb, "%s: %q\n", k, resp.Header[k])
	}
	sb.WriteString("\n")
	sb.Write(b)
	return sb.String()
}

// listStep is one request of a scenario; spliced says whether the fast path
// must answer it.
type listStep struct {
	name    string
	hdr     map[string]string
	body    string
	spliced bool
}

const listBody = `{"jsonrpc":"2.0","id":7,"method":"tools/list","params":{}}`

// The fast path's answers are byte for byte the SDK's, in every protocol
// version, stateful and stateless, SSE and JSON, with and without pages,
// and it falls back where it must.
func TestListFastPathBytesLikeSDK(t *testing.T) {
	newMeta := func(extra string) string {
		return `{"jsonrpc":"2.0","id":"n1","method":"tools/list","params":{` + extra + `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"raw","version":"1"}}}}`
	}
	type mode struct {
		stateless bool
		versions  []string // "" sends no MCP-Protocol-Version
	}
	for _, m := range []mode{
		{stateless: false, versions: []string{"", "2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"}},
		{stateless: true, versions: []string{"", "2025-03-26", "2025-06-18", "2025-11-25", "2026-07-28"}},
	} {
		for _, jsonResponse := range []bool{false, true} {
			for _, pageSize := range []int{0, 2} {
				for _, v := range m.versions {
					name := fmt.Sprintf("stateless=%v/json=%v/page=%d/version=%q", m.stateless, jsonResponse, pageSize, v)
					t.Run(name, func(t *testing.T) {
						ref := newListHarness(t, false, m.stateless, jsonResponse, pageSize)
						fast := newListHarness(t, true, m.stateless, jsonResponse, pageSize)
						run := func(h *listHarness, steps []listStep) []string {
							hdr := func(extra map[string]string) map[string]string {
								out := map[string]string{}
								if v != "" {
									out["Mcp-Protocol-Version"] = v
								}
								if v == "2026-07-28" {
									out["Mcp-Method"] = "tools/list"
								}
								for k, val := range extra {
									out[k] = val
								}
								return out
							}
							var sid string
							if !m.stateless {
								iv := v
								if iv == "" {
									iv = "2025-03-26"
								}
								_, sid = rawPost(t, h.url, nil, `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"`+iv+`","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`)
								if sid == "" {
									t.Fatal("no session id")
								}
								if d, _ := rawPost(t, h.url, map[string]string{"Mcp-Session-Id": sid, "Mcp-Protocol-Version": v}, `{"jsonrpc":"2.0","method":"notifications/initialized"}`); !strings.HasPrefix(d, "202") {
									t.Fatalf("initialized: %s", d)
								}
							}
							var dumps []string
							for _, st := range steps {
								x := hdr(st.hdr)
								if sid != "" {
									if _, set := x["Mcp-Session-Id"]; !set {
										x["Mcp-Session-Id"] = sid
									}
								}
								before := int64(0)
								if h.sp != nil {
									before = h.sp.spliced.Load()
								}
								body := st.body
								if strings.Contains(body, "CURSOR") {
									// The cursor of the previous answer.
									body = strings.Replace(body, "CURSOR", nextCursor(t, dumps[len(dumps)-1]), 1)
								}
								d, _ := rawPost(t, h.url, x, body)
								dumps = append(dumps, d)
								if h.sp != nil {
									if got := h.sp.spliced.Load() - before; got != map[bool]int64{false: 0, true: 1}[st.spliced] {
										t.Errorf("%s: fast path answered %d times, want spliced=%v:\n%.300s", st.name, got, st.spliced, d)
									}
								}
							}
							return dumps
						}
						list := listBody
						if v == "2026-07-28" {
							list = newMeta("")
						}
						steps := []listStep{
							{name: "list", body: list, spliced: true},
							{name: "list again", body: list, spliced: true},
						}
						if pageSize > 0 {
							page := `{"jsonrpc":"2.0","id":8,"method":"tools/list","params":{"cursor":"CURSOR"}}`
							if v == "2026-07-28" {
								page = newMeta(`"cursor":"CURSOR",`)
							}
							steps = append(steps, listStep{name: "second page", body: page, spliced: true})
						}
						if v != "2026-07-28" {
							steps = append(steps,
								listStep{name: "no params", body: `{"jsonrpc":"2.0","id":"s","method":"tools/list"}`, spliced: true},
								listStep{name: "progress token", body: `{"jsonrpc":"2.0","id":9,"method":"tools/list","params":{"_meta":{"progressToken":"p"}}}`, spliced: true},
								listStep{name: "bad cursor", body: `{"jsonrpc":"2.0","id":10,"method":"tools/list","params":{"cursor":"!!"}}`},
								listStep{name: "batch of one", body: "[" + listBody + "]"},
								listStep{name: "notification", body: `{"jsonrpc":"2.0","method":"tools/list"}`},
							)
						}
						steps = append(steps,
							listStep{name: "forged header", hdr: map[string]string{listSpliceHeader: "toolbus-list-0"}, body: list, spliced: true},
							listStep{name: "unsupported version", hdr: map[string]string{"Mcp-Protocol-Version": "1999-01-01"}, body: list},
							listStep{name: "accept json only", hdr: map[string]string{"Accept": "application/json"}, body: list},
							listStep{name: "wrong content type", hdr: map[string]string{"Content-Type": "text/plain"}, body: list},
							listStep{name: "other method", body: `{"jsonrpc":"2.0","id":11,"method":"tools/call","params":{"name":"tool_1","arguments":{"id":"x"}}}`},
						)
						if !m.stateless {
							steps = append(steps,
								listStep{name: "unknown session", hdr: map[string]string{"Mcp-Session-Id": "no-such-session"}, body: list},
								listStep{name: "no session", hdr: map[string]string{"Mcp-Session-Id": ""}, body: list},
							)
						}
						if v == "2026-07-28" {
							steps = append(steps,
								listStep{name: "meta without header", hdr: map[string]string{"Mcp-Protocol-Version": ""}, body: list},
								listStep{name: "method header mismatch", hdr: map[string]string{"Mcp-Method": "tools/call"}, body: list},
							)
						}
						want := run(ref, steps)
						got := run(fast, steps)
						for i, st := range steps {
							if got[i] != want[i] {
								t.Errorf("%s: fast path answered\n%s\nthe SDK answered\n%s", st.name, got[i], want[i])
							}
						}
						if !strings.Contains(want[0], `"tool_1"`) {
							t.Errorf("the list does not list the tools:\n%s", want[0])
						}
					})
				}
			}
		}
	}
}

// nextCursor reads the nextCursor of a tools/list answer (SSE or JSON).
func nextCursor(t *testing.T, dump string) string {
	t.Helper()
	_, body, _ := strings.Cut(dump, "\n\n")
	if i := strings.Index(body, "data: "); i >= 0 {
		body = body[i+len("data: "):]
		body, _, _ = strings.Cut(body, "\n")
	}
	var msg struct {
		Result struct {
			NextCursor string `json:"nextCursor"`
		} `json:"result"`
	}
	if err := json.Unmarshal([]byte(body), &msg); err != nil || msg.Result.NextCursor == "" {
		t.Fatalf("no next cursor in %q: %v", body, err)
	}
	return msg.Result.NextCursor
}

// A client-sent splice header never reaches the MCP layer.
func TestListFastPathDropsForgedHeader(t *testing.T) {
	sp := newListSplicer()
	var seen []string
	h := sp.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.Header.Get(listSpliceHeader))
	}), nil)
	for _, body := range []string{listBody, `{"jsonrpc":"2.0","id":1,"method":"ping"}`} {
		req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(listSpliceHeader, sp.prefix+"999")
		h.ServeHTTP(httptest.NewRecorder(), req)
		if got := req.Header.Get(listSpliceHeader); got != sp.prefix+"999" {
			t.Errorf("the caller's request was modified: %q", got)
		}
	}
	if len(seen) != 2 || seen[0] == sp.prefix+"999" || !strings.HasPrefix(seen[0], sp.prefix) || seen[1] != "" {
		t.Errorf("the MCP layer saw splice headers %q", seen)
	}
}

// The body the SDK reads after the peek is the request's own, error
// included.
func TestPeekBodyReplaysBytesAndError(t *testing.T) {
	boom := errors.New("boom")
	for _, tc := range []struct {
		name     string
		body     io.Reader
		want     string
		wantErr  error
		complete bool
	}{
		{"small", strings.NewReader(listBody), listBody, nil, true},
		{"large", strings.NewReader(strings.Repeat("a", listPeekBytes+10)), strings.Repeat("a", listPeekBytes+10), nil, false},
		{"error", io.MultiReader(strings.NewReader("abc"), errReader{boom}), "abc", boom, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/", nil)
			r.Body = io.NopCloser(tc.body)
			_, complete := peekBody(r)
			if complete != tc.complete {
				t.Errorf("complete = %v, want %v", complete, tc.complete)
			}
			got, err := io.ReadAll(r.Body)
			if string(got) != tc.want || !errors.Is(err, tc.wantErr) {
				t.Errorf("read %d bytes, %v; want %d bytes, %v", len(got), err, len(tc.want), tc.wantErr)
			}
		})
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func TestIsSingleToolsList(t *testing.T) {
	for body, want := range map[string]bool{
		listBody:                          true,
		` {"id":1,"method":"tools/list"}`: true,
		`{"jsonrpc":"2.0","method":"tools/list"}`:                                       false, // a notification
		`[{"jsonrpc":"2.0","id":1,"method":"tools/list"}]`:                              false,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"tools/list"}}`: false,
		`{"jsonrpc":"2.0","id":1,"method":"tools/list"`:                                 false,
	} {
		if got := isSingleToolsList([]byte(body)); got != want {
			t.Errorf("isSingleToolsList(%s) = %v, want %v", body, got, want)
		}
	}
}

// The writer replaces the token only once the slot is claimed, wherever it
// is in a write, and passes other writes through.
func TestSpliceWriter(t *testing.T) {
	sp := newListSplicer()
	slot := &spliceSlot{sp: sp, token: sp.prefix + "1", quoted: []byte(`"` + sp.prefix + `1"`)}
	rec := httptest.NewRecorder()
	w := &spliceWriter{ResponseWriter: rec, slot: slot}
	msg := `data: {"result":{"tools":` + string(slot.quoted) + "}}\n\n"
	_, _ = w.Write([]byte(msg)) // not claimed: untouched
	slot.entry.Store(&listCacheEntry{encoded: []byte(`[{"name":"a"}]`)})
	n, err := w.Write([]byte(msg))
	if err != nil || n != len(msg) {
		t.Fatalf("Write = %d, %v; want %d", n, err, len(msg))
	}
	_, _ = w.Write([]byte("event: other\n\n"))
	want := msg + "data: {\"result\":{\"tools\":[{\"name\":\"a\"}]}}\n\n" + "event: other\n\n"
	if rec.Body.String() != want {
		t.Errorf("wrote %q, want %q", rec.Body.String(), want)
	}
	if sp.spliced.Load() != 1 {
		t.Errorf("spliced = %d, want 1", sp.spliced.Load())
	}
	if _, ok := any(w).(http.Flusher); !ok {
		t.Error("spliceWriter does not flush")
	}
}

// A slot is claimed once, only by a request whose header names a pending
// token.
func TestSpliceSlotClaim(t *testing.T) {
	sp := newListSplicer()
	slot := &spliceSlot{sp: sp, token: sp.prefix + "1"}
	sp.pending.Store(slot.token, slot)
	req := func(tok string) mcp.Request {
		h := http.Header{}
		if tok != "" {
			h.Set(listSpliceHeader, tok)
		}
		return &mcp.ListToolsRequest{Extra: &mcp.RequestExtra{Header: h}}
	}
	e1, e2 := &listCacheEntry{}, &listCacheEntry{}
	if got := sp.claim(&mcp.ListToolsRequest{}, e1); got != nil {
		t.Error("claimed without RequestExtra (stdio)")
	}
	if got := sp.claim(req(""), e1); got != nil {
		t.Error("claimed without a token")
	}
	if got := sp.claim(req(sp.prefix+"2"), e1); got != nil {
		t.Error("claimed with a token that is not pending")
	}
	if got := sp.claim(req(slot.token), e1); got != slot || slot.entry.Load() != e1 {
		t.Fatal("did not claim the pending slot")
	}
	if got := sp.claim(req(slot.token), e2); got != nil || slot.entry.Load() != e1 {
		t.Error("claimed a slot twice")
	}
	var nilSplicer *listSplicer
	if got := nilSplicer.claim(req(slot.token), e1); got != nil {
		t.Error("a nil splicer claimed")
	}
}
