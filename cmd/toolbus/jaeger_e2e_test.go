package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
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
// the upstream HTTP client, queried through Jaeger's HTTP API. It also
// scrapes both processes' /metrics.
func TestTraceInJaeger(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Jaeger, NATS and two toolbus processes")
	}
	jaeger := jaegerBin(t)
	_, upURL := startCRM(t)
	catalogPath := testCatalog(t, upURL)
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
	front := startProc(t, "mcp-front", bin, append(common, "--services", "mcp-front", "--instance", "front")...)
	worker := startProc(t, "rest-worker", bin, append(common, "--services", "rest-worker", "--instance", "worker")...)
	frontHTTP := "http://" + front.waitLog(t, "listening", 20*time.Second)["http"].(string)
	workerHTTP := "http://" + worker.waitLog(t, "listening", 20*time.Second)["http"].(string)
	front.waitLog(t, "toolbus ready", 30*time.Second)
	worker.waitLog(t, "toolbus ready", 30*time.Second)

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
	// And the search API finds it by service, as an operator would.
	if !searchFinds(t, "http://"+query, "rest-worker", traceID) {
		t.Errorf("Jaeger search by service=rest-worker does not list trace %s", traceID)
	}

	for name, url := range map[string]string{"mcp-front": frontHTTP, "rest-worker": workerHTTP} {
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
		}[name]
		for _, w := range want {
			if !strings.Contains(body, w) {
				t.Errorf("%s /metrics lacks %s\n%s", name, w, grepLines(body, "toolbus_"))
			}
		}
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
