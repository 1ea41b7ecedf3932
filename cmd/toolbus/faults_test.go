package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/toolbus/toolbus/bus"
	"github.com/toolbus/toolbus/examples/crm"
	toolbusv1 "github.com/toolbus/toolbus/gen/toolbus/v1"
	stateupdater "github.com/toolbus/toolbus/services/state-updater"
	"github.com/toolbus/toolbus/signature"
)

// The fault suite runs in plain `go test` in a short form (each fault
// once, a few seconds of traffic around it). `make test-faults` runs it
// with -faults (longer windows); `make soak` with -faults.soak=10m, which
// repeats the non-fatal faults under steady load and reports latency,
// memory and goroutines over time.
var (
	faultsLong = flag.Bool("faults", false, "fault suite: longer traffic windows around every fault")
	faultsSoak = flag.Duration("faults.soak", 0, "fault suite: after the kill faults, hold load with repeated faults this long, reporting every faults.every")
	faultsStep = flag.Duration("faults.every", 30*time.Second, "fault suite: soak reporting interval")
)

// faultToolTimeout is the tools' deadline; every call must be answered
// within it plus faultAnswerSlack (transport and scheduling).
const (
	faultToolTimeout = 6 * time.Second
	faultAnswerSlack = 4 * time.Second
)

func faultCatalog(t *testing.T, baseURL string) string {
	t.Helper()
	src := fmt.Sprintf(`version: 1
upstreams:
  crm:
    base_url: %s/api/v1
    timeout: %s
    concurrency: 32
    idempotency_header: Idempotency-Key
    retry: {max_attempts: 3, initial_backoff: 50ms, max_backoff: 300ms}
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
sources:
  stripe:
    scheme: stripe
    secrets: ["${env:E2E_STRIPE_SECRET}"]
projections:
  payments:
    sources: [stripe]
    events: ["payment_intent.*"]
    key: data.object.id
    version: created
`, baseURL, faultToolTimeout)
	path := filepath.Join(t.TempDir(), "catalog.yaml")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// faultRig is the system under test: one process per service, each on a
// fixed loopback port so a restarted process is found where it was.
type faultRig struct {
	t       *testing.T
	bin     string
	catalog string
	natsDir string
	natsURL string
	natsPrt int
	ports   map[string]int
	procs   map[string]*proc
	mu      sync.Mutex
}

// faultRoles are the toolbus processes; two workers so calls continue
// while one is dead or stopped.
var faultRoles = map[string]string{
	"mcp-front":      svcMCPFront,
	"worker-a":       svcRESTWork,
	"worker-b":       svcRESTWork,
	"webhook-ingest": svcWebhooks,
	"state-updater":  svcStateUpd,
}

func newFaultRig(t *testing.T, upURL string) *faultRig {
	r := &faultRig{t: t, bin: toolbusBin(t), catalog: faultCatalog(t, upURL), natsDir: t.TempDir(), ports: map[string]int{}, procs: map[string]*proc{}}
	r.natsPrt = freePort(t)
	r.natsURL = fmt.Sprintf("nats://127.0.0.1:%d", r.natsPrt)
	for role := range faultRoles {
		r.ports[role] = freePort(t)
	}
	r.start("nats")
	for _, role := range sortedRoles() {
		r.start(role)
	}
	return r
}

func (r *faultRig) start(role string) {
	t := r.t
	t.Helper()
	var p *proc
	if role == "nats" {
		p = startProc(t, "nats-server", natsServerBin(t), "-js", "-sd", r.natsDir, "-a", "127.0.0.1", "-p", strconv.Itoa(r.natsPrt))
	} else {
		p = startProcEnv(t, role, []string{"E2E_STRIPE_SECRET=" + webhookSecret}, r.bin,
			"serve", "--catalog", r.catalog, "--services", faultRoles[role], "--nats", r.natsURL,
			"--http", fmt.Sprintf("127.0.0.1:%d", r.ports[role]), "--grpc", "none", "--instance", role,
			"--log-level", "warn", "--ack-wait", "2s", "--shutdown-grace", "2s")
	}
	r.mu.Lock()
	r.procs[role] = p
	r.mu.Unlock()
	if role != "nats" {
		r.waitReady(role, 60*time.Second)
	}
}

// kill sends SIGKILL: no shutdown, no NAK, no flush.
func (r *faultRig) kill(role string) {
	r.t.Helper()
	r.mu.Lock()
	p := r.procs[role]
	r.mu.Unlock()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		r.t.Fatalf("kill %s: %v", role, err)
	}
	_ = p.wait(r.t, 10*time.Second)
}

func (r *faultRig) signal(role string, sig syscall.Signal) {
	r.t.Helper()
	r.mu.Lock()
	p := r.procs[role]
	r.mu.Unlock()
	if err := p.cmd.Process.Signal(sig); err != nil {
		r.t.Fatalf("signal %s %v: %v", role, sig, err)
	}
}

func (r *faultRig) url(role, path string) string {
	return fmt.Sprintf("http://127.0.0.1:%d%s", r.ports[role], path)
}

// waitReady waits for /readyz 200 from a process that was not restarted by
// the test: it proves the service recovered on its own.
func (r *faultRig) waitReady(role string, timeout time.Duration) {
	r.t.Helper()
	deadline := time.Now().Add(timeout)
	hc := &http.Client{Timeout: time.Second}
	for {
		res, err := hc.Get(r.url(role, "/readyz"))
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("%s not ready within %v (last: %v)", role, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// metric reads one unlabelled sample from a process's /metrics.
func (r *faultRig) metric(role, name string) (float64, bool) {
	hc := &http.Client{Timeout: 2 * time.Second}
	res, err := hc.Get(r.url(role, "/metrics"))
	if err != nil {
		return 0, false
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == name {
			v, err := strconv.ParseFloat(f[1], 64)
			return v, err == nil
		}
	}
	return 0, false
}

// callLoad holds a steady stream of tool calls from several MCP clients,
// reconnecting when mcp-front is gone.
type callLoad struct {
	url  string
	sent atomic.Int64
	ok   atomic.Int64
	// toolErrors are answers with IsError (a clear tool error); transport
	// errors are the connection to a killed mcp-front failing.
	toolErrors atomic.Int64
	transport  atomic.Int64
	// late counts calls not answered within their deadline: must stay 0.
	late atomic.Int64

	mu        sync.Mutex
	latencies []time.Duration
	errText   map[string]int
	lateCalls []string
}

func (l *callLoad) run(ctx context.Context, worker int) {
	var s *mcp.ClientSession
	defer func() {
		if s != nil {
			_ = s.Close()
		}
	}()
	for i := 0; ctx.Err() == nil; i++ {
		if s == nil {
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			c := mcp.NewClient(&mcp.Implementation{Name: "faults", Version: "test"}, nil)
			var err error
			s, err = c.Connect(cctx, &mcp.StreamableClientTransport{Endpoint: l.url, MaxRetries: -1}, nil)
			cancel()
			if err != nil {
				s = nil
				time.Sleep(100 * time.Millisecond)
				continue
			}
		}
		params := &mcp.CallToolParams{Name: "create_customer", Arguments: map[string]any{
			"name": fmt.Sprintf("Fault %d-%d", worker, i), "email": fmt.Sprintf("f%d.%d.%d@example.com", worker, i, time.Now().UnixNano()),
		}}
		if i%3 == 2 {
			params = &mcp.CallToolParams{Name: "get_customer", Arguments: map[string]any{"id": 1 + i%5}}
		}
		// The deadline is the caller's, independent of ctx: stopping the
		// load must not turn an in-flight call into a late one.
		cctx, cancel := context.WithTimeout(context.Background(), faultToolTimeout+faultAnswerSlack)
		start := time.Now()
		l.sent.Add(1)
		res, err := s.CallTool(cctx, params)
		elapsed := time.Since(start)
		deadlineHit := cctx.Err() != nil
		cancel()
		switch {
		case deadlineHit:
			l.late.Add(1)
			l.mu.Lock()
			l.lateCalls = append(l.lateCalls, fmt.Sprintf("%s after %v: %v", params.Name, elapsed.Round(time.Millisecond), err))
			l.mu.Unlock()
		case err != nil:
			l.transport.Add(1)
			l.note("transport: " + firstLine(err.Error()))
			_ = s.Close()
			s = nil
		case res.IsError:
			l.toolErrors.Add(1)
			if len(res.Content) > 0 {
				if tc, ok := res.Content[0].(*mcp.TextContent); ok {
					l.note("tool: " + firstLine(tc.Text))
				}
			}
		default:
			l.ok.Add(1)
		}
		l.mu.Lock()
		l.latencies = append(l.latencies, elapsed)
		l.mu.Unlock()
	}
}

func (l *callLoad) note(s string) {
	if len(s) > 90 {
		s = s[:90]
	}
	l.mu.Lock()
	l.errText[s]++
	l.mu.Unlock()
}

// takeLatencies returns and clears the latencies recorded so far.
func (l *callLoad) takeLatencies() []time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.latencies
	l.latencies = nil
	return out
}

// hookLoad sends signed webhooks like a provider: each event is retried
// until it gets a 2xx. Acknowledged events must all be stored.
type hookLoad struct {
	url    string
	scheme signature.Scheme
	next   atomic.Int64
	sent   atomic.Int64
	// retried counts non-2xx answers and transport errors.
	retried atomic.Int64
	mu      sync.Mutex
	acked   map[string]bool
	errs    []error
}

func (h *hookLoad) run(ctx context.Context) {
	client := &http.Client{Timeout: 5 * time.Second}
	for ctx.Err() == nil {
		i := h.next.Add(1)
		id := fmt.Sprintf("evt_%06d", i)
		body := fmt.Appendf(nil, `{"id":%q,"type":"payment_intent.succeeded","created":%d,"data":{"object":{"id":"pi_%d","amount":%d}}}`, id, 1700000000+i, i%50, i)
		h.sent.Add(1)
		// A provider keeps retrying an event it started, whatever happens.
		for deadline := time.Now().Add(60 * time.Second); ; {
			if time.Now().After(deadline) {
				h.fail(fmt.Errorf("event %s never acknowledged", id))
				break
			}
			hdr, err := h.scheme.Sign(body, time.Now(), id, "payment_intent.succeeded")
			if err != nil {
				h.fail(err)
				return
			}
			req, _ := http.NewRequest(http.MethodPost, h.url, bytes.NewReader(body))
			req.Header = hdr
			req.Header.Set("Content-Type", "application/json")
			res, err := client.Do(req)
			if err == nil {
				res.Body.Close()
				if res.StatusCode/100 == 2 {
					h.mu.Lock()
					h.acked[id] = true
					h.mu.Unlock()
					// A steady stream, not a flood: about 100 events/s
					// per sender leaves the 2 CPUs of CI to the faults.
					time.Sleep(10 * time.Millisecond)
					break
				}
				if res.StatusCode/100 == 4 {
					h.fail(fmt.Errorf("event %s refused with %s: a provider would drop it", id, res.Status))
					break
				}
			}
			h.retried.Add(1)
			time.Sleep(50 * time.Millisecond)
		}
	}
}

func (h *hookLoad) fail(err error) {
	h.mu.Lock()
	h.errs = append(h.errs, err)
	h.mu.Unlock()
}

// TestFaults runs a steady stream of tool calls and webhooks through real
// processes while killing each of them (SIGKILL), restarting the NATS
// server, stopping a worker (SIGSTOP/SIGCONT as a partition from NATS) and
// making the upstream hang, reset, dribble, garble and flood. It counts
// what was sent, acknowledged, stored, duplicated and lost, and requires:
// no acknowledged webhook lost or stored twice, no idempotency key
// executed twice upstream, every call answered within its deadline, and
// every service serving again on its own.
func TestFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts processes")
	}
	window := 1500 * time.Millisecond // traffic after each fault
	if *faultsLong || *faultsSoak > 0 {
		window = 8 * time.Second
	}
	up, upURL := startCRM(t)
	r := newFaultRig(t, upURL)
	scheme, err := signature.New(signature.Config{Scheme: "stripe", Secrets: signature.Secrets{webhookSecret}})
	if err != nil {
		t.Fatal(err)
	}

	calls := &callLoad{url: r.url("mcp-front", "/mcp"), errText: map[string]int{}}
	hooks := &hookLoad{url: r.url("webhook-ingest", "/webhooks/stripe"), scheme: scheme, acked: map[string]bool{}}
	loadCtx, stopLoad := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() { calls.run(loadCtx, i) })
	}
	for range 3 {
		wg.Go(func() { hooks.run(loadCtx) })
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			stopLoad()
			wg.Wait()
		}
	}
	t.Cleanup(stop)

	restart := func(role string) func() {
		return func() { r.kill(role); time.Sleep(200 * time.Millisecond); r.start(role) }
	}
	upstreamFault := func(f crm.Fault) func() {
		return func() {
			if _, err := up.AddFault(f); err != nil {
				t.Fatal(err)
			}
		}
	}
	kills := []faultStep{
		{"baseline", func() {}},
		{"kill -9 worker-a", restart("worker-a")},
		{"kill -9 mcp-front", restart("mcp-front")},
		{"kill -9 webhook-ingest", restart("webhook-ingest")},
		{"kill -9 state-updater", restart("state-updater")},
	}
	// Faults the toolbus processes survive without a restart by the test;
	// the soak repeats these.
	survivable := []faultStep{
		{"kill -9 nats-server, restart on the same store", func() {
			r.kill("nats")
			time.Sleep(300 * time.Millisecond)
			r.start("nats")
		}},
		{"SIGSTOP worker-b 5s (partition), SIGCONT", func() {
			r.signal("worker-b", syscall.SIGSTOP)
			time.Sleep(5 * time.Second)
			r.signal("worker-b", syscall.SIGCONT)
		}},
		// POSTs carry the idempotency header: After runs the handler first,
		// so the side effect happened and the retry must be a replay.
		{"upstream hangs", upstreamFault(crm.Fault{Method: "POST", Path: "/api/v1/customers", Action: crm.FaultHang, Times: 2})},
		{"upstream resets after the side effect", upstreamFault(crm.Fault{Method: "POST", Path: "/api/v1/customers", Action: crm.FaultReset, After: true, Times: 4})},
		{"upstream answers byte by byte", upstreamFault(crm.Fault{Path: "/api/v1/customers*", Action: crm.FaultSlowBody, Delay: 5 * time.Millisecond, Times: 4})},
		{"upstream returns malformed JSON", upstreamFault(crm.Fault{Method: "GET", Path: "/api/v1/customers*", Action: crm.FaultMalformedJSON, Times: 4})},
		{"upstream returns a 10 MB body", upstreamFault(crm.Fault{Method: "GET", Path: "/api/v1/customers*", Action: crm.FaultLargeBody, Times: 2})},
	}
	run := func(s faultStep) {
		before := calls.sent.Load()
		s.do()
		time.Sleep(window)
		t.Logf("%-50s calls sent %d during it", s.name, calls.sent.Load()-before)
	}
	for _, s := range kills {
		run(s)
	}
	for _, s := range survivable {
		run(s)
	}
	var soakStart map[string]float64
	if *faultsSoak > 0 {
		soakStart = r.soak(t, calls, survivable, *faultsSoak, *faultsStep)
	}

	// Recovery: with every fault gone, each process must be ready and calls
	// must succeed again, with no help from the test.
	up.ClearFaults()
	for role := range faultRoles {
		r.waitReady(role, 30*time.Second)
	}
	time.Sleep(faultToolTimeout) // calls that were mid-fault finish
	okBefore, sentBefore := calls.ok.Load(), calls.sent.Load()
	errBefore := calls.toolErrors.Load() + calls.transport.Load()
	time.Sleep(max(window, 3*time.Second))
	recSent, recOK := calls.sent.Load()-sentBefore, calls.ok.Load()-okBefore
	recErr := calls.toolErrors.Load() + calls.transport.Load() - errBefore
	stop()
	if soakStart != nil {
		r.checkGoroutines(t, soakStart)
	}

	// Count what the webhook stream holds, per event id.
	stored, projected := r.webhookStore(t)
	hooks.mu.Lock()
	defer hooks.mu.Unlock()
	var lost, duplicated []string
	for id := range hooks.acked {
		if stored[id] == 0 {
			lost = append(lost, id)
		}
	}
	for id, n := range stored {
		if n > 1 {
			duplicated = append(duplicated, id)
		}
	}
	st := up.Stats()
	var execDup, replayed int
	for _, ks := range st.IdempotencyKeys {
		if ks.Executions > 1 {
			execDup++
		}
		if ks.Replays > 0 {
			replayed++
		}
	}
	calls.mu.Lock()
	defer calls.mu.Unlock()
	t.Logf("webhooks: sent %d, acknowledged %d, retried %d times, stored %d distinct, duplicated %d, lost %d; projection consumer pending %d",
		hooks.sent.Load(), len(hooks.acked), hooks.retried.Load(), len(stored), len(duplicated), len(lost), projected)
	t.Logf("tool calls: sent %d, answered %d (ok %d, tool error %d, transport error from a killed mcp-front %d), late %d",
		calls.sent.Load(), calls.ok.Load()+calls.toolErrors.Load()+calls.transport.Load(), calls.ok.Load(), calls.toolErrors.Load(), calls.transport.Load(), calls.late.Load())
	t.Logf("upstream: %d requests, %d idempotency keys, %d replayed from the key store, %d executed more than once; %d faults injected",
		st.Requests, len(st.IdempotencyKeys), replayed, execDup, st.FaultsInjected)
	t.Logf("recovery window: %d calls, %d ok, %d errors", recSent, recOK, recErr)
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range calls.errText {
			if !yield(k) {
				return
			}
		}
	}) {
		t.Logf("  %4d × %s", calls.errText[k], k)
	}

	for _, err := range hooks.errs {
		t.Error(err)
	}
	if len(lost) > 0 {
		t.Errorf("acknowledged webhooks lost: %v", lost)
	}
	if len(duplicated) > 0 {
		t.Errorf("webhooks stored twice: %v", duplicated)
	}
	if projected != 0 {
		t.Errorf("the state-updater left %d events unprocessed", projected)
	}
	if execDup > 0 {
		t.Errorf("%d idempotency keys executed more than once upstream", execDup)
	}
	if n := calls.late.Load(); n > 0 {
		t.Errorf("%d calls not answered within %v: %v", n, faultToolTimeout+faultAnswerSlack, calls.lateCalls)
	}
	if recSent == 0 || recErr > 0 {
		t.Errorf("after the faults %d of %d calls failed: the system did not recover", recErr, recSent)
	}
	// Each fault must have hit the traffic, or this run proves nothing.
	if hooks.retried.Load() == 0 {
		t.Error("no webhook delivery was refused: the faults missed the webhook traffic")
	}
	if calls.toolErrors.Load()+calls.transport.Load() == 0 || st.FaultsInjected == 0 || replayed == 0 {
		t.Errorf("faults missed the call traffic: %d errors, %d upstream faults, %d replays", calls.toolErrors.Load()+calls.transport.Load(), st.FaultsInjected, replayed)
	}
}

// webhookStore returns how many times each event id is in the WEBHOOKS
// stream, and the projection consumer's unprocessed count once it settles.
func (r *faultRig) webhookStore(t *testing.T) (map[string]int, uint64) {
	t.Helper()
	nc, err := bus.Connect(bus.ConnectOptions{URL: r.natsURL, Name: "faults-check"})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := bus.WaitJetStream(ctx, nc, js, nil); err != nil {
		t.Fatal(err)
	}
	cons, err := js.OrderedConsumer(ctx, bus.StreamWebhooks, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]int{}
	for {
		msg, err := cons.Next(jetstream.FetchMaxWait(time.Second))
		if err != nil {
			break
		}
		ev := &toolbusv1.WebhookEvent{}
		if err := proto.Unmarshal(msg.Data(), ev); err != nil {
			t.Fatalf("undecodable event in stream: %v", err)
		}
		stored[ev.Id]++
	}
	var pending uint64
	ctx, cancel = context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for deadline := time.Now().Add(20 * time.Second); ; {
		info, err := js.Consumer(ctx, bus.StreamWebhooks, stateupdater.ConsumerName("payments"))
		if err != nil {
			t.Fatalf("projection consumer: %v", err)
		}
		ci, err := info.Info(ctx)
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatal(err)
		}
		if ci != nil {
			pending = ci.NumPending + uint64(ci.NumAckPending)
		}
		if pending == 0 || time.Now().After(deadline) {
			return stored, pending
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// faultStep is one fault: do injects it (and undoes it, for kills).
type faultStep struct {
	name string
	do   func()
}

// soak repeats the survivable faults under load for d, logging latency
// percentiles, heap and goroutines of every toolbus process each interval.
// The test restarts no toolbus process during the soak, so their growth is
// meaningful. It returns the goroutine counts at the start.
func (r *faultRig) soak(t *testing.T, calls *callLoad, faults []faultStep, d, every time.Duration) map[string]float64 {
	t.Helper()
	start := time.Now()
	goroutines := map[string]float64{}
	for _, role := range sortedRoles() {
		goroutines[role], _ = r.metric(role, "go_goroutines")
	}
	calls.takeLatencies()
	for i := 0; time.Since(start) < d; i++ {
		tick := time.Now()
		f := faults[i%len(faults)]
		f.do()
		if rest := every - time.Since(tick); rest > 0 {
			time.Sleep(rest)
		}
		lat := calls.takeLatencies()
		var line strings.Builder
		fmt.Fprintf(&line, "soak %4ds %-45s calls %5d p50 %-8v p95 %-8v p99 %-8v |", int(time.Since(start).Seconds()), f.name, len(lat), pct(lat, 50), pct(lat, 95), pct(lat, 99))
		for _, role := range sortedRoles() {
			g, _ := r.metric(role, "go_goroutines")
			h, _ := r.metric(role, "go_memstats_heap_alloc_bytes")
			rss, _ := r.metric(role, "process_resident_memory_bytes")
			fmt.Fprintf(&line, " %s g=%.0f heap=%.1fMB rss=%.0fMB", role, g, h/1e6, rss/1e6)
		}
		t.Log(line.String())
	}
	return goroutines
}

// checkGoroutines compares each process's goroutines, once the load has
// stopped and idle connections have closed, with the soak's start: a leak
// grows with the number of calls, far past this margin.
func (r *faultRig) checkGoroutines(t *testing.T, start map[string]float64) {
	t.Helper()
	time.Sleep(5 * time.Second)
	for _, role := range sortedRoles() {
		g, ok := r.metric(role, "go_goroutines")
		if !ok {
			t.Errorf("%s: no go_goroutines in /metrics", role)
			continue
		}
		t.Logf("goroutines %s: %.0f at the start of the soak, %.0f after it", role, start[role], g)
		if g > 2*start[role]+50 {
			t.Errorf("%s: %.0f goroutines after the soak, %.0f before: a leak", role, g, start[role])
		}
	}
}

func sortedRoles() []string {
	var out []string
	for k := range faultRoles {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// pct is the p-th percentile of ds (nearest rank).
func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[max(i-1, 0)].Round(time.Millisecond)
}
