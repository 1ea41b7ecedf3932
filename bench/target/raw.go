package target

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"sync"
	"time"

	"github.com/toolbus/toolbus/bench/loadgen"
)

// RawMCP is a small hand-written Streamable HTTP client, used for every MCP
// scenario alike when a server under test cannot be driven by the go-sdk
// client. It accepts each way a server may answer a request: a JSON body,
// an event stream on the POST, or (outside the spec, as one peer does) 202
// Accepted with the answer sent later on the session's GET event stream.
type RawMCP struct {
	Endpoint string
	Tool     string
	Arg      string
	HTTP     *http.Client
}

var _ loadgen.Target = (*RawMCP)(nil)

const protocolVersion = "2025-06-18"

// rpcMessage is a JSON-RPC response or notification as received.
type rpcMessage struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

type rawSession struct {
	t       *RawMCP
	id      string // Mcp-Session-Id
	version string
	next    int

	mu      sync.Mutex
	pending map[string]chan *rpcMessage // by JSON-RPC id

	cancel context.CancelFunc // stops the GET stream
	done   chan struct{}

	// received is when the last answer arrived whole (before decoding);
	// listAnswer sums it over the pages of the last ListAll.
	received   time.Time
	listAnswer time.Duration
}

// Open initializes a session and opens its GET event stream.
func (t *RawMCP) Open(ctx context.Context) (loadgen.Client, error) {
	s := &rawSession{t: t, version: protocolVersion, pending: map[string]chan *rpcMessage{}, done: make(chan struct{})}
	init := map[string]any{
		"protocolVersion": protocolVersion,
		"capabilities":    map[string]any{},
		"clientInfo":      map[string]any{"name": "toolbus-bench-raw", "version": "1"},
	}
	res, err := s.request(ctx, "initialize", init)
	if err != nil {
		close(s.done)
		return nil, fmt.Errorf("initialize: %w", err)
	}
	var ir struct {
		ProtocolVersion string `json:"protocolVersion"`
	}
	if json.Unmarshal(res, &ir) == nil && ir.ProtocolVersion != "" {
		s.version = ir.ProtocolVersion
	}
	if err := s.notify(ctx, "notifications/initialized"); err != nil {
		close(s.done)
		return nil, fmt.Errorf("initialized: %w", err)
	}
	sctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	ready := make(chan struct{})
	go s.listen(sctx, ready)
	select {
	case <-ready:
	case <-ctx.Done():
		s.Close()
		return nil, ctx.Err()
	}
	return s, nil
}

// Call calls the tool with {Arg: id}.
func (s *rawSession) Call(ctx context.Context, id string) (string, error) {
	res, err := s.request(ctx, "tools/call", map[string]any{"name": s.t.Tool, "arguments": map[string]any{s.t.Arg: id}})
	if err != nil {
		return "", err
	}
	return rawResultID(res)
}

// ListAll lists every tool, following cursors.
func (s *rawSession) ListAll(ctx context.Context) ([]string, int, error) {
	s.listAnswer = 0
	var names []string
	size := 0
	var cursor string
	for range maxPages {
		params := map[string]any{}
		if cursor != "" {
			params["cursor"] = cursor
		}
		sent := time.Now()
		b, err := s.request(ctx, "tools/list", params)
		if err != nil {
			return nil, 0, err
		}
		s.listAnswer += s.received.Sub(sent)
		size += len(b)
		var res struct {
			Tools []struct {
				Name string `json:"name"`
			} `json:"tools"`
			NextCursor string `json:"nextCursor"`
		}
		if err := json.Unmarshal(b, &res); err != nil {
			return nil, 0, fmt.Errorf("decode tools/list: %w", err)
		}
		for _, t := range res.Tools {
			names = append(names, t.Name)
		}
		if res.NextCursor == "" {
			return names, size, nil
		}
		cursor = res.NextCursor
	}
	return nil, 0, errTooManyPages
}

// LastListAnswer is how long the last ListAll waited for its answers to
// arrive whole: from sending each request to the last byte of its answer,
// before the client decodes it. The rest of ListAll's time is the client's
// own JSON decoding.
func (s *rawSession) LastListAnswer() time.Duration { return s.listAnswer }

// OpenSession opens one session for listing tools.
func (t *RawMCP) OpenSession(ctx context.Context) (Session, error) {
	c, err := t.Open(ctx)
	if err != nil {
		return nil, err
	}
	return c.(*rawSession), nil
}

// Close stops the GET stream and ends the session with DELETE.
func (s *rawSession) Close() error {
	if s.cancel != nil {
		s.cancel()
		<-s.done
	}
	if s.id == "" {
		return nil
	}
	req, err := http.NewRequest(http.MethodDelete, s.t.Endpoint, nil)
	if err != nil {
		return err
	}
	s.headers(req)
	resp, err := s.t.HTTP.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.Body.Close()
}

func (s *rawSession) headers(req *http.Request) {
	if s.id != "" {
		req.Header.Set("Mcp-Session-Id", s.id)
		req.Header.Set("Mcp-Protocol-Version", s.version)
	}
}

func (s *rawSession) post(ctx context.Context, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.t.Endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	s.headers(req)
	return s.t.HTTP.Do(req)
}

func (s *rawSession) notify(ctx context.Context, method string) error {
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "method": method})
	resp, err := s.post(ctx, body)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// request sends a JSON-RPC request and waits for its response, wherever
// the server sends it.
func (s *rawSession) request(ctx context.Context, method string, params any) (json.RawMessage, error) {
	s.next++
	id := strconv.Itoa(s.next)
	body, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": s.next, "method": method, "params": params})
	if err != nil {
		return nil, err
	}
	ch := make(chan *rpcMessage, 1)
	s.mu.Lock()
	s.pending[id] = ch
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.pending, id)
		s.mu.Unlock()
	}()

	resp, err := s.post(ctx, body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if sid := resp.Header.Get("Mcp-Session-Id"); sid != "" && s.id == "" {
		s.id = sid
	}
	var msg *rpcMessage
	switch ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); {
	case resp.StatusCode == http.StatusAccepted:
		// The answer comes on the GET stream.
		select {
		case msg = <-ch:
			// Decoded already on the GET stream: counted as received now.
			s.received = time.Now()
		case <-ctx.Done():
			return nil, fmt.Errorf("no answer on the event stream after 202: %w", ctx.Err())
		}
	case resp.StatusCode != http.StatusOK:
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		return nil, fmt.Errorf("status %d: %s", resp.StatusCode, b)
	case ct == "application/json":
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return nil, fmt.Errorf("read answer: %w", err)
		}
		s.received = time.Now()
		msg = new(rpcMessage)
		if err := json.Unmarshal(b, msg); err != nil {
			return nil, fmt.Errorf("decode answer: %w", err)
		}
	case ct == "text/event-stream":
		err := readEventsTimed(resp.Body, func() { s.received = time.Now() }, func(m *rpcMessage) bool {
			if string(m.ID) == id {
				msg = m
				return false
			}
			return true
		})
		if msg == nil {
			return nil, fmt.Errorf("event stream ended without an answer: %v", err)
		}
	default:
		return nil, fmt.Errorf("unexpected content type %q", ct)
	}
	if string(msg.ID) != id {
		return nil, fmt.Errorf("answer to JSON-RPC id %s arrived for id %s", msg.ID, id)
	}
	if msg.Error != nil {
		return nil, fmt.Errorf("JSON-RPC error %d: %s", msg.Error.Code, msg.Error.Message)
	}
	return msg.Result, nil
}

// listen reads the session's GET event stream and hands answers to the
// requests waiting for them, until ctx ends.
func (s *rawSession) listen(ctx context.Context, ready chan<- struct{}) {
	defer close(s.done)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.t.Endpoint, nil)
	if err != nil {
		close(ready)
		return
	}
	req.Header.Set("Accept", "text/event-stream")
	s.headers(req)
	// Some servers send no headers until the first event: the stream is
	// taken as open once the request is on the wire.
	var once sync.Once
	signal := func() { once.Do(func() { close(ready) }) }
	defer signal()
	req = req.WithContext(httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteRequest: func(httptrace.WroteRequestInfo) { signal() },
	}))
	resp, err := s.t.HTTP.Do(req)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	signal()
	if resp.StatusCode != http.StatusOK {
		return // a server without a GET stream (405) answers on the POST
	}
	_ = readEvents(resp.Body, func(m *rpcMessage) bool {
		if len(m.ID) == 0 {
			return true // a notification
		}
		s.mu.Lock()
		ch := s.pending[string(m.ID)]
		s.mu.Unlock()
		if ch != nil {
			select {
			case ch <- m:
			default:
			}
		}
		return true
	})
}

// readEvents calls fn with each JSON-RPC message of a server-sent event
// stream until fn returns false or the stream ends.
func readEvents(r io.Reader, fn func(*rpcMessage) bool) error {
	return readEventsTimed(r, nil, fn)
}

// readEventsTimed is readEvents calling received, when set, as soon as an
// event's data is complete, before it is decoded.
func readEventsTimed(r io.Reader, received func(), fn func(*rpcMessage) bool) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	var data bytes.Buffer
	for sc.Scan() {
		line := sc.Bytes()
		switch {
		case len(line) == 0:
			if data.Len() > 0 {
				if received != nil {
					received()
				}
				m := new(rpcMessage)
				if err := json.Unmarshal(data.Bytes(), m); err == nil && !fn(m) {
					return nil
				}
				data.Reset()
			}
		case bytes.HasPrefix(line, []byte("data:")):
			if data.Len() > 0 {
				data.WriteByte('\n')
			}
			data.Write(bytes.TrimPrefix(bytes.TrimPrefix(line, []byte("data:")), []byte(" ")))
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return errors.New("end of stream")
}

// rawResultID is ResultID for a CallToolResult as JSON.
func rawResultID(b json.RawMessage) (string, error) {
	var res struct {
		Content []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		} `json:"content"`
		StructuredContent json.RawMessage `json:"structuredContent"`
		IsError           bool            `json:"isError"`
	}
	if err := json.Unmarshal(b, &res); err != nil {
		return "", fmt.Errorf("decode tool result: %w", err)
	}
	var text string
	for _, c := range res.Content {
		if c.Type == "text" {
			text = string(bytes.TrimSpace([]byte(c.Text)))
			break
		}
	}
	if res.IsError {
		return "", fmt.Errorf("tool error: %.300s", text)
	}
	var found []string
	if len(res.StructuredContent) > 0 && string(res.StructuredContent) != "null" {
		if id, err := idOf(res.StructuredContent); err == nil {
			found = append(found, id)
		}
	}
	if text != "" {
		if id, err := idOf([]byte(text)); err == nil {
			found = append(found, id)
		}
	}
	switch {
	case len(found) == 0:
		return "", fmt.Errorf("%w: %.300s", loadgen.ErrNoID, text)
	case len(found) == 2 && found[0] != found[1]:
		return found[0] + " (text says " + found[1] + ")", nil
	}
	return found[0], nil
}
