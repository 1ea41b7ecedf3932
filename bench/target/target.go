// Package target holds the clients the benchmark drives: a plain HTTP
// client for the upstream itself, and the official go-sdk MCP client over
// Streamable HTTP for every MCP server alike. Each decodes the answer and
// returns the id it carries; it does not judge whether the id is right.
package target

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/toolbus/toolbus/bench/loadgen"
)

// NewHTTPClient returns a client whose pool keeps a connection for every
// worker (and each MCP session's event stream) alive between calls.
func NewHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 1024
	t.MaxIdleConnsPerHost = 1024
	t.IdleConnTimeout = time.Minute
	return &http.Client{Transport: t}
}

// Direct calls GET {BaseURL}/lookup/{id} on the upstream.
type Direct struct {
	BaseURL string // ends in /api/v1
	HTTP    *http.Client
}

var _ loadgen.Target = (*Direct)(nil)

// Open returns a client sharing the target's connection pool.
func (d *Direct) Open(context.Context) (loadgen.Client, error) { return directClient{d}, nil }

type directClient struct{ d *Direct }

func (c directClient) Close() error { return nil }

func (c directClient) Call(ctx context.Context, id string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.d.BaseURL+"/lookup/"+url.PathEscape(id), nil)
	if err != nil {
		return "", err
	}
	resp, err := c.d.HTTP.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %d: %.200s", resp.StatusCode, body)
	}
	return idOf(body)
}

type idHolder struct {
	ID *string `json:"id"`
}

func idOf(b []byte) (string, error) {
	var h idHolder
	if err := json.Unmarshal(b, &h); err != nil {
		return "", fmt.Errorf("answer is not a JSON object: %w: %.200s", err, b)
	}
	if h.ID == nil {
		return "", fmt.Errorf("%w: %.200s", loadgen.ErrNoID, b)
	}
	return *h.ID, nil
}

// MCP calls one tool through a go-sdk client session per worker, over
// Streamable HTTP, with the standalone event stream a real client opens.
type MCP struct {
	Endpoint string
	Tool     string
	// Arg is the name of the tool's id argument.
	Arg  string
	HTTP *http.Client

	client *mcp.Client // made on first Open; Open is called from one goroutine
}

var _ loadgen.Target = (*MCP)(nil)

// Open connects a new session (initialize and initialized).
func (m *MCP) Open(ctx context.Context) (loadgen.Client, error) {
	if m.client == nil {
		m.client = mcp.NewClient(&mcp.Implementation{Name: "toolbus-bench", Version: "1"}, nil)
	}
	cs, err := m.client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: m.Endpoint, HTTPClient: m.HTTP}, nil)
	if err != nil {
		return nil, err
	}
	return &mcpClient{m: m, cs: cs}, nil
}

// OpenSession opens one session for callers that need tools/list too.
func (m *MCP) OpenSession(ctx context.Context) (Session, error) {
	c, err := m.Open(ctx)
	if err != nil {
		return nil, err
	}
	return c.(*mcpClient), nil
}

type mcpClient struct {
	m  *MCP
	cs *mcp.ClientSession
}

func (c *mcpClient) Close() error { return c.cs.Close() }

func (c *mcpClient) Call(ctx context.Context, id string) (string, error) {
	res, err := c.cs.CallTool(ctx, &mcp.CallToolParams{Name: c.m.Tool, Arguments: map[string]any{c.m.Arg: id}})
	if err != nil {
		return "", err
	}
	return ResultID(res)
}

// ResultID returns the id a tool result carries, from its structured content
// and from its first text content that is JSON. When both carry an id they
// must agree; a result whose parts disagree is reported as carrying the
// wrong one.
func ResultID(res *mcp.CallToolResult) (string, error) {
	text := firstText(res)
	if res.IsError {
		return "", fmt.Errorf("tool error: %.300s", text)
	}
	var found []string
	if res.StructuredContent != nil {
		b, err := json.Marshal(res.StructuredContent)
		if err == nil {
			if id, err := idOf(b); err == nil {
				found = append(found, id)
			}
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

func firstText(res *mcp.CallToolResult) string {
	for _, c := range res.Content {
		if t, ok := c.(*mcp.TextContent); ok {
			return strings.TrimSpace(t.Text)
		}
	}
	return ""
}

// ListAll lists every tool, following cursors, and returns the names and
// the size of the listed tools as JSON.
func (c *mcpClient) ListAll(ctx context.Context) ([]string, int, error) {
	var names []string
	size := 0
	var cursor string
	for range maxPages {
		res, err := c.cs.ListTools(ctx, &mcp.ListToolsParams{Cursor: cursor})
		if err != nil {
			return nil, 0, err
		}
		for _, t := range res.Tools {
			names = append(names, t.Name)
		}
		if b, err := json.Marshal(res.Tools); err == nil {
			size += len(b)
		}
		if res.NextCursor == "" {
			return names, size, nil
		}
		cursor = res.NextCursor
	}
	return nil, 0, errTooManyPages
}

const maxPages = 1000

var errTooManyPages = errors.New("tools/list did not end after 1000 pages")

// Session is one MCP session that can also list tools.
type Session interface {
	loadgen.Client
	ListAll(ctx context.Context) (names []string, size int, err error)
}

// SessionOpener is an MCP target that opens sessions for listing.
type SessionOpener interface {
	loadgen.Target
	OpenSession(ctx context.Context) (Session, error)
}

// FindTool returns the name of the listed tool called want, or else the
// first whose name contains it (peers name tools after operation ids in
// their own way).
func FindTool(ctx context.Context, t SessionOpener, want string) (string, error) {
	s, err := t.OpenSession(ctx)
	if err != nil {
		return "", err
	}
	defer s.Close()
	names, _, err := s.ListAll(ctx)
	if err != nil {
		return "", err
	}
	if slices.Contains(names, want) {
		return want, nil
	}
	for _, n := range names {
		if strings.Contains(strings.ToLower(n), want) {
			return n, nil
		}
	}
	return "", errors.New("no tool named like " + want + " among " + strings.Join(names, ", "))
}
