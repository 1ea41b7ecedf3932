package mcpauth_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"testing"

	"github.com/toolbus/toolbus/catalog"
	"github.com/toolbus/toolbus/mcpauth"
	"github.com/toolbus/toolbus/mcpauth/mcpauthtest"
)

// reloadAuthCatalog is a catalog whose auth section has the API keys given
// as (name, key, scopes) and the extra auth lines.
func reloadAuthCatalog(t *testing.T, issuer, extraAuth string, keys ...[3]string) *catalog.Catalog {
	t.Helper()
	list := ""
	for _, k := range keys {
		sum := sha256.Sum256([]byte(k[1]))
		list += fmt.Sprintf("    - {name: %s, sha256: %s, scopes: [%s]}\n", k[0], hex.EncodeToString(sum[:]), k[2])
	}
	src := fmt.Sprintf(`version: 1
auth:
  resource: %s
  oauth: {issuer: %s}
  api_keys:
%s%s
upstreams:
  crm: {base_url: "http://127.0.0.1:9"}
tools:
  - {name: get_customer, description: Get one., upstream: crm, method: GET, path: /c}
  - {name: delete_customer, description: Delete one., upstream: crm, method: DELETE, path: /c}
`, resource, issuer, list, extraAuth)
	cat, err := catalog.Parse("c.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return cat
}

// TestReloadAPIKeys: a reload revokes, adds and re-scopes API keys and
// changes default scopes at once; a reload that turns authentication off
// changes nothing.
func TestReloadAPIKeys(t *testing.T) {
	op := mcpauthtest.Start(t)
	const billing, ops, audit = "tbk_billing_0123456789", "tbk_ops_0123456789abc", "tbk_audit_0123456789ab"
	a := newAuthenticator(t, reloadAuthCatalog(t, op.Issuer(), "",
		[3]string{"billing", billing, "tools.read"}, [3]string{"ops", ops, "tools.read"}))
	verify := func(key string) *mcpauth.Identity {
		t.Helper()
		id, err := a.Verify(context.Background(), key)
		if err != nil {
			if !errors.Is(err, mcpauth.ErrInvalidToken) {
				t.Fatalf("verify: %v", err)
			}
			return nil
		}
		return id
	}
	if verify(billing) == nil || verify(ops) == nil || verify(audit) != nil {
		t.Fatal("keys before the reload")
	}

	// billing revoked, ops may now write, audit added; reads need crm.read.
	a.Reload(reloadAuthCatalog(t, op.Issuer(), "  default_scopes: {read_only: [crm.read]}\n",
		[3]string{"ops", ops, "tools.read, tools.write"}, [3]string{"audit", audit, "crm.read"}))
	if verify(billing) != nil {
		t.Error("the revoked key is still accepted")
	}
	if id := verify(ops); id == nil || !a.Allowed(id, "delete_customer") || a.Allowed(id, "get_customer") {
		t.Errorf("re-scoped ops key: %v; want delete_customer allowed and get_customer (now crm.read) refused", id)
	}
	if id := verify(audit); id == nil || !a.Allowed(id, "get_customer") {
		t.Errorf("added audit key: %v; want get_customer allowed", id)
	}

	// Turning auth off is not taken from a reload: the keys stay.
	off, err := catalog.Parse("off.yaml", []byte("version: 1\nauth: none\n"))
	if err != nil {
		t.Fatal(err)
	}
	a.Reload(off)
	if !a.Enabled() || verify(audit) == nil || verify(billing) != nil {
		t.Error("a reload to auth: none changed the keys in force or turned authentication off")
	}
}
