package catalog

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// src declares one valid source; projection cases start at line 5.
const src = "version: 1\nsources:\n  stripe: {scheme: stripe, secrets: [\"${env:CRM_API_KEY}\"]}\nprojections:\n"

func TestParseWebhookRules(t *testing.T) {
	tests := []struct {
		name string
		give string
		want []string
	}{
		{"valid source and projection", src + "  payments: {sources: [stripe], key: data.object.customer}\n", nil},
		{"unknown source field", "version: 1\nsources:\n  s: {scheme: github, secrets: [\"${env:CRM_API_KEY}\"], retries: 3}\n", []string{
			"c.yaml:3:56: sources.s.retries: unknown field (known fields: scheme, secrets, tolerance, max_body_bytes, header, algorithm, encoding, prefix, signed_payload, timestamp_header, id_header, type_header, id_json_path, type_json_path)",
		}},
		{"bad source name", "version: 1\nsources:\n  a.b: {scheme: github, secrets: [\"${env:CRM_API_KEY}\"]}\n", []string{
			"c.yaml:3:3: sources.\"a.b\": source name must match [a-zA-Z0-9_-]{1,32}",
		}},
		{"unknown scheme", "version: 1\nsources:\n  s: {scheme: paypal, secrets: [\"${env:CRM_API_KEY}\"]}\n", []string{
			"c.yaml:3:15: sources.s.scheme: unknown scheme \"paypal\": want one of github, hmac, shopify, slack, standard-webhooks, stripe, svix",
		}},
		{"missing scheme and secrets", "version: 1\nsources:\n  s: {tolerance: 5m}\n", []string{
			"c.yaml:3:3: sources.s.scheme: required field is missing; want one of github, hmac, shopify, slack, standard-webhooks, stripe, svix",
			"c.yaml:3:3: sources.s.secrets: required field is missing; list ${env:NAME} or ${file:/path} references, current secret first",
		}},
		{"literal secret", "version: 1\nsources:\n  s: {scheme: github, secrets: [whsec_abc]}\n", []string{
			"c.yaml:3:33: sources.s.secrets[0]: a secret must be one ${env:NAME} or ${file:/path} reference, not a literal value",
		}},
		{"secret with literal part", "version: 1\nsources:\n  s: {scheme: github, secrets: [\"x${env:CRM_API_KEY}\"]}\n", []string{
			"c.yaml:3:33: sources.s.secrets[0]: a secret must be one ${env:NAME} or ${file:/path} reference, not a literal value",
		}},
		{"unset secret env", "version: 1\nsources:\n  s: {scheme: github, secrets: [\"${env:NOPE}\"]}\n", []string{
			"c.yaml:3:33: sources.s.secrets[0]: ${env:NOPE}: environment variable NOPE is not set",
		}},
		{"empty secrets", "version: 1\nsources:\n  s: {scheme: github, secrets: []}\n", []string{
			"c.yaml:3:32: sources.s.secrets: must list at least one secret",
		}},
		{"secrets not a list", "version: 1\nsources:\n  s: {scheme: github, secrets: \"${env:CRM_API_KEY}\"}\n", []string{
			"c.yaml:3:32: sources.s.secrets: must be a list of ${env:NAME} or ${file:/path} references, got a string",
		}},
		{"tolerance on github", "version: 1\nsources:\n  s: {scheme: github, secrets: [\"${env:CRM_API_KEY}\"], tolerance: 5m}\n", []string{
			"c.yaml:3:15: sources.s: invalid github configuration: github: the scheme signs no timestamp, tolerance does not apply",
		}},
		{"bad tolerance", "version: 1\nsources:\n  s: {scheme: stripe, secrets: [\"${env:CRM_API_KEY}\"], tolerance: soon}\n", []string{
			"c.yaml:3:67: sources.s.tolerance: invalid duration \"soon\": want a value such as 300s or 5m",
		}},
		{"hmac without header", "version: 1\nsources:\n  s: {scheme: hmac, secrets: [\"${file:/run/secrets/token}\"]}\n", []string{
			"c.yaml:3:15: sources.s: invalid hmac configuration: hmac: header is required",
		}},
		{"body limit too large", "version: 1\nsources:\n  s: {scheme: github, secrets: [\"${env:CRM_API_KEY}\"], max_body_bytes: 5MiB}\n", []string{
			"c.yaml:3:72: sources.s.max_body_bytes: must be at most 4MiB, got 5MiB",
		}},
		// Projections.
		{"unknown projection field", src + "  p: {sources: [stripe], key: id, order: 1}\n", []string{
			"c.yaml:5:35: projections.p.order: unknown field (known fields: sources, events, key, fields, version, delete_when, history, scopes)",
		}},
		{"unknown source referenced", src + "  p: {sources: [stripe, github], key: id}\n", []string{
			"c.yaml:5:25: projections.p.sources[1]: unknown source \"github\": declare it under sources",
		}},
		{"invalid source not reported twice", "version: 1\nsources:\n  s: {scheme: nope, secrets: [\"${env:CRM_API_KEY}\"]}\nprojections:\n  p: {sources: [s], key: id}\n", []string{
			"c.yaml:3:15: sources.s.scheme: unknown scheme \"nope\": want one of github, hmac, shopify, slack, standard-webhooks, stripe, svix",
		}},
		{"missing sources and key", src + "  p: {events: [\"*\"]}\n", []string{
			"c.yaml:5:3: projections.p.sources: required field is missing; list the sources that feed the projection",
			"c.yaml:5:3: projections.p.key: required field is missing; want a path such as data.object.customer or a template such as {repository.full_name}#{number}",
		}},
		{"empty sources", src + "  p: {sources: [], key: id}\n", []string{
			"c.yaml:5:16: projections.p.sources: must list at least one source",
		}},
		{"bad key path", src + "  p: {sources: [stripe], key: \"a..b\"}\n", []string{
			"c.yaml:5:31: projections.p.key: invalid path \"a..b\": want dotted names such as data.object.id",
		}},
		{"unclosed key template", src + "  p: {sources: [stripe], key: \"{a.b\"}\n", []string{
			"c.yaml:5:31: projections.p.key: unclosed '{' in \"{a.b\"",
		}},
		{"bad field path", src + "  p: {sources: [stripe], key: id, fields: {amount: \"data object\"}}\n", []string{
			"c.yaml:5:52: projections.p.fields.amount: invalid path \"data object\": want dotted names such as data.object.id",
		}},
		{"bad version path", src + "  p: {sources: [stripe], key: id, version: \"\"}\n", []string{
			"c.yaml:5:44: projections.p.version: empty path",
		}},
		{"delete_when path without value", src + "  p: {sources: [stripe], key: id, delete_when: {path: action}}\n", []string{
			"c.yaml:5:48: projections.p.delete_when: path and value go together: the entity is deleted when the body has value at path",
		}},
		{"delete_when empty", src + "  p: {sources: [stripe], key: id, delete_when: {}}\n", []string{
			"c.yaml:5:48: projections.p.delete_when: want events, or path and value",
		}},
		{"delete_when value a list", src + "  p: {sources: [stripe], key: id, delete_when: {path: a, value: [1]}}\n", []string{
			"c.yaml:5:65: projections.p.delete_when.value: must be a string, number, boolean or null, got a list",
		}},
		{"history out of range", src + "  p: {sources: [stripe], key: id, history: 0}\n", []string{
			"c.yaml:5:44: projections.p.history: must be between 1 and 100, got 0",
		}},
		{"projection scope with a space", src + "  p: {sources: [stripe], key: id, scopes: [\"state read\"]}\n", []string{
			"c.yaml:5:44: projections.p.scopes[0]: \"state read\" is not a valid scope (no spaces, quotes or backslashes)",
		}},
		{"projection requiring *", src + "  p: {sources: [stripe], key: id, scopes: [\"*\"]}\n", []string{
			"c.yaml:5:43: projections.p.scopes: * is not a scope a tool can require",
		}},
		{"bad projection name", src + "  a.b: {sources: [stripe], key: id}\n", []string{
			"c.yaml:5:3: projections.\"a.b\": projection name must match [a-zA-Z0-9_-]{1,32}",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, problems(t, tt.give)); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseWebhooks(t *testing.T) {
	give := `version: 1
sources:
  github:
    scheme: github
    secrets: ["${env:CRM_API_KEY}", "${file:/run/secrets/token}"]
    max_body_bytes: 256KiB
projections:
  open_prs:
    sources: [github]
    events: [pull_request]
    key: "{repository.full_name}#{pull_request.number}"
    fields: {title: pull_request.title, author: pull_request.user.login}
    version: pull_request.updated_at
    delete_when: {path: action, value: closed}
    history: 5
`
	cat, err := Parse("c.yaml", []byte(give), testOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	src := cat.Sources["github"]
	if diff := cmp.Diff([]string{"s3cr3t-value", "file-s3cr3t"}, []string(src.Signature.Secrets)); diff != "" {
		t.Errorf("secrets (-want +got):\n%s", diff)
	}
	if src.MaxBodyBytes != 256<<10 || src.Scheme != "github" {
		t.Errorf("source = %+v", src)
	}
	if got := src.Secrets[0].String(); got != "${env:CRM_API_KEY}" {
		t.Errorf("secret prints as %q, want the reference", got)
	}
	if _, err := src.Verifier(); err != nil {
		t.Errorf("Verifier: %v", err)
	}
	p := cat.Projections["open_prs"]
	if p.Sources[0] != src || p.History != 5 || p.Version.String() != "pull_request.updated_at" {
		t.Errorf("projection = %+v", p)
	}
	var body any
	dec := json.NewDecoder(strings.NewReader(`{"action":"closed","repository":{"full_name":"acme/app"},"pull_request":{"number":42,"title":"T","user":{"login":"ann"}}}`))
	dec.UseNumber()
	if err := dec.Decode(&body); err != nil {
		t.Fatal(err)
	}
	key, err := p.Key.Render(body)
	if err != nil || key != "acme/app#42" {
		t.Errorf("key = %q, %v; want acme/app#42", key, err)
	}
	if !p.DeleteWhen.Matches("pull_request", body) {
		t.Error("closed pull request does not delete")
	}
	if !p.Accepts("github", "pull_request") || p.Accepts("github", "push") || p.Accepts("stripe", "pull_request") {
		t.Error("Accepts filters wrongly")
	}
}

func TestMatchGlob(t *testing.T) {
	tests := []struct {
		pattern, give string
		want          bool
	}{
		{"*", "anything.at/all", true},
		{"payment_intent.*", "payment_intent.succeeded", true},
		{"payment_intent.*", "charge.succeeded", false},
		{"*.succeeded", "charge.succeeded", true},
		{"orders/*", "orders/create", true},
		{"a*b*c", "axxbyyc", true},
		{"a*b*c", "axxbyy", false},
		{"exact", "exact", true},
		{"exact", "exactly", false},
		{"", "", true},
	}
	for _, tt := range tests {
		if got := MatchGlob(tt.pattern, tt.give); got != tt.want {
			t.Errorf("MatchGlob(%q, %q) = %v, want %v", tt.pattern, tt.give, got, tt.want)
		}
	}
}

func TestTemplateRender(t *testing.T) {
	doc := map[string]any{"a": map[string]any{"b": "x", "n": json.Number("7"), "obj": map[string]any{}}, "list": []any{"first"}}
	tests := []struct {
		give    string
		want    string
		wantErr string
	}{
		{give: "a.b", want: "x"},
		{give: "$.a.n", want: "7"},
		{give: "list.0", want: "first"},
		{give: "{a.b}-{a.n}", want: "x-7"},
		{give: "a.missing", wantErr: "a.missing is missing"},
		{give: "a.obj", wantErr: "a.obj is not a string or number"},
	}
	for _, tt := range tests {
		tmpl, err := ParseTemplate(tt.give)
		if err != nil {
			t.Fatalf("ParseTemplate(%q): %v", tt.give, err)
		}
		got, err := tmpl.Render(doc)
		gotErr := ""
		if err != nil {
			gotErr = err.Error()
		}
		if got != tt.want || gotErr != tt.wantErr {
			t.Errorf("Render(%q) = %q, %q; want %q, %q", tt.give, got, gotErr, tt.want, tt.wantErr)
		}
	}
}
