package signature

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"time"
)

const (
	swDefaultTolerance = 5 * time.Minute
	swSecretPrefix     = "whsec_"
)

// swHeaders names one of the two header sets a Standard Webhooks sender may
// use: webhook-* (the spec) or svix-* (Svix, which the spec came from).
type swHeaders struct{ id, timestamp, signature string }

var (
	swSpecHeaders = swHeaders{"webhook-id", "webhook-timestamp", "webhook-signature"}
	swSvixHeaders = swHeaders{"svix-id", "svix-timestamp", "svix-signature"}
)

var swDot = []byte(".")

// StandardWebhooksConfig configures the standard-webhooks scheme (and svix):
// webhook-signature is a space-separated list of "v1,<base64>", each the
// HMAC-SHA256 of "{webhook-id}.{webhook-timestamp}.{body}" under the
// base64-decoded secret.
type StandardWebhooksConfig struct {
	// Secrets are "whsec_<base64>" (the prefix is optional).
	Secrets Secrets
	// Tolerance defaults to 5 minutes, as the spec recommends.
	Tolerance time.Duration
	// Svix makes Sign write svix-* headers instead of webhook-*. Verify
	// accepts both either way.
	Svix bool
}

func (c StandardWebhooksConfig) withDefaults() StandardWebhooksConfig {
	if c.Tolerance == 0 {
		c.Tolerance = swDefaultTolerance
	}
	return c
}

// Validate checks that every secret decodes and the tolerance.
func (c StandardWebhooksConfig) Validate() error {
	_, err := c.keys()
	return err
}

func (c StandardWebhooksConfig) keys() ([][]byte, error) {
	c = c.withDefaults()
	name := c.name()
	if err := validateSecrets(name, c.Secrets); err != nil {
		return nil, err
	}
	if err := validateTolerance(name, c.Tolerance); err != nil {
		return nil, err
	}
	keys := make([][]byte, len(c.Secrets))
	for i, s := range c.Secrets {
		key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, swSecretPrefix))
		if err != nil || len(key) == 0 {
			// The decoder's error would quote the secret's bytes.
			return nil, fmt.Errorf("%s: secret %d is not whsec_ followed by base64: %w", name, i, ErrInvalidConfig)
		}
		keys[i] = key
	}
	return keys, nil
}

func (c StandardWebhooksConfig) name() string {
	if c.Svix {
		return "svix"
	}
	return "standard-webhooks"
}

// StandardWebhooks verifies and signs Standard Webhooks (and Svix)
// deliveries.
type StandardWebhooks struct {
	name      string
	macs      macs
	tolerance time.Duration
	signAs    swHeaders
}

var _ Scheme = (*StandardWebhooks)(nil)

// NewStandardWebhooks builds the standard-webhooks (or svix) scheme.
func NewStandardWebhooks(c StandardWebhooksConfig) (*StandardWebhooks, error) {
	keys, err := c.keys()
	if err != nil {
		return nil, err
	}
	c = c.withDefaults()
	signAs := swSpecHeaders
	if c.Svix {
		signAs = swSvixHeaders
	}
	return &StandardWebhooks{
		name:      c.name(),
		macs:      newMACs(keys, sha256.New),
		tolerance: c.Tolerance,
		signAs:    signAs,
	}, nil
}

func standardWebhooksFromConfig(c Config) (Scheme, error) {
	if err := c.fixedScheme(true); err != nil {
		return nil, err
	}
	return NewStandardWebhooks(StandardWebhooksConfig{Secrets: c.Secrets, Tolerance: c.Tolerance})
}

func svixFromConfig(c Config) (Scheme, error) {
	if err := c.fixedScheme(true); err != nil {
		return nil, err
	}
	return NewStandardWebhooks(StandardWebhooksConfig{Secrets: c.Secrets, Tolerance: c.Tolerance, Svix: true})
}

// parseSWSignatures parses a webhook-signature list. Entries of other
// versions (v1a, asymmetric) or without a comma are skipped, as the spec's
// libraries do; a v1 whose value is not base64 of 32 bytes is skipped too.
func parseSWSignatures(name, header, s string) ([][]byte, error) {
	var sigs [][]byte
	v1s := 0
	for entry := range strings.FieldsSeq(s) {
		version, value, ok := strings.Cut(entry, ",")
		if !ok || version != "v1" {
			continue
		}
		v1s++
		if sig, ok := encBase64.decode(value, sha256.Size); ok {
			sigs = append(sigs, sig)
		}
	}
	if v1s == 0 {
		return nil, fmt.Errorf("%s: %s has no v1 signature: %w", name, header, ErrMissingSignature)
	}
	if len(sigs) == 0 {
		return nil, fmt.Errorf("%s: no v1 in %s is base64 of 32 bytes: %w", name, header, ErrMalformedHeader)
	}
	return sigs, nil
}

// Verify reads webhook-id, webhook-timestamp and webhook-signature (or, when
// webhook-signature is absent, the svix-* equivalents), checks every v1
// signature against every secret, then the timestamp. The id is the
// message id; the type is the body's top-level "type", empty if the body
// has none.
func (s *StandardWebhooks) Verify(r Request) (Delivery, error) {
	hs := swSpecHeaders
	if r.Header.Get(hs.signature) == "" && r.Header.Get(swSvixHeaders.signature) != "" {
		hs = swSvixHeaders
	}
	raw := r.Header.Get(hs.signature)
	if raw == "" {
		return Delivery{}, fmt.Errorf("%s: no %s header: %w", s.name, hs.signature, ErrMissingSignature)
	}
	id, tsRaw := r.Header.Get(hs.id), r.Header.Get(hs.timestamp)
	if id == "" || tsRaw == "" {
		return Delivery{}, fmt.Errorf("%s: %s and %s are required: %w", s.name, hs.id, hs.timestamp, ErrMissingHeader)
	}
	ts, ok := parseUnix(tsRaw)
	if !ok {
		return Delivery{}, fmt.Errorf("%s: %s is not a Unix time in seconds: %w", s.name, hs.timestamp, ErrMalformedHeader)
	}
	sigs, err := parseSWSignatures(s.name, hs.signature, raw)
	if err != nil {
		return Delivery{}, err
	}
	secret, ok := s.macs.match(sigs, []byte(id), swDot, []byte(tsRaw), swDot, r.Body)
	if !ok {
		return Delivery{}, fmt.Errorf("%s: none of %d v1 signatures matches any of %d secrets: %w",
			s.name, len(sigs), len(s.macs.keys), ErrSignatureMismatch)
	}
	if err := checkTolerance(s.name, now(r), ts, s.tolerance); err != nil {
		return Delivery{}, err
	}
	// The spec does not make "type" mandatory; an id is enough to store the
	// event, so a body without one is accepted with an empty type.
	var typ string
	if v, err := jsonStrings(r.Body, "type"); err == nil {
		typ = v[0]
	}
	return Delivery{ID: id, Type: typ, Timestamp: ts, Secret: secret}, nil
}

// Sign returns the id, timestamp and signature headers (webhook-* or, for
// svix, svix-*). The id is required; the type is read from the body.
func (s *StandardWebhooks) Sign(body []byte, now time.Time, id, _ string) (http.Header, error) {
	if id == "" {
		return nil, fmt.Errorf("%s: sign: id is required", s.name)
	}
	ts := formatUnix(now)
	sum := s.macs.sign([]byte(id), swDot, []byte(ts), swDot, body)
	h := http.Header{}
	h.Set(s.signAs.id, id)
	h.Set(s.signAs.timestamp, ts)
	h.Set(s.signAs.signature, "v1,"+encBase64.encode(sum))
	return h, nil
}
