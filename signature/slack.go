package signature

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

const (
	slackSignatureHeader  = "X-Slack-Signature"
	slackTimestampHeader  = "X-Slack-Request-Timestamp"
	slackDefaultTolerance = 5 * time.Minute
)

// SlackConfig configures the slack scheme: X-Slack-Signature is "v0=" and
// the hex HMAC-SHA256 of "v0:{X-Slack-Request-Timestamp}:{body}" under the
// app's signing secret.
type SlackConfig struct {
	Secrets Secrets
	// Tolerance defaults to 5 minutes, the window Slack recommends.
	Tolerance time.Duration
}

func (c SlackConfig) withDefaults() SlackConfig {
	if c.Tolerance == 0 {
		c.Tolerance = slackDefaultTolerance
	}
	return c
}

// Validate checks the secrets and the tolerance (zero means the default).
func (c SlackConfig) Validate() error {
	c = c.withDefaults()
	if err := validateSecrets("slack", c.Secrets); err != nil {
		return err
	}
	return validateTolerance("slack", c.Tolerance)
}

// Slack verifies and signs Slack request deliveries (Events API, slash
// commands, interactivity).
type Slack struct {
	core hmacCore
}

var _ Scheme = (*Slack)(nil)

// NewSlack builds the slack scheme.
func NewSlack(c SlackConfig) (*Slack, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	c = c.withDefaults()
	return &Slack{core: hmacCore{
		scheme:    "slack",
		macs:      newMACs(keysOf(c.Secrets), sha256.New),
		header:    slackSignatureHeader,
		prefix:    "v0=",
		enc:       encHex,
		payload:   template{{kind: segLiteral, lit: []byte("v0:")}, {kind: segTimestamp}, {kind: segLiteral, lit: []byte(":")}, {kind: segBody}},
		tsHeader:  slackTimestampHeader,
		tolerance: c.Tolerance,
	}}, nil
}

func slackFromConfig(c Config) (Scheme, error) {
	if err := c.fixedScheme(true); err != nil {
		return nil, err
	}
	return NewSlack(SlackConfig{Secrets: c.Secrets, Tolerance: c.Tolerance})
}

// Verify checks X-Slack-Signature and the timestamp, then reads the body:
//   - Events API JSON: event_callback gives id event_id and type event.type;
//     url_verification gives a Handshake; other envelopes (app_rate_limited)
//     give their type and event_id if any.
//   - Interactivity (form field payload, JSON): type and trigger_id.
//   - Slash commands (form field command): type "slash_command", trigger_id.
func (s *Slack) Verify(r Request) (Delivery, error) {
	res, err := s.core.verify(r)
	if err != nil {
		return Delivery{}, err
	}
	d, err := slackDelivery(r.Body)
	if err != nil {
		return Delivery{}, err
	}
	d.Timestamp, d.Secret = res.ts, res.secret
	return d, nil
}

// Sign returns X-Slack-Request-Timestamp and X-Slack-Signature; id and type
// are read from the body by Verify, so they are ignored here.
func (s *Slack) Sign(body []byte, now time.Time, _, _ string) (http.Header, error) {
	return s.core.sign(body, now, "")
}

func slackDelivery(body []byte) (Delivery, error) {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) > 0 && trimmed[0] == '{' {
		return slackEvent(trimmed)
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return Delivery{}, fmt.Errorf("slack: body is neither JSON nor a form: %w", ErrMalformedPayload)
	}
	if p := form.Get("payload"); p != "" {
		v, err := jsonStrings([]byte(p), "type", "trigger_id")
		if err != nil || v[0] == "" {
			return Delivery{}, fmt.Errorf("slack: interactivity payload has no type: %w", ErrMalformedPayload)
		}
		return Delivery{ID: v[1], Type: v[0]}, nil
	}
	if form.Get("command") != "" {
		return Delivery{ID: form.Get("trigger_id"), Type: "slash_command"}, nil
	}
	return Delivery{}, fmt.Errorf("slack: form body has neither payload nor command: %w", ErrMalformedPayload)
}

func slackEvent(body []byte) (Delivery, error) {
	f, err := jsonFields(body, "type", "event_id", "challenge", "event")
	if err != nil {
		return Delivery{}, fmt.Errorf("slack: body is not a JSON object: %w", ErrMalformedPayload)
	}
	typ, _ := jsonString(f[0])
	eventID, _ := jsonString(f[1])
	switch typ {
	case "url_verification":
		challenge, _ := jsonString(f[2])
		if challenge == "" {
			return Delivery{}, fmt.Errorf("slack: url_verification without challenge: %w", ErrMalformedPayload)
		}
		return Delivery{Type: typ, Handshake: &Handshake{Challenge: challenge}}, nil
	case "event_callback":
		event, err := jsonStrings(f[3], "type")
		if err != nil || eventID == "" || event[0] == "" {
			return Delivery{}, fmt.Errorf("slack: event_callback without event_id or event.type: %w", ErrMalformedPayload)
		}
		return Delivery{ID: eventID, Type: event[0]}, nil
	case "":
		return Delivery{}, fmt.Errorf("slack: body has no type: %w", ErrMalformedPayload)
	default:
		return Delivery{ID: eventID, Type: typ}, nil
	}
}
