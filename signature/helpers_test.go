package signature

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// at is when test deliveries are signed; requests are checked 10s later
// unless a case says otherwise.
var at = time.Unix(1700000000, 0)

const checkDelay = 10 * time.Second

// fixture describes one scheme for the shared cases.
type fixture struct {
	cfg       Config    // everything but the secrets
	secrets   [3]string // current, old (rotation), wrong
	sigHeader string    // removed by the missing-signature case
	id, typ   string    // passed to Sign
	body      func(pad int) []byte
	want      Delivery // body(pad) signed at `at` with the current secret
	emptyWant Delivery // a signed empty body
	emptyErr  error
	tolerance time.Duration // zero: the scheme signs no timestamp
}

func pad(n int) string { return strings.Repeat("x", n) }

var fixtures = map[string]fixture{
	"stripe": {
		cfg:       Config{Scheme: "stripe"},
		secrets:   [3]string{"whsec_current_0123456789abcdef", "whsec_old_0123456789abcdef", "whsec_wrong_0123456789abcdef"},
		sigHeader: "Stripe-Signature",
		body: func(n int) []byte {
			return fmt.Appendf(nil, `{"id":"evt_1NG8Du2eZvKYlo2CUI79vXWy","object":"event","type":"payment_intent.succeeded","pad":"%s"}`, pad(n))
		},
		want:      Delivery{ID: "evt_1NG8Du2eZvKYlo2CUI79vXWy", Type: "payment_intent.succeeded", Timestamp: at},
		emptyErr:  ErrMalformedPayload,
		tolerance: 300 * time.Second,
	},
	"github": {
		cfg:       Config{Scheme: "github"},
		secrets:   [3]string{"gh-current", "gh-old", "gh-wrong"},
		sigHeader: "X-Hub-Signature-256",
		id:        "72d3162e-cc78-11e3-81ab-4c9367dc0958",
		typ:       "issues",
		body: func(n int) []byte {
			return fmt.Appendf(nil, `{"action":"opened","pad":"%s"}`, pad(n))
		},
		want:      Delivery{ID: "72d3162e-cc78-11e3-81ab-4c9367dc0958", Type: "issues"},
		emptyWant: Delivery{ID: "72d3162e-cc78-11e3-81ab-4c9367dc0958", Type: "issues"},
	},
	"shopify": {
		cfg:       Config{Scheme: "shopify"},
		secrets:   [3]string{"shpss_current", "shpss_old", "shpss_wrong"},
		sigHeader: "X-Shopify-Hmac-Sha256",
		id:        "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
		typ:       "orders/create",
		body: func(n int) []byte {
			return fmt.Appendf(nil, `{"id":820982911946154508,"pad":"%s"}`, pad(n))
		},
		want:      Delivery{ID: "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043", Type: "orders/create"},
		emptyWant: Delivery{ID: "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043", Type: "orders/create"},
	},
	"slack": {
		cfg:       Config{Scheme: "slack"},
		secrets:   [3]string{"8f742231b10e8888abcd99yyyzzz85a5", "0ld742231b10e8888abcd99yyyzzz85a5", "wr0ng2231b10e8888abcd99yyyzzz85a5"},
		sigHeader: "X-Slack-Signature",
		body: func(n int) []byte {
			return fmt.Appendf(nil, `{"type":"event_callback","event_id":"Ev08MFMKH6","event":{"type":"app_mention","text":"%s"}}`, pad(n))
		},
		want:      Delivery{ID: "Ev08MFMKH6", Type: "app_mention", Timestamp: at},
		emptyErr:  ErrMalformedPayload,
		tolerance: 5 * time.Minute,
	},
	"standard-webhooks": {
		cfg: Config{Scheme: "standard-webhooks"},
		secrets: [3]string{
			"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
			"whsec_b2xkLXNlY3JldC1rZXktZm9yLXJvdGF0aW9uIQ==",
			"whsec_d3Jvbmctc2VjcmV0LWtleS1mb3ItdGVzdGluZyE=",
		},
		sigHeader: "webhook-signature",
		id:        "msg_p5jXN8AQM9LWM0D4loKWxJek",
		body: func(n int) []byte {
			return fmt.Appendf(nil, `{"type":"invoice.paid","timestamp":"2023-11-14T22:13:20Z","data":{"pad":"%s"}}`, pad(n))
		},
		want:      Delivery{ID: "msg_p5jXN8AQM9LWM0D4loKWxJek", Type: "invoice.paid", Timestamp: at},
		emptyWant: Delivery{ID: "msg_p5jXN8AQM9LWM0D4loKWxJek", Timestamp: at},
		tolerance: 5 * time.Minute,
	},
	"svix": {
		cfg: Config{Scheme: "svix", Tolerance: 10 * time.Minute},
		secrets: [3]string{
			"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
			"whsec_b2xkLXNlY3JldC1rZXktZm9yLXJvdGF0aW9uIQ==",
			"whsec_d3Jvbmctc2VjcmV0LWtleS1mb3ItdGVzdGluZyE=",
		},
		sigHeader: "svix-signature",
		id:        "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W",
		body: func(n int) []byte {
			return fmt.Appendf(nil, `{"type":"user.created","data":{"pad":"%s"}}`, pad(n))
		},
		want:      Delivery{ID: "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", Type: "user.created", Timestamp: at},
		emptyWant: Delivery{ID: "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", Timestamp: at},
		tolerance: 10 * time.Minute,
	},
	"hmac": {
		cfg: Config{
			Scheme:          "hmac",
			Header:          "X-Acme-Signature",
			Algorithm:       "sha512",
			Encoding:        "base64",
			Prefix:          "v1=",
			SignedPayload:   "{timestamp}.{id}.{body}",
			TimestampHeader: "X-Acme-Timestamp",
			IDHeader:        "X-Acme-Delivery",
			TypeHeader:      "X-Acme-Event",
			Tolerance:       2 * time.Minute,
		},
		secrets:   [3]string{"acme-current", "acme-old", "acme-wrong"},
		sigHeader: "X-Acme-Signature",
		id:        "dlv_42",
		typ:       "invoice.created",
		body: func(n int) []byte {
			return fmt.Appendf(nil, `{"invoice":"in_1","pad":"%s"}`, pad(n))
		},
		want:      Delivery{ID: "dlv_42", Type: "invoice.created", Timestamp: at},
		emptyWant: Delivery{ID: "dlv_42", Type: "invoice.created", Timestamp: at},
		tolerance: 2 * time.Minute,
	},
}

func (fx fixture) scheme(t testing.TB, secrets ...string) Scheme {
	t.Helper()
	cfg := fx.cfg
	cfg.Secrets = secrets
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New(%v) error = %v", cfg, err)
	}
	return s
}

// verifier accepts the current and the old secret.
func (fx fixture) verifier(t testing.TB) Scheme {
	return fx.scheme(t, fx.secrets[0], fx.secrets[1])
}

// request signs signed with secret at signedAt and sends sent, checked at now.
func (fx fixture) request(t testing.TB, secret string, signed, sent []byte, signedAt, now time.Time) Request {
	t.Helper()
	h, err := fx.scheme(t, secret).Sign(signed, signedAt, fx.id, fx.typ)
	if err != nil {
		t.Fatalf("Sign() error = %v", err)
	}
	return Request{Header: h, Body: sent, Now: now}
}

// valid is body(0) signed with the current secret, checked 10s later.
func (fx fixture) valid(t testing.TB) Request {
	return fx.request(t, fx.secrets[0], fx.body(0), fx.body(0), at, at.Add(checkDelay))
}

// with returns r with header key set to value, or deleted if value is "".
func with(r Request, key, value string) Request {
	r.Header = r.Header.Clone()
	r.Header.Del(key)
	if value != "" {
		r.Header.Set(key, value)
	}
	return r
}

func tamper(b []byte) []byte {
	b = append([]byte(nil), b...)
	b[len(b)/2] ^= 0x01
	return b
}

type verifyCase struct {
	name    string
	give    Request
	want    Delivery
	wantErr error
}

// commonCases apply to every scheme.
func commonCases(t testing.TB, fx fixture) []verifyCase {
	cur, old, wrong := fx.secrets[0], fx.secrets[1], fx.secrets[2]
	body, empty, huge := fx.body(0), []byte{}, fx.body(1<<20)
	checked := at.Add(checkDelay)
	rotated := fx.want
	rotated.Secret = 1
	return []verifyCase{
		{name: "current secret", give: fx.valid(t), want: fx.want},
		{name: "old secret during rotation", give: fx.request(t, old, body, body, at, checked), want: rotated},
		{name: "wrong secret", give: fx.request(t, wrong, body, body, at, checked), wantErr: ErrSignatureMismatch},
		{name: "tampered body", give: fx.request(t, cur, body, tamper(body), at, checked), wantErr: ErrSignatureMismatch},
		{name: "missing signature header", give: with(fx.valid(t), fx.sigHeader, ""), wantErr: ErrMissingSignature},
		{name: "signed empty body", give: fx.request(t, cur, empty, empty, at, checked), want: fx.emptyWant, wantErr: fx.emptyErr},
		{name: "empty body with another body's signature", give: fx.request(t, cur, body, empty, at, checked), wantErr: ErrSignatureMismatch},
		{name: "1 MiB body", give: fx.request(t, cur, huge, huge, at, checked), want: fx.want},
	}
}

// toleranceCases apply to schemes that sign a timestamp.
func toleranceCases(t testing.TB, fx fixture) []verifyCase {
	cur, body, tol := fx.secrets[0], fx.body(0), fx.tolerance
	return []verifyCase{
		{name: "stale at exactly the tolerance", give: fx.request(t, cur, body, body, at, at.Add(tol)), want: fx.want},
		{name: "future at exactly the tolerance", give: fx.request(t, cur, body, body, at, at.Add(-tol)), want: fx.want},
		{name: "stale beyond the tolerance", give: fx.request(t, cur, body, body, at, at.Add(tol+time.Second)), wantErr: ErrTimestampOutOfTolerance},
		{name: "future beyond the tolerance", give: fx.request(t, cur, body, body, at, at.Add(-tol-time.Second)), wantErr: ErrTimestampOutOfTolerance},
		{name: "replayed a day later", give: fx.request(t, cur, body, body, at, at.Add(24*time.Hour)), wantErr: ErrTimestampOutOfTolerance},
	}
}

// runVerify runs cases against the fixture's verifier and checks that no
// error text carries a secret or a valid signature.
func runVerify(t *testing.T, fx fixture, cases []verifyCase) {
	t.Helper()
	v := fx.verifier(t)
	forbidden := fx.secrets[:]
	for _, secret := range fx.secrets[:2] {
		h, err := fx.scheme(t, secret).Sign(fx.body(0), at, fx.id, fx.typ)
		if err != nil {
			t.Fatal(err)
		}
		forbidden = append(forbidden, h.Get(fx.sigHeader))
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			got, err := v.Verify(tt.give)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Verify() error = %v, want %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Verify() mismatch (-want +got):\n%s", diff)
			}
			for _, s := range forbidden {
				if strings.Contains(fmt.Sprint(err), s) {
					t.Errorf("Verify() error %q contains a secret or a valid signature", err)
				}
			}
		})
	}
}

func header(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}
