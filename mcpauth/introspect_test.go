package mcpauth_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"

	"github.com/toolbus/toolbus/catalog"
	"github.com/toolbus/toolbus/mcpauth"
)

func TestOpaqueTokensThroughIntrospection(t *testing.T) {
	var calls atomic.Int32
	as := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		id, secret, _ := r.BasicAuth()
		if r.Method != http.MethodPost || id != "toolbus" || secret != "intro-secret-123" || r.FormValue("token_type_hint") != "access_token" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		now := time.Now()
		answers := map[string]map[string]any{
			"opaque-good":     {"active": true, "sub": "carol", "scope": "tools.read", "org": "globex", "exp": now.Add(time.Hour).Unix(), "aud": resource},
			"opaque-inactive": {"active": false},
			"opaque-expired":  {"active": true, "sub": "carol", "exp": now.Add(-time.Hour).Unix()},
			"opaque-foreign":  {"active": true, "sub": "carol", "exp": now.Add(time.Hour).Unix(), "aud": "https://other.example.com"},
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(answers[r.FormValue("token")])
	}))
	t.Cleanup(as.Close)
	src := fmt.Sprintf(`version: 1
auth:
  resource: %s
  oauth:
    issuer: %s
    tenant_claim: org
    introspection: {url: "%s/introspect", client_id: toolbus, client_secret: "${env:INTRO}"}
`, resource, as.URL, as.URL)
	cat, err := catalog.Parse("c.yaml", []byte(src), catalog.WithLookupEnv(func(string) (string, bool) { return "intro-secret-123", true }))
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	a, err := mcpauth.New(cat, mcpauth.Options{Logger: slog.New(slog.DiscardHandler), HTTPClient: &http.Client{Transport: tr}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for range 3 {
		id, err := a.Verify(ctx, "opaque-good")
		if err != nil {
			t.Fatal(err)
		}
		if id.Subject != "carol" || id.Tenant != "globex" || id.Method != mcpauth.MethodIntrospection || !id.Has([]string{"tools.read"}) {
			t.Errorf("identity = %#v %v", id, id.Scopes)
		}
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("introspection requests = %d, want 1 (cached)", n)
	}
	for token, want := range map[string]string{
		"opaque-inactive": "invalid token: token not active",
		"opaque-expired":  "invalid token: token expired",
		"opaque-foreign":  "invalid token: token not issued for this resource (audience)",
	} {
		_, err := a.Verify(ctx, token)
		if !errors.Is(err, auth.ErrInvalidToken) || err.Error() != want {
			t.Errorf("%s: err = %v, want %s", token, err, want)
		}
	}
}
