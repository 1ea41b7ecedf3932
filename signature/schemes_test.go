package signature

import (
	"strings"
	"testing"
	"time"
)

func cases(t *testing.T, fx fixture, specific ...verifyCase) []verifyCase {
	c := append(commonCases(t, fx), specific...)
	if fx.tolerance == 0 {
		return c
	}
	return append(c, toleranceCases(t, fx)...)
}

func TestStripeVerify(t *testing.T) {
	fx := fixtures["stripe"]
	valid := fx.valid(t)
	sig := strings.TrimPrefix(valid.Header.Get("Stripe-Signature"), "t=1700000000,")
	oldSig := strings.TrimPrefix(fx.request(t, fx.secrets[1], fx.body(0), nil, at, at).Header.Get("Stripe-Signature"), "t=1700000000,")
	wrongSig := strings.TrimPrefix(fx.request(t, fx.secrets[2], fx.body(0), nil, at, at).Header.Get("Stripe-Signature"), "t=1700000000,")
	notEvent := []byte(`{"object":"event"}`)
	runVerify(t, fx, cases(t, fx,
		verifyCase{name: "no t element", give: with(valid, "Stripe-Signature", sig), wantErr: ErrMalformedHeader},
		verifyCase{name: "t is not a number", give: with(valid, "Stripe-Signature", "t=now,"+sig), wantErr: ErrMalformedHeader},
		verifyCase{name: "t has a sign", give: with(valid, "Stripe-Signature", "t=+1700000000,"+sig), wantErr: ErrMalformedHeader},
		verifyCase{name: "t in milliseconds", give: with(valid, "Stripe-Signature", "t=1700000000000,"+sig), wantErr: ErrMalformedHeader},
		verifyCase{name: "two t elements", give: with(valid, "Stripe-Signature", "t=1700000000,t=1700000001,"+sig), wantErr: ErrMalformedHeader},
		verifyCase{name: "element without =", give: with(valid, "Stripe-Signature", "t=1700000000,"+sig+",junk"), wantErr: ErrMalformedHeader},
		verifyCase{name: "only v0", give: with(valid, "Stripe-Signature", "t=1700000000,v0="+strings.TrimPrefix(sig, "v1=")), wantErr: ErrMissingSignature},
		verifyCase{name: "v1 not hex", give: with(valid, "Stripe-Signature", "t=1700000000,v1=zz"), wantErr: ErrMalformedHeader},
		verifyCase{name: "v1 truncated", give: with(valid, "Stripe-Signature", "t=1700000000,"+sig[:40]), wantErr: ErrMalformedHeader},
		verifyCase{name: "signature moved to another t", give: with(valid, "Stripe-Signature", "t=1700000001,"+sig), wantErr: ErrSignatureMismatch},
		verifyCase{name: "v0 and unknown keys ignored", give: with(valid, "Stripe-Signature", "t=1700000000,v0=00,foo=bar,"+sig), want: fx.want},
		verifyCase{name: "several v1, valid one last", give: with(valid, "Stripe-Signature", "t=1700000000,"+wrongSig+","+sig), want: fx.want},
		verifyCase{name: "one v1 per secret Stripe holds", give: with(valid, "Stripe-Signature", "t=1700000000,"+oldSig+","+sig), want: fx.want},
		verifyCase{name: "malformed v1 beside a valid one", give: with(valid, "Stripe-Signature", "t=1700000000,v1=zz,"+sig), want: fx.want},
		verifyCase{name: "signed body without id and type", give: fx.request(t, fx.secrets[0], notEvent, notEvent, at, at), wantErr: ErrMalformedPayload},
	))
}

func TestGitHubVerify(t *testing.T) {
	fx := fixtures["github"]
	valid := fx.valid(t)
	sig := valid.Header.Get("X-Hub-Signature-256")
	runVerify(t, fx, cases(t, fx,
		verifyCase{name: "missing X-GitHub-Delivery", give: with(valid, "X-GitHub-Delivery", ""), wantErr: ErrMissingHeader},
		verifyCase{name: "missing X-GitHub-Event", give: with(valid, "X-GitHub-Event", ""), wantErr: ErrMissingHeader},
		verifyCase{name: "only the SHA-1 X-Hub-Signature", give: with(with(valid, "X-Hub-Signature-256", ""), "X-Hub-Signature", "sha1=c6ac1f7cdda0ea99fcc8ab400417b4df441b81e3"), wantErr: ErrMissingSignature},
		verifyCase{name: "sha1= prefix", give: with(valid, "X-Hub-Signature-256", "sha1="+strings.TrimPrefix(sig, "sha256=")), wantErr: ErrMalformedHeader},
		verifyCase{name: "no prefix", give: with(valid, "X-Hub-Signature-256", strings.TrimPrefix(sig, "sha256=")), wantErr: ErrMalformedHeader},
		verifyCase{name: "truncated hex", give: with(valid, "X-Hub-Signature-256", sig[:len(sig)-2]), wantErr: ErrMalformedHeader},
		verifyCase{name: "not hex", give: with(valid, "X-Hub-Signature-256", "sha256="+strings.Repeat("g", 64)), wantErr: ErrMalformedHeader},
		verifyCase{name: "upper-case hex", give: with(valid, "X-Hub-Signature-256", "sha256="+strings.ToUpper(strings.TrimPrefix(sig, "sha256="))), want: fx.want},
		verifyCase{name: "delivery id is not signed", give: with(valid, "X-GitHub-Delivery", "other"), want: Delivery{ID: "other", Type: "issues"}},
	))
}

func TestShopifyVerify(t *testing.T) {
	fx := fixtures["shopify"]
	valid := fx.valid(t)
	runVerify(t, fx, cases(t, fx,
		verifyCase{name: "webhook id falls back to event id", give: with(with(valid, "X-Shopify-Webhook-Id", ""), "X-Shopify-Event-Id", "evt-7"), want: Delivery{ID: "evt-7", Type: "orders/create"}},
		verifyCase{name: "no id header at all", give: with(valid, "X-Shopify-Webhook-Id", ""), wantErr: ErrMissingHeader},
		verifyCase{name: "missing X-Shopify-Topic", give: with(valid, "X-Shopify-Topic", ""), wantErr: ErrMissingHeader},
		verifyCase{name: "hex instead of base64", give: with(valid, "X-Shopify-Hmac-Sha256", strings.Repeat("ab", 32)), wantErr: ErrMalformedHeader},
		verifyCase{name: "not base64", give: with(valid, "X-Shopify-Hmac-Sha256", strings.Repeat("*", 44)), wantErr: ErrMalformedHeader},
		verifyCase{name: "unpadded base64", give: with(valid, "X-Shopify-Hmac-Sha256", strings.TrimSuffix(valid.Header.Get("X-Shopify-Hmac-Sha256"), "=")), wantErr: ErrMalformedHeader},
	))
}

func TestSlackVerify(t *testing.T) {
	fx := fixtures["slack"]
	valid := fx.valid(t)
	sig := valid.Header.Get("X-Slack-Signature")
	signed := func(body string) Request {
		return fx.request(t, fx.secrets[0], []byte(body), []byte(body), at, at)
	}
	runVerify(t, fx, cases(t, fx,
		verifyCase{name: "missing timestamp", give: with(valid, "X-Slack-Request-Timestamp", ""), wantErr: ErrMissingHeader},
		verifyCase{name: "timestamp not a number", give: with(valid, "X-Slack-Request-Timestamp", "1700000000.5"), wantErr: ErrMalformedHeader},
		verifyCase{name: "timestamp changed", give: with(valid, "X-Slack-Request-Timestamp", "1700000001"), wantErr: ErrSignatureMismatch},
		verifyCase{name: "v1= prefix", give: with(valid, "X-Slack-Signature", "v1="+strings.TrimPrefix(sig, "v0=")), wantErr: ErrMalformedHeader},
		verifyCase{name: "bare hex", give: with(valid, "X-Slack-Signature", strings.TrimPrefix(sig, "v0=")), wantErr: ErrMalformedHeader},
		verifyCase{
			name: "url_verification handshake",
			give: signed(`{"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}`),
			want: Delivery{Type: "url_verification", Timestamp: at, Handshake: &Handshake{Challenge: "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}},
		},
		verifyCase{name: "url_verification without challenge", give: signed(`{"type":"url_verification"}`), wantErr: ErrMalformedPayload},
		verifyCase{name: "app_rate_limited", give: signed(`{"token":"x","type":"app_rate_limited","team_id":"T123456","minute_rate_limited":1518467820,"api_app_id":"A123456"}`), want: Delivery{Type: "app_rate_limited", Timestamp: at}},
		verifyCase{name: "event_callback without event_id", give: signed(`{"type":"event_callback","event":{"type":"message"}}`), wantErr: ErrMalformedPayload},
		verifyCase{name: "JSON without type", give: signed(`{"event_id":"Ev1"}`), wantErr: ErrMalformedPayload},
		verifyCase{name: "broken JSON", give: signed(`{"type":`), wantErr: ErrMalformedPayload},
		verifyCase{name: "slash command", give: signed(`command=%2Fdeploy&text=api&trigger_id=13345224609.738474920.8088930838d88f008e0`), want: Delivery{ID: "13345224609.738474920.8088930838d88f008e0", Type: "slash_command", Timestamp: at}},
		verifyCase{name: "interactivity payload", give: signed(`payload=%7B%22type%22%3A%22block_actions%22%2C%22trigger_id%22%3A%2212466734323.1395872398%22%7D`), want: Delivery{ID: "12466734323.1395872398", Type: "block_actions", Timestamp: at}},
		verifyCase{name: "form without payload or command", give: signed(`a=b`), wantErr: ErrMalformedPayload},
	))
}

func swCases(t *testing.T, fx fixture, hs swHeaders, other swHeaders) []verifyCase {
	valid := fx.valid(t)
	sig := valid.Header.Get(hs.signature)
	wrong := fx.request(t, fx.secrets[2], fx.body(0), nil, at, at).Header.Get(hs.signature)
	aliased := Request{Body: valid.Body, Now: valid.Now, Header: header(
		other.id, valid.Header.Get(hs.id),
		other.timestamp, valid.Header.Get(hs.timestamp),
		other.signature, sig,
	)}
	notJSON := []byte("plain text")
	return cases(t, fx,
		verifyCase{name: "missing id", give: with(valid, hs.id, ""), wantErr: ErrMissingHeader},
		verifyCase{name: "missing timestamp", give: with(valid, hs.timestamp, ""), wantErr: ErrMissingHeader},
		verifyCase{name: "timestamp not a number", give: with(valid, hs.timestamp, "2023-11-14T22:13:20Z"), wantErr: ErrMalformedHeader},
		verifyCase{name: "id changed", give: with(valid, hs.id, "msg_other"), wantErr: ErrSignatureMismatch},
		verifyCase{name: "timestamp changed", give: with(valid, hs.timestamp, "1700000001"), wantErr: ErrSignatureMismatch},
		verifyCase{name: "several signatures, valid one in the middle", give: with(valid, hs.signature, wrong+" v2,"+strings.TrimPrefix(sig, "v1,")+" "+sig+" "+wrong), want: fx.want},
		verifyCase{name: "extra spaces between signatures", give: with(valid, hs.signature, wrong+"   "+sig), want: fx.want},
		verifyCase{name: "only v1a (asymmetric)", give: with(valid, hs.signature, "v1a,"+strings.TrimPrefix(sig, "v1,")), wantErr: ErrMissingSignature},
		verifyCase{name: "no comma", give: with(valid, hs.signature, strings.TrimPrefix(sig, "v1,")), wantErr: ErrMissingSignature},
		verifyCase{name: "partial signature", give: with(valid, hs.signature, "v1,"), wantErr: ErrMalformedHeader},
		verifyCase{name: "v1 not base64", give: with(valid, hs.signature, "v1,"+strings.Repeat("!", 44)), wantErr: ErrMalformedHeader},
		verifyCase{name: "the other header set", give: aliased, want: fx.want},
		verifyCase{name: "body without type", give: fx.request(t, fx.secrets[0], notJSON, notJSON, at, at), want: Delivery{ID: fx.id, Timestamp: at}},
	)
}

func TestStandardWebhooksVerify(t *testing.T) {
	fx := fixtures["standard-webhooks"]
	runVerify(t, fx, swCases(t, fx, swSpecHeaders, swSvixHeaders))
}

func TestSvixVerify(t *testing.T) {
	fx := fixtures["svix"]
	runVerify(t, fx, swCases(t, fx, swSvixHeaders, swSpecHeaders))
}

func TestHMACVerify(t *testing.T) {
	fx := fixtures["hmac"]
	valid := fx.valid(t)
	sig := valid.Header.Get("X-Acme-Signature")
	runVerify(t, fx, cases(t, fx,
		verifyCase{name: "missing id header", give: with(valid, "X-Acme-Delivery", ""), wantErr: ErrMissingHeader},
		verifyCase{name: "missing type header", give: with(valid, "X-Acme-Event", ""), wantErr: ErrMissingHeader},
		verifyCase{name: "missing timestamp header", give: with(valid, "X-Acme-Timestamp", ""), wantErr: ErrMissingHeader},
		verifyCase{name: "timestamp with spaces", give: with(valid, "X-Acme-Timestamp", "17000 00000"), wantErr: ErrMalformedHeader},
		verifyCase{name: "id changed (signed)", give: with(valid, "X-Acme-Delivery", "dlv_43"), wantErr: ErrSignatureMismatch},
		verifyCase{name: "type is not signed", give: with(valid, "X-Acme-Event", "other"), want: Delivery{ID: "dlv_42", Type: "other", Timestamp: at}},
		verifyCase{name: "missing prefix", give: with(valid, "X-Acme-Signature", strings.TrimPrefix(sig, "v1=")), wantErr: ErrMalformedHeader},
		verifyCase{name: "hex instead of base64", give: with(valid, "X-Acme-Signature", "v1="+strings.Repeat("ab", 64)), wantErr: ErrMalformedHeader},
		verifyCase{name: "SHA-256 length", give: with(valid, "X-Acme-Signature", "v1="+strings.Repeat("A", 43)+"="), wantErr: ErrMalformedHeader},
	))
}

func TestHMACJSONPaths(t *testing.T) {
	fx := fixture{
		cfg: Config{
			Scheme:       "hmac",
			Header:       "X-Signature",
			Algorithm:    "sha1",
			IDJSONPath:   "$.data.id",
			TypeJSONPath: "event",
		},
		secrets:   [3]string{"generic-secret", "generic-old", "generic-wrong"},
		sigHeader: "X-Signature",
		body: func(n int) []byte {
			return []byte(`{"event":"ping","data":{"id":12345678901234567890,"pad":"` + pad(n) + `"}}`)
		},
		want:     Delivery{ID: "12345678901234567890", Type: "ping"},
		emptyErr: ErrMalformedPayload,
	}
	signed := func(body string) Request {
		return fx.request(t, fx.secrets[0], []byte(body), []byte(body), at, at)
	}
	runVerify(t, fx, cases(t, fx,
		verifyCase{name: "id path missing", give: signed(`{"event":"ping","data":{}}`), wantErr: ErrMalformedPayload},
		verifyCase{name: "type path not an object", give: signed(`{"event":["ping"],"data":{"id":"a"}}`), wantErr: ErrMalformedPayload},
		verifyCase{name: "id is an object", give: signed(`{"event":"ping","data":{"id":{}}}`), wantErr: ErrMalformedPayload},
		verifyCase{name: "id is empty", give: signed(`{"event":"ping","data":{"id":""}}`), wantErr: ErrMalformedPayload},
		verifyCase{name: "parent is not an object", give: signed(`{"event":"ping","data":"x"}`), wantErr: ErrMalformedPayload},
		verifyCase{name: "string id", give: signed(`{"event":"ping","data":{"id":"abc"}}`), want: Delivery{ID: "abc", Type: "ping"}},
	))
}

// TestVerifyDefaultsNowToWallClock checks that a zero Request.Now means
// time.Now, not the zero time.
func TestVerifyDefaultsNowToWallClock(t *testing.T) {
	fx := fixtures["slack"]
	r := fx.request(t, fx.secrets[0], fx.body(0), fx.body(0), time.Now(), time.Time{})
	if _, err := fx.verifier(t).Verify(r); err != nil {
		t.Fatalf("Verify() error = %v", err)
	}
}
