package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/toolbus/toolbus/examples/crmgraphql"
)

// groupsCatalog has one secret reference of every group. DIR is replaced
// by a temporary directory that holds the secret files a case provides.
const groupsCatalog = `version: 1
auth:
  resource: https://mcp.example.com/mcp
  oauth:
    issuer: https://auth.example.com/
    introspection:
      url: https://auth.example.com/introspect
      client_id: toolbus
      client_secret: ${file:DIR/server/introspection-secret}
upstreams:
  crm:
    base_url: https://crm.example.com/api
    headers:
      X-Api-Key: ${file:DIR/upstream/crm-api-key}
  billing:
    base_url: https://billing.example.com/api
    auth: {type: bearer, token: "${env:BILLING_TOKEN}"}
  gql:
    kind: graphql
    endpoint: https://gql.example.com/graphql
    headers:
      Authorization: Bearer ${env:GQL_TOKEN}
    schema: {introspect: true}
sources:
  stripe:
    scheme: stripe
    secrets: ["${file:DIR/webhooks/stripe}", "${env:STRIPE_OLD}"]
`

// Every secret file and variable of groupsCatalog, and its value.
var (
	groupsFiles = map[string]string{
		"server/introspection-secret": "intro-s3cr3t",
		"upstream/crm-api-key":        "crm-s3cr3t",
		"webhooks/stripe":             "whsec_current_s3cr3t",
	}
	groupsEnv = map[string]string{
		"BILLING_TOKEN": "billing-s3cr3t",
		"GQL_TOKEN":     "gql-s3cr3t",
		"STRIPE_OLD":    "whsec_old_s3cr3t",
	}
)

// writeGroupsCatalog writes groupsCatalog and the given secret files.
func writeGroupsCatalog(t *testing.T, files []string) (path, dir, src string) {
	t.Helper()
	dir = t.TempDir()
	src = strings.ReplaceAll(groupsCatalog, "DIR", dir)
	path = filepath.Join(dir, "catalog.yaml")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		name := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(name), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(name, []byte(groupsFiles[f]+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return path, dir, src
}

func envOf(names []string) Option {
	return WithLookupEnv(func(k string) (string, bool) {
		for _, n := range names {
			if n == k {
				return groupsEnv[k], true
			}
		}
		return "", false
	})
}

// posOf is the file:line:col at which token starts in src.
func posOf(t *testing.T, file, src, token string) string {
	t.Helper()
	i := strings.Index(src, token)
	if i < 0 {
		t.Fatalf("%q not in the catalog", token)
	}
	line := 1 + strings.Count(src[:i], "\n")
	col := i - strings.LastIndexByte(src[:i], '\n')
	return fmt.Sprintf("%s:%d:%d", file, line, col)
}

// Each service's groups read exactly its own secrets: the others may be
// missing from the process, and when one of its own is missing the load
// fails with file:line:col, field and reference.
func TestSecretGroupsLoad(t *testing.T) {
	all := []string{"server/introspection-secret", "upstream/crm-api-key", "webhooks/stripe"}
	allEnv := []string{"BILLING_TOKEN", "GQL_TOKEN", "STRIPE_OLD"}
	tests := []struct {
		name     string
		services []string // nil: no WithSecrets
		files    []string // secret files present
		env      []string // variables set
		// wantErr are the problems, with DIR and FILE for the directory
		// and the catalog's path, and @token for the position of token.
		wantErr []string
		// wantResolved lists, of "server", "crm", "billing", "gql",
		// "stripe", those whose secrets are read.
		wantResolved []string
	}{
		{name: "rest-worker without webhook secret file nor its variable",
			services: []string{"rest-worker"}, files: []string{"upstream/crm-api-key"}, env: []string{"BILLING_TOKEN"},
			wantResolved: []string{"crm", "billing"}},
		{name: "rest-worker without its header file",
			services: []string{"rest-worker"}, files: []string{"server/introspection-secret", "webhooks/stripe"}, env: allEnv,
			wantErr: []string{"@${file:DIR/upstream: upstreams.crm.headers.X-Api-Key: ${file:DIR/upstream/crm-api-key}: cannot read file: open DIR/upstream/crm-api-key: no such file or directory"}},
		{name: "rest-worker without its auth variable",
			services: []string{"rest-worker"}, files: all, env: []string{"GQL_TOKEN", "STRIPE_OLD"},
			wantErr: []string{`@"${env:BILLING_TOKEN}": upstreams.billing.auth.token: ${env:BILLING_TOKEN}: environment variable BILLING_TOKEN is not set`}},
		{name: "webhook-ingest without upstream nor server secrets",
			services: []string{"webhook-ingest"}, files: []string{"webhooks/stripe"}, env: []string{"STRIPE_OLD"},
			wantResolved: []string{"stripe"}},
		{name: "webhook-ingest without its secret file",
			services: []string{"webhook-ingest"}, files: []string{"upstream/crm-api-key", "server/introspection-secret"}, env: allEnv,
			wantErr: []string{`@"${file:DIR/webhooks: sources.stripe.secrets[0]: ${file:DIR/webhooks/stripe}: cannot read file: open DIR/webhooks/stripe: no such file or directory`}},
		{name: "webhook-ingest without its previous secret's variable",
			services: []string{"webhook-ingest"}, files: all, env: []string{"BILLING_TOKEN", "GQL_TOKEN"},
			wantErr: []string{`@"${env:STRIPE_OLD}": sources.stripe.secrets[1]: ${env:STRIPE_OLD}: environment variable STRIPE_OLD is not set`}},
		{name: "graphql-worker reads only the graphql upstream",
			services: []string{"graphql-worker"}, env: []string{"GQL_TOKEN"},
			wantResolved: []string{"gql"}},
		{name: "graphql-worker without its header variable",
			services: []string{"graphql-worker"}, files: all, env: []string{"BILLING_TOKEN", "STRIPE_OLD"},
			wantErr: []string{"@Bearer ${env:GQL_TOKEN}: upstreams.gql.headers.Authorization: ${env:GQL_TOKEN}: environment variable GQL_TOKEN is not set"}},
		{name: "mcp-front reads server auth and introspection headers",
			services: []string{"mcp-front"}, files: []string{"server/introspection-secret"}, env: []string{"GQL_TOKEN"},
			wantResolved: []string{"server", "gql"}},
		{name: "mcp-front without its introspection client secret",
			services: []string{"mcp-front"}, env: []string{"GQL_TOKEN"},
			wantErr: []string{"@${file:DIR/server: auth.oauth.introspection.client_secret: ${file:DIR/server/introspection-secret}: cannot read file: open DIR/server/introspection-secret: no such file or directory"}},
		{name: "state-updater reads none",
			services: []string{"state-updater"}},
		{name: "two services read both groups",
			services: []string{"rest-worker", "webhook-ingest"}, files: []string{"upstream/crm-api-key", "webhooks/stripe"}, env: []string{"BILLING_TOKEN", "STRIPE_OLD"},
			wantResolved: []string{"crm", "billing", "stripe"}},
		{name: "default reads everything",
			files: all, env: allEnv,
			wantResolved: []string{"server", "crm", "billing", "gql", "stripe"}},
		{name: "default needs everything",
			files: []string{"upstream/crm-api-key", "server/introspection-secret"}, env: []string{"BILLING_TOKEN", "GQL_TOKEN"},
			wantErr: []string{
				`@"${file:DIR/webhooks: sources.stripe.secrets[0]: ${file:DIR/webhooks/stripe}: cannot read file: open DIR/webhooks/stripe: no such file or directory`,
				`@"${env:STRIPE_OLD}": sources.stripe.secrets[1]: ${env:STRIPE_OLD}: environment variable STRIPE_OLD is not set`,
			}},
		{name: "all is every group",
			services: []string{"all"}, env: allEnv, files: []string{"upstream/crm-api-key", "webhooks/stripe"},
			wantErr: []string{"@${file:DIR/server: auth.oauth.introspection.client_secret: ${file:DIR/server/introspection-secret}: cannot read file: open DIR/server/introspection-secret: no such file or directory"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path, dir, src := writeGroupsCatalog(t, tt.files)
			opts := []Option{envOf(tt.env)}
			if tt.services != nil {
				opts = append(opts, WithSecrets(SecretsFor(tt.services...)))
			}
			cat, err := Load(path, opts...)
			if tt.wantErr != nil {
				var want []string
				for _, w := range tt.wantErr {
					token, rest, _ := strings.Cut(strings.TrimPrefix(w, "@"), ": ")
					token = strings.ReplaceAll(token, "DIR", dir)
					want = append(want, posOf(t, path, src, token)+": "+strings.ReplaceAll(rest, "DIR", dir))
				}
				if err == nil || err.Error() != strings.Join(want, "\n") {
					t.Fatalf("Load error:\n%v\nwant:\n%s", err, strings.Join(want, "\n"))
				}
				return
			}
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			checkResolved(t, cat, tt.wantResolved)
			wantGroups := SecretsAll
			if tt.services != nil {
				wantGroups = SecretsFor(tt.services...)
			}
			if cat.SecretGroups() != wantGroups {
				t.Errorf("SecretGroups = %s, want %s", cat.SecretGroups(), wantGroups)
			}
		})
	}
}

// checkResolved checks which secrets of groupsCatalog were read, and that
// those read hold their values.
func checkResolved(t *testing.T, cat *Catalog, want []string) {
	t.Helper()
	secrets := map[string][]Secret{
		"server":  cat.Auth.Secrets()[1:], // client_id is a literal
		"crm":     cat.Upstreams["crm"].Secrets(),
		"billing": cat.Upstreams["billing"].Secrets(),
		"gql":     cat.Upstreams["gql"].Secrets(),
		"stripe":  cat.Sources["stripe"].Secrets,
	}
	values := map[string][]string{
		"server":  {groupsFiles["server/introspection-secret"]},
		"crm":     {groupsFiles["upstream/crm-api-key"]},
		"billing": {groupsEnv["BILLING_TOKEN"]},
		"gql":     {"Bearer " + groupsEnv["GQL_TOKEN"]},
		"stripe":  {groupsFiles["webhooks/stripe"], groupsEnv["STRIPE_OLD"]},
	}
	for name, list := range secrets {
		wantRead := false
		for _, w := range want {
			wantRead = wantRead || w == name
		}
		if len(list) != len(values[name]) {
			t.Fatalf("%s: %d secrets, want %d", name, len(list), len(values[name]))
		}
		for i, s := range list {
			if s.Resolved() != wantRead {
				t.Errorf("%s secret %s: resolved = %v, want %v", name, s, s.Resolved(), wantRead)
				continue
			}
			if wantRead && s.Reveal() != values[name][i] {
				t.Errorf("%s secret %s does not hold its value", name, s)
			}
		}
	}
	stripe := cat.Sources["stripe"]
	_, verr := stripe.Verifier()
	switch read := len(stripe.Signature.Secrets) > 0; {
	case read && verr != nil:
		t.Errorf("Verifier of resolved secrets: %v", verr)
	case !read && verr == nil:
		t.Error("Verifier of unresolved secrets succeeded")
	}
}

// References of groups that are not read are still checked: a malformed
// reference, a literal credential or an unknown kind fails the load with
// file:line:col and field, whichever groups are asked for.
func TestSecretGroupsStillCheckUnread(t *testing.T) {
	tests := []struct {
		name, old, new string
		want           string // @token: message
	}{
		{"webhook secret literal", `"${file:DIR/webhooks/stripe}"`, `"whsec_pasted_by_mistake"`,
			`@"whsec_pasted: sources.stripe.secrets[0]: a secret must be one ${env:NAME} or ${file:/path} reference, not a literal value`},
		{"webhook env name malformed", `"${env:STRIPE_OLD}"`, `"${env:STRIPE-OLD}"`,
			`@"${env:STRIPE-OLD}": sources.stripe.secrets[1]: malformed reference ${env:STRIPE-OLD}: want ${env:NAME} with NAME matching [A-Za-z_][A-Za-z0-9_]*`},
		{"webhook file path relative", `"${file:DIR/webhooks/stripe}"`, `"${file:webhooks/stripe}"`,
			`@"${file:webhooks: sources.stripe.secrets[0]: malformed reference ${file:webhooks/stripe}: want ${file:/absolute/path}`},
		{"upstream header unknown kind", "${file:DIR/upstream/crm-api-key}", "${vault:crm/api-key}",
			"@${vault: upstreams.crm.headers.X-Api-Key: malformed reference ${vault:crm/api-key}: want ${env:NAME} or ${file:/path}"},
		{"upstream header literal credential", "X-Api-Key: ${file:DIR/upstream/crm-api-key}", "X-Api-Key: k-pasted-by-mistake",
			"@k-pasted: upstreams.crm.headers.X-Api-Key: header X-Api-Key carries a credential, so its value must not be written in the catalog: use ${env:NAME} or ${file:/path}"},
		{"upstream header unterminated", "Bearer ${env:GQL_TOKEN}", "Bearer ${env:GQL_TOKEN",
			`@Bearer ${env:GQL_TOKEN: upstreams.gql.headers.Authorization: unterminated reference "${env:GQL_TOKEN": want ${env:NAME} or ${file:/path}`},
		{"upstream auth literal", `"${env:BILLING_TOKEN}"`, `"tok-pasted"`,
			`@"tok-pasted": upstreams.billing.auth.token: a credential must be one ${env:NAME} or ${file:/path} reference, not a literal value`},
		{"server auth unknown kind", "${file:DIR/server/introspection-secret}", "${secret:intro}",
			"@${secret: auth.oauth.introspection.client_secret: a credential must be one ${env:NAME} or ${file:/path} reference, not a literal value"},
		{"server auth env name malformed", "${file:DIR/server/introspection-secret}", "${env:1X}",
			"@${env:1X}: auth.oauth.introspection.client_secret: malformed reference ${env:1X}: want ${env:NAME} with NAME matching [A-Za-z_][A-Za-z0-9_]*"},
	}
	for _, tt := range tests {
		for _, services := range [][]string{{"state-updater"}, {"rest-worker"}, {"webhook-ingest"}, {"mcp-front"}} {
			t.Run(tt.name+"/"+strings.Join(services, ","), func(t *testing.T) {
				dir := t.TempDir()
				src := strings.ReplaceAll(strings.Replace(groupsCatalog, tt.old, tt.new, 1), "DIR", dir)
				if !strings.Contains(groupsCatalog, tt.old) {
					t.Fatalf("%q not in the catalog", tt.old)
				}
				_, err := Parse("c.yaml", []byte(src), WithSecrets(SecretsFor(services...)),
					WithLookupEnv(func(k string) (string, bool) { v, ok := groupsEnv[k]; return v, ok }),
					WithReadFile(func(string) ([]byte, error) { return []byte("s3cr3t"), nil }))
				token, rest, _ := strings.Cut(strings.TrimPrefix(tt.want, "@"), ": ")
				want := posOf(t, "c.yaml", src, strings.ReplaceAll(token, "DIR", dir)) + ": " + rest
				if err == nil || err.Error() != want {
					t.Errorf("error:\n%v\nwant:\n%s", err, want)
				}
			})
		}
	}
}

// An unresolved secret is never usable as a credential: Reveal panics
// instead of returning "", Err and the consumers' checks name the
// reference, and it prints as its reference.
func TestUnresolvedSecretCannotBeRevealed(t *testing.T) {
	path, _, _ := writeGroupsCatalog(t, nil) // no secret file at all
	cat, err := Load(path, envOf(nil), WithSecrets(SecretsNone))
	if err != nil {
		t.Fatal(err)
	}
	crm := cat.Upstreams["crm"]
	key := crm.Headers[0].Value
	ref := key.String()
	if !strings.HasPrefix(ref, "${file:") || !key.IsRef() || key.Resolved() {
		t.Fatalf("header = %q (ref %v, resolved %v), want an unresolved reference", ref, key.IsRef(), key.Resolved())
	}
	if key.Groups() != SecretsRESTUpstreams {
		t.Errorf("groups = %s, want %s", key.Groups(), SecretsRESTUpstreams)
	}

	func() {
		defer func() {
			r := recover()
			if r == nil {
				t.Fatal("Reveal of an unresolved secret returned instead of panicking")
			}
			if msg := fmt.Sprint(r); !strings.Contains(msg, ref) || !strings.Contains(msg, "upstreams.crm.headers.X-Api-Key") {
				t.Errorf("panic %q does not name the reference and its field", msg)
			}
		}()
		v := key.Reveal()
		t.Errorf("Reveal returned %q", v)
	}()

	var use *UnresolvedSecretError
	if err := key.Err(); !errors.As(err, &use) || use.Ref != ref || !strings.Contains(err.Error(), path+":") {
		t.Errorf("Err = %v, want an *UnresolvedSecretError with %s at %s", err, ref, path)
	}
	if err := crm.SecretsErr(); err == nil || !strings.Contains(err.Error(), "upstream crm: ") || !strings.Contains(err.Error(), ref) {
		t.Errorf("SecretsErr = %v", err)
	}
	if err := cat.Upstreams["billing"].SecretsErr(); err == nil || !strings.Contains(err.Error(), "${env:BILLING_TOKEN}") {
		t.Errorf("billing SecretsErr = %v", err)
	}
	stripe := cat.Sources["stripe"]
	if len(stripe.Signature.Secrets) != 0 {
		t.Errorf("Signature of unresolved secrets holds %d secrets", len(stripe.Signature.Secrets))
	}
	if _, err := stripe.Verifier(); err == nil || !strings.Contains(err.Error(), "source stripe: ") || !strings.Contains(err.Error(), "${env:STRIPE_OLD}") {
		t.Errorf("Verifier = %v, want an error naming the references", err)
	}
	for _, s := range cat.Auth.Secrets()[1:] {
		if s.Err() == nil {
			t.Errorf("introspection secret %s is usable", s)
		}
	}
	// Printing shows the reference, never a value (there is none).
	b, _ := json.Marshal(key)
	if string(b) != fmt.Sprintf("%q", ref) || fmt.Sprintf("%v %#v", key, key) != ref+" "+ref {
		t.Errorf("prints as %s / %v", b, key)
	}
	// Resolved secrets are unchanged.
	if err := Literal("x").Err(); err != nil || Literal("x").Reveal() != "x" || !FromRef("${env:A}", "v").Resolved() {
		t.Error("literal or resolved secret reported unusable")
	}
}

// ResolveGraphQLSchemas sends the upstream's headers when it introspects:
// a process without them does not introspect at all, one with them sends
// their values.
func TestSecretGroupsIntrospection(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	h := crmgraphql.NewHandler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("Authorization"))
		mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	src := "version: 1\nupstreams:\n  gql:\n    kind: graphql\n    endpoint: " + srv.URL + "\n    headers: {Authorization: 'Bearer ${env:GQL_TOKEN}'}\n    schema: {introspect: true}\n"
	env := WithLookupEnv(func(k string) (string, bool) { return "gql-s3cr3t", k == "GQL_TOKEN" })

	for _, services := range [][]string{{"webhook-ingest"}, {"rest-worker"}, {"state-updater"}} {
		cat, err := Parse("c.yaml", []byte(src), WithSecrets(SecretsFor(services...)))
		if err != nil {
			t.Fatalf("%v: %v", services, err)
		}
		got, err := ResolveGraphQLSchemas(context.Background(), cat, srv.Client())
		if err != nil || got != cat || len(got.PendingGraphQLSchemas()) != 1 {
			t.Errorf("%v: ResolveGraphQLSchemas = %p, %v; want the pending catalog itself", services, got, err)
		}
	}
	mu.Lock()
	if len(seen) != 0 {
		t.Errorf("introspected without the headers: %q", seen)
	}
	mu.Unlock()

	for _, services := range [][]string{{"mcp-front"}, {"graphql-worker"}} {
		cat, err := Parse("c.yaml", []byte(src), env, WithSecrets(SecretsFor(services...)))
		if err != nil {
			t.Fatal(err)
		}
		got, err := ResolveGraphQLSchemas(context.Background(), cat, srv.Client())
		if err != nil || len(got.PendingGraphQLSchemas()) != 0 {
			t.Fatalf("%v: ResolveGraphQLSchemas: %v (pending %v)", services, err, got.PendingGraphQLSchemas())
		}
		if got.SecretGroups() != SecretsFor(services...) {
			t.Errorf("%v: the resolved catalog has groups %s", services, got.SecretGroups())
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 2 || seen[0] != "Bearer gql-s3cr3t" || seen[1] != "Bearer gql-s3cr3t" {
		t.Errorf("introspection sent Authorization %q, want the header twice", seen)
	}
}

// A reload reads the same groups as the start: a bundle published by a
// machine with every secret loads in a process that holds only its own.
func TestSecretGroupsBundleReload(t *testing.T) {
	path, dir, _ := writeGroupsCatalog(t, []string{"server/introspection-secret", "upstream/crm-api-key", "webhooks/stripe"})
	all := envOf([]string{"BILLING_TOKEN", "GQL_TOKEN", "STRIPE_OLD"})
	_, b, err := LoadBundle(path, all)
	if err != nil {
		t.Fatal(err)
	}
	for name := range b.Files {
		if strings.HasPrefix(name, dir+"/server") || strings.HasPrefix(name, dir+"/upstream") || strings.HasPrefix(name, dir+"/webhooks") {
			t.Errorf("bundle carries secret file %s", name)
		}
	}
	if err := os.RemoveAll(filepath.Join(dir, "upstream")); err != nil {
		t.Fatal(err)
	}
	start, err := Load(path, envOf([]string{"STRIPE_OLD"}), WithSecrets(SecretsFor("webhook-ingest")))
	if err != nil {
		t.Fatal(err)
	}
	again, err := ParseBundle(b, envOf([]string{"STRIPE_OLD"}), WithSecrets(start.SecretGroups()))
	if err != nil {
		t.Fatalf("reload with the start's groups: %v", err)
	}
	if !again.Sources["stripe"].Secrets[0].Resolved() || again.Upstreams["crm"].Headers[0].Value.Resolved() {
		t.Error("reload resolved other groups than the start")
	}
	if _, err := ParseBundle(b, envOf([]string{"STRIPE_OLD"})); err == nil || !strings.Contains(err.Error(), "upstream/crm-api-key}: cannot read file") {
		t.Errorf("reload with every group = %v, want the missing upstream file", err)
	}
}

func TestSecretsFor(t *testing.T) {
	tests := []struct {
		services []string
		want     SecretGroups
	}{
		{nil, SecretsNone},
		{[]string{"state-updater"}, SecretsNone},
		{[]string{"mcp-front"}, SecretsServerAuth | SecretsGraphQLIntrospection},
		{[]string{"rest-worker"}, SecretsRESTUpstreams},
		{[]string{"graphql-worker"}, SecretsGraphQLUpstreams | SecretsGraphQLIntrospection},
		{[]string{"webhook-ingest"}, SecretsWebhooks},
		{[]string{"webhook-ingest", "state-updater"}, SecretsWebhooks},
		{[]string{"mcp-front", "rest-worker", "graphql-worker", "webhook-ingest", "state-updater"}, SecretsAll},
		{[]string{"all"}, SecretsAll},
		{[]string{"mcp-frnt"}, SecretsAll},
	}
	for _, tt := range tests {
		if got := SecretsFor(tt.services...); got != tt.want {
			t.Errorf("SecretsFor(%v) = %s, want %s", tt.services, got, tt.want)
		}
	}
	if s := (SecretsRESTUpstreams | SecretsWebhooks).String(); s != "rest-upstreams+webhooks" {
		t.Errorf("String = %q", s)
	}
}
