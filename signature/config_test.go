package signature

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"gopkg.in/yaml.v3"
)

func TestNewRefusesInvalidConfig(t *testing.T) {
	s := Secrets{"s3cr3t"}
	tests := []struct {
		name string
		give Config
	}{
		{name: "unknown scheme", give: Config{Scheme: "paypal", Secrets: s}},
		{name: "empty scheme", give: Config{Secrets: s}},
		{name: "no secrets", give: Config{Scheme: "stripe"}},
		{name: "empty secret", give: Config{Scheme: "github", Secrets: Secrets{"s3cr3t", ""}}},
		{name: "negative tolerance", give: Config{Scheme: "stripe", Secrets: s, Tolerance: -time.Minute}},
		{name: "tolerance in nanoseconds", give: Config{Scheme: "slack", Secrets: s, Tolerance: 300}},
		{name: "tolerance over a day", give: Config{Scheme: "standard-webhooks", Secrets: Secrets{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}, Tolerance: 25 * time.Hour}},
		{name: "tolerance on github", give: Config{Scheme: "github", Secrets: s, Tolerance: time.Minute}},
		{name: "tolerance on shopify", give: Config{Scheme: "shopify", Secrets: s, Tolerance: time.Minute}},
		{name: "hmac field on stripe", give: Config{Scheme: "stripe", Secrets: s, Header: "X-Sig"}},
		{name: "hmac field on svix", give: Config{Scheme: "svix", Secrets: Secrets{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}, TypeJSONPath: "type"}},
		{name: "standard-webhooks secret not base64", give: Config{Scheme: "standard-webhooks", Secrets: Secrets{"whsec_not base64!"}}},
		{name: "standard-webhooks secret empty after prefix", give: Config{Scheme: "standard-webhooks", Secrets: Secrets{"whsec_"}}},
		{name: "hmac without header", give: Config{Scheme: "hmac", Secrets: s}},
		{name: "hmac md5", give: Config{Scheme: "hmac", Secrets: s, Header: "X-Sig", Algorithm: "md5"}},
		{name: "hmac base32", give: Config{Scheme: "hmac", Secrets: s, Header: "X-Sig", Encoding: "base32"}},
		{name: "hmac template without body", give: Config{Scheme: "hmac", Secrets: s, Header: "X-Sig", SignedPayload: "{timestamp}", TimestampHeader: "X-Ts"}},
		{name: "hmac template with two bodies", give: Config{Scheme: "hmac", Secrets: s, Header: "X-Sig", SignedPayload: "{body}{body}"}},
		{name: "hmac template typo", give: Config{Scheme: "hmac", Secrets: s, Header: "X-Sig", SignedPayload: "{timestmap}.{body}", TimestampHeader: "X-Ts"}},
		{name: "hmac template unclosed", give: Config{Scheme: "hmac", Secrets: s, Header: "X-Sig", SignedPayload: "{body}.{id"}},
		{name: "hmac {timestamp} without timestamp_header", give: Config{Scheme: "hmac", Secrets: s, Header: "X-Sig", SignedPayload: "{timestamp}.{body}"}},
		{name: "hmac {id} without id_header", give: Config{Scheme: "hmac", Secrets: s, Header: "X-Sig", SignedPayload: "{id}.{body}"}},
		{name: "hmac tolerance without timestamp_header", give: Config{Scheme: "hmac", Secrets: s, Header: "X-Sig", Tolerance: time.Minute}},
		{name: "hmac id header and path", give: Config{Scheme: "hmac", Secrets: s, Header: "X-Sig", IDHeader: "X-Id", IDJSONPath: "id"}},
		{name: "hmac type header and path", give: Config{Scheme: "hmac", Secrets: s, Header: "X-Sig", TypeHeader: "X-Type", TypeJSONPath: "type"}},
		{name: "hmac empty path key", give: Config{Scheme: "hmac", Secrets: s, Header: "X-Sig", TypeJSONPath: "data..type"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.give)
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("New() error = %v, want %v", err, ErrInvalidConfig)
			}
			if diff := cmp.Diff(err.Error(), tt.give.Validate().Error()); diff != "" {
				t.Errorf("Validate() and New() disagree (-new +validate):\n%s", diff)
			}
			if tt.give.Secrets != nil && strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("error %q contains the secret", err)
			}
		})
	}
}

func TestSchemeConfigsValidate(t *testing.T) {
	s := Secrets{"s3cr3t"}
	tests := []struct {
		name    string
		give    interface{ Validate() error }
		wantErr error
	}{
		{name: "stripe defaults", give: StripeConfig{Secrets: s}},
		{name: "stripe no secret", give: StripeConfig{}, wantErr: ErrInvalidConfig},
		{name: "github", give: GitHubConfig{Secrets: s}},
		{name: "github no secret", give: GitHubConfig{}, wantErr: ErrInvalidConfig},
		{name: "shopify", give: ShopifyConfig{Secrets: s}},
		{name: "shopify no secret", give: ShopifyConfig{}, wantErr: ErrInvalidConfig},
		{name: "slack defaults", give: SlackConfig{Secrets: s}},
		{name: "slack bad tolerance", give: SlackConfig{Secrets: s, Tolerance: time.Millisecond}, wantErr: ErrInvalidConfig},
		{name: "standard-webhooks without prefix", give: StandardWebhooksConfig{Secrets: Secrets{"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}}},
		{name: "standard-webhooks raw secret", give: StandardWebhooksConfig{Secrets: Secrets{"s3cr3t!"}}, wantErr: ErrInvalidConfig},
		{name: "hmac defaults", give: HMACConfig{Secrets: s, Header: "X-Sig"}},
		{name: "hmac no header", give: HMACConfig{Secrets: s}, wantErr: ErrInvalidConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.give.Validate(); !errors.Is(err, tt.wantErr) {
				t.Fatalf("Validate() error = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

// catalogExample is the example in docs/webhooks.md.
const catalogExample = `
sources:
  stripe:
    scheme: stripe
    secrets: ["whsec_new", "whsec_old"]
    tolerance: 5m
  github:
    scheme: github
    secrets: ["gh-secret"]
  shopify:
    scheme: shopify
    secrets: ["shpss_secret"]
  slack:
    scheme: slack
    secrets: ["8f742231b10e8888abcd99yyyzzz85a5"]
  resend:
    scheme: svix
    secrets: ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]
  billing:
    scheme: standard-webhooks
    secrets: ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]
    tolerance: 2m
  acme:
    scheme: hmac
    secrets: ["acme-secret"]
    header: X-Acme-Signature
    algorithm: sha256
    encoding: hex
    prefix: "sha256="
    signed_payload: "{timestamp}.{body}"
    timestamp_header: X-Acme-Timestamp
    tolerance: 5m
    id_header: X-Acme-Delivery
    type_json_path: event.type
`

func TestConfigFromYAML(t *testing.T) {
	var catalog struct {
		Sources map[string]Config `yaml:"sources"`
	}
	if err := yaml.Unmarshal([]byte(catalogExample), &catalog); err != nil {
		t.Fatal(err)
	}
	want := Config{Scheme: "stripe", Secrets: Secrets{"whsec_new", "whsec_old"}, Tolerance: 5 * time.Minute}
	if diff := cmp.Diff(want, catalog.Sources["stripe"]); diff != "" {
		t.Errorf("stripe source mismatch (-want +got):\n%s", diff)
	}
	for name, cfg := range catalog.Sources {
		if _, err := New(cfg); err != nil {
			t.Errorf("source %s: New() error = %v", name, err)
		}
	}
}

func TestConfigRedactsSecrets(t *testing.T) {
	cfg := Config{
		Scheme: "hmac", Secrets: Secrets{"topsecret-current", "topsecret-old"},
		Header: "X-Sig", TimestampHeader: "X-Ts", SignedPayload: "{timestamp}.{body}", Tolerance: time.Minute,
	}
	var logged strings.Builder
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("source", "config", cfg, "secrets", cfg.Secrets)
	asJSON, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	asYAML, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{
		"String": cfg.String(),
		"slog":   logged.String(),
		"json":   string(asJSON),
		"yaml":   string(asYAML),
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%d", "%x", "%10.3v"} {
		outputs["config "+verb] = fmt.Sprintf(verb, cfg)
		outputs["secrets "+verb] = fmt.Sprintf(verb, cfg.Secrets)
	}
	for name, out := range outputs {
		if strings.Contains(out, "topsecret") {
			t.Errorf("%s output contains a secret: %s", name, out)
		}
	}
	wantLog := `"config":{"scheme":"hmac","secrets":2,"tolerance":60000000000,"header":"X-Sig","signed_payload":"{timestamp}.{body}","timestamp_header":"X-Ts"},"secrets":2`
	if !strings.Contains(logged.String(), wantLog) {
		t.Errorf("slog output = %s, want it to contain %s", logged.String(), wantLog)
	}
}

func TestSchemes(t *testing.T) {
	want := []string{"github", "hmac", "shopify", "slack", "standard-webhooks", "stripe", "svix"}
	if diff := cmp.Diff(want, Schemes()); diff != "" {
		t.Errorf("Schemes() mismatch (-want +got):\n%s", diff)
	}
}

func TestSignRequiresHeaderValues(t *testing.T) {
	tests := []struct {
		name    string
		fixture string
		id, typ string
	}{
		{name: "github without id", fixture: "github", typ: "push"},
		{name: "github without type", fixture: "github", id: "d1"},
		{name: "shopify without topic", fixture: "shopify", id: "w1"},
		{name: "standard-webhooks without id", fixture: "standard-webhooks"},
		{name: "hmac without id", fixture: "hmac", typ: "x"},
		{name: "hmac without type", fixture: "hmac", id: "x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fx := fixtures[tt.fixture]
			if _, err := fx.scheme(t, fx.secrets[0]).Sign(fx.body(0), at, tt.id, tt.typ); err == nil {
				t.Fatal("Sign() error = nil, want an error")
			}
		})
	}
}
