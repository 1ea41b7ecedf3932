package signature

import (
	"crypto/sha256"
	"fmt"
	"net/http"
	"strings"
	"time"
)

const (
	stripeSignatureHeader  = "Stripe-Signature"
	stripeDefaultTolerance = 300 * time.Second
)

var stripeDot = []byte(".")

// StripeConfig configures the stripe scheme: Stripe-Signature is
// "t=<unix>,v1=<hex>[,v1=<hex>…]" where each v1 is the HMAC-SHA256 of
// "{t}.{body}" under the endpoint secret (whsec_…, used as is).
type StripeConfig struct {
	Secrets Secrets
	// Tolerance defaults to 300 seconds, Stripe's own default.
	Tolerance time.Duration
}

func (c StripeConfig) withDefaults() StripeConfig {
	if c.Tolerance == 0 {
		c.Tolerance = stripeDefaultTolerance
	}
	return c
}

// Validate checks the secrets and the tolerance (zero means the default).
func (c StripeConfig) Validate() error {
	c = c.withDefaults()
	if err := validateSecrets("stripe", c.Secrets); err != nil {
		return err
	}
	return validateTolerance("stripe", c.Tolerance)
}

// Stripe verifies and signs Stripe webhook events.
type Stripe struct {
	macs      macs
	tolerance time.Duration
}

var _ Scheme = (*Stripe)(nil)

// NewStripe builds the stripe scheme.
func NewStripe(c StripeConfig) (*Stripe, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	c = c.withDefaults()
	return &Stripe{macs: newMACs(keysOf(c.Secrets), sha256.New), tolerance: c.Tolerance}, nil
}

func stripeFromConfig(c Config) (Scheme, error) {
	if err := c.fixedScheme(true); err != nil {
		return nil, err
	}
	return NewStripe(StripeConfig{Secrets: c.Secrets, Tolerance: c.Tolerance})
}

// stripeHeader is a parsed Stripe-Signature.
type stripeHeader struct {
	tsRaw string
	ts    time.Time
	v1    [][]byte
}

// parseStripeHeader parses Stripe-Signature. Several v1 entries are normal
// while a secret is rolled; v0 (test-mode legacy) and unknown keys are
// ignored, as Stripe documents; a v1 that is not 64 hex digits is skipped.
func parseStripeHeader(s string) (stripeHeader, error) {
	var h stripeHeader
	if s == "" {
		return h, fmt.Errorf("stripe: no %s header: %w", stripeSignatureHeader, ErrMissingSignature)
	}
	v1s := 0
	for item := range strings.SplitSeq(s, ",") {
		key, value, ok := strings.Cut(item, "=")
		if !ok {
			return h, fmt.Errorf("stripe: %s element without '=': %w", stripeSignatureHeader, ErrMalformedHeader)
		}
		switch key {
		case "t":
			if h.tsRaw != "" {
				return h, fmt.Errorf("stripe: %s has two t elements: %w", stripeSignatureHeader, ErrMalformedHeader)
			}
			if h.ts, ok = parseUnix(value); !ok {
				return h, fmt.Errorf("stripe: %s t is not a Unix time in seconds: %w", stripeSignatureHeader, ErrMalformedHeader)
			}
			h.tsRaw = value
		case "v1":
			v1s++
			if sig, ok := encHex.decode(value, sha256.Size); ok {
				h.v1 = append(h.v1, sig)
			}
		}
	}
	if h.tsRaw == "" {
		return h, fmt.Errorf("stripe: %s has no t element: %w", stripeSignatureHeader, ErrMalformedHeader)
	}
	if v1s == 0 {
		return h, fmt.Errorf("stripe: %s has no v1 signature: %w", stripeSignatureHeader, ErrMissingSignature)
	}
	if len(h.v1) == 0 {
		return h, fmt.Errorf("stripe: no v1 in %s is 64 hex digits: %w", stripeSignatureHeader, ErrMalformedHeader)
	}
	return h, nil
}

// Verify checks Stripe-Signature against every secret, then the timestamp,
// then reads the event's id and type from the body.
func (s *Stripe) Verify(r Request) (Delivery, error) {
	h, err := parseStripeHeader(r.Header.Get(stripeSignatureHeader))
	if err != nil {
		return Delivery{}, err
	}
	secret, ok := s.macs.match(h.v1, []byte(h.tsRaw), stripeDot, r.Body)
	if !ok {
		return Delivery{}, fmt.Errorf("stripe: none of %d v1 signatures matches any of %d secrets: %w",
			len(h.v1), len(s.macs.keys), ErrSignatureMismatch)
	}
	if err := checkTolerance("stripe", now(r), h.ts, s.tolerance); err != nil {
		return Delivery{}, err
	}
	event, err := jsonStrings(r.Body, "id", "type")
	if err != nil || event[0] == "" || event[1] == "" {
		return Delivery{}, fmt.Errorf("stripe: body is not an event with id and type: %w", ErrMalformedPayload)
	}
	return Delivery{ID: event[0], Type: event[1], Timestamp: h.ts, Secret: secret}, nil
}

// Sign returns Stripe-Signature with one v1 signature; the event's id and
// type are in the body, so the arguments are ignored.
func (s *Stripe) Sign(body []byte, now time.Time, _, _ string) (http.Header, error) {
	ts := formatUnix(now)
	sum := s.macs.sign([]byte(ts), stripeDot, body)
	h := http.Header{}
	h.Set(stripeSignatureHeader, "t="+ts+",v1="+encHex.encode(sum))
	return h, nil
}
