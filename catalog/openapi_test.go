package catalog

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// shopCatalog uses testdata/openapi/shop.yaml (paths are relative to the
// catalog file, which is in testdata/).
const shopCatalog = `version: 1
upstreams:
  shop:
    idempotency_header: Idempotency-Key
    openapi:
      file: openapi/shop.yaml
      select:
        tags: [customers]
      overrides:
        listCustomers:
          name: list_customers
          description: List customers, newest first.
          hidden: {limit: 25}
        createCustomer:
          annotations: {idempotent: true}
tools:
  - name: ping
    description: Ping the shop.
    upstream: shop
    method: GET
    path: /ping
`

func TestLoadOpenAPIUpstream(t *testing.T) {
	cat, err := Parse("testdata/catalog.yaml", []byte(shopCatalog))
	if err != nil {
		t.Fatal(err)
	}
	u := cat.Upstreams["shop"]
	if u.BaseURL.String() != "https://shop.example/api" {
		t.Errorf("base URL = %s, want the document's server", u.BaseURL)
	}
	var names []string
	for _, tl := range cat.Tools {
		names = append(names, tl.Name)
	}
	if diff := cmp.Diff([]string{"ping", "list_customers", "createCustomer", "getCustomer"}, names); diff != "" {
		t.Errorf("tools (-want +got):\n%s", diff)
	}
	list, _ := cat.Tool("list_customers")
	if list.Description != "List customers, newest first." || list.Upstream != u || list.Method != "GET" {
		t.Errorf("list_customers = %+v", list)
	}
	if diff := cmp.Diff(map[string]any{"limit": json.Number("25")}, list.Fixed); diff != "" {
		t.Errorf("fixed (-want +got):\n%s", diff)
	}
	wantParams := []Param{{Name: "limit", In: InQuery, WireName: "limit"}, {Name: "expand", In: InQuery, WireName: "expand", Deep: true}}
	if diff := cmp.Diff(wantParams, list.Params); diff != "" {
		t.Errorf("params (-want +got):\n%s", diff)
	}
	if !*list.Annotations.ReadOnly || *list.Annotations.Destructive {
		t.Errorf("GET annotations = %+v", list.Annotations)
	}

	create, _ := cat.Tool("createCustomer")
	if create.BodyEncoding != BodyForm || !*create.Annotations.Idempotent || !*create.Annotations.Destructive {
		t.Errorf("createCustomer = %+v, annotations %+v", create, create.Annotations)
	}
	// The imported input schema validates arguments like a written one.
	_, err = create.ValidateArguments(json.RawMessage(`{"email":"not-an-email","metadata":{"a":1}}`))
	var ae *ArgumentError
	if !errors.As(err, &ae) {
		t.Fatalf("ValidateArguments = %v, want an argument error", err)
	}
	if got := ae.Error(); !strings.Contains(got, "email: 'not-an-email' is not valid email") || !strings.Contains(got, "metadata/a") {
		t.Errorf("argument error = %s", got)
	}

	get, _ := cat.Tool("getCustomer")
	if diff := cmp.Diff([]Param{{Name: "id", In: InPath, WireName: "id", Required: true}, {Name: "session", In: InCookie, WireName: "session"}}, get.Params); diff != "" {
		t.Errorf("getCustomer params (-want +got):\n%s", diff)
	}
	if s := u.OpenAPI; s.Operations != 4 || s.Tools != 3 || s.Title != "Shop" || len(s.Notes) == 0 {
		t.Errorf("source = %+v", s)
	}
}

func TestOpenAPILoadErrors(t *testing.T) {
	tests := []struct {
		name, give string
		want       []string
	}{
		{
			name: "section fields",
			give: `version: 1
upstreams:
  shop:
    openapi:
      select: {tags: customers, colour: [red], methods: [FETCH]}
      max_ref_depth: 99
      overrides: {x: {nickname: y}}
`,
			want: []string{
				"testdata/c.yaml:5:7: upstreams.shop.openapi.file: required field is missing: the path of the OpenAPI document (relative to the catalog's directory)",
				"testdata/c.yaml:5:33: upstreams.shop.openapi.select.colour: unknown field (known fields: operation_ids, tags, paths, methods)",
				"testdata/c.yaml:5:58: upstreams.shop.openapi.select.methods[0]: unsupported method \"FETCH\": want GET, POST, PUT, PATCH, DELETE or HEAD",
				"testdata/c.yaml:6:22: upstreams.shop.openapi.max_ref_depth: must be between 1 and 16, got 99",
				"testdata/c.yaml:7:23: upstreams.shop.openapi.overrides.x.nickname: unknown field (known fields: name, title, description, annotations, hidden)",
			},
		},
		{
			name: "missing document",
			give: "version: 1\nupstreams:\n  shop:\n    openapi: {file: openapi/nope.yaml}\n",
			want: []string{"testdata/c.yaml:4:21: upstreams.shop.openapi.file: file testdata/openapi/nope.yaml does not exist (relative paths start at the catalog's directory)"},
		},
		{
			name: "not an OpenAPI document",
			give: "version: 1\nupstreams:\n  shop:\n    openapi: {file: ../testdata/full.yaml}\n",
			want: []string{"testdata/c.yaml:4:21: upstreams.shop.openapi.file: testdata/full.yaml: not an OpenAPI document: no openapi (3.x) or swagger (2.0) field"},
		},
		{
			name: "options that do not fit the document",
			give: `version: 1
upstreams:
  shop:
    openapi:
      file: openapi/shop.yaml
      select:
        operation_ids: [listCustomers, getCustomer, nope]
      overrides:
        getCustomer:
          name: list_customers
          hidden: {ghost: 1}
        listCustomers:
          name: list_customers
        deleteCustomer: {}
tools:
  - {name: getCustomer, description: clash, upstream: shop, method: GET, path: /x}
`,
			want: []string{
				"testdata/c.yaml:7:53: upstreams.shop.openapi.select.operation_ids[2]: operationId \"nope\" matches no operation of the document",
				"testdata/c.yaml:11:20: upstreams.shop.openapi.overrides.getCustomer.hidden.ghost: operation getCustomer has no parameter \"ghost\" (it has: id, session)",
				"testdata/c.yaml:13:17: upstreams.shop.openapi.overrides.listCustomers.name: tool name \"list_customers\" is already used",
				"testdata/c.yaml:14:9: upstreams.shop.openapi.overrides.deleteCustomer: operation \"deleteCustomer\" is not selected",
			},
		},
		{
			name: "no server and no base_url",
			give: "version: 1\nupstreams:\n  shop:\n    openapi: {file: openapi/noserver.json}\n",
			want: []string{"testdata/c.yaml:3:3: upstreams.shop.base_url: required field is missing: testdata/openapi/noserver.json declares no absolute http(s) server URL"},
		},
	}
	files := map[string]string{
		"testdata/openapi/noserver.json": `{"openapi": "3.1.0", "info": {"title": "n", "version": "1"}, "paths": {}}`,
	}
	readFile := WithReadFile(func(p string) ([]byte, error) {
		if s, ok := files[p]; ok {
			return []byte(s), nil
		}
		return os.ReadFile(p)
	})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("testdata/c.yaml", []byte(tt.give), readFile)
			var le *LoadError
			if !errors.As(err, &le) {
				t.Fatalf("err = %v, want a LoadError", err)
			}
			var got []string
			for _, p := range le.Problems {
				got = append(got, p.String())
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

// TestLoadLargeOpenAPI loads a catalog over the whole Stripe document, as
// a team would, within the catalog-scale budget (2 s; under -race it only
// has to finish).
func TestLoadLargeOpenAPI(t *testing.T) {
	spec, _ := filepath.Abs("../openapi/testdata/.cache/stripe-spec3.json")
	if _, err := os.Stat(spec); err != nil {
		t.Fatalf("%v: the large OpenAPI documents are fetched by `make openapi-specs` (openapi/testdata/fetch.sh); run it first", err)
	}
	start := time.Now()
	cat, err := Parse("testdata/stripe.yaml", []byte("version: 1\nupstreams:\n  stripe:\n    openapi: {file: "+spec+"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d tools in %v", len(cat.Tools), time.Since(start))
	if len(cat.Tools) < 590 {
		t.Errorf("%d tools, want Stripe's 590+", len(cat.Tools))
	}
}

// Generated names never clash: not with hand-written tools (compared
// without case), not across upstreams importing the same document.
func TestOpenAPINamesAreUniqueInTheCatalog(t *testing.T) {
	cat, err := Parse("testdata/c.yaml", []byte(`version: 1
upstreams:
  a: {openapi: {file: openapi/shop.yaml, select: {tags: [customers]}}}
  b: {openapi: {file: openapi/shop.yaml, select: {tags: [customers]}}}
tools:
  - {name: listcustomers, description: hand-written, upstream: a, method: GET, path: /x}
`))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, tl := range cat.Tools {
		got = append(got, tl.Upstream.Name+":"+tl.Name)
	}
	want := []string{"a:listcustomers", "a:listCustomers_2", "a:createCustomer", "a:getCustomer",
		"b:listCustomers_3", "b:createCustomer_2", "b:getCustomer_2"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("tools (-want +got):\n%s", diff)
	}
}

// BenchmarkLoadOpenAPI is a whole catalog load over each large document:
// import plus compiling every input and output schema.
func BenchmarkLoadOpenAPI(b *testing.B) {
	for _, f := range []string{"stripe-spec3.json", "github-api.json"} {
		b.Run(strings.TrimSuffix(f, ".json"), func(b *testing.B) {
			spec, _ := filepath.Abs("../openapi/testdata/.cache/" + f)
			if _, err := os.Stat(spec); err != nil {
				b.Fatalf("%v: the large OpenAPI documents are fetched by `make openapi-specs` (openapi/testdata/fetch.sh); run it first", err)
			}
			src := []byte("version: 1\nupstreams:\n  api:\n    openapi: {file: " + spec + "}\n")
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Parse("testdata/c.yaml", src); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
