package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/toolbus/toolbus/examples/crm"
)

func getJSON(t *testing.T, url string) any {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var v any
	if err := json.NewDecoder(res.Body).Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestAllInOne runs every service in this process over embedded JetStream
// and drives it with the official go-sdk MCP client.
func TestAllInOne(t *testing.T) {
	up, upURL := startCRM(t)
	cfg := serveConfig{
		catalogPath: testCatalog(t, upURL),
		services:    []string{svcMCPFront, svcRESTWork},
		natsListen:  "none",
		dataDir:     t.TempDir(),
		httpAddr:    "127.0.0.1:0",
		grpcAddr:    "127.0.0.1:0",
		logLevel:    "warn",
		logFormat:   "json",
		grace:       5 * time.Second,
		instance:    "e2e",
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan addrs, 1)
	served := make(chan error, 1)
	go func() { served <- serve(ctx, cfg, nil, io.Discard, io.Discard, func(a addrs) { ready <- a }) }()
	var a addrs
	select {
	case a = <-ready:
	case err := <-served:
		t.Fatalf("serve returned before ready: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("not ready after 20s")
	}
	s := mcpSession(t, "http://"+a.http+"/mcp")

	t.Run("tools/list", func(t *testing.T) {
		var names []string
		for tool, err := range s.Tools(context.Background(), nil) {
			if err != nil {
				t.Fatal(err)
			}
			names = append(names, tool.Name)
		}
		slices.Sort(names)
		if diff := cmp.Diff([]string{"create_customer", "echo", "get_customer", "list_customers"}, names); diff != "" {
			t.Errorf("tools (-want +got):\n%s", diff)
		}
	})
	t.Run("GET with path parameter", func(t *testing.T) {
		res := callTool(t, s, "get_customer", map[string]any{"id": 7})
		if res.IsError {
			t.Fatalf("tool error: %v", res.Content)
		}
		want := getJSON(t, upURL+"/api/v1/customers/7")
		if diff := cmp.Diff(want, asJSON(t, res.StructuredContent)); diff != "" {
			t.Errorf("structuredContent differs from the upstream's JSON (-want +got):\n%s", diff)
		}
	})
	t.Run("GET with query parameters", func(t *testing.T) {
		res := callTool(t, s, "list_customers", map[string]any{"limit": 3, "status": "active"})
		if res.IsError {
			t.Fatalf("tool error: %v", res.Content)
		}
		want := getJSON(t, upURL+"/api/v1/customers?limit=3&status=active")
		if diff := cmp.Diff(want, asJSON(t, res.StructuredContent)); diff != "" {
			t.Errorf("structuredContent (-want +got):\n%s", diff)
		}
	})
	t.Run("POST with JSON body", func(t *testing.T) {
		before := up.Stats().Routes["POST /api/v1/customers"]
		res := callTool(t, s, "create_customer", map[string]any{"name": "Ada Lovelace", "email": "ada@example.com"})
		if res.IsError {
			t.Fatalf("tool error: %v", res.Content)
		}
		got := asJSON(t, res.StructuredContent).(map[string]any)
		id := int(got["id"].(float64))
		want := getJSON(t, upURL+"/api/v1/customers/"+strconv.Itoa(id))
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("structuredContent (-want +got):\n%s", diff)
		}
		if n := up.Stats().Routes["POST /api/v1/customers"] - before; n != 1 {
			t.Errorf("upstream saw %d POSTs, want 1", n)
		}
	})
	t.Run("path parameter cannot escape the template", func(t *testing.T) {
		for _, give := range []string{"../admin", "a/b", "x?admin=1", "y#frag"} {
			res := callTool(t, s, "echo", map[string]any{"value": give})
			if res.IsError {
				t.Fatalf("echo %q: tool error %v", give, res.Content)
			}
			got := asJSON(t, res.StructuredContent).(map[string]any)
			want := "/api/v1/echo/" + url.PathEscape(give)
			if got["escaped_path"] != want || got["anything"] != give {
				t.Errorf("echo %q: upstream saw path %q (segment %q), want %q", give, got["escaped_path"], got["anything"], want)
			}
		}
	})
	t.Run("invalid arguments", func(t *testing.T) {
		res := callTool(t, s, "create_customer", map[string]any{"name": 5, "email": "not-an-email"})
		if !res.IsError {
			t.Fatalf("want a tool error, got %v", res.StructuredContent)
		}
	})

	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not return within 10s of cancellation")
	}
}

func readyz(url string) int {
	res, err := http.Get(url + "/readyz")
	if err != nil {
		return 0
	}
	res.Body.Close()
	return res.StatusCode
}

// TestSplitProcesses runs a real nats-server, mcp-front and rest-worker as
// separate OS processes, as in production, including start-up before NATS
// is reachable and SIGTERM while a call is in flight.
func TestSplitProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts processes")
	}
	up, upURL := startCRM(t)
	catalogPath := testCatalog(t, upURL)
	bin := toolbusBin(t)
	natsPort := freePort(t)
	natsURL := fmt.Sprintf("nats://127.0.0.1:%d", natsPort)

	// Services first, NATS later: they must wait and retry, not crash.
	common := []string{"serve", "--catalog", catalogPath, "--nats", natsURL, "--grpc", "none", "--log-level", "info", "--shutdown-grace", "10s"}
	front := startProc(t, "mcp-front", bin, append(common, "--services", "mcp-front", "--http", "127.0.0.1:0", "--instance", "front")...)
	worker := startProc(t, "rest-worker", bin, append(common, "--services", "rest-worker", "--http", "127.0.0.1:0", "--instance", "worker")...)
	front.waitLog(t, "waiting for NATS JetStream", 20*time.Second)
	frontHTTP := "http://" + front.waitLog(t, "listening", 5*time.Second)["http"].(string)
	if code := readyz(frontHTTP); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz before NATS = %d, want 503", code)
	}

	natsDir := t.TempDir()
	startProc(t, "nats-server", natsServerBin(t), "-js", "-sd", natsDir, "-a", "127.0.0.1", "-p", strconv.Itoa(natsPort))
	front.waitLog(t, "toolbus ready", 30*time.Second)
	worker.waitLog(t, "toolbus ready", 30*time.Second)
	if code := readyz(frontHTTP); code != http.StatusOK {
		t.Errorf("/readyz after NATS = %d, want 200", code)
	}

	s := mcpSession(t, frontHTTP+"/mcp")
	res := callTool(t, s, "get_customer", map[string]any{"id": 3})
	if res.IsError {
		t.Fatalf("tool error: %v", res.Content)
	}
	if diff := cmp.Diff(getJSON(t, upURL+"/api/v1/customers/3"), asJSON(t, res.StructuredContent)); diff != "" {
		t.Errorf("structuredContent (-want +got):\n%s", diff)
	}

	// SIGTERM while a call is in flight: the worker finishes it, then exits 0.
	if _, err := up.AddFault(crm.Fault{Path: "/api/v1/customers/4", Action: crm.FaultDelay, Delay: 1500 * time.Millisecond, Times: 1}); err != nil {
		t.Fatal(err)
	}
	answered := make(chan *mcp.CallToolResult, 1)
	go func() {
		r, err := s.CallTool(context.Background(), &mcp.CallToolParams{Name: "get_customer", Arguments: map[string]any{"id": 4}})
		if err != nil {
			t.Errorf("in-flight call: %v", err)
		}
		answered <- r
	}()
	deadline := time.Now().Add(5 * time.Second)
	for up.Stats().InFlight == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if up.Stats().InFlight == 0 {
		t.Fatal("the slow call never reached the upstream; cannot test SIGTERM with a call in flight")
	}
	if err := worker.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	r := <-answered
	if r == nil || r.IsError {
		t.Fatalf("in-flight call during SIGTERM: %+v", r)
	}
	if err := worker.wait(t, 15*time.Second); err != nil {
		t.Errorf("rest-worker exit after SIGTERM: %v", err)
	}
	if err := front.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := front.wait(t, 15*time.Second); err != nil {
		t.Errorf("mcp-front exit after SIGTERM: %v", err)
	}
}

// TestStdio launches the binary the way desktop MCP clients do: as a child
// process speaking MCP over stdin/stdout, all services in-process.
func TestStdio(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts processes")
	}
	_, upURL := startCRM(t)
	cmd := exec.Command(toolbusBin(t), "serve", "--stdio", "--catalog", testCatalog(t, upURL),
		"--nats-listen", "none", "--http", "none", "--grpc", "none", "--data", t.TempDir(), "--log-level", "warn")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := mcp.NewClient(&mcp.Implementation{Name: "desktop", Version: "test"}, nil)
	s, err := c.Connect(ctx, &mcp.CommandTransport{Command: cmd}, nil)
	if err != nil {
		t.Fatalf("connect over stdio: %v", err)
	}
	res, err := s.CallTool(ctx, &mcp.CallToolParams{Name: "get_customer", Arguments: map[string]any{"id": 2}})
	if err != nil {
		t.Fatal(err)
	}
	if res.IsError {
		t.Fatalf("tool error: %v", res.Content)
	}
	if diff := cmp.Diff(getJSON(t, upURL+"/api/v1/customers/2"), asJSON(t, res.StructuredContent)); diff != "" {
		t.Errorf("structuredContent (-want +got):\n%s", diff)
	}
	// Closing the session closes the child's stdin: it must exit cleanly.
	if err := s.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	if cmd.ProcessState == nil || !cmd.ProcessState.Success() {
		t.Errorf("toolbus --stdio exit: %v", cmd.ProcessState)
	}
}
