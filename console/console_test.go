package console_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/toolbus/toolbus/bus"
	"github.com/toolbus/toolbus/bus/bustest"
	"github.com/toolbus/toolbus/catalog"
	"github.com/toolbus/toolbus/console"
	"github.com/toolbus/toolbus/events"
	toolbusv1 "github.com/toolbus/toolbus/gen/toolbus/v1"
	"github.com/toolbus/toolbus/mcpauth"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	adminKey = "admin-key-0123456789abcdef"
	userKey  = "user-key-0123456789abcdef"
)

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

var catalogSrc = `version: 1
auth:
  resource: http://127.0.0.1:8080/mcp
  api_keys:
    - name: ops
      sha256: ` + sha(adminKey) + `
      scopes: [toolbus.admin]
    - name: app
      sha256: ` + sha(userKey) + `
      scopes: [tools.read, tools.write]
upstreams:
  crm:
    kind: rest
    base_url: http://127.0.0.1:1/api
tools:
  - name: get_customer
    description: Fetch one customer.
    upstream: crm
    method: GET
    path: /customers/{id}
    input_schema:
      type: object
      properties:
        id: {type: integer}
      required: [id]
sources:
  stripe:
    scheme: stripe
    secrets: ["${env:CONSOLE_TEST_STRIPE_SECRET}"]
projections:
  payments:
    sources: [stripe]
    events: ["payment_intent.*"]
    key: data.object.customer
    fields:
      amount: data.object.amount
      client_secret: data.object.client_secret
    version: created
`

// rig is a console over an embedded JetStream server, served by httptest.
type rig struct {
	t   *testing.T
	nc  *nats.Conn
	js  jetstream.JetStream
	cat *catalog.Catalog
	con *console.Console
	srv *httptest.Server
	// auth verifies credentials (nil for an open console).
	auth *mcpauth.Authenticator
}

func newRig(t *testing.T, open bool) *rig {
	t.Helper()
	t.Setenv("CONSOLE_TEST_STRIPE_SECRET", "whsec_test")
	ns := bustest.Server(t)
	nc, js := bustest.Connect(t, ns)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := bus.DefaultTopology().Ensure(ctx, js); err != nil {
		t.Fatal(err)
	}
	return newRigOn(t, nc, js, open)
}

// newRigOn is a console over the given bus (another replica's, say).
func newRigOn(t *testing.T, nc *nats.Conn, js jetstream.JetStream, open bool) *rig {
	t.Helper()
	cat, err := catalog.Parse("console-test.yaml", []byte(catalogSrc))
	if err != nil {
		t.Fatal(err)
	}
	opts := console.Options{Catalog: cat, NC: nc, JS: js, Logger: bustest.Logger(), JaegerURL: "http://127.0.0.1:16686", Open: open}
	var authn *mcpauth.Authenticator
	if !open {
		authn, err = mcpauth.New(cat, mcpauth.Options{Logger: bustest.Logger()})
		if err != nil {
			t.Fatal(err)
		}
		opts.Auth = authn
	}
	con, err := console.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := con.Start(ctx); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(console.BasePath+"/", con.Handler())
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		_ = con.Shutdown(context.Background())
		srv.Close()
	})
	return &rig{t: t, nc: nc, js: js, cat: cat, con: con, srv: srv, auth: authn}
}

// do sends a request with an optional bearer credential, without
// following redirects.
func (r *rig) do(method, path, token string, body io.Reader, hdr map[string]string) *http.Response {
	r.t.Helper()
	req, err := http.NewRequest(method, r.srv.URL+path, body)
	if err != nil {
		r.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { res.Body.Close() })
	return res
}

func readBody(t *testing.T, res *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestPagesRenderWithSecurityHeaders(t *testing.T) {
	r := newRig(t, false)
	// A stored webhook event and a projection entity, so the webhook and
	// state pages have something to show.
	seq := r.storeWebhook(t, "evt_1", "payment_intent.succeeded",
		`{"id":"evt_1","created":100,"type":"payment_intent.succeeded","data":{"object":{"customer":"cus_42","amount":1234,"client_secret":"pi_secret_do_not_show"}}}`)
	res := r.do("POST", "/console/webhooks/replay", adminKey, strings.NewReader("source=stripe"), map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
	if body := readBody(t, res); res.StatusCode != http.StatusOK || !strings.Contains(body, "1 applied") {
		t.Fatalf("webhook replay: %d %s", res.StatusCode, body)
	}
	if err := events.Publish(r.nc, events.SubjectCall, &events.Call{Time: time.Now(), ID: "call-1", Tool: "get_customer", Upstream: "crm", Outcome: "ok", DurationMS: 1.5, TraceID: "0af7651916cd43dd8448eb211c80319c"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		return strings.Contains(readBody(t, r.do("GET", "/console/api/calls", adminKey, nil, nil)), "call-1")
	})

	tests := []struct {
		give string
		want []string
	}{
		{give: "/console/calls", want: []string{"<h1>Live calls</h1>", "get_customer", `href="http://127.0.0.1:16686/trace/0af7651916cd43dd8448eb211c80319c"`}},
		{give: "/console/calls/call-1", want: []string{"0af7651916cd43dd8448eb211c80319c", "open in Jaeger"}},
		{give: "/console/tools", want: []string{"<h1>Tools and upstreams</h1>", "get_customer", "GET /customers/{id}", "no consumer (worker not started)", "closed"}},
		{give: "/console/dlq", want: []string{"<h1>Dead letters</h1>", "No dead letters"}},
		{give: "/console/webhooks", want: []string{"<h1>Webhooks</h1>", "payment_intent.succeeded", "evt_1"}},
		{give: fmt.Sprintf("/console/webhooks/%d", seq), want: []string{"Webhook event", "cus_42", "[redacted]"}},
		{give: "/console/state", want: []string{"<h1>State</h1>", "payments", "toolbus_state_payments"}},
		{give: "/console/state/payments", want: []string{"cus_42", "payment_intent.succeeded"}},
		{give: "/console/state/payments/entity?key=cus_42", want: []string{"cus_42", "1234", "[redacted]", "evt_1"}},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			res := r.do("GET", tt.give, adminKey, nil, nil)
			body := readBody(t, res)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("GET %s: %d\n%s", tt.give, res.StatusCode, body)
			}
			for _, w := range tt.want {
				if !strings.Contains(body, w) {
					t.Errorf("GET %s: body lacks %q", tt.give, w)
				}
			}
			if strings.Contains(body, "pi_secret_do_not_show") {
				t.Errorf("GET %s shows a secret", tt.give)
			}
			assertSecurityHeaders(t, res)
		})
	}
}

func assertSecurityHeaders(t *testing.T, res *http.Response) {
	t.Helper()
	csp := res.Header.Get("Content-Security-Policy")
	for _, w := range []string{"default-src 'self'", "script-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, w) {
			t.Errorf("CSP %q lacks %q", csp, w)
		}
	}
	if strings.Contains(csp, "unsafe-inline") {
		t.Errorf("CSP allows inline code: %q", csp)
	}
	if got := res.Header.Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("X-Content-Type-Options = %q", got)
	}
}

// TestPagesReferenceOnlyTheirOrigin checks that no page or asset names
// another host in a src or href it loads.
func TestPagesReferenceOnlyTheirOrigin(t *testing.T) {
	r := newRig(t, true)
	load := regexp.MustCompile(`(?i)(src|href)="([^"]*)"|url\(([^)]*)\)`)
	for _, path := range []string{"/console/calls", "/console/tools", "/console/dlq", "/console/webhooks", "/console/state", "/console/static/console.css"} {
		body := readBody(t, r.do("GET", path, "", nil, nil))
		for _, m := range load.FindAllStringSubmatch(body, -1) {
			ref := m[2] + m[3]
			if strings.HasPrefix(ref, "http") && !strings.Contains(ref, "/trace/") || strings.HasPrefix(ref, "//") {
				t.Errorf("%s references %q", path, ref)
			}
		}
		if strings.Contains(body, "<script>") || strings.Contains(body, " style=") {
			t.Errorf("%s has inline script or style", path)
		}
	}
}

func TestAccessControl(t *testing.T) {
	r := newRig(t, false)
	form := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	tests := []struct {
		name       string
		method     string
		path       string
		token      string
		hdr        map[string]string
		wantStatus int
		wantLoc    string
	}{
		{name: "page without credential redirects to sign-in", method: "GET", path: "/console/calls", wantStatus: http.StatusSeeOther, wantLoc: "/console/login?next=%2Fconsole%2Fcalls"},
		{name: "api without credential", method: "GET", path: "/console/api/calls", wantStatus: http.StatusUnauthorized},
		{name: "stream without credential", method: "GET", path: "/console/api/calls/stream", wantStatus: http.StatusUnauthorized},
		{name: "replay without credential", method: "POST", path: "/console/api/dlq/1/replay", wantStatus: http.StatusUnauthorized},
		{name: "unknown credential", method: "GET", path: "/console/api/calls", token: "nope", wantStatus: http.StatusUnauthorized},
		{name: "non-admin page", method: "GET", path: "/console/dlq", token: userKey, wantStatus: http.StatusForbidden},
		{name: "non-admin api", method: "GET", path: "/console/api/dlq", token: userKey, wantStatus: http.StatusForbidden},
		{name: "non-admin replay", method: "POST", path: "/console/api/dlq/1/replay", token: userKey, wantStatus: http.StatusForbidden},
		{name: "non-admin discard", method: "POST", path: "/console/dlq/1/discard", token: userKey, hdr: form, wantStatus: http.StatusForbidden},
		{name: "admin api", method: "GET", path: "/console/api/calls", token: adminKey, wantStatus: http.StatusOK},
		{name: "cross-site post refused even for an admin", method: "POST", path: "/console/api/dlq/1/discard", token: adminKey,
			hdr: map[string]string{"Sec-Fetch-Site": "cross-site"}, wantStatus: http.StatusForbidden},
		{name: "sign-in page is public", method: "GET", path: "/console/login", wantStatus: http.StatusOK},
		{name: "assets are public", method: "GET", path: "/console/static/console.js", wantStatus: http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := r.do(tt.method, tt.path, tt.token, nil, tt.hdr)
			if res.StatusCode != tt.wantStatus {
				t.Fatalf("%s %s: status %d, want %d", tt.method, tt.path, res.StatusCode, tt.wantStatus)
			}
			if got := res.Header.Get("Location"); got != tt.wantLoc {
				t.Errorf("Location = %q, want %q", got, tt.wantLoc)
			}
			assertSecurityHeaders(t, res)
		})
	}
}

func TestSignInSessionAndCSRF(t *testing.T) {
	r := newRig(t, false)
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	post := func(path string, v url.Values) *http.Response {
		t.Helper()
		res, err := c.PostForm(r.srv.URL+path, v)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { res.Body.Close() })
		return res
	}

	// A non-admin credential is refused and gets no session.
	res := post("/console/login", url.Values{"token": {userKey}})
	if body := readBody(t, res); res.StatusCode != http.StatusForbidden || !strings.Contains(body, "lacks the toolbus.admin scope") {
		t.Fatalf("non-admin sign-in: %d %s", res.StatusCode, body)
	}
	if res := post("/console/login", url.Values{"token": {"wrong"}}); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong key sign-in: %d", res.StatusCode)
	}
	u, _ := url.Parse(r.srv.URL + "/console/")
	if len(jar.Cookies(u)) != 0 {
		t.Fatal("a refused sign-in set a cookie")
	}

	// An admin signs in and lands where they wanted to go.
	res = post("/console/login", url.Values{"token": {adminKey}, "next": {"/console/dlq"}})
	body := readBody(t, res)
	if res.StatusCode != http.StatusOK || res.Request.URL.Path != "/console/dlq" || !strings.Contains(body, "apikey:ops") {
		t.Fatalf("admin sign-in: %d at %s", res.StatusCode, res.Request.URL)
	}
	if strings.Contains(body, adminKey) {
		t.Fatal("the page shows the credential")
	}
	for _, ck := range res.Request.Cookies() {
		if ck.Value == adminKey {
			t.Fatal("the cookie holds the credential")
		}
	}
	csrf := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(body)
	if csrf == nil {
		t.Fatal("no CSRF token on the page")
	}

	// A state-changing form without the token is refused; with it, it runs.
	if res := post("/console/logout", nil); res.StatusCode != http.StatusForbidden {
		t.Fatalf("logout without CSRF token: %d", res.StatusCode)
	}
	res = post("/console/logout", url.Values{"csrf": {csrf[1]}})
	if res.StatusCode != http.StatusOK || res.Request.URL.Path != "/console/login" {
		t.Fatalf("logout: %d at %s", res.StatusCode, res.Request.URL)
	}
	res, err := c.Get(r.srv.URL + "/console/dlq")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.Request.URL.Path != "/console/login" {
		t.Fatalf("after logout /console/dlq ended at %s", res.Request.URL)
	}
}

func TestSignInRedirectStaysInConsole(t *testing.T) {
	r := newRig(t, false)
	for _, next := range []string{"https://evil.example/", "//evil.example/console/", "/console/../x", "/other"} {
		res := r.do("POST", "/console/login", "", strings.NewReader(url.Values{"token": {adminKey}, "next": {next}}.Encode()),
			map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
		loc := res.Header.Get("Location")
		if res.StatusCode != http.StatusSeeOther || (loc != "/console/calls" && !strings.HasPrefix(loc, "/console/")) || strings.Contains(loc, "evil") {
			t.Errorf("next=%q: %d Location %q", next, res.StatusCode, loc)
		}
	}
}

func TestCallStreamDeliversCallEvents(t *testing.T) {
	r := newRig(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", r.srv.URL+"/console/api/calls/stream", nil)
	req.Header.Set("Authorization", "Bearer "+adminKey)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if ct := res.Header.Get("Content-Type"); res.StatusCode != http.StatusOK || ct != "text/event-stream" {
		t.Fatalf("stream: %d %q", res.StatusCode, ct)
	}
	sc := bufio.NewScanner(res.Body)
	// The stream is open once its first comment arrived.
	for sc.Scan() && sc.Text() != ": connected" {
	}
	want := events.Call{Time: time.Now().UTC().Truncate(time.Millisecond), ID: "c-77", Tool: "get_customer", Upstream: "crm", Via: "mcp",
		Caller: "api_key:app", Outcome: "rate_limited", Message: "rate limited by crm, retry after 30s", Attempts: 3, DurationMS: 12.5}
	if err := events.Publish(r.nc, events.SubjectCall, &want); err != nil {
		t.Fatal(err)
	}
	var event, data string
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "event: "); ok {
			event = v
		}
		if v, ok := strings.CutPrefix(line, "data: "); ok {
			data = v
		}
		if line == "" && event == "call" {
			break
		}
	}
	var got events.Call
	if err := json.Unmarshal([]byte(data), &got); err != nil {
		t.Fatalf("event %q: %v", data, err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("streamed call (-want +got):\n%s", diff)
	}
	// Statistics follow the same feed.
	var stats struct {
		Tools map[string]console.Stat `json:"tools"`
	}
	waitFor(t, func() bool {
		_ = json.Unmarshal([]byte(readBody(t, r.do("GET", "/console/api/stats", adminKey, nil, nil))), &stats)
		return stats.Tools["get_customer"].Calls == 1
	})
	if s := stats.Tools["get_customer"]; s.Errors != 1 || s.P50 != 12.5 {
		t.Errorf("stats = %+v", s)
	}
}

// TestShutdownEndsStreams: an open event stream must not hold up the
// HTTP server's shutdown.
func TestShutdownEndsStreams(t *testing.T) {
	r := newRig(t, true)
	req, _ := http.NewRequest("GET", r.srv.URL+"/console/api/calls/stream", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	done := make(chan error, 1)
	go func() { _, err := io.Copy(io.Discard, res.Body); done <- err }()
	if err := r.con.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("stream still open after Shutdown")
	}
}

func TestDeadLetterReplayThroughTheConsole(t *testing.T) {
	r := newRig(t, false)
	// A worker for upstream crm that answers every call.
	w := bus.NewWorker(r.nc, r.js, bus.WorkerOptions{Name: "test-worker", Logger: bustest.Logger()})
	t.Cleanup(func() { _ = w.Shutdown(context.Background()) })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var gotKey string
	err := w.ServeCalls(ctx, bus.CallConsumer{Kind: "rest", Upstream: "crm", Concurrency: 4, AckWait: 5 * time.Second, MaxDeliver: 3},
		func(ctx context.Context, call *toolbusv1.ToolCall, d bus.Delivery) (*toolbusv1.ToolResult, error) {
			gotKey = call.IdempotencyKey
			return &toolbusv1.ToolResult{Json: []byte(`{"id":7,"name":"Ada","api_token":"tok_hidden"}`), Attempts: 1}, nil
		})
	if err != nil {
		t.Fatal(err)
	}
	seq1 := r.deadLetter(t, "call-a", `{"id":7,"password":"hunter2"}`)
	seq2 := r.deadLetter(t, "call-b", `{"id":8}`)

	// Inspect: arguments shown with secrets redacted, never the caller's token.
	body := readBody(t, r.do("GET", fmt.Sprintf("/console/dlq/%d", seq1), adminKey, nil, nil))
	for _, want := range []string{"deliveries exhausted", "get_customer", "idem-call-a", "[redacted]"} {
		if !strings.Contains(body, want) {
			t.Errorf("dead letter page lacks %q", want)
		}
	}
	for _, secret := range []string{"hunter2", "caller-token-secret"} {
		if strings.Contains(body, secret) {
			t.Errorf("dead letter page shows %q", secret)
		}
	}

	// Replay one through the JSON API.
	res := r.do("POST", fmt.Sprintf("/console/api/dlq/%d/replay", seq1), adminKey, nil, nil)
	var out struct {
		Status, Result string
	}
	if err := json.Unmarshal([]byte(readBody(t, res)), &out); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("replay: %d %v", res.StatusCode, err)
	}
	if out.Status != "succeeded" || !strings.Contains(out.Result, "Ada") || strings.Contains(out.Result, "tok_hidden") {
		t.Errorf("replay outcome = %+v", out)
	}
	if gotKey != "idem-call-a" {
		t.Errorf("replayed call carried idempotency key %q, want the original", gotKey)
	}

	// The replayed dead letter is gone; the other one is still listed.
	var rows []struct{ Seq uint64 }
	_ = json.Unmarshal([]byte(readBody(t, r.do("GET", "/console/api/dlq", adminKey, nil, nil))), &rows)
	if len(rows) != 1 || rows[0].Seq != seq2 {
		t.Fatalf("dead letters after replay: %+v", rows)
	}

	// Discard the other.
	if res := r.do("POST", fmt.Sprintf("/console/api/dlq/%d/discard", seq2), adminKey, nil, nil); res.StatusCode != http.StatusOK {
		t.Fatalf("discard: %d", res.StatusCode)
	}
	if body := readBody(t, r.do("GET", "/console/dlq", adminKey, nil, nil)); !strings.Contains(body, "No dead letters") {
		t.Error("dead letters remain after replay and discard")
	}
	if res := r.do("POST", fmt.Sprintf("/console/api/dlq/%d/replay", seq2), adminKey, nil, nil); res.StatusCode != http.StatusNotFound {
		t.Errorf("replay of a discarded dead letter: %d", res.StatusCode)
	}
}

func (r *rig) deadLetter(t *testing.T, id, args string) uint64 {
	t.Helper()
	now := time.Now()
	call := &toolbusv1.ToolCall{Id: id, Tool: "get_customer", Upstream: "crm", Kind: "rest", Arguments: []byte(args),
		IdempotencyKey: "idem-" + id, AcceptedAt: timestamppb.New(now), Deadline: timestamppb.New(now.Add(5 * time.Second)),
		Caller: &toolbusv1.Caller{Subject: "apikey:app", Token: "caller-token-secret"}}
	payload, err := proto.Marshal(call)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	dl := &toolbusv1.DeadLetter{Id: "dl-" + id, Kind: "call", Subject: bus.CallSubject("rest", "crm", "get_customer"), Payload: payload,
		Reason: "deliveries exhausted", Deliveries: 3, LastError: "worker stopping", Headers: map[string]string{"Authorization": "Bearer x"}}
	if err := bus.PublishDeadLetter(ctx, r.js, dl, "crm"); err != nil {
		t.Fatal(err)
	}
	st, err := r.js.Stream(ctx, bus.StreamDeadLetters)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.State.LastSeq
}

func (r *rig) storeWebhook(t *testing.T, id, typ, body string) uint64 {
	t.Helper()
	ev := &toolbusv1.WebhookEvent{Id: id, Source: "stripe", Type: typ, Body: []byte(body), Scheme: "stripe", ReceivedAt: timestamppb.Now(),
		Headers: map[string]string{"content-type": "application/json", "x-api-key": "should-not-show"}}
	data, err := proto.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ack, err := r.js.Publish(ctx, bus.WebhookSubject("stripe", typ), data, jetstream.WithMsgID(id))
	if err != nil {
		t.Fatal(err)
	}
	return ack.Sequence
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSessionsAcrossReplicas: a session opened on one console replica is
// known to another on the same bus, and signing out on either ends it on
// both; the bucket holds no session id a reader could replay.
func TestSessionsAcrossReplicas(t *testing.T) {
	a := newRig(t, false)
	b := newRigOn(t, a.nc, a.js, false)
	signIn := a.do("POST", "/console/login", "", strings.NewReader(url.Values{"token": {adminKey}}.Encode()),
		map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
	if signIn.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in on replica a: %d", signIn.StatusCode)
	}
	var sid string
	for _, ck := range signIn.Cookies() {
		if ck.Name == "toolbus_console" {
			sid = ck.Value
		}
	}
	if sid == "" {
		t.Fatal("no session cookie")
	}
	page := func(r *rig) *http.Response {
		t.Helper()
		return r.do("GET", "/console/dlq", "", nil, map[string]string{"Cookie": "toolbus_console=" + sid})
	}
	res := page(b)
	body := readBody(t, res)
	if res.StatusCode != http.StatusOK || !strings.Contains(body, "apikey:ops") {
		t.Fatalf("replica b with a's session: %d", res.StatusCode)
	}
	csrf := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(body)
	if csrf == nil {
		t.Fatal("no CSRF token on replica b's page")
	}

	// What the bucket holds: one session, not under its id, without it.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	kv, err := a.js.KeyValue(ctx, bus.BucketConsoleSessions)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := kv.Keys(ctx)
	if err != nil || len(keys) != 1 {
		t.Fatalf("session keys %v, %v; want one", keys, err)
	}
	e, err := kv.Get(ctx, keys[0])
	if err != nil {
		t.Fatal(err)
	}
	if keys[0] == sid || strings.Contains(string(e.Value()), sid) || strings.Contains(string(e.Value()), adminKey) {
		t.Error("the session bucket holds the session id or the credential")
	}

	// Signing out on b ends the session on a.
	out := b.do("POST", "/console/logout", "", strings.NewReader(url.Values{"csrf": {csrf[1]}}.Encode()),
		map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Cookie": "toolbus_console=" + sid})
	if out.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-out on replica b: %d", out.StatusCode)
	}
	if res := page(a); res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/console/login") {
		t.Errorf("replica a after signing out on b: %d to %q, want the sign-in page", res.StatusCode, res.Header.Get("Location"))
	}
}

// TestTracePageRefusesBadIDs: only a trace id goes into the URL read from
// Jaeger.
func TestTracePageRefusesBadIDs(t *testing.T) {
	r := newRig(t, true)
	for _, id := range []string{"nothex0123456789", "0123456789abcde", "..%2f..%2fapi%2fservices", "0123456789abcdef0"} {
		if res := r.do("GET", "/console/traces/"+id, "", nil, nil); res.StatusCode != http.StatusBadRequest {
			t.Errorf("trace id %q: %d, want 400", id, res.StatusCode)
		}
	}
}

// TestSessionEndsWithItsKey: a browser session opened with an API key ends
// when a reload revokes the key, or takes the admin scope from it.
func TestSessionEndsWithItsKey(t *testing.T) {
	for name, replace := range map[string][2]string{
		"revoked":   {"    - name: ops\n      sha256: " + sha(adminKey) + "\n      scopes: [toolbus.admin]\n", ""},
		"not admin": {"      scopes: [toolbus.admin]", "      scopes: [tools.read]"},
	} {
		t.Run(name, func(t *testing.T) {
			r := newRig(t, false)
			signIn := r.do("POST", "/console/login", "", strings.NewReader(url.Values{"token": {adminKey}}.Encode()),
				map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
			cookie := ""
			for _, ck := range signIn.Cookies() {
				if ck.Name == "toolbus_console" {
					cookie = ck.Name + "=" + ck.Value
				}
			}
			if cookie == "" {
				t.Fatalf("sign-in: %d, no session cookie", signIn.StatusCode)
			}
			if res := r.do("GET", "/console/dlq", "", nil, map[string]string{"Cookie": cookie}); res.StatusCode != http.StatusOK {
				t.Fatalf("with the session: %d", res.StatusCode)
			}
			src := strings.Replace(catalogSrc, replace[0], replace[1], 1)
			if src == catalogSrc {
				t.Fatal("the test catalog did not change")
			}
			next, err := catalog.Parse("reloaded.yaml", []byte(src))
			if err != nil {
				t.Fatal(err)
			}
			r.auth.Reload(next)
			res := r.do("GET", "/console/dlq", "", nil, map[string]string{"Cookie": cookie})
			if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/console/login") {
				t.Errorf("after the reload: %d to %q, want the sign-in page", res.StatusCode, res.Header.Get("Location"))
			}
		})
	}
}

// TestReloadShowsNewCatalog: after a hot reload the console shows the new
// catalog's tools and projections.
func TestReloadShowsNewCatalog(t *testing.T) {
	r := newRig(t, true)
	src := strings.Replace(catalogSrc, "tools:\n", "tools:\n  - {name: list_orders, description: All orders., upstream: crm, method: GET, path: /orders}\n", 1)
	src = strings.Replace(src, "projections:\n", "projections:\n  refunds: {sources: [stripe], key: data.object.customer}\n", 1)
	next, err := catalog.Parse("reloaded.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	page := func(path string) string {
		t.Helper()
		res := r.do("GET", path, "", nil, nil)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d", path, res.StatusCode)
		}
		return readBody(t, res)
	}
	if strings.Contains(page("/console/tools"), "list_orders") || strings.Contains(page("/console/state"), "refunds") {
		t.Fatal("the new tool or projection is shown before the reload")
	}
	if err := r.con.Reload(next); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(page("/console/tools"), "list_orders") {
		t.Error("the tools page does not show the reloaded catalog's new tool")
	}
	if !strings.Contains(page("/console/state"), "refunds") {
		t.Error("the state page does not show the reloaded catalog's new projection")
	}
	if res := r.do("GET", "/console/state/refunds", "", nil, nil); res.StatusCode != http.StatusOK {
		t.Errorf("the new projection's page: %d", res.StatusCode)
	}
	if err := r.con.Reload(nil); err == nil {
		t.Error("a nil catalog was reloaded")
	}
}

// TestToolsPageShowsReloads: the Tools page says when the catalog shown
// was hot-reloaded and shows the last catalog the process refused, with
// its error.
func TestToolsPageShowsReloads(t *testing.T) {
	r := newRig(t, true)
	tools := func() string {
		t.Helper()
		res := r.do("GET", "/console/tools", "", nil, nil)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("tools page: %d", res.StatusCode)
		}
		return readBody(t, res)
	}
	if body := tools(); strings.Contains(body, "hot-reloaded") || strings.Contains(body, "reload-refused") {
		t.Fatal("a console that saw no reload shows one")
	}
	r.con.CatalogRefused(7, errors.New(`catalog.yaml:12:5: tools[3].upstream: unknown upstream "billing"`))
	body := tools()
	for _, want := range []string{`id="reload-refused"`, "revision 7", "the catalog shown keeps serving", `catalog.yaml:12:5: tools[3].upstream: unknown upstream &#34;billing&#34;`} {
		if !strings.Contains(body, want) {
			t.Errorf("after a refused reload the tools page lacks %q", want)
		}
	}
	if err := r.con.Reload(r.cat); err != nil {
		t.Fatal(err)
	}
	body = tools()
	if !strings.Contains(body, "hot-reloaded") || !strings.Contains(body, "before the catalog shown was applied") {
		t.Error("after a later reload the tools page does not say the refusal is older than the catalog shown")
	}
}
