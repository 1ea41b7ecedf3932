package signature

import (
	"crypto/sha256"
	"fmt"
	"net/http"
	"time"
)

// GitHub's headers. X-Hub-Signature (SHA-1) is deliberately not accepted.
const (
	githubSignatureHeader = "X-Hub-Signature-256"
	githubDeliveryHeader  = "X-GitHub-Delivery"
	githubEventHeader     = "X-GitHub-Event"
)

// GitHubConfig configures the github scheme: X-Hub-Signature-256 is
// "sha256=" and the hex HMAC-SHA256 of the body; no timestamp is signed.
type GitHubConfig struct {
	Secrets Secrets
}

// Validate checks the secrets.
func (c GitHubConfig) Validate() error {
	return validateSecrets("github", c.Secrets)
}

// GitHub verifies and signs GitHub webhook deliveries.
type GitHub struct {
	core hmacCore
}

var _ Scheme = (*GitHub)(nil)

// NewGitHub builds the github scheme.
func NewGitHub(c GitHubConfig) (*GitHub, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &GitHub{core: hmacCore{
		scheme:  "github",
		macs:    newMACs(keysOf(c.Secrets), sha256.New),
		header:  githubSignatureHeader,
		prefix:  "sha256=",
		enc:     encHex,
		payload: template{{kind: segBody}},
	}}, nil
}

func githubFromConfig(c Config) (Scheme, error) {
	if err := c.fixedScheme(false); err != nil {
		return nil, err
	}
	return NewGitHub(GitHubConfig{Secrets: c.Secrets})
}

// Verify checks X-Hub-Signature-256; the id is X-GitHub-Delivery and the
// type X-GitHub-Event. Those two headers are not signed: GitHub always
// sends them, so their absence is refused.
func (g *GitHub) Verify(r Request) (Delivery, error) {
	id, typ := r.Header.Get(githubDeliveryHeader), r.Header.Get(githubEventHeader)
	if id == "" || typ == "" {
		return Delivery{}, fmt.Errorf("github: %s and %s are required: %w",
			githubDeliveryHeader, githubEventHeader, ErrMissingHeader)
	}
	res, err := g.core.verify(r)
	if err != nil {
		return Delivery{}, err
	}
	return Delivery{ID: id, Type: typ, Secret: res.secret}, nil
}

// Sign returns X-Hub-Signature-256, X-GitHub-Delivery and X-GitHub-Event.
func (g *GitHub) Sign(body []byte, now time.Time, id, eventType string) (http.Header, error) {
	if id == "" || eventType == "" {
		return nil, fmt.Errorf("github: sign: id and event type are required")
	}
	h, err := g.core.sign(body, now, id)
	if err != nil {
		return nil, err
	}
	h.Set(githubDeliveryHeader, id)
	h.Set(githubEventHeader, eventType)
	return h, nil
}
