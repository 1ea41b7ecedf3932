package signature

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"
)

// Request is what a verifier needs from an incoming delivery.
type Request struct {
	// Header is the request's header, as net/http received it.
	Header http.Header
	// Body is the raw body, exactly the bytes the provider sent.
	Body []byte
	// Now is the time the delivery is checked against; zero means time.Now.
	Now time.Time
}

// Delivery is what a verified request says about itself.
type Delivery struct {
	// ID is the provider's delivery or event id, the deduplication key. It is
	// empty only where the provider sends none (Slack url_verification and
	// app_rate_limited, hmac without an id source).
	ID string
	// Type is the provider's event type, or empty if the delivery carries none.
	Type string
	// Timestamp is the signed timestamp, or zero if the scheme signs none.
	Timestamp time.Time
	// Secret is the index in Config.Secrets of the secret that verified the
	// delivery: while it is ever non-zero, the old secret is still in use.
	Secret int
	// Handshake, when not nil, is a provider's endpoint-verification request
	// (Slack url_verification). The ingest answers it itself and publishes
	// nothing.
	Handshake *Handshake
}

// Handshake is an endpoint-verification request that the ingest must answer
// with a 200 whose body is Challenge (text/plain).
type Handshake struct {
	Challenge string
}

// Verifier checks a delivery's signature and, once it verified, reads the
// delivery's id and type.
type Verifier interface {
	Verify(r Request) (Delivery, error)
}

// Signer produces the headers that make body a valid delivery signed with the
// first configured secret at time now. Schemes that read id or type from the
// body ignore those arguments; schemes that carry them in headers require
// them.
type Signer interface {
	Sign(body []byte, now time.Time, id, eventType string) (http.Header, error)
}

// Scheme is a provider's signature scheme with its secrets.
type Scheme interface {
	Verifier
	Signer
}

// schemes is the registry: one line per scheme name accepted in Config.Scheme.
var schemes = map[string]func(Config) (Scheme, error){
	"stripe":            stripeFromConfig,
	"github":            githubFromConfig,
	"shopify":           shopifyFromConfig,
	"slack":             slackFromConfig,
	"standard-webhooks": standardWebhooksFromConfig,
	"svix":              svixFromConfig,
	"hmac":              hmacFromConfig,
}

// Schemes returns the registered scheme names, sorted.
func Schemes() []string {
	names := make([]string, 0, len(schemes))
	for name := range schemes {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// New builds the scheme that cfg names. It has no side effects.
func New(cfg Config) (Scheme, error) {
	build, ok := schemes[cfg.Scheme]
	if !ok {
		return nil, fmt.Errorf("unknown scheme %q (known: %s): %w",
			cfg.Scheme, strings.Join(Schemes(), ", "), ErrInvalidConfig)
	}
	return build(cfg)
}

// Config is a webhook source's signature configuration as the catalog holds
// it under `sources.<name>`. Secrets arrive resolved (the catalog expands
// ${env:…}); String, LogValue and the marshalers redact them.
type Config struct {
	// Scheme names the scheme: stripe, github, shopify, slack,
	// standard-webhooks, svix or hmac.
	Scheme string `yaml:"scheme" json:"scheme"`
	// Secrets are the active secrets, the current one first: Sign uses
	// Secrets[0], Verify accepts any of them.
	Secrets Secrets `yaml:"secrets" json:"secrets"`
	// Tolerance bounds |now - signed timestamp| for schemes that sign a
	// timestamp; zero means the scheme's default. Schemes without a
	// timestamp refuse a non-zero value.
	Tolerance time.Duration `yaml:"tolerance,omitempty" json:"tolerance,omitempty"`

	// The fields below configure the generic hmac scheme only; every other
	// scheme refuses them.

	// Header carries the signature, e.g. X-Signature.
	Header string `yaml:"header,omitempty" json:"header,omitempty"`
	// Algorithm is sha1, sha256 (default) or sha512.
	Algorithm string `yaml:"algorithm,omitempty" json:"algorithm,omitempty"`
	// Encoding of the signature: hex (default) or base64.
	Encoding string `yaml:"encoding,omitempty" json:"encoding,omitempty"`
	// Prefix precedes the encoded signature in Header, e.g. "sha256=".
	Prefix string `yaml:"prefix,omitempty" json:"prefix,omitempty"`
	// SignedPayload is the signed content: a template of literal text and
	// {timestamp}, {id} and {body}, the last exactly once. Default "{body}".
	SignedPayload string `yaml:"signed_payload,omitempty" json:"signed_payload,omitempty"`
	// TimestampHeader carries a Unix time in seconds; when set, it is
	// checked against Tolerance (default 5m).
	TimestampHeader string `yaml:"timestamp_header,omitempty" json:"timestamp_header,omitempty"`
	// IDHeader carries the delivery id.
	IDHeader string `yaml:"id_header,omitempty" json:"id_header,omitempty"`
	// TypeHeader carries the event type.
	TypeHeader string `yaml:"type_header,omitempty" json:"type_header,omitempty"`
	// IDJSONPath reads the delivery id from the body, a dotted path such as
	// "data.id", when IDHeader is not set.
	IDJSONPath string `yaml:"id_json_path,omitempty" json:"id_json_path,omitempty"`
	// TypeJSONPath reads the event type from the body when TypeHeader is not
	// set, e.g. "event.type".
	TypeJSONPath string `yaml:"type_json_path,omitempty" json:"type_json_path,omitempty"`
}

// Validate reports whether New would accept c.
func (c Config) Validate() error {
	_, err := New(c)
	return err
}

// hmacOnly names the hmac-only fields that are set in c.
func (c Config) hmacOnly() []string {
	var set []string
	for _, a := range c.hmacAttrs() {
		set = append(set, a.Key)
	}
	return set
}

// fixedScheme checks that a scheme whose format the provider fixes got no
// hmac-only fields, and no tolerance if it signs no timestamp.
func (c Config) fixedScheme(timestamped bool) error {
	if set := c.hmacOnly(); len(set) > 0 {
		return fmt.Errorf("%s: %s apply to scheme hmac only: %w",
			c.Scheme, strings.Join(set, ", "), ErrInvalidConfig)
	}
	if !timestamped && c.Tolerance != 0 {
		return fmt.Errorf("%s: the scheme signs no timestamp, tolerance does not apply: %w",
			c.Scheme, ErrInvalidConfig)
	}
	return nil
}

// Secrets holds resolved secrets. Its String, GoString, LogValue and
// marshalers print only how many there are.
type Secrets []string

const redacted = "REDACTED"

func (s Secrets) String() string {
	return fmt.Sprintf("[%d secrets REDACTED]", len(s))
}

// GoString keeps %#v from printing the secrets.
func (s Secrets) GoString() string { return s.String() }

// Format redacts under every verb: fmt applies String only to %v, %s, %q
// and %x, and would print the elements under %d.
func (s Secrets) Format(f fmt.State, _ rune) { io.WriteString(f, s.String()) }

// LogValue logs how many secrets there are.
func (s Secrets) LogValue() slog.Value { return slog.IntValue(len(s)) }

// MarshalJSON writes one placeholder per secret.
func (s Secrets) MarshalJSON() ([]byte, error) {
	if len(s) == 0 {
		return []byte("[]"), nil
	}
	return []byte("[" + strings.Repeat(`"`+redacted+`",`, len(s)-1) + `"` + redacted + `"]`), nil
}

// MarshalYAML writes one placeholder per secret.
func (s Secrets) MarshalYAML() (any, error) {
	return slices.Repeat([]string{redacted}, len(s)), nil
}

func validateSecrets(scheme string, secrets Secrets) error {
	if len(secrets) == 0 {
		return fmt.Errorf("%s: no secrets: %w", scheme, ErrInvalidConfig)
	}
	for i, s := range secrets {
		if s == "" {
			return fmt.Errorf("%s: secret %d is empty: %w", scheme, i, ErrInvalidConfig)
		}
	}
	return nil
}

// Tolerance bounds: below a second is a unit mistake, above a day defeats
// replay protection.
const (
	minTolerance = time.Second
	maxTolerance = 24 * time.Hour
)

func validateTolerance(scheme string, d time.Duration) error {
	if d < minTolerance || d > maxTolerance {
		return fmt.Errorf("%s: tolerance %s is outside [%s, %s]: %w",
			scheme, d, minTolerance, maxTolerance, ErrInvalidConfig)
	}
	return nil
}

func keysOf(secrets Secrets) [][]byte {
	keys := make([][]byte, len(secrets))
	for i, s := range secrets {
		keys[i] = []byte(s)
	}
	return keys
}

func now(r Request) time.Time {
	if r.Now.IsZero() {
		return time.Now()
	}
	return r.Now
}

// String prints c with its secrets redacted.
func (c Config) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "{scheme=%s secrets=%s", c.Scheme, c.Secrets)
	if c.Tolerance != 0 {
		fmt.Fprintf(&b, " tolerance=%s", c.Tolerance)
	}
	for _, a := range c.hmacAttrs() {
		fmt.Fprintf(&b, " %s=%q", a.Key, a.Value.String())
	}
	b.WriteByte('}')
	return b.String()
}

// LogValue logs c with its secrets redacted (only their number is logged).
func (c Config) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.String("scheme", c.Scheme),
		slog.Int("secrets", len(c.Secrets)),
	}
	if c.Tolerance != 0 {
		attrs = append(attrs, slog.Duration("tolerance", c.Tolerance))
	}
	return slog.GroupValue(append(attrs, c.hmacAttrs()...)...)
}

func (c Config) hmacAttrs() []slog.Attr {
	var attrs []slog.Attr
	for _, f := range []struct{ name, value string }{
		{"header", c.Header},
		{"algorithm", c.Algorithm},
		{"encoding", c.Encoding},
		{"prefix", c.Prefix},
		{"signed_payload", c.SignedPayload},
		{"timestamp_header", c.TimestampHeader},
		{"id_header", c.IDHeader},
		{"type_header", c.TypeHeader},
		{"id_json_path", c.IDJSONPath},
		{"type_json_path", c.TypeJSONPath},
	} {
		if f.value != "" {
			attrs = append(attrs, slog.String(f.name, f.value))
		}
	}
	return attrs
}
