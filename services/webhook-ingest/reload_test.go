package webhookingest_test

import (
	"bytes"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/toolbus/toolbus/catalog"
)

// reloadedCatalog rotates stripe's secret (the old one retired), drops
// github, adds a shopify source and raises tiny's body limit.
const reloadedCatalog = `
version: 1
sources:
  stripe:
    scheme: stripe
    secrets: ["${env:STRIPE_SECRET_NEW}", "${env:STRIPE_SECRET}"]
  slack:
    scheme: slack
    secrets: ["${env:SLACK_SECRET}"]
  shop:
    scheme: shopify
    secrets: ["${env:SHOPIFY_SECRET}"]
  tiny:
    scheme: github
    secrets: ["${env:GITHUB_SECRET}"]
    max_body_bytes: 128
`

func parseWith(t *testing.T, src string, opts ...catalog.Option) *catalog.Catalog {
	t.Helper()
	env := map[string]string{"STRIPE_SECRET_NEW": "whsec_test_rotated", "SHOPIFY_SECRET": "shpss_test"}
	opts = append(opts, catalog.WithLookupEnv(func(n string) (string, bool) {
		if v, ok := env[n]; ok {
			return v, true
		}
		v, ok := secrets[n]
		return v, ok
	}))
	cat, err := catalog.Parse("reloaded.yaml", []byte(src), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return cat
}

// TestReloadSources: after Reload a new source is received, a removed one
// answers 404, a rotated secret verifies and the retired one does not, a
// changed body limit applies; a catalog that cannot build its verifiers is
// refused and the current sources keep serving.
func TestReloadSources(t *testing.T) {
	r := newRig(t, rigOptions{})
	before := r.cat
	tinyBody := bytes.Repeat([]byte("x"), 100)
	if got := do(t, r.signed(t, "tiny", tinyBody, "d-1", "ping")).Status; got != http.StatusRequestEntityTooLarge {
		t.Fatalf("100 bytes to tiny before the reload: %d, want 413", got)
	}

	// Verifiers cannot be built without the webhook secrets: refused.
	if err := r.svc.Reload(parseWith(t, reloadedCatalog, catalog.WithSecrets(catalog.SecretsNone))); err == nil {
		t.Fatal("a catalog without webhook secrets was reloaded")
	}
	if err := r.svc.Reload(nil); err == nil {
		t.Fatal("a nil catalog was reloaded")
	}
	if got := do(t, r.signed(t, "github", []byte(`{}`), "d-2", "ping")).Status; got != http.StatusAccepted {
		t.Fatalf("github after refused reloads: %d, want 202 (the current sources keep serving)", got)
	}

	next := parseWith(t, reloadedCatalog)
	if err := r.svc.Reload(next); err != nil {
		t.Fatal(err)
	}
	// Deliveries signed as the provider would: with the sources of the
	// catalog before the reload, of the new one, and with a retired secret.
	old := &rig{cat: before, url: r.url}
	now := &rig{cat: next, url: r.url}
	retired := &rig{url: r.url, cat: parseWith(t, `
version: 1
sources:
  stripe: {scheme: stripe, secrets: ["${env:STRIPE_SECRET_OLD}"]}
`)}
	got := map[string]int{
		"stripe, rotated secret":       do(t, now.signed(t, "stripe", stripeBody("evt_rot_1"), "", "")).Status,
		"stripe, previous secret":      do(t, old.signed(t, "stripe", stripeBody("evt_rot_2"), "", "")).Status,
		"stripe, retired secret":       do(t, retired.signed(t, "stripe", stripeBody("evt_rot_3"), "", "")).Status,
		"shop, added":                  do(t, now.signed(t, "shop", []byte(`{"id":1}`), "wh-1", "orders/create")).Status,
		"github, removed":              do(t, old.signed(t, "github", []byte(`{}`), "d-5", "ping")).Status,
		"tiny, 100 bytes under 128":    do(t, now.signed(t, "tiny", tinyBody, "d-3", "ping")).Status,
		"tiny, 129 bytes over the 128": do(t, now.signed(t, "tiny", bytes.Repeat([]byte("x"), 129), "d-4", "ping")).Status,
	}
	want := map[string]int{
		"stripe, rotated secret":       http.StatusAccepted,
		"stripe, previous secret":      http.StatusAccepted,
		"stripe, retired secret":       http.StatusUnauthorized,
		"shop, added":                  http.StatusAccepted,
		"github, removed":              http.StatusNotFound,
		"tiny, 100 bytes under 128":    http.StatusAccepted,
		"tiny, 129 bytes over the 128": http.StatusRequestEntityTooLarge,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("answers after the reload (-want +got):\n%s", diff)
	}
}
