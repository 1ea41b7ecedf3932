package signature

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

const hmacDefaultTolerance = 5 * time.Minute

// HMACConfig configures the generic hmac scheme, for providers that sign with
// an HMAC in one header. Config documents each field.
type HMACConfig struct {
	Secrets         Secrets
	Header          string
	Algorithm       string // sha1, sha256 (default), sha512
	Encoding        string // hex (default), base64
	Prefix          string
	SignedPayload   string // default "{body}"
	TimestampHeader string
	Tolerance       time.Duration // default 5m when TimestampHeader is set
	IDHeader        string
	TypeHeader      string
	IDJSONPath      string
	TypeJSONPath    string
}

func (c HMACConfig) withDefaults() HMACConfig {
	if c.Algorithm == "" {
		c.Algorithm = "sha256"
	}
	if c.Encoding == "" {
		c.Encoding = "hex"
	}
	if c.SignedPayload == "" {
		c.SignedPayload = "{body}"
	}
	if c.TimestampHeader != "" && c.Tolerance == 0 {
		c.Tolerance = hmacDefaultTolerance
	}
	return c
}

// Validate checks every field after filling in the defaults.
func (c HMACConfig) Validate() error {
	_, err := c.build()
	return err
}

func (c HMACConfig) build() (*HMAC, error) {
	c = c.withDefaults()
	invalid := func(format string, args ...any) error {
		return fmt.Errorf("hmac: "+format+": %w", append(args, ErrInvalidConfig)...)
	}
	if err := validateSecrets("hmac", c.Secrets); err != nil {
		return nil, err
	}
	if c.Header == "" {
		return nil, invalid("header is required")
	}
	newHash, ok := hashes[c.Algorithm]
	if !ok {
		return nil, invalid("algorithm %q is not sha1, sha256 or sha512", c.Algorithm)
	}
	enc, ok := encodings[c.Encoding]
	if !ok {
		return nil, invalid("encoding %q is not hex or base64", c.Encoding)
	}
	payload, err := parseTemplate(c.SignedPayload)
	if err != nil {
		return nil, invalid("%v", err)
	}
	if payload.has(segTimestamp) && c.TimestampHeader == "" {
		return nil, invalid("signed_payload uses {timestamp} but timestamp_header is not set")
	}
	if payload.has(segID) && c.IDHeader == "" {
		return nil, invalid("signed_payload uses {id} but id_header is not set")
	}
	if c.TimestampHeader == "" && c.Tolerance != 0 {
		return nil, invalid("tolerance needs timestamp_header")
	}
	if c.TimestampHeader != "" {
		if err := validateTolerance("hmac", c.Tolerance); err != nil {
			return nil, err
		}
	}
	if c.IDHeader != "" && c.IDJSONPath != "" {
		return nil, invalid("id_header and id_json_path are exclusive")
	}
	if c.TypeHeader != "" && c.TypeJSONPath != "" {
		return nil, invalid("type_header and type_json_path are exclusive")
	}
	idPath, err := parseJSONPath(c.IDJSONPath)
	if err != nil {
		return nil, invalid("id_json_path: %v", err)
	}
	typePath, err := parseJSONPath(c.TypeJSONPath)
	if err != nil {
		return nil, invalid("type_json_path: %v", err)
	}
	return &HMAC{
		core: hmacCore{
			scheme:    "hmac",
			macs:      newMACs(keysOf(c.Secrets), newHash),
			header:    c.Header,
			prefix:    c.Prefix,
			enc:       enc,
			payload:   payload,
			tsHeader:  c.TimestampHeader,
			idHeader:  c.IDHeader,
			tolerance: c.Tolerance,
		},
		typeHeader: c.TypeHeader,
		idPath:     idPath,
		typePath:   typePath,
	}, nil
}

// HMAC verifies and signs deliveries of a generic HMAC scheme.
type HMAC struct {
	core       hmacCore
	typeHeader string
	idPath     []string
	typePath   []string
}

var _ Scheme = (*HMAC)(nil)

// NewHMAC builds the generic hmac scheme.
func NewHMAC(c HMACConfig) (*HMAC, error) {
	return c.build()
}

func hmacFromConfig(c Config) (Scheme, error) {
	return NewHMAC(HMACConfig{
		Secrets:         c.Secrets,
		Header:          c.Header,
		Algorithm:       c.Algorithm,
		Encoding:        c.Encoding,
		Prefix:          c.Prefix,
		SignedPayload:   c.SignedPayload,
		TimestampHeader: c.TimestampHeader,
		Tolerance:       c.Tolerance,
		IDHeader:        c.IDHeader,
		TypeHeader:      c.TypeHeader,
		IDJSONPath:      c.IDJSONPath,
		TypeJSONPath:    c.TypeJSONPath,
	})
}

// Verify checks the signature header (Prefix then the encoded HMAC of the
// signed payload) and the timestamp if configured, then reads the id and
// type from their headers or JSON paths. A configured id or type source
// that yields nothing is an error; an unconfigured one leaves the field
// empty.
func (h *HMAC) Verify(r Request) (Delivery, error) {
	if h.core.idHeader != "" && r.Header.Get(h.core.idHeader) == "" {
		return Delivery{}, fmt.Errorf("hmac: no %s header: %w", h.core.idHeader, ErrMissingHeader)
	}
	if h.typeHeader != "" && r.Header.Get(h.typeHeader) == "" {
		return Delivery{}, fmt.Errorf("hmac: no %s header: %w", h.typeHeader, ErrMissingHeader)
	}
	res, err := h.core.verify(r)
	if err != nil {
		return Delivery{}, err
	}
	d := Delivery{Timestamp: res.ts, Secret: res.secret}
	if h.core.idHeader != "" {
		d.ID = r.Header.Get(h.core.idHeader)
	}
	if h.typeHeader != "" {
		d.Type = r.Header.Get(h.typeHeader)
	}
	if h.idPath == nil && h.typePath == nil {
		return d, nil
	}
	if h.idPath != nil {
		if d.ID, err = lookupJSON(r.Body, h.idPath); err != nil {
			return Delivery{}, fmt.Errorf("hmac: id_json_path: %v: %w", err, ErrMalformedPayload)
		}
	}
	if h.typePath != nil {
		if d.Type, err = lookupJSON(r.Body, h.typePath); err != nil {
			return Delivery{}, fmt.Errorf("hmac: type_json_path: %v: %w", err, ErrMalformedPayload)
		}
	}
	return d, nil
}

// Sign returns the signature header and, when configured, the timestamp,
// id and type headers; id and type are required when they travel in
// headers.
func (h *HMAC) Sign(body []byte, now time.Time, id, eventType string) (http.Header, error) {
	if h.core.idHeader != "" && id == "" {
		return nil, fmt.Errorf("hmac: sign: id is required (id_header is set)")
	}
	if h.typeHeader != "" && eventType == "" {
		return nil, fmt.Errorf("hmac: sign: event type is required (type_header is set)")
	}
	hdr, err := h.core.sign(body, now, id)
	if err != nil {
		return nil, err
	}
	if h.core.idHeader != "" {
		hdr.Set(h.core.idHeader, id)
	}
	if h.typeHeader != "" {
		hdr.Set(h.typeHeader, eventType)
	}
	return hdr, nil
}

// parseJSONPath splits a dotted path of object keys; "" is no path.
func parseJSONPath(p string) ([]string, error) {
	if p == "" {
		return nil, nil
	}
	keys := strings.Split(strings.TrimPrefix(p, "$."), ".")
	for _, k := range keys {
		if k == "" {
			return nil, fmt.Errorf("%q has an empty key", p)
		}
	}
	return keys, nil
}

// lookupJSON walks object keys to a string or a number (kept as written).
func lookupJSON(data []byte, path []string) (string, error) {
	v := data
	for _, k := range path {
		f, err := jsonFields(v, k)
		if err != nil {
			return "", fmt.Errorf("%q is not inside a JSON object", k)
		}
		if v = f[0]; v == nil {
			return "", fmt.Errorf("no key %q", k)
		}
	}
	if s, ok := jsonString(v); ok && s != "" {
		return s, nil
	}
	if (v[0] == '-' || v[0] >= '0' && v[0] <= '9') && json.Valid(v) {
		return string(v), nil
	}
	return "", fmt.Errorf("value is not a non-empty string or a number")
}
