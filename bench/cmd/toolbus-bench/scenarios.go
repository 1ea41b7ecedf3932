package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/toolbus/toolbus/bench/loadgen"
	"github.com/toolbus/toolbus/bench/proc"
	"github.com/toolbus/toolbus/bench/target"
)

// env is what every scenario shares: the repository, a scratch directory,
// the upstream process and the binaries built for this run.
type env struct {
	repo     string // the Toolbus repository root
	benchDir string // repo/bench
	tmp      string
	http     *http.Client
	self     string // this binary, re-run for the upstream and plain server

	upstream    *proc.Process
	upstreamURL string // http://127.0.0.1:PORT (no path)

	toolbusBin string // built on first use unless given
	natsBin    string
	node       string
	client     string // "sdk" or "raw": the one MCP client for every MCP scenario
}

// mcpTarget returns the run's MCP client for endpoint and tool.
func (e *env) mcpTarget(endpoint, tool string) target.SessionOpener {
	if e.client == "raw" {
		return &target.RawMCP{Endpoint: endpoint, Tool: tool, Arg: "id", HTTP: e.http}
	}
	return &target.MCP{Endpoint: endpoint, Tool: tool, Arg: "id", HTTP: e.http}
}

func (e *env) apiURL() string { return e.upstreamURL + "/api/v1" }

// deployment is one running system under test.
type deployment struct {
	target loadgen.Target
	// server is what the scenario measures as "the server": every process
	// of the system under test, without the shared upstream.
	server proc.Group
	// serverIsUpstream marks the direct scenario, where the upstream is
	// the whole server.
	serverIsUpstream bool
	note             string
	// after, when set, runs once the scenario's runs are done and returns
	// a line for the log and the report's notes (what a side channel saw).
	after func() string
}

// scenario is one way of serving the lookup tool.
type scenario struct {
	name  string
	title string
	setup func(ctx context.Context, e *env) (*deployment, error)
}

// errSkip marks a scenario that cannot run here, with the reason.
type errSkip struct{ reason string }

func (e errSkip) Error() string { return e.reason }

var scenarios = []scenario{
	{name: "direct", title: "Direct HTTP (floor)", setup: setupDirect},
	{name: "plain", title: "Plain go-sdk MCP", setup: setupPlain},
	{name: "toolbus", title: "Toolbus all-in-one", setup: setupToolbus},
	{name: "toolbus-traced", title: "Toolbus all-in-one, traced", setup: setupTraced},
	{name: "toolbus-split", title: "Toolbus split", setup: setupSplit},
	{name: "peer", title: "Peer (@ivotoby/openapi-mcp-server)", setup: setupPeer},
}

func startUpstream(ctx context.Context, e *env) error {
	p, err := proc.Start("upstream", proc.LogPath(e.tmp, "upstream"), e.tmp, nil, e.self, cmdUpstream)
	if err != nil {
		return err
	}
	fields, err := p.WaitLogLine(ctx, "listening")
	if err != nil {
		p.Stop(time.Second)
		return err
	}
	e.upstream = p
	e.upstreamURL = "http://" + fields["http"].(string)
	return nil
}

func setupDirect(_ context.Context, e *env) (*deployment, error) {
	return &deployment{
		target:           &target.Direct{BaseURL: e.apiURL(), HTTP: e.http},
		server:           proc.Group{e.upstream},
		serverIsUpstream: true,
	}, nil
}

func setupPlain(ctx context.Context, e *env) (*deployment, error) {
	p, err := proc.Start("plain-mcp", proc.LogPath(e.tmp, "plain-mcp"), e.tmp, nil, e.self, cmdPlainMCP, "-upstream", e.apiURL())
	if err != nil {
		return nil, err
	}
	fields, err := p.WaitLogLine(ctx, "listening")
	if err != nil {
		p.Stop(time.Second)
		return nil, err
	}
	return &deployment{
		target: e.mcpTarget("http://"+fields["http"].(string)+"/mcp", "lookup"),
		server: proc.Group{p},
	}, nil
}

// ensureToolbus builds cmd/toolbus from the repository the way `make build`
// does, through the repository's go.work.
func (e *env) ensureToolbus(ctx context.Context) error {
	if e.toolbusBin != "" {
		return nil
	}
	out := filepath.Join(e.tmp, "toolbus")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-s -w -X main.version=bench", "-o", out, "./cmd/toolbus")
	cmd.Dir = e.repo
	// The repository builds in workspace mode, which rejects the
	// -mod=mod that `make bench` gives this module.
	cmd.Env = append(os.Environ(), "GOWORK="+filepath.Join(e.repo, "go.work"), "GOFLAGS=-buildvcs=false")
	if b, err := cmd.CombinedOutput(); err != nil {
		return errSkip{fmt.Sprintf("toolbus does not build yet: %v: %s", err, firstLines(string(b), 6))}
	}
	e.toolbusBin = out
	return nil
}

// ensureNATS finds or builds nats-server the way `make tools` does.
func (e *env) ensureNATS(ctx context.Context) error {
	if e.natsBin != "" {
		if _, err := os.Stat(e.natsBin); err == nil {
			return nil
		}
	}
	out := filepath.Join(e.tmp, "bin")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out+"/", "github.com/nats-io/nats-server/v2")
	cmd.Dir = filepath.Join(e.repo, "tools")
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-buildvcs=false")
	if b, err := cmd.CombinedOutput(); err != nil {
		return errSkip{fmt.Sprintf("no nats-server at %s and building it failed: %v: %s", e.natsBin, err, firstLines(string(b), 6))}
	}
	e.natsBin = filepath.Join(out, "nats-server")
	return nil
}

// benchCatalogSrc serves the demo catalog's lookup tool (examples/demo)
// from the benchmark's upstream, with room for 256 concurrent upstream
// calls. It is written out here rather than derived from the demo catalog,
// which grows upstreams the benchmark does not run.
const benchCatalogSrc = `version: 1
upstreams:
  crm:
    kind: rest
    base_url: %s
    timeout: 10s
    concurrency: 256
    max_response_bytes: 1MiB
    idempotency_header: Idempotency-Key
tools:
  - name: lookup
    title: Lookup (diagnostics)
    description: Return the given id; used by the benchmarks to check that every answer belongs to its call.
    upstream: crm
    method: GET
    path: /lookup/{id}
    input_schema:
      type: object
      properties:
        id: {type: string, minLength: 1}
      required: [id]
      additionalProperties: false
  - name: get_customer
    title: Get customer
    description: Fetch one customer by id.
    upstream: crm
    method: GET
    path: /customers/{id}
    input_schema:
      type: object
      properties:
        id: {type: integer, minimum: 1, description: Customer id.}
      required: [id]
      additionalProperties: false
`

// benchCatalog writes the bench catalog once and returns its path.
func (e *env) benchCatalog() (string, error) {
	p := filepath.Join(e.tmp, "catalog.yaml")
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	return p, os.WriteFile(p, fmt.Appendf(nil, benchCatalogSrc, e.apiURL()), 0o644)
}

// startToolbus runs `toolbus serve` with args and waits until it is ready.
// It returns the HTTP address when the process serves HTTP.
func startToolbus(ctx context.Context, e *env, name string, args ...string) (*proc.Process, string, error) {
	return startToolbusEnv(ctx, e, name, nil, args...)
}

// startToolbusEnv is startToolbus with env added to the process's
// environment.
func startToolbusEnv(ctx context.Context, e *env, name string, env []string, args ...string) (*proc.Process, string, error) {
	p, err := proc.Start(name, proc.LogPath(e.tmp, name), e.tmp, env, e.toolbusBin, append([]string{"serve"}, args...)...)
	if err != nil {
		return nil, "", err
	}
	rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	ready, err := p.WaitLogLine(rctx, "toolbus ready")
	if err != nil {
		p.Stop(5 * time.Second)
		return nil, "", err
	}
	addr, _ := ready["http"].(string)
	return p, addr, nil
}

func setupToolbus(ctx context.Context, e *env) (*deployment, error) {
	return startAllInOne(ctx, e, "toolbus", nil, "embedded NATS, JetStream file storage, in-process connection")
}

// startAllInOne starts `toolbus serve` with every service on an embedded
// NATS server (file storage, in-process connection) and env added to its
// environment.
func startAllInOne(ctx context.Context, e *env, name string, env []string, note string) (*deployment, error) {
	if err := e.ensureToolbus(ctx); err != nil {
		return nil, err
	}
	cat, err := e.benchCatalog()
	if err != nil {
		return nil, err
	}
	data, err := os.MkdirTemp(e.tmp, name+"-data-")
	if err != nil {
		return nil, err
	}
	p, addr, err := startToolbusEnv(ctx, e, name, env, "--catalog", cat, "--nats-listen", "none", "--http", "127.0.0.1:0", "--grpc", "none", "--data", data)
	if err != nil {
		return nil, err
	}
	return &deployment{
		target: e.mcpTarget("http://"+addr+"/mcp", "lookup"),
		server: proc.Group{p},
		note:   note,
	}, nil
}

func setupSplit(ctx context.Context, e *env) (*deployment, error) {
	if err := e.ensureToolbus(ctx); err != nil {
		return nil, err
	}
	if err := e.ensureNATS(ctx); err != nil {
		return nil, err
	}
	cat, err := e.benchCatalog()
	if err != nil {
		return nil, err
	}
	port, err := proc.FreePort()
	if err != nil {
		return nil, err
	}
	store, err := os.MkdirTemp(e.tmp, "nats-store-")
	if err != nil {
		return nil, err
	}
	ns, err := proc.Start("nats-server", proc.LogPath(e.tmp, "nats-server"), e.tmp, nil, e.natsBin,
		"-a", "127.0.0.1", "-p", strconv.Itoa(port), "-js", "-sd", store)
	if err != nil {
		return nil, err
	}
	g := proc.Group{ns}
	fail := func(err error) (*deployment, error) {
		g.Stop(5 * time.Second)
		return nil, err
	}
	if err := ns.WaitTCP(ctx, fmt.Sprintf("127.0.0.1:%d", port)); err != nil {
		return fail(err)
	}
	natsURL := fmt.Sprintf("nats://127.0.0.1:%d", port)
	worker, _, err := startToolbus(ctx, e, "rest-worker", "--services", "rest-worker", "--catalog", cat, "--nats", natsURL, "--http", "none", "--grpc", "none")
	if err != nil {
		return fail(err)
	}
	g = append(g, worker)
	front, addr, err := startToolbus(ctx, e, "mcp-front", "--services", "mcp-front", "--catalog", cat, "--nats", natsURL, "--http", "127.0.0.1:0", "--grpc", "none")
	if err != nil {
		return fail(err)
	}
	g = append(g, front)
	return &deployment{
		target: e.mcpTarget("http://"+addr+"/mcp", "lookup"),
		server: g,
		note:   "nats-server (JetStream file storage) + mcp-front + rest-worker processes",
	}, nil
}

// setupPeer runs the npm OpenAPI-to-MCP server installed by peer/setup.sh
// on the CRM's own OpenAPI document, served by the upstream.
func setupPeer(ctx context.Context, e *env) (*deployment, error) {
	if e.client == "sdk" {
		// Seen with go-sdk v1.8.0 and peer 1.16.1: the session never
		// completes, and the go-sdk client does not give up on its context.
		return nil, errSkip{"the peer answers tools/call with 202 Accepted and sends the result on the session's GET stream (outside the Streamable HTTP spec); the go-sdk client hangs on it. Use -client raw"}
	}
	peerDir := filepath.Join(e.benchDir, "peer")
	entry := filepath.Join(peerDir, "node_modules", "@ivotoby", "openapi-mcp-server", "bin", "mcp-server.js")
	if _, err := os.Stat(entry); err != nil {
		cmd := exec.CommandContext(ctx, "bash", filepath.Join(peerDir, "setup.sh"))
		if b, err := cmd.CombinedOutput(); err != nil {
			return nil, errSkip{fmt.Sprintf("peer not installed and bench/peer/setup.sh failed: %v: %s", err, firstLines(string(b), 6))}
		}
	}
	if _, err := exec.LookPath(e.node); err != nil {
		return nil, errSkip{"node is not installed: " + err.Error()}
	}
	port, err := proc.FreePort()
	if err != nil {
		return nil, err
	}
	p, err := proc.Start("peer", proc.LogPath(e.tmp, "peer"), e.tmp, nil, e.node, entry,
		"--transport", "http", "--host", "127.0.0.1", "--port", strconv.Itoa(port), "--path", "/mcp",
		"--api-base-url", e.apiURL(), "--openapi-spec", e.upstreamURL+"/openapi.yaml", "--name", "peer")
	if err != nil {
		return nil, err
	}
	if err := p.WaitTCP(ctx, fmt.Sprintf("127.0.0.1:%d", port)); err != nil {
		p.Stop(time.Second)
		return nil, err
	}
	endpoint := fmt.Sprintf("http://127.0.0.1:%d/mcp", port)
	fctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	tool, err := target.FindTool(fctx, e.mcpTarget(endpoint, ""), "lookup")
	if err != nil {
		p.Stop(time.Second)
		return nil, fmt.Errorf("peer tools/list through the %s client: %w", e.client, err)
	}
	return &deployment{target: e.mcpTarget(endpoint, tool), server: proc.Group{p}, note: "its tool " + tool + " from the CRM's OpenAPI document"}, nil
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(strings.TrimSpace(s), "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, " | ")
}
