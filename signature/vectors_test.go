package signature

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stripe/stripe-go/v82/webhook"
)

// Published vectors: each is checked both ways, Verify accepts it and Sign
// reproduces it byte for byte.
func TestPublishedVectors(t *testing.T) {
	tests := []struct {
		name      string
		cfg       Config
		body      string
		now       time.Time
		id, typ   string // passed to Sign
		give      http.Header
		sigHeader string
		want      Delivery
	}{
		{
			// docs.github.com, "Validating webhook deliveries", test values.
			name: "github docs",
			cfg:  Config{Scheme: "github", Secrets: Secrets{"It's a Secret to Everybody"}},
			body: "Hello, World!",
			id:   "1b5c3c2e-0000-11ee-8000-000000000000",
			typ:  "ping",
			give: header(
				"X-Hub-Signature-256", "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
				"X-GitHub-Delivery", "1b5c3c2e-0000-11ee-8000-000000000000",
				"X-GitHub-Event", "ping",
			),
			sigHeader: "X-Hub-Signature-256",
			want:      Delivery{ID: "1b5c3c2e-0000-11ee-8000-000000000000", Type: "ping"},
		},
		{
			// api.slack.com, "Verifying requests from Slack", worked example
			// (a slash command).
			name: "slack docs",
			cfg:  Config{Scheme: "slack", Secrets: Secrets{"8f742231b10e8888abcd99yyyzzz85a5"}},
			body: "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c",
			now:  time.Unix(1531420618, 0),
			give: header(
				"X-Slack-Request-Timestamp", "1531420618",
				"X-Slack-Signature", "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
			),
			sigHeader: "X-Slack-Signature",
			want: Delivery{
				ID:        "398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c",
				Type:      "slash_command",
				Timestamp: time.Unix(1531420618, 0),
			},
		},
		{
			// standard-webhooks libraries' TestWebhookSign (the same fixed
			// vector is in every language's test suite).
			name: "standard webhooks spec",
			cfg:  Config{Scheme: "standard-webhooks", Secrets: Secrets{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}},
			body: `{"test": 2432232314}`,
			now:  time.Unix(1614265330, 0),
			id:   "msg_p5jXN8AQM9LWM0D4loKWxJek",
			give: header(
				"webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek",
				"webhook-timestamp", "1614265330",
				"webhook-signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
			),
			sigHeader: "webhook-signature",
			want:      Delivery{ID: "msg_p5jXN8AQM9LWM0D4loKWxJek", Timestamp: time.Unix(1614265330, 0)},
		},
		{
			name: "standard webhooks spec, svix headers",
			cfg:  Config{Scheme: "svix", Secrets: Secrets{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}},
			body: `{"test": 2432232314}`,
			now:  time.Unix(1614265330, 0),
			id:   "msg_p5jXN8AQM9LWM0D4loKWxJek",
			give: header(
				"svix-id", "msg_p5jXN8AQM9LWM0D4loKWxJek",
				"svix-timestamp", "1614265330",
				"svix-signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
			),
			sigHeader: "svix-signature",
			want:      Delivery{ID: "msg_p5jXN8AQM9LWM0D4loKWxJek", Timestamp: time.Unix(1614265330, 0)},
		},
		{
			// Computed with OpenSSL (`openssl dgst -sha256 -hmac … -binary | base64`),
			// an implementation independent of Go's.
			name: "shopify, openssl",
			cfg:  Config{Scheme: "shopify", Secrets: Secrets{"shpss_toolbus_test_secret"}},
			body: `{"id":820982911946154508,"email":"jon@example.com"}`,
			id:   "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
			typ:  "orders/create",
			give: header(
				"X-Shopify-Hmac-Sha256", "TjkhWQ3rhp74LDcw+1r2fZKNim7QrcD9C/Np2taWu54=",
				"X-Shopify-Webhook-Id", "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
				"X-Shopify-Topic", "orders/create",
			),
			sigHeader: "X-Shopify-Hmac-Sha256",
			want:      Delivery{ID: "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043", Type: "orders/create"},
		},
		{
			name: "hmac sha512 base64 template, openssl",
			cfg: Config{
				Scheme: "hmac", Secrets: Secrets{"generic-secret"},
				Header: "X-Sig", Algorithm: "sha512", Encoding: "base64",
				SignedPayload: "{timestamp}.{id}.{body}", TimestampHeader: "X-Ts", IDHeader: "X-Id",
			},
			body: `{"event":"ping"}`,
			now:  time.Unix(1700000000, 0),
			id:   "evt_42",
			give: header(
				"X-Sig", "JGzCUEbe3GBm5D/mBGAthu8HGOlBlE5XgAzWJsF0h1xylgV59+lH2fB4uBXMBW8epeqzAfUFWVk5L03zAGNqHQ==",
				"X-Ts", "1700000000",
				"X-Id", "evt_42",
			),
			sigHeader: "X-Sig",
			want:      Delivery{ID: "evt_42", Timestamp: time.Unix(1700000000, 0)},
		},
		{
			name: "hmac sha1 hex with prefix, openssl",
			cfg: Config{
				Scheme: "hmac", Secrets: Secrets{"generic-secret"},
				Header: "X-Sig", Algorithm: "sha1", Prefix: "sha1=", TypeJSONPath: "event",
			},
			body:      `{"event":"ping"}`,
			give:      header("X-Sig", "sha1=c6ac1f7cdda0ea99fcc8ab400417b4df441b81e3"),
			sigHeader: "X-Sig",
			want:      Delivery{Type: "ping"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.Verify(Request{Header: tt.give, Body: []byte(tt.body), Now: tt.now})
			if err != nil {
				t.Fatalf("Verify() error = %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Verify() mismatch (-want +got):\n%s", diff)
			}
			signed, err := s.Sign([]byte(tt.body), tt.now, tt.id, tt.typ)
			if err != nil {
				t.Fatalf("Sign() error = %v", err)
			}
			if diff := cmp.Diff(tt.give, signed); diff != "" {
				t.Errorf("Sign() headers mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

const stripeSecret = "whsec_test_secret_for_stripe_go_interop"

var stripeEvent = []byte(`{"id":"evt_test_webhook","object":"event","api_version":"2025-01-27.acacia","type":"charge.succeeded","data":{"object":{"id":"ch_1"}}}`)

// TestStripeGoSignsWeVerify feeds headers from stripe-go's own test helper
// to Verify, with one secret and with a rotated pair.
func TestStripeGoSignsWeVerify(t *testing.T) {
	signedAt := time.Unix(1700000000, 0)
	cur := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: stripeEvent, Secret: stripeSecret, Timestamp: signedAt})
	old := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: stripeEvent, Secret: "whsec_old", Timestamp: signedAt})
	tests := []struct {
		name    string
		secrets Secrets
		give    string
		want    Delivery
	}{
		{name: "one secret", secrets: Secrets{stripeSecret}, give: cur.Header, want: Delivery{ID: "evt_test_webhook", Type: "charge.succeeded", Timestamp: signedAt}},
		{name: "old secret during rotation", secrets: Secrets{stripeSecret, "whsec_old"}, give: old.Header, want: Delivery{ID: "evt_test_webhook", Type: "charge.succeeded", Timestamp: signedAt, Secret: 1}},
		{name: "v1 per secret", secrets: Secrets{stripeSecret}, give: old.Header + ",v1=" + string(hexOf(cur.Signature)), want: Delivery{ID: "evt_test_webhook", Type: "charge.succeeded", Timestamp: signedAt}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(Config{Scheme: "stripe", Secrets: tt.secrets})
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.Verify(Request{Header: header("Stripe-Signature", tt.give), Body: stripeEvent, Now: signedAt.Add(time.Minute)})
			if err != nil {
				t.Fatalf("Verify() error = %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Verify() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func hexOf(b []byte) []byte { return []byte(encHex.encode(b)) }

// TestWeSignStripeGoVerifies checks Sign's output with stripe-go's
// ValidatePayload and ConstructEventWithOptions (both use the wall clock).
func TestWeSignStripeGoVerifies(t *testing.T) {
	s, err := New(Config{Scheme: "stripe", Secrets: Secrets{stripeSecret, "whsec_old"}})
	if err != nil {
		t.Fatal(err)
	}
	h, err := s.Sign(stripeEvent, time.Now(), "", "")
	if err != nil {
		t.Fatal(err)
	}
	sig := h.Get("Stripe-Signature")
	if err := webhook.ValidatePayload(stripeEvent, sig, stripeSecret); err != nil {
		t.Fatalf("stripe-go ValidatePayload() error = %v", err)
	}
	event, err := webhook.ConstructEventWithOptions(stripeEvent, sig, stripeSecret, webhook.ConstructEventOptions{IgnoreAPIVersionMismatch: true})
	if err != nil {
		t.Fatalf("stripe-go ConstructEventWithOptions() error = %v", err)
	}
	if diff := cmp.Diff([2]string{"evt_test_webhook", "charge.succeeded"}, [2]string{event.ID, string(event.Type)}); diff != "" {
		t.Errorf("stripe-go event mismatch (-want +got):\n%s", diff)
	}
	if err := webhook.ValidatePayload(stripeEvent, sig, "whsec_old"); err == nil {
		t.Error("stripe-go accepted a signature under the old secret; Sign must use Secrets[0]")
	}
}

// TestStandardWebhooksLibraryInterop cross-verifies with the Standard
// Webhooks reference Go library in both directions (it uses the wall clock).
func TestStandardWebhooksLibraryInterop(t *testing.T) {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	body := []byte(`{"type":"invoice.paid","data":{"id":"in_1"}}`)
	lib, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Scheme: "standard-webhooks", Secrets: Secrets{secret}})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()

	t.Run("library signs, we verify", func(t *testing.T) {
		sig, err := lib.Sign("msg_lib", now, body)
		if err != nil {
			t.Fatal(err)
		}
		h := header("webhook-id", "msg_lib", "webhook-timestamp", strconv.FormatInt(now.Unix(), 10), "webhook-signature", sig)
		got, err := s.Verify(Request{Header: h, Body: body})
		if err != nil {
			t.Fatalf("Verify() error = %v", err)
		}
		want := Delivery{ID: "msg_lib", Type: "invoice.paid", Timestamp: time.Unix(now.Unix(), 0)}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Verify() mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("we sign, library verifies", func(t *testing.T) {
		h, err := s.Sign(body, now, "msg_ours", "")
		if err != nil {
			t.Fatal(err)
		}
		if err := lib.Verify(body, h); err != nil {
			t.Fatalf("library Verify() error = %v", err)
		}
		if err := lib.Verify(tamper(body), h); err == nil {
			t.Error("library accepted a tampered body")
		}
	})
}
