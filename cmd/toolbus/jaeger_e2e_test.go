package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/toolbus/toolbus/signature"
)

// jaegerBin is the Jaeger all-in-one built from tools/jaeger by
// `make jaeger-bin` (make test builds it first). A missing binary fails the
// test: the trace promise is never skipped silently.
func jaegerBin(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("TOOLBUS_JAEGER_BIN"); p != "" {
		return p
	}
	p := filepath.Join(repoRoot(t), "bin", "jaeger")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("Jaeger binary not found at %s: run 'make jaeger-bin' (make test does) or set TOOLBUS_JAEGER_BIN", p)
	}
	return p
}

// jaegerTrace is the part of Jaeger's /api/traces answer the test reads.
type jaegerTrace struct {
	TraceID string `json:"traceID"`
	Spans   []struct {
		SpanID        string `json:"spanID"`
		OperationName string `json:"operationName"`
		ProcessID     string `json:"processID"`
		Tags          []struct {
			Key   string `json:"key"`
			Value any    `json:"value"`
		} `json:"tags"`
	} `json:"spans"`
	Processes map[string]struct {
		ServiceName string `json:"serviceName"`
	} `json:"processes"`
}

// TestTraceInJaeger runs a real Jaeger, nats-server, and mcp-front and
// rest-worker as separate toolbus processes exporting OTLP to it; one tool
// call must show up as ONE trace holding spans of mcp-front, rest-worker and
// the upstream HTTP client, queried through Jaeger's HTTP API. A third
// process runs webhook-ingest and state-updater: one signed webhook must be
// ONE trace holding the ingest's server span and the state-updater's apply
// span. It also scrapes the processes' /metrics.
func TestTraceInJaeger(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Jaeger, NATS and two toolbus processes")
	}
	jaeger := jaegerBin(t)
	_, upURL := startCRM(t)
	catalogPath := testCatalog(t, upURL)
	// A webhook source and a projection too, for the webhook's trace.
	t.Setenv("E2E_STRIPE_SECRET", webhookSecret)
	appendFile(t, catalogPath, `
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
`)
	bin := toolbusBin(t)

	otlpHTTP := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	query := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	t.Setenv("JAEGER_OTLP_GRPC", fmt.Sprintf("127.0.0.1:%d", freePort(t)))
	t.Setenv("JAEGER_OTLP_HTTP", otlpHTTP)
	t.Setenv("JAEGER_QUERY_HTTP", query)
	t.Setenv("JAEGER_QUERY_GRPC", fmt.Sprintf("127.0.0.1:%d", freePort(t)))
	startProc(t, "jaeger", jaeger, "--config", "file:"+filepath.Join(repoRoot(t), "tools", "jaeger", "config.yaml"))
	waitHTTP(t, "http://"+query+"/api/services", 60*time.Second)

	natsPort := freePort(t)
	startProc(t, "nats-server", natsServerBin(t), "-js", "-sd", t.TempDir(), "-a", "127.0.0.1", "-p", strconv.Itoa(natsPort))

	// The standard variables, as an operator would set them.
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+otlpHTTP)
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "100")
	common := []string{"serve", "--catalog", catalogPath, "--nats", fmt.Sprintf("nats://127.0.0.1:%d", natsPort), "--grpc", "none", "--http", "127.0.0.1:0", "--log-level", "info"}
	front := startProc(t, "mcp-front", bin, append(common, "--services", "mcp-front", "--instance", "front", "--console", "--jaeger-ui", "http://"+query)...)
	worker := startProc(t, "rest-worker", bin, append(common, "--services", "rest-worker", "--instance", "worker")...)
	hooks := startProc(t, "webhooks", bin, append(common, "--services", "webhook-ingest,state-updater", "--instance", "hooks")...)
	frontHTTP := "http://" + front.waitLog(t, "listening", 20*time.Second)["http"].(string)
	workerHTTP := "http://" + worker.waitLog(t, "listening", 20*time.Second)["http"].(string)
	hooksHTTP := "http://" + hooks.waitLog(t, "listening", 20*time.Second)["http"].(string)
	front.waitLog(t, "toolbus ready", 30*time.Second)
	worker.waitLog(t, "toolbus ready", 30*time.Second)
	hooks.waitLog(t, "toolbus ready", 30*time.Second)

	s := mcpSession(t, frontHTTP+"/mcp")
	if res := callTool(t, s, "get_customer", map[string]any{"id": 2}); res.IsError {
		t.Fatalf("tool error: %v", res.Content)
	}
	// The call's log line names its trace.
	line := front.waitLog(t, "tool call", 5*time.Second)
	traceID, _ := line["trace_id"].(string)
	if len(traceID) != 32 || line["span_id"] == nil {
		t.Fatalf("log line without trace_id/span_id: %v", line)
	}

	// Spans are exported in batches; poll Jaeger until the whole trace is in.
	var tr jaegerTrace
	deadline := time.Now().Add(30 * time.Second)
	for {
		tr = fetchJaegerTrace(t, "http://"+query, traceID)
		services, client := traceServices(tr)
		if (services["mcp-front"] && services["rest-worker"] && client) || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	services, client := traceServices(tr)
	if !services["mcp-front"] || !services["rest-worker"] || !client {
		t.Fatalf("trace %s in Jaeger: services %v, upstream client span %v; spans: %v", traceID, services, client, operations(tr))
	}
	// The console draws the same trace from Jaeger's API: the front's
	// server span, the worker's consumer span under it, the upstream call
	// under that.
	page := scrape(t, frontHTTP+"/console/traces/"+traceID)
	for _, want := range []string{
		`<code id="trace-id">` + traceID + `</code>`,
		`<th scope="row" class="depth-0"><details><summary>tools/call get_customer`,
		`<th scope="row" class="depth-1"><details><summary>process toolbus.call.rest.crm.get_customer`,
		`<th scope="row" class="depth-2"><details><summary>GET`,
		"<td>rest-worker</td>",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("console trace page lacks %q; its spans:\n%s", want, grepLines(page, "<summary>"))
		}
	}
	if res, err := http.Get(frontHTTP + "/console/traces/0123456789abcdef0123456789abcdef"); err != nil || res.StatusCode != http.StatusNotFound {
		t.Errorf("console page of a trace Jaeger does not have: %v %v, want 404", res.Status, err)
	} else {
		res.Body.Close()
	}
	// And the search API finds it by service, as an operator would.
	if !searchFinds(t, "http://"+query, "rest-worker", traceID) {
		t.Errorf("Jaeger search by service=rest-worker does not list trace %s", traceID)
	}

	// One signed webhook, continuing a provider's trace context: one trace
	// holding the ingest's and the state-updater's spans.
	const hookTrace = "5e1f0c2a9b3d4e6f8a7b6c5d4e3f2a1b"
	scheme, err := signature.New(signature.Config{Scheme: "stripe", Secrets: signature.Secrets{webhookSecret}})
	if err != nil {
		t.Fatal(err)
	}
	hookBody := []byte(`{"id":"evt_jaeger_1","type":"payment_intent.succeeded","created":1700000001,"data":{"object":{"id":"pi_1","amount":100}}}`)
	h, err := scheme.Sign(hookBody, time.Now(), "evt_jaeger_1", "payment_intent.succeeded")
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, hooksHTTP+"/webhooks/stripe", bytes.NewReader(hookBody))
	req.Header = h
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Traceparent", "00-"+hookTrace+"-1a2b3c4d5e6f7081-01")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusAccepted {
		t.Fatalf("webhook answered %s, want 202", res.Status)
	}
	hookOps := func(tr jaegerTrace) (ingest, apply bool) {
		for _, op := range operations(tr) {
			ingest = ingest || op == "webhook-ingest: POST /webhooks/{source}"
			apply = apply || op == "state-updater: apply payments"
		}
		return ingest, apply
	}
	deadline = time.Now().Add(30 * time.Second)
	for {
		tr = fetchJaegerTrace(t, "http://"+query, hookTrace)
		if i, a := hookOps(tr); (i && a) || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if i, a := hookOps(tr); !i || !a {
		t.Errorf("webhook trace %s in Jaeger: ingest server span %v, state-updater apply span %v; spans: %v", hookTrace, i, a, operations(tr))
	}
	if services, _ := traceServices(tr); !services["webhook-ingest"] || !services["state-updater"] {
		t.Errorf("webhook trace %s: services %v", hookTrace, services)
	}

	for name, url := range map[string]string{"mcp-front": frontHTTP, "rest-worker": workerHTTP, "webhooks": hooksHTTP} {
		body := scrape(t, url+"/metrics")
		want := map[string][]string{
			"mcp-front": {
				`toolbus_calls_total{outcome="ok",tool="get_customer",upstream="crm",via="mcp"} 1`,
				`toolbus_call_duration_seconds_count{outcome="ok",tool="get_customer",upstream="crm",via="mcp"} 1`,
			},
			"rest-worker": {
				`toolbus_worker_calls_total{outcome="ok",tool="get_customer",upstream="crm"} 1`,
				`toolbus_call_queue_wait_seconds_bucket{tool="get_customer",upstream="crm",le="+Inf"} 1`,
				`toolbus_upstream_duration_seconds_count{tool="get_customer",upstream="crm"} 1`,
				`toolbus_consumer_pending{consumer="calls-rest-crm",stream="CALLS"}`,
			},
			"webhooks": {
				`toolbus_webhooks_total{outcome="stored",source="stripe"} 1`,
				`toolbus_projection_events_total{outcome="applied",projection="payments",source="stripe"} 1`,
				`toolbus_projection_lag_seconds_count{projection="payments",source="stripe"} 1`,
			},
		}[name]
		for _, w := range want {
			if !strings.Contains(body, w) {
				t.Errorf("%s /metrics lacks %s\n%s", name, w, grepLines(body, "toolbus_"))
			}
		}
	}
}

func appendFile(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func waitHTTP(t *testing.T, url string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		res, err := http.Get(url)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s not answering 200 after %v", url, timeout)
}

func fetchJaegerTrace(t *testing.T, base, traceID string) jaegerTrace {
	t.Helper()
	res, err := http.Get(base + "/api/traces/" + traceID)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode == http.StatusNotFound {
		return jaegerTrace{}
	}
	var body struct {
		Data []jaegerTrace `json:"data"`
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		t.Fatalf("decode Jaeger trace: %v", err)
	}
	if len(body.Data) != 1 {
		return jaegerTrace{}
	}
	return body.Data[0]
}

// traceServices lists the services with spans in tr, and whether one of
// them is an upstream HTTP client span (span.kind client with
// http.response.status_code).
func traceServices(tr jaegerTrace) (map[string]bool, bool) {
	services := map[string]bool{}
	client := false
	for _, sp := range tr.Spans {
		services[tr.Processes[sp.ProcessID].ServiceName] = true
		kind, status := false, false
		for _, tag := range sp.Tags {
			switch tag.Key {
			case "span.kind":
				kind = tag.Value == "client"
			case "http.response.status_code":
				status = true
			}
		}
		if kind && status && tr.Processes[sp.ProcessID].ServiceName == "rest-worker" {
			client = true
		}
	}
	return services, client
}

func operations(tr jaegerTrace) []string {
	var ops []string
	for _, sp := range tr.Spans {
		ops = append(ops, tr.Processes[sp.ProcessID].ServiceName+": "+sp.OperationName)
	}
	return ops
}

func searchFinds(t *testing.T, base, service, traceID string) bool {
	t.Helper()
	res, err := http.Get(base + "/api/traces?service=" + service + "&lookback=1h&limit=20")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body struct {
		Data []jaegerTrace `json:"data"`
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		t.Fatalf("decode Jaeger search: %v", err)
	}
	for _, tr := range body.Data {
		if tr.TraceID == traceID {
			return true
		}
	}
	return false
}
