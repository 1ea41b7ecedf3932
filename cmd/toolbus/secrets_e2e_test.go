package main

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/toolbus/toolbus/catalog"
	"github.com/toolbus/toolbus/examples/crm"
	"github.com/toolbus/toolbus/signature"
)

const (
	leastPrivAPIKey  = "crm-e2e-api-key-s3cr3t"
	leastPrivWebhook = "whsec_e2e_least_privilege_s3cr3t"
)

// leastPrivCatalog has an upstream credential in a file and a webhook
// secret in a variable, as a pod gets them from two Kubernetes Secrets.
// extraTool adds get_order (a catalog edit for hot reload).
func leastPrivCatalog(t *testing.T, dir, crmURL string, extraTool bool) (path, src string) {
	t.Helper()
	extra := ""
	if extraTool {
		extra = `  - name: get_order
    description: Fetch one order by id.
    upstream: crm
    method: GET
    path: /orders/{id}
    input_schema:
      type: object
      properties:
        id: {type: integer, minimum: 1}
      required: [id]
`
	}
	src = fmt.Sprintf(`version: 1
upstreams:
  crm:
    base_url: %s/api/v1
    timeout: 5s
    headers:
      X-Api-Key: ${file:%s/upstream/crm-api-key}
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
tools:
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
%s`, crmURL, dir, extra)
	path = filepath.Join(dir, "catalog.yaml")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, src
}

// lineCol is the file:line:col at which token starts in src.
func lineCol(file, src, token string) string {
	i := strings.Index(src, token)
	return fmt.Sprintf("%s:%d:%d", file, 1+strings.Count(src[:i], "\n"), i-strings.LastIndexByte(src[:i], '\n'))
}

// TestServeLoadsOnlyItsSecrets runs split processes that each hold only the
// secrets of their services, as the Kubernetes Deployments mount them:
// webhook-ingest starts and verifies deliveries without the upstream
// credential file, mcp-front without any secret, rest-worker calls the
// upstream with its credential but without the webhook secret, and all of
// them take a hot reload with the same least privilege. The all-in-one
// still needs every secret.
func TestServeLoadsOnlyItsSecrets(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts processes")
	}
	up := crm.NewServer(crm.Options{APIKey: leastPrivAPIKey})
	srv := httptest.NewServer(up)
	t.Cleanup(func() { up.Close(); srv.Close() })

	// The webhook secret is in this test's environment only for the
	// processes given webhookEnv.
	t.Setenv("E2E_STRIPE_SECRET", "")
	os.Unsetenv("E2E_STRIPE_SECRET")
	dir := t.TempDir()
	catalogPath, src := leastPrivCatalog(t, dir, srv.URL, false)
	keyFile := filepath.Join(dir, "upstream", "crm-api-key")
	bin := toolbusBin(t)
	natsPort := freePort(t)
	natsURL := fmt.Sprintf("nats://127.0.0.1:%d", natsPort)
	startProc(t, "nats-server", natsServerBin(t), "-js", "-sd", t.TempDir(), "-a", "127.0.0.1", "-p", strconv.Itoa(natsPort))

	common := []string{"serve", "--catalog", catalogPath, "--nats", natsURL, "--grpc", "none", "--http", "127.0.0.1:0", "--log-level", "info"}
	webhookEnv := []string{"E2E_STRIPE_SECRET=" + leastPrivWebhook}
	var noWebhookEnv []string
	serve := func(name string, env []string, args ...string) *proc {
		t.Helper()
		return startProcEnv(t, name, env, bin, append(slices.Clone(common), args...)...)
	}

	// No upstream credential on disk.
	if _, err := os.Stat(keyFile); !os.IsNotExist(err) {
		t.Fatalf("%s exists: %v", keyFile, err)
	}
	ingest := serve("webhook-ingest", webhookEnv, "--services", "webhook-ingest,state-updater", "--instance", "ingest")
	front := serve("mcp-front", noWebhookEnv, "--services", "mcp-front", "--instance", "front")
	ingest.waitLog(t, "toolbus ready", 30*time.Second)
	front.waitLog(t, "toolbus ready", 30*time.Second)

	// The ingest verifies a signed delivery with the one secret it holds.
	ingestHTTP := "http://" + ingest.waitLog(t, "listening", 5*time.Second)["http"].(string)
	if code := postWebhook(t, ingestHTTP, leastPrivWebhook, "evt_1"); code != http.StatusAccepted {
		t.Errorf("signed webhook: status %d, want 202", code)
	}
	if code := postWebhook(t, ingestHTTP, "whsec_wrong", "evt_2"); code != http.StatusUnauthorized {
		t.Errorf("webhook signed with another secret: status %d, want 401", code)
	}

	// The all-in-one resolves every reference: without the credential file
	// it refuses to start and says which reference, where.
	allInOne := serve("all-in-one", webhookEnv, "--instance", "all")
	wantExit(t, allInOne, lineCol(catalogPath, src, "${file:")+": upstreams.crm.headers.X-Api-Key: ${file:"+keyFile+"}: cannot read file")

	// The upstream credential appears; the rest-worker has no webhook secret.
	if err := os.MkdirAll(filepath.Dir(keyFile), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, []byte(leastPrivAPIKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	worker := serve("rest-worker", noWebhookEnv, "--services", "rest-worker", "--instance", "worker")
	worker.waitLog(t, "toolbus ready", 30*time.Second)

	frontHTTP := "http://" + front.waitLog(t, "listening", 5*time.Second)["http"].(string)
	s := mcpSession(t, frontHTTP+"/mcp")
	res := callTool(t, s, "get_customer", map[string]any{"id": 3})
	if res.IsError {
		t.Fatalf("get_customer: tool error %v (the worker must send the credential it holds)", res.Content)
	}

	// Without the webhook secret the all-in-one refuses to start too.
	allInOne = serve("all-in-one", noWebhookEnv, "--instance", "all2")
	wantExit(t, allInOne, lineCol(catalogPath, src, `"${env:`)+`: sources.stripe.secrets[0]: ${env:E2E_STRIPE_SECRET}: environment variable E2E_STRIPE_SECRET is not set`)

	// Hot reload: `toolbus catalog apply` validates with every secret (the
	// operator's machine); each process applies the new catalog with only
	// its own secrets.
	leastPrivCatalog(t, dir, srv.URL, true)
	apply := exec.Command(bin, "catalog", "apply", catalogPath, "--nats", natsURL)
	apply.Env = append(os.Environ(), webhookEnv...)
	if out, err := apply.CombinedOutput(); err != nil {
		t.Fatalf("catalog apply: %v\n%s", err, out)
	}
	front.waitLog(t, "catalog applied", 20*time.Second)
	worker.waitLog(t, "catalog applied", 20*time.Second)
	for _, p := range []*proc{front, worker, ingest} {
		for _, l := range p.lines() {
			if strings.Contains(l, "applied catalog refused") || strings.Contains(l, "catalog reload failed") {
				t.Errorf("%s refused the reload: %s", p.name, l)
			}
		}
	}
	res = callTool(t, s, "get_order", map[string]any{"id": 1})
	if res.IsError {
		t.Fatalf("get_order after reload: tool error %v", res.Content)
	}

	// No process printed a secret value.
	for _, p := range []*proc{ingest, front, worker} {
		for _, l := range p.lines() {
			if strings.Contains(l, leastPrivAPIKey) || strings.Contains(l, leastPrivWebhook) {
				t.Errorf("%s logged a secret value: %s", p.name, l)
			}
		}
	}
}

// wantExit waits for a serve process that must refuse to start and checks
// that its error names want.
func wantExit(t *testing.T, p *proc, want string) {
	t.Helper()
	err := p.wait(t, 30*time.Second)
	if err == nil {
		t.Fatalf("%s started, want it to refuse: %s", p.name, want)
	}
	if out := strings.Join(p.lines(), "\n"); !strings.Contains(out, want) {
		t.Errorf("%s exited (%v) without naming %q:\n%s", p.name, err, want, out)
	}
}

// postWebhook posts a payment event signed with secret and returns the status.
func postWebhook(t *testing.T, baseURL, secret, id string) int {
	t.Helper()
	scheme, err := signature.New(signature.Config{Scheme: "stripe", Secrets: signature.Secrets{secret}})
	if err != nil {
		t.Fatal(err)
	}
	body := fmt.Appendf(nil, `{"id":%q,"type":"payment_intent.succeeded","created":1700000000,"data":{"object":{"id":"pi_1","amount":100}}}`, id)
	h, err := scheme.Sign(body, time.Now(), id, "payment_intent.succeeded")
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, baseURL+"/webhooks/stripe", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = h
	req.Header.Set("Content-Type", "application/json")
	res, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// The groups serve loads the catalog with: its services' own, plus the
// MCP-side auth secrets for an explicitly requested console.
func TestServeSecretGroups(t *testing.T) {
	on, off := true, false
	tests := []struct {
		services []string
		console  *bool
		want     catalog.SecretGroups
	}{
		{[]string{svcWebhooks}, nil, catalog.SecretsWebhooks},
		{[]string{svcWebhooks, svcStateUpd}, nil, catalog.SecretsWebhooks},
		{[]string{svcStateUpd}, nil, catalog.SecretsNone},
		{[]string{svcRESTWork}, nil, catalog.SecretsRESTUpstreams},
		{[]string{svcGraphQL}, nil, catalog.SecretsGraphQLUpstreams | catalog.SecretsGraphQLIntrospection},
		{[]string{svcMCPFront}, nil, catalog.SecretsServerAuth | catalog.SecretsGraphQLIntrospection},
		{[]string{svcStateUpd}, &on, catalog.SecretsServerAuth},
		{[]string{svcRESTWork}, &off, catalog.SecretsRESTUpstreams},
		{available, nil, catalog.SecretsAll},
	}
	for _, tt := range tests {
		cfg := serveConfig{services: tt.services}
		cfg.console.enabled = tt.console
		if got := serveSecretGroups(cfg); got != tt.want {
			t.Errorf("services %v, console %v: groups %s, want %s", tt.services, tt.console, got, tt.want)
		}
	}
}
