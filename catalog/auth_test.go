package catalog

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const hash64 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

func TestAuthRules(t *testing.T) {
	tests := []struct {
		name string
		give string
		want []string
	}{
		{"auth scalar other than none", "version: 1\nauth: off\n", []string{
			`c.yaml:2:7: auth: must be none or a mapping with oauth and/or api_keys, got "off"`,
		}},
		{"nothing configured", "version: 1\nauth: {resource: https://m.example.com/mcp}\n", []string{
			"c.yaml:2:7: auth: configure oauth, api_keys or both, or write auth: none to run without authentication (local use only)",
		}},
		{"resource missing", "version: 1\nauth:\n  oauth: {issuer: https://as.example.com}\n", []string{
			"c.yaml:3:3: auth.resource: required field is missing; set it to the public URL of the MCP endpoint, such as https://mcp.example.com/mcp (tokens must name it as audience)",
		}},
		{"plain http resource", "version: 1\nauth:\n  resource: http://mcp.example.com/mcp\n  api_keys: []\n", []string{
			"c.yaml:3:13: auth.resource: must use https (plain http is accepted only for loopback hosts)",
		}},
		{"issuer missing, bad algorithms", "version: 1\nauth:\n  resource: https://m.example.com/mcp\n  oauth:\n    algorithms: [RS256, none, HS256, XX1]\n", []string{
			"c.yaml:5:5: auth.oauth.issuer: required field is missing; set it to the authorization server's issuer URL (the iss claim of its tokens)",
			"c.yaml:5:25: auth.oauth.algorithms[1]: alg none accepts unsigned tokens and is never allowed",
			"c.yaml:5:31: auth.oauth.algorithms[2]: HMAC algorithms are not allowed: the key would be shared with every client (want one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA)",
			`c.yaml:5:38: auth.oauth.algorithms[3]: unknown algorithm "XX1" (want one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA)`,
		}},
		{"api key problems", "version: 1\nauth:\n  resource: https://m.example.com/mcp\n  api_keys:\n    - {name: a, sha256: sk_live_plainkey, scopes: [x]}\n    - {name: a, sha256: " + hash64 + "}\n", []string{
			"c.yaml:5:25: auth.api_keys[0].sha256: must be the key's SHA-256 as 64 hex digits (printf %s \"$KEY\" | sha256sum); never the key itself",
			"c.yaml:6:7: auth.api_keys[1].scopes: required field is missing",
			`c.yaml:6:14: auth.api_keys[1].name: duplicate API key name "a" (first at line 5)`,
		}},
		{"introspection secret written in clear", "version: 1\nauth:\n  resource: https://m.example.com/mcp\n  oauth:\n    issuer: https://as.example.com\n    introspection: {url: https://as.example.com/i, client_id: tb, client_secret: hunter2hunter2}\n", []string{
			"c.yaml:6:82: auth.oauth.introspection.client_secret: a credential must be one ${env:NAME} or ${file:/path} reference, not a literal value",
		}},
		{"cors wildcard", "version: 1\nauth: {mode: none, cors: {allowed_origins: ['*', 'https://a.example.com/x']}}\n", []string{
			"c.yaml:2:45: auth.cors.allowed_origins[0]: * is not allowed: list the origins of the browser clients, such as https://app.example.com",
			`c.yaml:2:50: auth.cors.allowed_origins[1]: "https://a.example.com/x" is not an origin: want scheme://host[:port], such as https://app.example.com`,
		}},
		{"tool scopes", tool + "    scopes: [a b, '*']\n", []string{
			"c.yaml:10:13: tools[0] (t).scopes: * is not a scope a tool can require",
			`c.yaml:10:14: tools[0] (t).scopes[0]: "a b" is not a valid scope (no spaces, quotes or backslashes)`,
		}},
		{"upstream auth type unknown", "version: 1\nupstreams:\n  crm:\n    base_url: http://h\n    auth: {type: oauth}\n", []string{
			`c.yaml:5:18: upstreams.crm.auth.type: unknown type "oauth" (want one of none, api_key, bearer, basic, oauth2_client_credentials, oauth2_refresh_token, forward, token_exchange)`,
		}},
		{"upstream secret in clear and missing fields", "version: 1\nupstreams:\n  crm:\n    base_url: http://h\n    auth: {type: oauth2_client_credentials, client_secret: abc, audience: x}\n", []string{
			"c.yaml:5:11: upstreams.crm.auth.token_url: required field is missing for type oauth2_client_credentials",
			"c.yaml:5:11: upstreams.crm.auth.client_id: required field is missing for type oauth2_client_credentials",
			"c.yaml:5:60: upstreams.crm.auth.client_secret: a credential must be one ${env:NAME} or ${file:/path} reference, not a literal value",
		}},
		{"field of another type", "version: 1\nupstreams:\n  crm:\n    base_url: http://h\n    auth: {type: bearer, token: '${env:CRM_API_KEY}', username: u}\n", []string{
			"c.yaml:5:55: upstreams.crm.auth.username: unknown field (known fields: type, token)",
		}},
		{"header set twice", "version: 1\nupstreams:\n  crm:\n    base_url: http://h\n    headers: {Authorization: '${env:CRM_API_KEY}'}\n    auth: {type: bearer, token: '${env:CRM_API_KEY}'}\n", []string{
			"c.yaml:5:5: upstreams.crm.headers: header Authorization is set by auth (type bearer); remove it from headers",
		}},
		{"unset env", "version: 1\nupstreams:\n  crm:\n    base_url: http://h\n    auth: {type: basic, username: u, password: '${env:NOPE}'}\n", []string{
			"c.yaml:5:48: upstreams.crm.auth.password: ${env:NOPE}: environment variable NOPE is not set",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("c.yaml", []byte(tt.give), testOptions()...)
			var le *LoadError
			if !errors.As(err, &le) {
				t.Fatalf("err = %v, want a *LoadError", err)
			}
			var got []string
			for _, p := range le.Problems {
				got = append(got, p.String())
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
			if strings.Contains(err.Error(), "s3cr3t-value") || strings.Contains(err.Error(), "hunter2") {
				t.Errorf("a problem quotes a secret: %v", err)
			}
		})
	}
}

func TestAuthDefaults(t *testing.T) {
	src := tool + `    scopes: [crm.admin]
  - {name: r, description: d, upstream: crm, method: GET, path: /r}
  - {name: w, description: d, upstream: crm, method: POST, path: /w}
  - {name: open, description: d, upstream: crm, method: POST, path: /o, scopes: []}
auth:
  resource: https://mcp.example.com/mcp
  oauth: {issuer: https://as.example.com/}
  default_scopes: {read_only: [crm.read]}
`
	cat, err := Parse("c.yaml", []byte(src), testOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	a := cat.Auth
	o := a.OAuth
	if o.ClockSkew != 30*time.Second || !cmp.Equal(o.Audiences, []string{"https://mcp.example.com/mcp"}) ||
		!cmp.Equal(o.AuthorizationServers, []string{"https://as.example.com/"}) || !cmp.Equal(o.Algorithms, DefaultAlgorithms) || !a.FilterToolsList {
		t.Errorf("defaults not filled: %+v %+v", a, o)
	}
	got := map[string][]string{}
	for _, tl := range cat.Tools {
		got[tl.Name] = a.ToolScopes(tl)
	}
	want := map[string][]string{"t": {"crm.admin"}, "r": {"crm.read"}, "w": {DefaultWriteScope}, "open": {}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("tool scopes (-want +got):\n%s", diff)
	}
}

func TestUpstreamAuthSecretsPrintAsReferences(t *testing.T) {
	src := "version: 1\nupstreams:\n  crm:\n    base_url: http://h\n    auth: {type: oauth2_refresh_token, token_url: 'https://as.example.com/t', client_id: tb, client_secret: '${env:CRM_API_KEY}', refresh_token: '${file:/run/secrets/token}'}\n"
	cat, err := Parse("c.yaml", []byte(src), testOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	a := cat.Upstreams["crm"].Auth
	if a.ClientSecret.Reveal() != "s3cr3t-value" || a.RefreshToken.Reveal() != "file-s3cr3t" {
		t.Fatal("secrets not resolved")
	}
	var refs []string
	for _, s := range a.Secrets() {
		refs = append(refs, s.String())
	}
	if diff := cmp.Diff([]string{"${env:CRM_API_KEY}", "${file:/run/secrets/token}"}, refs); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if a.NeedsCallerToken() || a.AuthStyle != "header" {
		t.Errorf("NeedsCallerToken %v, AuthStyle %q", a.NeedsCallerToken(), a.AuthStyle)
	}
}

func TestProjectionScopes(t *testing.T) {
	src := `version: 1
sources:
  stripe: {scheme: stripe, secrets: ["${env:CRM_API_KEY}"]}
projections:
  payments: {sources: [stripe], key: data.object.customer, scopes: [payments.read]}
  refunds: {sources: [stripe], key: data.object.customer}
  public: {sources: [stripe], key: data.object.customer, scopes: []}
auth:
  resource: https://mcp.example.com/mcp
  oauth: {issuer: https://as.example.com/}
  default_scopes: {read_only: [state.read]}
`
	cat, err := Parse("c.yaml", []byte(src), testOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for name, p := range cat.Projections {
		got[name] = cat.Auth.ProjectionScopes(p)
	}
	want := map[string][]string{"payments": {"payments.read"}, "refunds": {"state.read"}, "public": {}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("projection scopes (-want +got):\n%s", diff)
	}
	for uri, want := range map[string]string{
		"toolbus://state/payments":             "payments",
		"toolbus://state/payments/cus_1":       "payments",
		"toolbus://state/payments/a%2Fb":       "payments",
		"toolbus://state/":                     "",
		"toolbus://other/payments":             "",
		"ui://widget/toolbus://state/payments": "",
	} {
		name, ok := ProjectionOfURI(uri)
		if name != want || ok != (want != "") {
			t.Errorf("ProjectionOfURI(%q) = %q, %v; want %q", uri, name, ok, want)
		}
	}
}

func TestServerAuthSame(t *testing.T) {
	parse := func(src string) *ServerAuth {
		t.Helper()
		cat, err := Parse("c.yaml", []byte(src), testOptions()...)
		if err != nil {
			t.Fatal(err)
		}
		return cat.Auth
	}
	const section = `auth:
  resource: https://mcp.example.com/mcp
  api_keys:
    - {name: ops, sha256: 0000000000000000000000000000000000000000000000000000000000000000, scopes: ["*"]}
`
	a := parse("version: 1\n" + section)
	moved := parse("version: 1\n\n\n" + section)
	other := parse("version: 1\n" + strings.Replace(section, "scopes: [\"*\"]", "scopes: [tools.read]", 1))
	switch {
	case !a.Same(moved):
		t.Error("the same section written lower in the file is not the same")
	case a.Same(other):
		t.Error("a section with a re-scoped key is the same")
	case a.Same(nil) || !(*ServerAuth)(nil).Same(nil):
		t.Error("nil sections compare wrong")
	}
}
