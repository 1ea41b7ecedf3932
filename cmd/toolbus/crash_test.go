package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/toolbus/toolbus/examples/crm"
)

// reliabilityCatalog declares create_customer with a budget long enough to
// outlive a crashed worker's AckWait.
func reliabilityCatalog(t *testing.T, baseURL string) string {
	t.Helper()
	src := fmt.Sprintf(`version: 1
upstreams:
  crm:
    base_url: %s/api/v1
    timeout: 30s
    idempotency_header: Idempotency-Key
    retry: {max_attempts: 3, initial_backoff: 50ms, max_backoff: 200ms}
tools:
  - name: create_customer
    description: Create a customer.
    upstream: crm
    method: POST
    path: /customers
    input_schema:
      type: object
      properties:
        name: {type: string}
        email: {type: string, format: email}
      required: [name, email]
  - name: get_customer
    description: Fetch one customer by id.
    upstream: crm
    method: GET
    path: /customers/{id}
    input_schema:
      type: object
      properties:
        id: {type: integer, minimum: 1}
      required: [id]
`, baseURL)
	path := filepath.Join(t.TempDir(), "catalog.yaml")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestWorkerCrashMidCall kills a rest-worker process with SIGKILL while its
// POST is inside the upstream. Another worker process completes the call
// after AckWait with the same idempotency key, the upstream performs it
// once, and the MCP client gets one successful answer.
func TestWorkerCrashMidCall(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts processes")
	}
	up, upURL := startCRM(t)
	// The first POST runs (the customer is created), then its answer is
	// held long enough to kill the worker waiting for it.
	if _, err := up.AddFault(crm.Fault{Method: "POST", Path: "/api/v1/customers", Action: crm.FaultDelay, Delay: 10 * time.Second, After: true, Times: 1}); err != nil {
		t.Fatal(err)
	}
	catalogPath := reliabilityCatalog(t, upURL)
	bin := toolbusBin(t)
	natsPort := freePort(t)
	natsURL := fmt.Sprintf("nats://127.0.0.1:%d", natsPort)
	startProc(t, "nats-server", natsServerBin(t), "-js", "-sd", t.TempDir(), "-a", "127.0.0.1", "-p", strconv.Itoa(natsPort))

	common := []string{"serve", "--catalog", catalogPath, "--nats", natsURL, "--grpc", "none", "--log-level", "info", "--ack-wait", "2s"}
	front := startProc(t, "mcp-front", bin, append(common, "--services", "mcp-front", "--http", "127.0.0.1:0", "--instance", "front")...)
	workerA := startProc(t, "worker-a", bin, append(common, "--services", "rest-worker", "--http", "none", "--instance", "worker-a")...)
	front.waitLog(t, "toolbus ready", 30*time.Second)
	workerA.waitLog(t, "toolbus ready", 30*time.Second)
	frontHTTP := "http://" + front.waitLog(t, "listening", time.Second)["http"].(string)
	s := mcpSession(t, frontHTTP+"/mcp")

	type answer struct {
		res *mcp.CallToolResult
		err error
	}
	answers := make(chan answer, 2)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
		defer cancel()
		r, err := s.CallTool(ctx, &mcp.CallToolParams{Name: "create_customer", Arguments: map[string]any{"name": "Grace Hopper", "email": "grace@example.com"}})
		answers <- answer{r, err}
	}()

	waitUntil(t, "the POST reaching the upstream", 15*time.Second, func() bool { return up.Stats().InFlight > 0 })
	workerB := startProc(t, "worker-b", bin, append(common, "--services", "rest-worker", "--http", "none", "--instance", "worker-b")...)
	workerB.waitLog(t, "toolbus ready", 30*time.Second)
	if err := workerA.cmd.Process.Kill(); err != nil { // SIGKILL: no shutdown, no NAK
		t.Fatal(err)
	}
	_ = workerA.wait(t, 10*time.Second)

	var a answer
	select {
	case a = <-answers:
	case <-time.After(40 * time.Second):
		t.Fatal("the MCP client got no answer after the worker crash")
	}
	if a.err != nil {
		t.Fatalf("call: %v", a.err)
	}
	if a.res.IsError {
		t.Fatalf("tool error after the crash: %v", a.res.Content)
	}
	created := asJSON(t, a.res.StructuredContent).(map[string]any)
	if created["email"] != "grace@example.com" {
		t.Errorf("answer %v is not the created customer", created)
	}

	st := up.Stats()
	if len(st.IdempotencyKeys) != 1 {
		t.Fatalf("idempotency keys seen: %v, want exactly one (the same key on both deliveries)", st.IdempotencyKeys)
	}
	for key, ks := range st.IdempotencyKeys {
		if ks.Requests != 2 || ks.Executions != 1 || ks.Replays != 1 {
			t.Errorf("key %s: %+v, want 2 requests, 1 execution, 1 replay", key, ks)
		}
	}
	if n := st.Routes["POST /api/v1/customers"]; n != 2 {
		t.Errorf("upstream saw %d POSTs, want 2 (one per worker)", n)
	}
	// One answer: a second result (from a redelivery) would find no waiter
	// and the client saw exactly one response to its one request.
	select {
	case extra := <-answers:
		t.Errorf("a second answer arrived: %+v", extra)
	default:
	}
}

func waitUntil(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not happen within %v", what, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// serveInProcess runs mcp-front and rest-worker in this process until the
// test ends, with the embedded NATS server listening on natsAddr.
func serveInProcess(t *testing.T, catalogPath, natsAddr string) addrs {
	t.Helper()
	cfg := serveConfig{
		catalogPath: catalogPath,
		services:    []string{svcMCPFront, svcRESTWork},
		natsListen:  natsAddr,
		dataDir:     t.TempDir(),
		httpAddr:    "127.0.0.1:0",
		grpcAddr:    "none",
		logLevel:    "warn",
		logFormat:   "json",
		grace:       5 * time.Second,
		instance:    "rel",
		replicas:    1,
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan addrs, 1)
	served := make(chan error, 1)
	go func() { served <- serve(ctx, cfg, nil, io.Discard, io.Discard, func(a addrs) { ready <- a }) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-served:
		case <-time.After(15 * time.Second):
			t.Error("serve did not stop")
		}
	})
	select {
	case a := <-ready:
		return a
	case err := <-served:
		t.Fatalf("serve returned before ready: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("not ready after 20s")
	}
	return addrs{}
}

// TestClientCancelStopsUpstreamCall: an MCP client that cancels its call
// (notifications/cancelled) makes the worker abandon the upstream request
// long before the tool's 30s timeout.
func TestClientCancelStopsUpstreamCall(t *testing.T) {
	up, upURL := startCRM(t)
	// A GET: the test server notices a client going away only once the
	// request body has been read, which a hang never does for a POST.
	if _, err := up.AddFault(crm.Fault{Method: "GET", Path: "/api/v1/customers/7", Action: crm.FaultHang}); err != nil {
		t.Fatal(err)
	}
	a := serveInProcess(t, reliabilityCatalog(t, upURL), "none")
	s := mcpSession(t, "http://"+a.http+"/mcp")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := s.CallTool(ctx, &mcp.CallToolParams{Name: "get_customer", Arguments: map[string]any{"id": 7}})
		done <- err
	}()
	waitUntil(t, "the GET reaching the upstream", 10*time.Second, func() bool { return up.Stats().InFlight > 0 })
	cancel()
	if err := <-done; err == nil {
		t.Fatal("a cancelled call returned no error")
	}
	waitUntil(t, "the worker abandoning the upstream request", 5*time.Second, func() bool { return up.Stats().InFlight == 0 })
	time.Sleep(500 * time.Millisecond)
	if n := up.Stats().Routes["GET /api/v1/customers/{id}"]; n != 1 {
		t.Errorf("upstream saw %d GETs, want 1: a cancelled call is neither retried nor redelivered", n)
	}
}

// TestDeadLetterReplay: a call that fails on every attempt lands in the
// dead-letter stream with its reason; `toolbus dlq replay` succeeds once the
// upstream recovers, with the call's original idempotency key.
func TestDeadLetterReplay(t *testing.T) {
	up, upURL := startCRM(t)
	faultID, err := up.AddFault(crm.Fault{Method: "POST", Path: "/api/v1/customers", Action: crm.FaultError, Status: 503})
	if err != nil {
		t.Fatal(err)
	}
	natsAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	a := serveInProcess(t, reliabilityCatalog(t, upURL), natsAddr)
	natsURL := "nats://" + natsAddr
	s := mcpSession(t, "http://"+a.http+"/mcp")

	res := callTool(t, s, "create_customer", map[string]any{"name": "Ada", "email": "ada@example.com"})
	if !res.IsError {
		t.Fatalf("want a tool error while the upstream fails, got %v", res.StructuredContent)
	}
	dlq := func(args ...string) (string, error) {
		var out bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err := run(ctx, append([]string{"dlq"}, args...), nil, &out, io.Discard)
		return out.String(), err
	}
	var list string
	waitUntil(t, "the dead letter appearing in `dlq list`", 10*time.Second, func() bool {
		list, err = dlq("list", "--nats", natsURL)
		return err == nil && strings.Contains(list, "crm/create_customer")
	})
	if !strings.Contains(list, "retries exhausted: upstream_failed after 3 attempts") {
		t.Errorf("dlq list does not give the reason:\n%s", list)
	}
	fields := strings.Fields(strings.Split(strings.TrimSpace(list), "\n")[1])
	seq, id := fields[0], fields[1]

	shown, err := dlq("show", "--nats", natsURL, id)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"reason": "retries exhausted: upstream_failed after 3 attempts"`, `"subject": "toolbus.call.rest.crm.create_customer"`, `"last_error": "upstream crm failed with 503`, `"idempotency_key"`} {
		if !strings.Contains(shown, want) {
			t.Errorf("dlq show lacks %s:\n%s", want, shown)
		}
	}

	// Still failing: the replay fails and the call is dead-lettered anew,
	// replacing the old entry.
	if out, err := dlq("replay", "--nats", natsURL, seq); err == nil || !strings.Contains(out, "failed again") {
		t.Errorf("replay while the upstream fails: %v\n%s", err, out)
	}
	list, err = dlq("list", "--nats", natsURL)
	if err != nil {
		t.Fatal(err)
	}
	rows := strings.Split(strings.TrimSpace(list), "\n")
	if len(rows) != 2 || strings.Contains(list, id) {
		t.Fatalf("after a failed replay want exactly the new dead letter:\n%s", list)
	}
	id = strings.Fields(rows[1])[1]
	up.RemoveFault(faultID)
	out, err := dlq("replay", "--nats", natsURL, id)
	if err != nil {
		t.Fatalf("replay after recovery: %v\n%s", err, out)
	}
	if !strings.Contains(out, "replayed, crm/create_customer succeeded") || !strings.Contains(out, `"email":"ada@example.com"`) {
		t.Errorf("replay output:\n%s", out)
	}
	st := up.Stats()
	if len(st.IdempotencyKeys) != 1 {
		t.Errorf("idempotency keys %v: the replay must reuse the call's key", st.IdempotencyKeys)
	}
	for key, ks := range st.IdempotencyKeys {
		if ks.Executions != 1 {
			t.Errorf("key %s executed %d times, want 1", key, ks.Executions)
		}
	}
	if list, _ := dlq("list", "--nats", natsURL); strings.Contains(list, "create_customer") {
		t.Errorf("a successfully replayed dead letter is still listed:\n%s", list)
	}
}
