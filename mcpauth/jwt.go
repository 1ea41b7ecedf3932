package mcpauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/modelcontextprotocol/go-sdk/auth"
	"golang.org/x/sync/singleflight"

	"github.com/toolbus/toolbus/catalog"
)

// maxJWKSBytes bounds a key set document.
const maxJWKSBytes = 1 << 20

// ErrKeysUnavailable means the issuer's signing keys could not be fetched:
// tokens cannot be checked (the SDK answers 500, not 401, so clients do
// not throw away good tokens).
var ErrKeysUnavailable = errors.New("the authorization server's signing keys are unavailable")

// keySet verifies JWT access tokens with the issuer's JWKS: fetched on
// first use, fetched again when older than maxAge, and when a token names
// an unknown key id (at most once per refreshInterval).
type keySet struct {
	cfg             *catalog.OAuthServer
	client          *http.Client
	now             func() time.Time
	refreshInterval time.Duration
	maxAge          time.Duration
	algs            []jose.SignatureAlgorithm

	flight singleflight.Group
	mu     sync.Mutex
	keys   *jose.JSONWebKeySet
	// fetched is when keys were fetched; lastTry when a fetch was last
	// attempted (successful or not); lastUnknown when an unknown key id
	// last caused a fetch, for the rate limit.
	fetched, lastTry, lastUnknown time.Time
	jwksURL                       string
}

func newKeySet(o *catalog.OAuthServer, opts Options) *keySet {
	ks := &keySet{
		cfg:             o,
		client:          opts.HTTPClient,
		now:             opts.Now,
		refreshInterval: opts.JWKSRefreshInterval,
		maxAge:          opts.JWKSMaxAge,
		jwksURL:         o.JWKSURL,
	}
	for _, a := range o.Algorithms {
		ks.algs = append(ks.algs, jose.SignatureAlgorithm(a))
	}
	return ks
}

// claims are the non-registered claims Toolbus reads.
type claims struct {
	Scope    string          `json:"scope"`
	Scp      json.RawMessage `json:"scp"`
	ClientID string          `json:"client_id"`
	Azp      string          `json:"azp"`
}

func (ks *keySet) verify(ctx context.Context, token string) (*Identity, error) {
	// ParseSigned refuses every algorithm outside the allow-list, which
	// never holds "none" or HMAC (catalog validation).
	tok, err := jwt.ParseSigned(token, ks.algs)
	if err != nil {
		if strings.Contains(err.Error(), "unexpected signature algorithm") {
			return nil, invalid("signature algorithm not allowed")
		}
		return nil, invalid("malformed token")
	}
	if len(tok.Headers) != 1 {
		return nil, invalid("malformed token")
	}
	h := tok.Headers[0]
	keys, err := ks.keysFor(ctx, h.KeyID)
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, invalid("token signed with an unknown key")
	}
	var std jwt.Claims
	var extra claims
	var raw map[string]any
	verified := false
	for _, k := range keys {
		if k.Algorithm != "" && k.Algorithm != h.Algorithm {
			continue
		}
		if err := tok.Claims(k.Key, &std, &extra, &raw); err == nil {
			verified = true
			break
		}
	}
	if !verified {
		return nil, invalid("bad signature")
	}
	skew := ks.cfg.ClockSkew
	if std.Expiry == nil {
		return nil, invalid("token has no expiry")
	}
	err = std.ValidateWithLeeway(jwt.Expected{Issuer: ks.cfg.Issuer, AnyAudience: ks.cfg.Audiences, Time: ks.now()}, skew)
	switch {
	case errors.Is(err, jwt.ErrExpired):
		return nil, invalid("token expired")
	case errors.Is(err, jwt.ErrNotValidYet), errors.Is(err, jwt.ErrIssuedInTheFuture):
		return nil, invalid("token not valid yet")
	case errors.Is(err, jwt.ErrInvalidIssuer):
		return nil, invalid("token from another issuer")
	case errors.Is(err, jwt.ErrInvalidAudience):
		return nil, invalid("token not issued for this resource (audience)")
	case err != nil:
		return nil, invalid("invalid claims")
	}
	if std.Subject == "" {
		return nil, invalid("token has no subject")
	}
	id := &Identity{
		Subject:  std.Subject,
		Scopes:   scopesOf(extra),
		Method:   MethodJWT,
		ClientID: extra.ClientID,
		Expiry:   std.Expiry.Time(),
		token:    token,
	}
	if id.ClientID == "" {
		id.ClientID = extra.Azp
	}
	if c := ks.cfg.TenantClaim; c != "" {
		id.Tenant = claimString(raw[c])
	}
	return id, nil
}

// scopesOf reads "scope" (RFC 8693/9068: space-separated) or "scp" (a
// list or a string, as some issuers send).
func scopesOf(c claims) []string {
	if c.Scope != "" {
		return strings.Fields(c.Scope)
	}
	if len(c.Scp) == 0 {
		return nil
	}
	var list []string
	if json.Unmarshal(c.Scp, &list) == nil {
		return list
	}
	var s string
	if json.Unmarshal(c.Scp, &s) == nil {
		return strings.Fields(s)
	}
	return nil
}

func claimString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	}
	return ""
}

// keysFor returns the keys for kid, fetching the key set when there is
// none yet, when it is too old, or when kid is unknown and the last fetch
// is longer than refreshInterval ago.
func (ks *keySet) keysFor(ctx context.Context, kid string) ([]jose.JSONWebKey, error) {
	ks.mu.Lock()
	keys, fetched, lastTry := ks.keys, ks.fetched, ks.lastTry
	ks.mu.Unlock()
	now := ks.now()
	if keys != nil && now.Sub(fetched) < ks.maxAge {
		if found := lookupKeys(keys, kid); len(found) > 0 {
			return found, nil
		}
		ks.mu.Lock()
		limited := !ks.lastUnknown.IsZero() && now.Sub(ks.lastUnknown) < ks.refreshInterval
		if !limited {
			ks.lastUnknown = now
		}
		ks.mu.Unlock()
		if limited {
			return nil, nil // unknown key id, refreshed for one recently
		}
	} else if keys == nil && !lastTry.IsZero() && now.Sub(lastTry) < time.Second {
		// The issuer just failed; do not hammer it on every request.
		return nil, fmt.Errorf("%w (retrying shortly)", ErrKeysUnavailable)
	}
	if err := ks.refresh(ctx, fetched); err != nil {
		if keys != nil {
			// Keep serving with the keys we have.
			return lookupKeys(keys, kid), nil
		}
		return nil, err
	}
	ks.mu.Lock()
	keys = ks.keys
	ks.mu.Unlock()
	return lookupKeys(keys, kid), nil
}

func lookupKeys(set *jose.JSONWebKeySet, kid string) []jose.JSONWebKey {
	var out []jose.JSONWebKey
	for _, k := range set.Keys {
		if (kid == "" || k.KeyID == kid) && (k.Use == "" || k.Use == "sig") && k.IsPublic() {
			out = append(out, k)
		}
	}
	return out
}

// refresh fetches the key set once for any number of concurrent callers.
// seen is the fetch time of the keys the caller looked at: a flight that
// ended after it has already done the work.
func (ks *keySet) refresh(ctx context.Context, seen time.Time) error {
	ch := ks.flight.DoChan("jwks", func() (any, error) {
		ks.mu.Lock()
		if ks.keys != nil && ks.fetched.After(seen) {
			ks.mu.Unlock()
			return nil, nil
		}
		ks.lastTry = ks.now()
		ks.mu.Unlock()
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), httpTimeout)
		defer cancel()
		set, err := ks.fetch(fctx)
		if err != nil {
			return nil, err
		}
		ks.mu.Lock()
		ks.keys, ks.fetched = set, ks.now()
		ks.mu.Unlock()
		return nil, nil
	})
	select {
	case r := <-ch:
		return r.Err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (ks *keySet) fetch(ctx context.Context) (*jose.JSONWebKeySet, error) {
	ks.mu.Lock()
	u := ks.jwksURL
	ks.mu.Unlock()
	if u == "" {
		asm, err := auth.GetAuthServerMetadata(ctx, ks.cfg.Issuer, ks.client)
		switch {
		case err != nil:
			return nil, fmt.Errorf("%w: issuer metadata: %v", ErrKeysUnavailable, err)
		case asm == nil || asm.JWKSURI == "":
			return nil, fmt.Errorf("%w: the issuer publishes no metadata with a jwks_uri; set auth.oauth.jwks_url", ErrKeysUnavailable)
		}
		u = asm.JWKSURI
		ks.mu.Lock()
		ks.jwksURL = u
		ks.mu.Unlock()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKeysUnavailable, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := ks.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKeysUnavailable, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: %s answered %s", ErrKeysUnavailable, u, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKeysUnavailable, err)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("%w: %s is not a JSON Web Key Set: %v", ErrKeysUnavailable, u, err)
	}
	return &set, nil
}
