package upstream

import (
	"context"
	"crypto/sha256"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
	"golang.org/x/sync/singleflight"

	"github.com/toolbus/toolbus/catalog"
)

// grantTokenExchange is RFC 8693's grant type.
const grantTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"

// newTokenClient is the client for token endpoints: its own pool, short
// timeouts, no redirects (a token endpoint that redirects is
// misconfigured, and following would resend the client secret), and the
// same refusal of link-local addresses as upstream connections.
func newTokenClient() *http.Client {
	d := &net.Dialer{Timeout: dialTimeout, KeepAlive: tcpKeepAlive, Control: refuseLinkLocal}
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           d.DialContext,
			ForceAttemptHTTP2:     true,
			MaxIdleConnsPerHost:   4,
			IdleConnTimeout:       idleConnTimeout,
			TLSHandshakeTimeout:   tlsHandshakeTimeout,
			ResponseHeaderTimeout: tokenTimeout,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       tokenTimeout,
	}
}

func authStyle(s string) oauth2.AuthStyle {
	if s == "params" {
		return oauth2.AuthStyleInParams
	}
	return oauth2.AuthStyleInHeader
}

func newTokenSource(u *catalog.Upstream, opts AuthOptions) (tokenSource, error) {
	a := u.Auth
	ctxClient := func(ctx context.Context) context.Context {
		return context.WithValue(ctx, oauth2.HTTPClient, opts.TokenClient)
	}
	extra := url.Values{}
	if a.Audience != "" {
		extra.Set("audience", a.Audience)
	}
	if a.Resource != "" {
		extra.Set("resource", a.Resource)
	}
	switch a.Type {
	case catalog.AuthClientCredentials:
		cc := &clientcredentials.Config{
			ClientID:       a.ClientID.Reveal(),
			ClientSecret:   a.ClientSecret.Reveal(),
			TokenURL:       a.TokenURL.String(),
			Scopes:         a.Scopes,
			EndpointParams: extra,
			AuthStyle:      authStyle(a.AuthStyle),
		}
		return &sharedSource{cache: newTokenCache(opts, func(ctx context.Context) (*oauth2.Token, error) {
			t, err := cc.Token(ctxClient(ctx))
			if err != nil {
				return nil, tokenError(u.Name, err)
			}
			return t, nil
		})}, nil
	case catalog.AuthRefreshToken:
		cfg := &oauth2.Config{
			ClientID:     a.ClientID.Reveal(),
			ClientSecret: a.ClientSecret.Reveal(),
			Endpoint:     oauth2.Endpoint{TokenURL: a.TokenURL.String(), AuthStyle: authStyle(a.AuthStyle)},
			Scopes:       a.Scopes,
		}
		// The authorization server may rotate the refresh token; the
		// latest one is kept (in memory: each replica rotates its own).
		var mu sync.Mutex
		refresh := a.RefreshToken.Reveal()
		return &sharedSource{cache: newTokenCache(opts, func(ctx context.Context) (*oauth2.Token, error) {
			mu.Lock()
			rt := refresh
			mu.Unlock()
			t, err := cfg.TokenSource(ctxClient(ctx), &oauth2.Token{RefreshToken: rt}).Token()
			if err != nil {
				return nil, tokenError(u.Name, err)
			}
			if t.RefreshToken != "" {
				mu.Lock()
				refresh = t.RefreshToken
				mu.Unlock()
			}
			return t, nil
		})}, nil
	case catalog.AuthTokenExchange:
		style := authStyle(a.AuthStyle)
		if a.ClientID.Reveal() == "" {
			style = oauth2.AuthStyleInParams
		}
		base := func(subjectToken string) *clientcredentials.Config {
			p := url.Values{
				// clientcredentials lets grant_type be overridden for
				// exactly this kind of grant.
				"grant_type":           {grantTokenExchange},
				"subject_token":        {subjectToken},
				"subject_token_type":   {a.SubjectTokenType},
				"requested_token_type": {a.RequestedTokenType},
			}
			for k, v := range extra {
				p[k] = v
			}
			return &clientcredentials.Config{
				ClientID:       a.ClientID.Reveal(),
				ClientSecret:   a.ClientSecret.Reveal(),
				TokenURL:       a.TokenURL.String(),
				Scopes:         a.Scopes,
				EndpointParams: p,
				AuthStyle:      style,
			}
		}
		return &exchangeSource{
			upstream: u.Name,
			opts:     opts,
			entries:  map[[32]byte]*tokenCache{},
			fetch: func(ctx context.Context, subjectToken string) (*oauth2.Token, error) {
				t, err := base(subjectToken).Token(ctxClient(ctx))
				if err != nil {
					return nil, tokenError(u.Name, err)
				}
				return t, nil
			},
		}, nil
	}
	return nil, nil
}

// tokenCache holds one access token, replaces it shortly before it
// expires, and makes concurrent callers share one token request.
type tokenCache struct {
	fetch func(ctx context.Context) (*oauth2.Token, error)
	opts  AuthOptions

	flight singleflight.Group
	mu     sync.Mutex
	tok    *oauth2.Token
	// refreshAt is when tok stops being handed out.
	refreshAt time.Time
}

func newTokenCache(opts AuthOptions, fetch func(ctx context.Context) (*oauth2.Token, error)) *tokenCache {
	return &tokenCache{fetch: fetch, opts: opts}
}

func (c *tokenCache) cached() *oauth2.Token {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tok == nil || (!c.refreshAt.IsZero() && !c.opts.Now().Before(c.refreshAt)) {
		return nil
	}
	return c.tok
}

func (c *tokenCache) get(ctx context.Context) (*oauth2.Token, error) {
	if t := c.cached(); t != nil {
		return t, nil
	}
	ch := c.flight.DoChan("token", func() (any, error) {
		if t := c.cached(); t != nil {
			return t, nil // a flight that just ended fetched it
		}
		// The request outlives a caller that gives up: others share it.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), tokenTimeout)
		defer cancel()
		t, err := c.fetch(fctx)
		if err != nil {
			return nil, err
		}
		c.store(t)
		return t, nil
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*oauth2.Token), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (c *tokenCache) store(t *oauth2.Token) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tok = t
	c.refreshAt = time.Time{}
	if !t.Expiry.IsZero() {
		life := t.Expiry.Sub(c.opts.Now())
		c.refreshAt = t.Expiry.Add(-min(c.opts.RefreshBefore, max(life/5, 0)))
	}
}

func (c *tokenCache) invalidate(t *oauth2.Token) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tok != nil && c.tok.AccessToken == t.AccessToken {
		c.tok = nil
	}
}

// expired reports whether the cached token (if any) is past its expiry.
func (c *tokenCache) expired() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tok == nil || (!c.tok.Expiry.IsZero() && !c.opts.Now().Before(c.tok.Expiry))
}

// sharedSource is one token for the whole upstream (client credentials,
// refresh token).
type sharedSource struct{ cache *tokenCache }

func (s *sharedSource) token(ctx context.Context) (*oauth2.Token, error) { return s.cache.get(ctx) }
func (s *sharedSource) invalidate(_ context.Context, t *oauth2.Token)    { s.cache.invalidate(t) }

// exchangeSource exchanges each caller's token for an upstream token
// (RFC 8693) and caches the result per caller token until it expires.
type exchangeSource struct {
	upstream string
	opts     AuthOptions
	fetch    func(ctx context.Context, subjectToken string) (*oauth2.Token, error)

	mu sync.Mutex
	// entries are keyed by the SHA-256 of the caller's token, so the
	// cache holds no caller token in the clear.
	entries map[[32]byte]*tokenCache
}

func (e *exchangeSource) entry(ctx context.Context) (*tokenCache, error) {
	subject := callerToken(ctx)
	if subject == "" {
		return nil, errNoCallerToken(e.upstream)
	}
	key := sha256.Sum256([]byte(subject))
	e.mu.Lock()
	defer e.mu.Unlock()
	if tc, ok := e.entries[key]; ok {
		return tc, nil
	}
	if len(e.entries) >= maxExchangeCache {
		e.evictLocked()
	}
	tc := newTokenCache(e.opts, func(ctx context.Context) (*oauth2.Token, error) { return e.fetch(ctx, subject) })
	e.entries[key] = tc
	return tc, nil
}

// evictLocked drops expired entries, or an arbitrary tenth of the cache
// when none has expired.
func (e *exchangeSource) evictLocked() {
	for k, tc := range e.entries {
		if tc.expired() {
			delete(e.entries, k)
		}
	}
	n := len(e.entries) / 10
	for k := range e.entries {
		if len(e.entries) < maxExchangeCache || n <= 0 {
			break
		}
		delete(e.entries, k)
		n--
	}
}

func (e *exchangeSource) token(ctx context.Context) (*oauth2.Token, error) {
	tc, err := e.entry(ctx)
	if err != nil {
		return nil, err
	}
	return tc.get(ctx)
}

func (e *exchangeSource) invalidate(ctx context.Context, t *oauth2.Token) {
	if tc, err := e.entry(ctx); err == nil {
		tc.invalidate(t)
	}
}
