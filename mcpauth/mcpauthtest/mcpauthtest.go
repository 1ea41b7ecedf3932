// Package mcpauthtest starts a real OpenID Connect provider for tests
// (github.com/oauth2-proxy/mockoidc on a loopback port) and signs access
// tokens with its key or with others. It is for tests only.
package mcpauthtest

import (
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
	"github.com/oauth2-proxy/mockoidc"
)

// OIDC is a running provider.
type OIDC struct {
	M *mockoidc.MockOIDC
	// jwksHits counts requests for the key set.
	jwksHits atomic.Int32
	// extra is a key pair also published in the key set once Publish is
	// called (key rotation).
	extra atomic.Pointer[mockoidc.Keypair]
}

// Start runs a provider until the test ends.
func Start(t testing.TB) *OIDC {
	t.Helper()
	m, err := mockoidc.NewServer(nil)
	if err != nil {
		t.Fatal(err)
	}
	// KeyID caches its value on first use; compute it before the server
	// goroutine can race on it.
	if _, err := m.Keypair.KeyID(); err != nil {
		t.Fatal(err)
	}
	o := &OIDC{M: m}
	if err := m.AddMiddleware(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != mockoidc.JWKSEndpoint {
				next.ServeHTTP(w, r)
				return
			}
			o.jwksHits.Add(1)
			extra := o.extra.Load()
			if extra == nil {
				next.ServeHTTP(w, r)
				return
			}
			set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{publicJWK(m.Keypair), publicJWK(extra)}}
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(set)
		})
	}); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ln, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Shutdown() })
	return o
}

func publicJWK(k *mockoidc.Keypair) jose.JSONWebKey {
	kid, _ := k.KeyID()
	return jose.JSONWebKey{Use: "sig", Algorithm: string(jose.RS256), Key: k.PublicKey, KeyID: kid}
}

// Issuer is the provider's issuer URL (the iss of its tokens).
func (o *OIDC) Issuer() string { return o.M.Issuer() }

// JWKSHits is how many times the key set was requested.
func (o *OIDC) JWKSHits() int { return int(o.jwksHits.Load()) }

// Publish adds k to the published key set, as a provider rotating keys does.
func (o *OIDC) Publish(k *mockoidc.Keypair) { o.extra.Store(k) }

// NewKeypair returns a fresh RSA key pair unknown to the provider.
func NewKeypair(t testing.TB) *mockoidc.Keypair {
	t.Helper()
	k, err := mockoidc.RandomKeypair(2048)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.KeyID(); err != nil {
		t.Fatal(err)
	}
	return k
}

// Claims returns the claims of a valid access token for audience.
func (o *OIDC) Claims(audience, subject string, scopes ...string) jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{
		"iss":   o.Issuer(),
		"sub":   subject,
		"aud":   audience,
		"iat":   now.Unix(),
		"nbf":   now.Unix(),
		"exp":   now.Add(10 * time.Minute).Unix(),
		"scope": strings.Join(scopes, " "),
	}
}

// Sign signs claims with the provider's own key.
func (o *OIDC) Sign(t testing.TB, claims jwt.MapClaims) string {
	t.Helper()
	return SignWith(t, o.M.Keypair, claims)
}

// SignWith signs claims (RS256) with k, naming k's key id.
func SignWith(t testing.TB, k *mockoidc.Keypair, claims jwt.MapClaims) string {
	t.Helper()
	s, err := k.SignJWT(claims)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
