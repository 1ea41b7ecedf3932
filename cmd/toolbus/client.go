package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

const defaultMCPURL = "http://127.0.0.1:8080/mcp"

// connectMCP opens an MCP session with a running Toolbus using the official
// go-sdk client over Streamable HTTP.
func connectMCP(ctx context.Context, url, token string) (*mcp.ClientSession, error) {
	client := mcp.NewClient(&mcp.Implementation{Name: "toolbus-cli", Version: version}, nil)
	hc := &http.Client{Timeout: 0}
	if token != "" {
		hc.Transport = bearer{token: token, next: http.DefaultTransport}
	}
	s, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: url, HTTPClient: hc}, nil)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w (is toolbus running? try 'make run')", url, err)
	}
	return s, nil
}

type bearer struct {
	token string
	next  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.next.RoundTrip(r)
}

func clientFlags(name string, stderr io.Writer) (*flag.FlagSet, *string, *string, *time.Duration) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", envOr("TOOLBUS_MCP_URL", defaultMCPURL), "MCP endpoint [TOOLBUS_MCP_URL]")
	token := fs.String("token", envOr("TOOLBUS_TOKEN", ""), "bearer token, if the endpoint requires one [TOOLBUS_TOKEN]")
	timeout := fs.Duration("timeout", 60*time.Second, "give up after this long")
	return fs, url, token, timeout
}

func runTools(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, url, token, timeout := clientFlags("toolbus tools", stderr)
	asJSON := fs.Bool("json", false, "print the full tool definitions as JSON")
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	s, err := connectMCP(ctx, *url, *token)
	if err != nil {
		return err
	}
	defer s.Close()
	var tools []*mcp.Tool
	for t, err := range s.Tools(ctx, nil) {
		if err != nil {
			return fmt.Errorf("tools/list: %w", err)
		}
		tools = append(tools, t)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(tools)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOOL\tHINTS\tDESCRIPTION")
	for _, t := range tools {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", t.Name, hints(t.Annotations), firstLine(t.Description))
	}
	return tw.Flush()
}

func hints(a *mcp.ToolAnnotations) string {
	if a == nil {
		return "-"
	}
	var h []string
	if a.ReadOnlyHint {
		h = append(h, "read-only")
	}
	if a.DestructiveHint != nil && *a.DestructiveHint {
		h = append(h, "destructive")
	}
	if a.IdempotentHint {
		h = append(h, "idempotent")
	}
	if len(h) == 0 {
		return "-"
	}
	return strings.Join(h, ",")
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return s
}

func runCall(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, url, token, timeout := clientFlags("toolbus call", stderr)
	idem := fs.String("idempotency-key", "", "idempotency key for the call (sent as _meta toolbus/idempotencyKey)")
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	if fs.NArg() < 1 || fs.NArg() > 2 {
		return usageError{"usage: toolbus call [flags] NAME ['{\"arg\": \"value\"}']"}
	}
	name := fs.Arg(0)
	params := &mcp.CallToolParams{Name: name}
	if fs.NArg() == 2 {
		var args map[string]any
		if err := json.Unmarshal([]byte(fs.Arg(1)), &args); err != nil {
			return usageError{fmt.Sprintf("arguments must be a JSON object: %v", err)}
		}
		params.Arguments = args
	}
	if *idem != "" {
		params.Meta = mcp.Meta{"toolbus/idempotencyKey": *idem}
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	s, err := connectMCP(ctx, *url, *token)
	if err != nil {
		return err
	}
	defer s.Close()
	res, err := s.CallTool(ctx, params)
	if err != nil {
		return fmt.Errorf("tools/call %s: %w", name, err)
	}
	if res.StructuredContent != nil && !res.IsError {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res.StructuredContent)
	}
	for _, c := range res.Content {
		if t, ok := c.(*mcp.TextContent); ok {
			fmt.Fprintln(stdout, t.Text)
		}
	}
	if res.IsError {
		return fmt.Errorf("tool %s returned an error", name)
	}
	return nil
}
