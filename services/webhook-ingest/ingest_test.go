package webhookingest_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stripe/stripe-go/v82/webhook"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"

	"github.com/toolbus/toolbus/bus"
	"github.com/toolbus/toolbus/bus/bustest"
	"github.com/toolbus/toolbus/catalog"
	toolbusv1 "github.com/toolbus/toolbus/gen/toolbus/v1"
	webhookingest "github.com/toolbus/toolbus/services/webhook-ingest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var secrets = map[string]string{
	"STRIPE_SECRET":     "whsec_test_current",
	"STRIPE_SECRET_OLD": "whsec_test_old",
	"GITHUB_SECRET":     "It's a Secret to Everybody",
	"SLACK_SECRET":      "8f742231b10e8888abcd99yyyzzz85a5",
}

const testCatalog = `
version: 1
sources:
  stripe:
    scheme: stripe
    secrets: ["${env:STRIPE_SECRET}", "${env:STRIPE_SECRET_OLD}"]
  github:
    scheme: github
    secrets: ["${env:GITHUB_SECRET}"]
  slack:
    scheme: slack
    secrets: ["${env:SLACK_SECRET}"]
  tiny:
    scheme: github
    secrets: ["${env:GITHUB_SECRET}"]
    max_body_bytes: 64
`

func loadCatalog(t testing.TB) *catalog.Catalog {
	t.Helper()
	cat, err := catalog.Parse("test.yaml", []byte(testCatalog), catalog.WithLookupEnv(func(n string) (string, bool) {
		v, ok := secrets[n]
		return v, ok
	}))
	if err != nil {
		t.Fatal(err)
	}
	return cat
}

// rig is a running ingest over an embedded JetStream server.
type rig struct {
	cat *catalog.Catalog
	ns  *server.Server
	nc  *nats.Conn
	js  jetstream.JetStream
	svc *webhookingest.Service
	url string
}

type rigOptions struct {
	storeDir       string
	port           int
	publishTimeout time.Duration
	wrapJS         func(jetstream.JetStream) jetstream.JetStream
}

func newRig(t testing.TB, o rigOptions) *rig {
	t.Helper()
	if o.storeDir == "" {
		o.storeDir = t.TempDir()
	}
	if o.port == 0 {
		o.port = -1
	}
	ns := bustest.ServerAt(t, o.storeDir, o.port)
	nc, js := bustest.Connect(t, ns)
	pubJS := js
	if o.wrapJS != nil {
		pubJS = o.wrapJS(js)
	}
	cat := loadCatalog(t)
	svc, err := webhookingest.New(webhookingest.Options{Catalog: cat, NC: nc, JS: pubJS, Logger: bustest.Logger(), PublishTimeout: o.publishTimeout})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/webhooks/", svc.Handler())
	hs := httptest.NewServer(mux)
	t.Cleanup(func() {
		hs.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := svc.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	})
	return &rig{cat: cat, ns: ns, nc: nc, js: js, svc: svc, url: hs.URL}
}

// signed builds a delivery for source signed with the source's scheme and
// first secret, the way `toolbus webhooks send` does.
func (r *rig) signed(t testing.TB, source string, body []byte, id, typ string) *http.Request {
	t.Helper()
	sch, err := r.cat.Sources[source].Verifier()
	if err != nil {
		t.Fatal(err)
	}
	h, err := sch.Sign(body, time.Now(), id, typ)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, r.url+"/webhooks/"+source, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	return req
}

type answer struct {
	Status     int
	Body       string
	RetryAfter string
}

func do(t testing.TB, req *http.Request) answer {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{Status: resp.StatusCode, Body: string(b), RetryAfter: resp.Header.Get("Retry-After")}
}

func streamMsgs(t testing.TB, js jetstream.JetStream) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, bus.StreamWebhooks)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func stripeBody(id string) []byte {
	return fmt.Appendf(nil, `{"id":%q,"object":"event","type":"payment_intent.succeeded","data":{"object":{"id":"pi_1","customer":"cus_1","amount":2000}}}`, id)
}

func TestStatusPaths(t *testing.T) {
	r := newRig(t, rigOptions{})
	slackChallenge := []byte(`{"token":"t","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}`)
	tests := []struct {
		name string
		give func() *http.Request
		want answer
	}{
		{"new event", func() *http.Request { return r.signed(t, "stripe", stripeBody("evt_1"), "", "") },
			answer{Status: http.StatusAccepted}},
		{"redelivery is a duplicate", func() *http.Request { return r.signed(t, "stripe", stripeBody("evt_1"), "", "") },
			answer{Status: http.StatusOK}},
		{"github delivery", func() *http.Request {
			return r.signed(t, "github", []byte(`{"zen":"Keep it logically awesome."}`), "72d3162e-cc78-11e3-81ab-4c9367dc0958", "ping")
		}, answer{Status: http.StatusAccepted}},
		{"tampered body", func() *http.Request {
			req := r.signed(t, "stripe", stripeBody("evt_2"), "", "")
			req.Body = io.NopCloser(bytes.NewReader(stripeBody("evt_3")))
			return req
		}, answer{Status: http.StatusUnauthorized}},
		{"missing signature", func() *http.Request {
			req := r.signed(t, "stripe", stripeBody("evt_4"), "", "")
			req.Header.Del("Stripe-Signature")
			return req
		}, answer{Status: http.StatusUnauthorized}},
		{"signed with another secret", func() *http.Request {
			req := r.signed(t, "github", []byte(`{}`), "d-1", "ping")
			req.URL.Path = "/webhooks/stripe"
			return req
		}, answer{Status: http.StatusUnauthorized}},
		{"unknown source", func() *http.Request {
			return r.signed(t, "stripe", stripeBody("evt_5"), "", "").WithContext(context.Background())
		},
			answer{Status: http.StatusNotFound, Body: "404 page not found\n"}},
		{"body over the limit", func() *http.Request {
			return r.signed(t, "tiny", bytes.Repeat([]byte("x"), 65), "d-2", "ping")
		}, answer{Status: http.StatusRequestEntityTooLarge, Body: "body too large\n"}},
		{"body over the limit without length", func() *http.Request {
			req := r.signed(t, "tiny", bytes.Repeat([]byte("x"), 65), "d-3", "ping")
			req.Body = io.NopCloser(io.MultiReader(bytes.NewReader(bytes.Repeat([]byte("x"), 65))))
			req.ContentLength = -1
			return req
		}, answer{Status: http.StatusRequestEntityTooLarge, Body: "body too large\n"}},
		{"slack url_verification", func() *http.Request { return r.signed(t, "slack", slackChallenge, "", "") },
			answer{Status: http.StatusOK, Body: "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}},
		{"wrong method", func() *http.Request {
			req, _ := http.NewRequest(http.MethodGet, r.url+"/webhooks/stripe", nil)
			return req
		}, answer{Status: http.StatusMethodNotAllowed, Body: "Method Not Allowed\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := tt.give()
			if tt.name == "unknown source" {
				req.URL.Path = "/webhooks/nope"
			}
			if diff := cmp.Diff(tt.want, do(t, req)); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
		})
	}
	// evt_1 twice and the GitHub ping; the Slack handshake is not an event.
	if got := streamMsgs(t, r.js); got != 2 {
		t.Errorf("stream holds %d events, want 2", got)
	}
}

// TestStripeGoSignature: a delivery signed by stripe-go's own test helper
// is accepted and stored with its id, type, body and harmless headers.
func TestStripeGoSignature(t *testing.T) {
	r := newRig(t, rigOptions{})
	body := stripeBody("evt_stripe_go")
	signed := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: body, Secret: secrets["STRIPE_SECRET_OLD"]})
	req, _ := http.NewRequest(http.MethodPost, r.url+"/webhooks/stripe", bytes.NewReader(signed.Payload))
	req.Header.Set("Stripe-Signature", signed.Header)
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("User-Agent", "Stripe/1.0")
	if got := do(t, req); got.Status != http.StatusAccepted {
		t.Fatalf("answer %+v, want 202", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := r.js.Stream(ctx, bus.StreamWebhooks)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := st.GetLastMsgForSubject(ctx, bus.WebhookSubject("stripe", "payment_intent.succeeded"))
	if err != nil {
		t.Fatal(err)
	}
	var ev toolbusv1.WebhookEvent
	if err := proto.Unmarshal(msg.Data, &ev); err != nil {
		t.Fatal(err)
	}
	got := map[string]any{
		"msg-id": msg.Header.Get(bus.HeaderMsgID), "id": ev.Id, "source": ev.Source, "type": ev.Type,
		"scheme": ev.Scheme, "body": string(ev.Body), "headers": ev.Headers, "provider_time": ev.ProviderTime != nil,
	}
	want := map[string]any{
		"msg-id": "evt_stripe_go", "id": "evt_stripe_go", "source": "stripe", "type": "payment_intent.succeeded",
		"scheme": "stripe", "body": string(body), "provider_time": true,
		"headers": map[string]string{"content-type": "application/json; charset=utf-8", "user-agent": "Stripe/1.0"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("stored event (-want +got):\n%s", diff)
	}
}

// TestUnauthorizedRevealsNothing: every refusal looks the same.
func TestUnauthorizedRevealsNothing(t *testing.T) {
	r := newRig(t, rigOptions{})
	var answers []answer
	for _, mutate := range []func(*http.Request){
		func(req *http.Request) { req.Header.Del("Stripe-Signature") },
		func(req *http.Request) { req.Header.Set("Stripe-Signature", "garbage") },
		func(req *http.Request) { req.Header.Set("Stripe-Signature", "t=1,v1="+fmt.Sprintf("%064d", 0)) },
	} {
		req := r.signed(t, "stripe", stripeBody("evt_x"), "", "")
		mutate(req)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		answers = append(answers, answer{Status: resp.StatusCode, Body: string(b) + resp.Header.Get("Content-Type")})
	}
	want := []answer{{Status: 401}, {Status: 401}, {Status: 401}}
	if diff := cmp.Diff(want, answers); diff != "" {
		t.Errorf("answers (-want +got):\n%s", diff)
	}
}

// freePort reserves a loopback port for a server that must come back on it.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestBusDown: with NATS stopped the provider gets 503 with Retry-After
// (never 2xx, never 4xx); once NATS is back the same delivery gets 2xx and
// is stored once.
func TestBusDown(t *testing.T) {
	dir, port := t.TempDir(), freePort(t)
	r := newRig(t, rigOptions{storeDir: dir, port: port})
	r.ns.Shutdown()
	r.ns.WaitForShutdown()

	got := do(t, r.signed(t, "stripe", stripeBody("evt_down"), "", ""))
	if diff := cmp.Diff(answer{Status: 503, Body: "temporarily unavailable, retry later\n", RetryAfter: "5"}, got); diff != "" {
		t.Errorf("answer while NATS is down (-want +got):\n%s", diff)
	}

	bustest.ServerAt(t, dir, port)
	deadline := time.Now().Add(10 * time.Second)
	for {
		got = do(t, r.signed(t, "stripe", stripeBody("evt_down"), "", ""))
		if got.Status != 503 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got.Status != http.StatusAccepted {
		t.Fatalf("answer after restart %+v, want 202", got)
	}
	if n := streamMsgs(t, r.js); n != 1 {
		t.Errorf("stream holds %d events, want 1", n)
	}
}

// gatedJS holds every publish until released, then publishes for real.
type gatedJS struct {
	jetstream.JetStream
	entered chan struct{}
	release chan struct{}
}

func (g *gatedJS) PublishMsg(ctx context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	g.entered <- struct{}{}
	select {
	case <-g.release:
	case <-ctx.Done():
		return nil, fmt.Errorf("gated: %w", ctx.Err())
	}
	return g.JetStream.PublishMsg(ctx, msg, opts...)
}

// TestAnswerWaitsForPubAck: the provider's answer is not written until the
// publish returned.
func TestAnswerWaitsForPubAck(t *testing.T) {
	g := &gatedJS{entered: make(chan struct{}, 1), release: make(chan struct{})}
	r := newRig(t, rigOptions{publishTimeout: 10 * time.Second, wrapJS: func(js jetstream.JetStream) jetstream.JetStream {
		g.JetStream = js
		return g
	}})
	done := make(chan answer, 1)
	req := r.signed(t, "stripe", stripeBody("evt_gate"), "", "")
	go func() { done <- do(t, req) }()
	<-g.entered
	select {
	case a := <-done:
		t.Fatalf("answered %+v before the PubAck", a)
	case <-time.After(200 * time.Millisecond):
	}
	if n := streamMsgs(t, r.js); n != 0 {
		t.Fatalf("stream holds %d events before the publish", n)
	}
	close(g.release)
	if a := <-done; a.Status != http.StatusAccepted {
		t.Errorf("answer %+v, want 202", a)
	}
}

// TestSlowBus: a PubAck slower than PublishTimeout is a 503, not a 2xx.
func TestSlowBus(t *testing.T) {
	g := &gatedJS{entered: make(chan struct{}, 1), release: make(chan struct{})}
	r := newRig(t, rigOptions{publishTimeout: 100 * time.Millisecond, wrapJS: func(js jetstream.JetStream) jetstream.JetStream {
		g.JetStream = js
		return g
	}})
	got := do(t, r.signed(t, "stripe", stripeBody("evt_slow"), "", ""))
	if got.Status != http.StatusServiceUnavailable || got.RetryAfter == "" {
		t.Errorf("answer %+v, want 503 with Retry-After", got)
	}
}

// TestDurabilityAcrossNATSRestart: senders keep posting while the NATS
// server is stopped and started again; each retries until it gets a 2xx.
// Every event ends up in the stream exactly once, and no answer is other
// than 2xx or 503.
func TestDurabilityAcrossNATSRestart(t *testing.T) {
	dir, port := t.TempDir(), freePort(t)
	r := newRig(t, rigOptions{storeDir: dir, port: port, publishTimeout: 500 * time.Millisecond})
	const senders, perSender = 8, 60

	var (
		mu       sync.Mutex
		statuses = map[int]int{}
		acked    int
		third    = make(chan struct{})
	)
	var wg sync.WaitGroup
	for s := range senders {
		wg.Go(func() {
			for i := range perSender {
				id := fmt.Sprintf("evt_%d_%d", s, i)
				for attempt := 0; ; attempt++ {
					a := do(t, r.signed(t, "stripe", stripeBody(id), "", ""))
					mu.Lock()
					statuses[a.Status]++
					if a.Status/100 == 2 {
						if acked++; acked == senders*perSender/3 {
							close(third)
						}
					}
					mu.Unlock()
					if a.Status/100 == 2 {
						break
					}
					if attempt > 400 {
						t.Errorf("%s: no 2xx after %d attempts", id, attempt)
						return
					}
					time.Sleep(25 * time.Millisecond)
				}
			}
		})
	}
	// Stop NATS with a third of the events acknowledged and the senders
	// still busy.
	<-third
	r.ns.Shutdown()
	r.ns.WaitForShutdown()
	time.Sleep(500 * time.Millisecond)
	bustest.ServerAt(t, dir, port)
	wg.Wait()

	for status := range statuses {
		if status != 200 && status != 202 && status != 503 {
			t.Errorf("got status %d (%d times); want only 2xx and 503", status, statuses[status])
		}
	}
	if statuses[503] == 0 {
		t.Error("no 503 seen: NATS was not down while events were sent")
	}
	for !r.nc.IsConnected() {
		time.Sleep(10 * time.Millisecond)
	}
	ids := storedIDs(t, r.js)
	if len(ids) != senders*perSender {
		t.Errorf("stream holds %d distinct events, want %d", len(ids), senders*perSender)
	}
	for id, n := range ids {
		if n != 1 {
			t.Errorf("event %s stored %d times", id, n)
		}
	}
	t.Logf("statuses: %v", statuses)
}

// storedIDs counts the stream's messages per Nats-Msg-Id.
func storedIDs(t testing.TB, js jetstream.JetStream) map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := js.OrderedConsumer(ctx, bus.StreamWebhooks, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	total := streamMsgs(t, js)
	ids := map[string]int{}
	for range total {
		msg, err := c.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatal(err)
		}
		ids[msg.Headers().Get(bus.HeaderMsgID)]++
	}
	return ids
}

// TestConcurrentDeliveriesKeepTheirBodies: bodies and encoded events are
// read into reused buffers; many deliveries of many sizes at once, with
// and without Content-Length, must each store exactly their own body.
func TestConcurrentDeliveriesKeepTheirBodies(t *testing.T) {
	r := newRig(t, rigOptions{})
	sizes := []int{200, 1 << 10, 5000, 64 << 10, 200 << 10}
	const senders, each = 8, 12
	want := map[string][]byte{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for s := range senders {
		wg.Go(func() {
			for i := range each {
				id := fmt.Sprintf("evt_c_%d_%d", s, i)
				pad := bytes.Repeat([]byte{byte('a' + (s*each+i)%26)}, sizes[(s+i)%len(sizes)])
				body := fmt.Appendf(nil, `{"id":%q,"type":"charge.succeeded","data":{"pad":%q}}`, id, pad)
				req := r.signed(t, "stripe", body, "", "")
				if i%3 == 0 {
					// No Content-Length: the body is read in growing chunks.
					req.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body)))
					req.ContentLength = -1
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusAccepted {
					t.Errorf("%s: status %d", id, resp.StatusCode)
				}
				mu.Lock()
				want[id] = body
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := r.js.OrderedConsumer(ctx, bus.StreamWebhooks, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for range streamMsgs(t, r.js) {
		msg, err := c.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatal(err)
		}
		var ev toolbusv1.WebhookEvent
		if err := proto.Unmarshal(msg.Data(), &ev); err != nil {
			t.Fatal(err)
		}
		body, ok := want[ev.Id]
		switch {
		case !ok:
			t.Errorf("unexpected event %q", ev.Id)
		case ev.Id != msg.Headers().Get(bus.HeaderMsgID):
			t.Errorf("event %q stored under message id %q", ev.Id, msg.Headers().Get(bus.HeaderMsgID))
		case !bytes.Equal(ev.Body, body):
			t.Errorf("event %q: stored body of %d bytes differs from the %d bytes sent", ev.Id, len(ev.Body), len(body))
		}
		delete(want, ev.Id)
	}
	if len(want) > 0 {
		t.Errorf("%d events not stored", len(want))
	}
}
