package signature

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The fuzz targets feed arbitrary header values and bodies to the parsers
// and to Verify. None may panic, and Verify must never accept: the inputs
// carry no signature made with the verifier's secret (the seeds are signed
// with another secret), and forging one is what HMAC rules out.

const fuzzSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// fuzzNow sits inside the tolerance of the seeds' timestamps so that Verify
// reaches the signature comparison.
var fuzzNow = time.Unix(1700000000, 0)

// foreignHeaders signs body with a secret the fuzzed verifiers do not hold.
func foreignHeaders(f *testing.F, scheme Config, body string) http.Header {
	f.Helper()
	scheme.Secrets = Secrets{"whsec_b2xkLXNlY3JldC1rZXktZm9yLXJvdGF0aW9uIQ=="}
	s, err := New(scheme)
	if err != nil {
		f.Fatal(err)
	}
	h, err := s.Sign([]byte(body), fuzzNow, "msg_1", "ping")
	if err != nil {
		f.Fatal(err)
	}
	return h
}

func fuzzScheme(t testing.TB, cfg Config) Scheme {
	cfg.Secrets = Secrets{fuzzSecret}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func FuzzStripeSignatureHeader(f *testing.F) {
	body := `{"id":"evt_1","type":"ping"}`
	f.Add(foreignHeaders(f, Config{Scheme: "stripe"}, body).Get("Stripe-Signature"), []byte(body))
	f.Add("t=1700000000,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd,v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39", []byte(body))
	f.Add("t=1700000000,v1=,v1=zz,t=1", []byte{})
	f.Add("t=,v1", []byte(nil))
	f.Add(",,,==,t=99999999999999999999", []byte("x"))
	f.Add("t=1700000000,"+strings.Repeat("v1=00,", 50), []byte(body))
	v := fuzzScheme(f, Config{Scheme: "stripe"})
	f.Fuzz(func(t *testing.T, header string, body []byte) {
		h, err := parseStripeHeader(header)
		if err == nil {
			if _, ok := parseUnix(h.tsRaw); !ok || len(h.v1) == 0 {
				t.Fatalf("parseStripeHeader(%q) = %+v without error", header, h)
			}
			for _, sig := range h.v1 {
				if len(sig) != 32 {
					t.Fatalf("parseStripeHeader(%q) kept a %d-byte signature", header, len(sig))
				}
			}
		}
		r := Request{Header: http.Header{"Stripe-Signature": {header}}, Body: body, Now: fuzzNow}
		if d, err := v.Verify(r); err == nil {
			t.Fatalf("Verify(%q, %q) = %+v, want an error", header, body, d)
		}
	})
}

func FuzzStandardWebhooksSignatureList(f *testing.F) {
	body := `{"type":"ping"}`
	h := foreignHeaders(f, Config{Scheme: "standard-webhooks"}, body)
	f.Add(h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature"), []byte(body))
	f.Add("msg_p5jXN8AQM9LWM0D4loKWxJek", "1700000000", "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v2,abc v1a,xyz", []byte(body))
	f.Add("msg", "1700000000", "v1, v1,, ,v1 v1", []byte{})
	f.Add("a.1", "2", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", []byte("."))
	f.Add("", "", "", []byte(nil))
	v := fuzzScheme(f, Config{Scheme: "standard-webhooks"})
	f.Fuzz(func(t *testing.T, id, ts, sigs string, body []byte) {
		if parsed, err := parseSWSignatures("fuzz", "webhook-signature", sigs); err == nil {
			for _, sig := range parsed {
				if len(sig) != 32 {
					t.Fatalf("parseSWSignatures(%q) kept a %d-byte signature", sigs, len(sig))
				}
			}
		}
		for _, hs := range []swHeaders{swSpecHeaders, swSvixHeaders} {
			r := Request{Header: header(hs.id, id, hs.timestamp, ts, hs.signature, sigs), Body: body, Now: fuzzNow}
			if d, err := v.Verify(r); err == nil {
				t.Fatalf("Verify(%q, %q, %q, %q) = %+v, want an error", id, ts, sigs, body, d)
			}
		}
	})
}

func FuzzSlackSignature(f *testing.F) {
	body := `{"type":"event_callback","event_id":"Ev1","event":{"type":"message"}}`
	h := foreignHeaders(f, Config{Scheme: "slack"}, body)
	f.Add(h.Get("X-Slack-Request-Timestamp"), h.Get("X-Slack-Signature"), []byte(body))
	f.Add("1531420618", "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503", []byte("token=x&command=%2Fa"))
	f.Add("-1", "v0=", []byte{})
	f.Add("1700000000", "v0="+strings.Repeat("A", 64), []byte(`{"type":"url_verification","challenge":"x"}`))
	v := fuzzScheme(f, Config{Scheme: "slack"})
	f.Fuzz(func(t *testing.T, ts, sig string, body []byte) {
		r := Request{Header: header("X-Slack-Request-Timestamp", ts, "X-Slack-Signature", sig), Body: body, Now: fuzzNow}
		if d, err := v.Verify(r); err == nil {
			t.Fatalf("Verify(%q, %q, %q) = %+v, want an error", ts, sig, body, d)
		}
	})
}

// FuzzHMACSignatureHeader covers the single-header parser shared by github,
// shopify and the generic hmac scheme in its hex and base64 forms.
func FuzzHMACSignatureHeader(f *testing.F) {
	generic := Config{
		Scheme: "hmac", Header: "X-Sig", Prefix: "sha512=", Algorithm: "sha512", Encoding: "base64",
		SignedPayload: "{timestamp}:{id}:{body}", TimestampHeader: "X-Ts", IDHeader: "X-Id", TypeJSONPath: "a.b",
	}
	schemes := []struct {
		cfg       Config
		sigHeader string
	}{
		{Config{Scheme: "github"}, "X-Hub-Signature-256"},
		{Config{Scheme: "shopify"}, "X-Shopify-Hmac-Sha256"},
		{Config{Scheme: "hmac", Header: "X-Sig", Prefix: "sha1=", Algorithm: "sha1"}, "X-Sig"},
		{generic, "X-Sig"},
	}
	body := `{"a":{"b":"c"}}`
	for _, s := range schemes {
		f.Add(foreignHeaders(f, s.cfg, body).Get(s.sigHeader), "1700000000", []byte(body))
	}
	f.Add("sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17", "", []byte("Hello, World!"))
	f.Add("sha256=", "1", []byte{})
	f.Add("====", "01700000000", []byte(nil))
	verifiers := make([]Scheme, len(schemes))
	for i, s := range schemes {
		verifiers[i] = fuzzScheme(f, s.cfg)
	}
	f.Fuzz(func(t *testing.T, sig, ts string, body []byte) {
		for i, v := range verifiers {
			h := header(
				schemes[i].sigHeader, sig, "X-Ts", ts, "X-Id", "d1",
				"X-GitHub-Delivery", "d1", "X-GitHub-Event", "push",
				"X-Shopify-Webhook-Id", "w1", "X-Shopify-Topic", "orders/create",
			)
			if d, err := v.Verify(Request{Header: h, Body: body, Now: fuzzNow}); err == nil {
				t.Fatalf("%s: Verify(%q, %q, %q) = %+v, want an error", schemes[i].cfg.Scheme, sig, ts, body, d)
			}
		}
	})
}

func FuzzSignedPayloadTemplate(f *testing.F) {
	for _, s := range []string{"{body}", "v0:{timestamp}:{body}", "{id}.{timestamp}.{body}", "{body", "}{body}{", "{{body}}", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tmpl, err := parseTemplate(s)
		if err != nil {
			return
		}
		bodies := 0
		for _, seg := range tmpl {
			if seg.kind == segBody {
				bodies++
			}
		}
		if bodies != 1 {
			t.Fatalf("parseTemplate(%q) has %d {body}", s, bodies)
		}
	})
}

// FuzzJSONMembers checks the member scanner against encoding/json: on every
// valid JSON object it must see the same members with the same raw values
// and decode string members identically; on anything else it must not panic.
func FuzzJSONMembers(f *testing.F) {
	for _, s := range []string{
		`{"id":"evt_1","type":"charge.succeeded","data":{"object":{"id":"ch_1","list":[1,{"a":"]}"}]}}}`,
		`{"a\"b":"c\\","type":"\u0074ype","n":-1.5e3,"t":true,"z":null,"type":"last"}`,
		` { "k" : [ "\"}" , {} , [] ] , "s" : "\ud83d\ude00" } `,
		`{}`, `[]`, `"x"`, `{"a":}`, `{"a":1,}`, `{"a" 1}`, `{"a":"\"}`, "{\"a\":\"\xff\"}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got := map[string][]byte{}
		err := jsonMembers(data, func(k string, v []byte) { got[k] = v })
		var want map[string]json.RawMessage
		if json.Unmarshal(data, &want) != nil || want == nil {
			return
		}
		if err != nil {
			t.Fatalf("jsonMembers(%q) error = %v on a valid object", data, err)
		}
		if len(got) != len(want) {
			t.Fatalf("jsonMembers(%q) saw %d members, encoding/json %d", data, len(got), len(want))
		}
		for k, w := range want {
			if !bytes.Equal(got[k], w) {
				t.Fatalf("jsonMembers(%q)[%q] = %q, encoding/json %q", data, k, got[k], w)
			}
			var ws string
			if w[0] != '"' || json.Unmarshal(w, &ws) != nil {
				continue
			}
			if gs, ok := jsonString(got[k]); !ok || gs != ws {
				t.Fatalf("jsonString(%q) = %q, %v; encoding/json %q", got[k], gs, ok, ws)
			}
		}
	})
}
