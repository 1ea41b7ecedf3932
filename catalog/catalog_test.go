package catalog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func loadFull(t testing.TB) *Catalog {
	t.Helper()
	cat, err := Load("testdata/full.yaml", testOptions()...)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return cat
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

func init() {
	testEnv["CRM_HOST"] = "127.0.0.1:8081"
	testFiles["/run/secrets/crm_token"] = "tok-s3cr3t\n"
}

var cmpCatalog = []cmp.Option{
	cmp.Comparer(func(a, b Secret) bool { return a == b }),
	cmp.Comparer(func(a, b *url.URL) bool { return a.String() == b.String() }),
	cmpopts.IgnoreUnexported(Tool{}),
	cmpopts.IgnoreFields(Tool{}, "Upstream"),
}

func TestLoadFull(t *testing.T) {
	cat := loadFull(t)
	yes, no := true, false
	wantUpstreams := map[string]*Upstream{
		"crm": {
			Name:        "crm",
			Kind:        KindREST,
			BaseURL:     mustURL("http://127.0.0.1:8081/api/v1"),
			Timeout:     10 * time.Second,
			Concurrency: 32,
			Headers: []Header{
				{Name: "X-Api-Key", Value: FromRef("${env:CRM_API_KEY}", "s3cr3t-value")},
				{Name: "Authorization", Value: FromRef("Bearer ${file:/run/secrets/crm_token}", "Bearer tok-s3cr3t")},
				{Name: "User-Agent", Value: Literal("toolbus")},
			},
			MaxResponseBytes:  512 << 10,
			IdempotencyHeader: "Idempotency-Key",
			Reliability:       defaultReliability(),
			Pos:               Pos{"testdata/full.yaml", 4, 3},
		},
		"billing": {
			Name:             "billing",
			Kind:             KindREST,
			BaseURL:          mustURL("https://billing.example.com"),
			Timeout:          DefaultTimeout,
			Concurrency:      DefaultConcurrency,
			MaxResponseBytes: DefaultMaxResponseBytes,
			Reliability:      defaultReliability(),
			Pos:              Pos{"testdata/full.yaml", 15, 3},
		},
	}
	if diff := cmp.Diff(wantUpstreams, cat.Upstreams, cmpCatalog...); diff != "" {
		t.Errorf("Upstreams (-want +got):\n%s", diff)
	}
	wantTools := []*Tool{
		{
			Name:        "get_customer",
			Title:       "Get customer",
			Description: "Fetch one customer by id.",
			Method:      "GET",
			Path:        "/customers/{id}",
			Params: []Param{
				{Name: "id", In: InPath, WireName: "id", Required: true},
				{Name: "expand", In: InQuery, WireName: "expand[]"},
				{Name: "trace", In: InHeader, WireName: "X-Trace"},
			},
			InputSchema:  json.RawMessage(`{"type":"object","properties":{"id":{"type":"string","description":"Customer id"},"expand":{"type":"array","items":{"type":"string"}},"trace":{"type":"string"}},"required":["id"]}`),
			OutputSchema: json.RawMessage(`{"type":"object","properties":{"id":{"type":"string"},"email":{"type":"string","format":"email"}}}`),
			Annotations:  Annotations{Title: "Get customer", ReadOnly: &yes, Destructive: &no, Idempotent: &yes, OpenWorld: &yes},
			Timeout:      5 * time.Second,
			Meta:         map[string]any{"openai/outputTemplate": "ui://widget/customer.html"},
			Pos:          Pos{"testdata/full.yaml", 18, 5},
		},
		{
			Name:        "create_customer",
			Description: "Create a customer.",
			Method:      "POST",
			Path:        "/customers",
			Params: []Param{
				{Name: "name", In: InBody, WireName: "name", Required: true},
				{Name: "email", In: InBody, WireName: "email", Required: true},
				{Name: "tier", In: InBody, WireName: "tier"},
				{Name: "age", In: InBody, WireName: "age"},
			},
			InputSchema: json.RawMessage(`{"type":"object","properties":{"name":{"type":"string","minLength":1},"email":{"type":"string","format":"email"},"tier":{"type":"string","enum":["free","pro"]},"age":{"type":"integer","minimum":0}},"required":["name","email"],"additionalProperties":false}`),
			Annotations: Annotations{ReadOnly: &no, Destructive: &yes, Idempotent: &no, OpenWorld: &yes},
			Pos:         Pos{"testdata/full.yaml", 41, 5},
		},
		{
			Name:        "delete_customer",
			Description: "Delete a customer.",
			Method:      "DELETE",
			Path:        "/customers/{id}",
			Params:      []Param{{Name: "id", In: InPath, WireName: "id", Required: true}},
			InputSchema: json.RawMessage(`{"type":"object","properties":{"id":{"type":"integer"}},"required":["id"]}`),
			Annotations: Annotations{ReadOnly: &no, Destructive: &yes, Idempotent: &yes, OpenWorld: &no},
			Pos:         Pos{"testdata/full.yaml", 55, 5},
		},
		{
			Name:        "list_invoices",
			Description: "List invoices.",
			Method:      "GET",
			Path:        "/invoices",
			InputSchema: json.RawMessage(`{"type":"object","properties":{}}`),
			Annotations: Annotations{ReadOnly: &yes, Destructive: &no, Idempotent: &yes, OpenWorld: &yes},
			Pos:         Pos{"testdata/full.yaml", 67, 5},
		},
	}
	if diff := cmp.Diff(wantTools, cat.Tools, cmpCatalog...); diff != "" {
		t.Errorf("Tools (-want +got):\n%s", diff)
	}
	wantUpstreamOf := map[string]string{"get_customer": "crm", "create_customer": "crm", "delete_customer": "crm", "list_invoices": "billing"}
	gotUpstreamOf := map[string]string{}
	for _, tl := range cat.Tools {
		got, ok := cat.Tool(tl.Name)
		if !ok || got != tl {
			t.Errorf("Tool(%q) = %v, %v; want the loaded tool", tl.Name, got, ok)
		}
		gotUpstreamOf[tl.Name] = tl.Upstream.Name
	}
	if diff := cmp.Diff(wantUpstreamOf, gotUpstreamOf); diff != "" {
		t.Errorf("tool upstreams (-want +got):\n%s", diff)
	}
	if _, ok := cat.Tool("nope"); ok {
		t.Error(`Tool("nope") found a tool`)
	}
	src, _ := os.ReadFile("testdata/full.yaml")
	if want := fmt.Sprintf("%x", sha256Sum(src)); cat.Digest != want {
		t.Errorf("Digest = %s, want %s", cat.Digest, want)
	}
	if cat.File != "testdata/full.yaml" {
		t.Errorf("File = %q", cat.File)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load("testdata/does-not-exist.yaml")
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load error = %v, want os.ErrNotExist", err)
	}
}

func TestLoadErrorFormat(t *testing.T) {
	_, err := Parse("catalog.yaml", []byte(head+"tools:\n  - name: get_customer\n    description: d\n    upstream: crm\n    method: GET\n    path: /customers/{id}\n  - {name: x, upstream: crm, method: GET, path: /x}\n"))
	want := "catalog.yaml:9:11: tools[0] (get_customer).path: parameter {id} is not a property of input_schema\n" +
		"catalog.yaml:10:5: tools[1] (x).description: required field is missing"
	if err == nil || err.Error() != want {
		t.Errorf("error:\n%v\nwant:\n%s", err, want)
	}
}

func TestDefaults(t *testing.T) {
	cat, err := Parse("c.yaml", []byte(head+`tools:
  - {name: a, description: d, upstream: crm, method: head, path: /a}
  - {name: b, description: d, upstream: crm, method: PUT, path: /b}
  - {name: c, description: d, upstream: crm, method: PATCH, path: /c}
  - {name: e, description: d, upstream: crm, method: POST, path: /e, annotations: {read_only: true}}
  - {name: f, description: d, upstream: crm, method: GET, path: /f, annotations: {idempotent: false, destructive: true, open_world: false}}
`))
	if err != nil {
		t.Fatal(err)
	}
	type hints struct {
		Method                                     string
		ReadOnly, Destructive, Idempotent, OpenWrl bool
	}
	want := map[string]hints{
		"a": {"HEAD", true, false, true, true},
		"b": {"PUT", false, true, true, true},
		"c": {"PATCH", false, true, false, true},
		"e": {"POST", true, false, true, true},
		"f": {"GET", true, true, false, false},
	}
	got := map[string]hints{}
	for _, tl := range cat.Tools {
		a := tl.Annotations
		got[tl.Name] = hints{tl.Method, *a.ReadOnly, *a.Destructive, *a.Idempotent, *a.OpenWorld}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("annotations (-want +got):\n%s", diff)
	}
	u := cat.Upstreams["crm"]
	if u.Timeout != 30*time.Second || u.Concurrency != 16 || u.MaxResponseBytes != 4<<20 || u.Kind != KindREST {
		t.Errorf("upstream defaults = %v %v %v %v", u.Timeout, u.Concurrency, u.MaxResponseBytes, u.Kind)
	}
	if got := cat.Tools[0].CallTimeout(); got != 30*time.Second {
		t.Errorf("CallTimeout = %v, want the upstream's 30s", got)
	}
}

func TestSizesAndReferences(t *testing.T) {
	tests := []struct {
		give      string
		wantSize  int64
		wantValue string
	}{
		{"max_response_bytes: 1048576, headers: {X-A: plain}", 1 << 20, "plain"},
		{"max_response_bytes: 4MiB, headers: {X-A: \"${env:HOST}\"}", 4 << 20, "127.0.0.1:8081"},
		{"max_response_bytes: 512KB, headers: {X-A: \"${file:/run/secrets/token}\"}", 512000, "file-s3cr3t"},
		{"max_response_bytes: 2 kib, headers: {X-A: \"a-${env:HOST}-$${env:HOST}\"}", 2048, "a-127.0.0.1:8081-${env:HOST}"},
		{"max_response_bytes: 1GB, headers: {X-A: \"${env:EMPTY}\"}", 1e9, ""},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			cat, err := Parse("c.yaml", []byte("version: 1\nupstreams:\n  crm: {base_url: http://h, "+tt.give+"}\n"), testOptions()...)
			if err != nil {
				t.Fatal(err)
			}
			u := cat.Upstreams["crm"]
			got := []any{u.MaxResponseBytes, u.Headers[0].Value.Reveal()}
			if diff := cmp.Diff([]any{tt.wantSize, tt.wantValue}, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestSecretsNeverPrinted(t *testing.T) {
	cat := loadFull(t)
	u := cat.Upstreams["crm"]
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("upstream", "upstream", u, "headers", u.Headers, "header", u.Headers[0].Value)
	js, err := json.Marshal(u)
	if err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{
		"fmt":  fmt.Sprintf("%v %+v %#v %s", u, u, u, u.Headers),
		"json": string(js),
		"slog": logged.String(),
	}
	for name, out := range outputs {
		for _, secret := range []string{"s3cr3t-value", "tok-s3cr3t"} {
			if strings.Contains(out, secret) {
				t.Errorf("%s output reveals %q: %s", name, secret, out)
			}
		}
		for _, ref := range []string{"${env:CRM_API_KEY}", "Bearer ${file:/run/secrets/crm_token}"} {
			if !strings.Contains(out, ref) {
				t.Errorf("%s output lacks the reference %q: %s", name, ref, out)
			}
		}
	}
	if got := u.Headers[0].Value.Reveal(); got != "s3cr3t-value" {
		t.Errorf("Reveal = %q", got)
	}
}

// TestProblemsNeverRevealSecrets checks that a problem with a resolved value
// names the reference only.
func TestProblemsNeverRevealSecrets(t *testing.T) {
	testEnv["BAD_TOKEN"] = "line1\nline2-s3cr3t"
	defer delete(testEnv, "BAD_TOKEN")
	_, err := Parse("c.yaml", []byte("version: 1\nupstreams:\n  crm:\n    base_url: http://h\n    headers: {X-Token: \"${env:BAD_TOKEN}\", Authorization: literal-s3cr3t}\n"), testOptions()...)
	want := "c.yaml:5:24: upstreams.crm.headers.X-Token: the value of ${env:BAD_TOKEN} contains characters not allowed in a header (such as a newline)\n" +
		"c.yaml:5:59: upstreams.crm.headers.Authorization: header Authorization carries a credential, so its value must not be written in the catalog: use ${env:NAME} or ${file:/path}"
	if err == nil || err.Error() != want {
		t.Errorf("error:\n%v\nwant:\n%s", err, want)
	}
}
