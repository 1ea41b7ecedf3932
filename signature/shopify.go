package signature

import (
	"crypto/sha256"
	"fmt"
	"net/http"
	"time"
)

const (
	shopifySignatureHeader = "X-Shopify-Hmac-Sha256"
	shopifyWebhookIDHeader = "X-Shopify-Webhook-Id"
	shopifyEventIDHeader   = "X-Shopify-Event-Id"
	shopifyTopicHeader     = "X-Shopify-Topic"
)

// ShopifyConfig configures the shopify scheme: X-Shopify-Hmac-Sha256 is the
// base64 HMAC-SHA256 of the body under the app's client secret; no
// timestamp is signed.
type ShopifyConfig struct {
	Secrets Secrets
}

// Validate checks the secrets.
func (c ShopifyConfig) Validate() error {
	return validateSecrets("shopify", c.Secrets)
}

// Shopify verifies and signs Shopify webhook deliveries.
type Shopify struct {
	core hmacCore
}

var _ Scheme = (*Shopify)(nil)

// NewShopify builds the shopify scheme.
func NewShopify(c ShopifyConfig) (*Shopify, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &Shopify{core: hmacCore{
		scheme:  "shopify",
		macs:    newMACs(keysOf(c.Secrets), sha256.New),
		header:  shopifySignatureHeader,
		enc:     encBase64,
		payload: template{{kind: segBody}},
	}}, nil
}

func shopifyFromConfig(c Config) (Scheme, error) {
	if err := c.fixedScheme(false); err != nil {
		return nil, err
	}
	return NewShopify(ShopifyConfig{Secrets: c.Secrets})
}

// Verify checks X-Shopify-Hmac-Sha256. The id is X-Shopify-Webhook-Id, or
// X-Shopify-Event-Id when the former is absent; the type is X-Shopify-Topic.
// These headers are not signed, but Shopify always sends them.
func (s *Shopify) Verify(r Request) (Delivery, error) {
	id := r.Header.Get(shopifyWebhookIDHeader)
	if id == "" {
		id = r.Header.Get(shopifyEventIDHeader)
	}
	typ := r.Header.Get(shopifyTopicHeader)
	if id == "" || typ == "" {
		return Delivery{}, fmt.Errorf("shopify: %s (or %s) and %s are required: %w",
			shopifyWebhookIDHeader, shopifyEventIDHeader, shopifyTopicHeader, ErrMissingHeader)
	}
	res, err := s.core.verify(r)
	if err != nil {
		return Delivery{}, err
	}
	return Delivery{ID: id, Type: typ, Secret: res.secret}, nil
}

// Sign returns X-Shopify-Hmac-Sha256, X-Shopify-Webhook-Id and
// X-Shopify-Topic.
func (s *Shopify) Sign(body []byte, now time.Time, id, eventType string) (http.Header, error) {
	if id == "" || eventType == "" {
		return nil, fmt.Errorf("shopify: sign: id and event type are required")
	}
	h, err := s.core.sign(body, now, id)
	if err != nil {
		return nil, err
	}
	h.Set(shopifyWebhookIDHeader, id)
	h.Set(shopifyTopicHeader, eventType)
	return h, nil
}
