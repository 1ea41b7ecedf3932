package mcpauth

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/toolbus/toolbus/catalog"
)

// maxIntrospectionCache bounds the answers kept; beyond it the cache is
// cleared (a burst of distinct tokens only costs extra introspections).
const maxIntrospectionCache = 10000

// introspector checks opaque tokens with RFC 7662 token introspection and
// caches active answers for CacheTTL, never past the token's exp.
type introspector struct {
	cfg    *catalog.OAuthServer
	in     *catalog.Introspection
	client *http.Client
	now    func() time.Time

	mu sync.Mutex
	// cache is keyed by the token's SHA-256: no token is held in the clear.
	cache map[[32]byte]cachedIdentity
}

type cachedIdentity struct {
	id    *Identity
	until time.Time
}

func newIntrospector(o *catalog.OAuthServer, opts Options) *introspector {
	return &introspector{cfg: o, in: o.Introspection, client: opts.HTTPClient, now: opts.Now, cache: map[[32]byte]cachedIdentity{}}
}

// introspection is the RFC 7662 §2.2 answer.
type introspection struct {
	Active    bool            `json:"active"`
	Scope     string          `json:"scope"`
	ClientID  string          `json:"client_id"`
	Sub       string          `json:"sub"`
	Exp       int64           `json:"exp"`
	Nbf       int64           `json:"nbf"`
	Iss       string          `json:"iss"`
	Aud       json.RawMessage `json:"aud"`
	TokenType string          `json:"token_type"`
}

func (in *introspector) verify(ctx context.Context, token string) (*Identity, error) {
	key := sha256.Sum256([]byte(token))
	now := in.now()
	in.mu.Lock()
	c, ok := in.cache[key]
	in.mu.Unlock()
	if ok && now.Before(c.until) {
		return c.id, nil
	}
	form := url.Values{"token": {token}, "token_type_hint": {"access_token"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, in.in.URL, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("token introspection: %v", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.SetBasicAuth(url.QueryEscape(in.in.ClientID.Reveal()), url.QueryEscape(in.in.ClientSecret.Reveal()))
	resp, err := in.client.Do(req)
	if err != nil {
		// The URL is not secret; the request body (the token) is never quoted.
		return nil, fmt.Errorf("token introspection at %s failed: %v", in.in.URL, innermost(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("token introspection at %s answered %s", in.in.URL, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("token introspection at %s failed: %v", in.in.URL, innermost(err))
	}
	var r introspection
	var raw map[string]any
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("token introspection at %s: the answer is not an RFC 7662 JSON object", in.in.URL)
	}
	_ = json.Unmarshal(body, &raw)
	skew := in.cfg.ClockSkew
	switch {
	case !r.Active:
		return nil, invalid("token not active")
	case r.Exp != 0 && now.After(time.Unix(r.Exp, 0).Add(skew)):
		return nil, invalid("token expired")
	case r.Nbf != 0 && now.Add(skew).Before(time.Unix(r.Nbf, 0)):
		return nil, invalid("token not valid yet")
	case r.Iss != "" && r.Iss != in.cfg.Issuer:
		return nil, invalid("token from another issuer")
	case len(r.Aud) > 0 && !audienceMatches(r.Aud, in.cfg.Audiences):
		return nil, invalid("token not issued for this resource (audience)")
	case r.Sub == "":
		return nil, invalid("token has no subject")
	}
	id := &Identity{Subject: r.Sub, Scopes: strings.Fields(r.Scope), Method: MethodIntrospection, ClientID: r.ClientID, token: token}
	until := now.Add(in.in.CacheTTL)
	if r.Exp != 0 {
		id.Expiry = time.Unix(r.Exp, 0)
		until = minTime(until, id.Expiry)
	}
	if c := in.cfg.TenantClaim; c != "" {
		id.Tenant = claimString(raw[c])
	}
	in.mu.Lock()
	if len(in.cache) >= maxIntrospectionCache {
		clear(in.cache)
	}
	in.cache[key] = cachedIdentity{id: id, until: until}
	in.mu.Unlock()
	return id, nil
}

func audienceMatches(raw json.RawMessage, want []string) bool {
	var list []string
	if json.Unmarshal(raw, &list) != nil {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return false
		}
		list = []string{s}
	}
	for _, a := range list {
		for _, w := range want {
			if a == w {
				return true
			}
		}
	}
	return false
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// innermost drops the wrappers (such as *url.Error) that quote URLs.
func innermost(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok || u.Unwrap() == nil {
			return err
		}
		err = u.Unwrap()
	}
}
