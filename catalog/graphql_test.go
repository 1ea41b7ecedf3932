package catalog

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"

	"github.com/toolbus/toolbus/examples/crmgraphql"
	"github.com/toolbus/toolbus/gqlop"
)

// gqlHead declares one graphql upstream; the first tool starts at line 8.
const gqlHead = `version: 1
upstreams:
  crm:
    kind: graphql
    endpoint: http://h/graphql
    schema: {file: ../examples/crmgraphql/schema.graphql}
tools:
`

// gqlTool starts a tool whose operation follows from line 11 on.
const gqlTool = gqlHead + `  - name: t
    description: d
    upstream: crm
`

func TestGraphQLRules(t *testing.T) {
	tests := []struct {
		name string
		give string
		want []string
	}{
		// Operations validated against the schema, positions in the catalog.
		{"unknown field", gqlTool + `    operation: |
      query Q {
        customer(id: "c1") {
          nam
        }
      }
`, []string{
			`c.yaml:14:11: tools[0] (t).operation: Cannot query field "nam" on type "Customer". Did you mean "name"? (rule: FieldsOnCorrectType)`,
		}},
		{"wrong variable type", gqlTool + `    operation: |
      query Q($id: Int!) {
        customer(id: $id) { name }
      }
`, []string{
			`c.yaml:13:22: tools[0] (t).operation: Variable "$id" of type "Int!" used in position expecting type "ID!". (rule: VariablesInAllowedPosition)`,
		}},
		{"missing required argument", gqlTool + `    operation: |
      query Q {
        customer { name }
      }
`, []string{
			`c.yaml:13:9: tools[0] (t).operation: Field "customer" argument "id" of type "ID!" is required, but it was not provided. (rule: ProvidedRequiredArguments)`,
		}},
		{"syntax error", gqlTool + `    operation: |
      query Q {
        customer(id: "c1") { name
      }
`, []string{
			`c.yaml:15:7: tools[0] (t).operation: Expected Name, found <EOF>`,
		}},
		{"subscription", gqlTool + `    operation: |
      subscription OnOrder {
        orderPlaced { id }
      }
`, []string{
			`c.yaml:12:7: tools[0] (t).operation: subscriptions are not supported as tools: operation OnOrder is a subscription; use a query or a mutation (rule: NoSubscriptions)`,
		}},
		{"one-line quoted operation", gqlTool + `    operation: "query Q { customer(id: \"c1\") { nam } }"` + "\n", []string{
			// The column counts the escaped quotes as the operation sees them.
			`c.yaml:11:48: tools[0] (t).operation: Cannot query field "nam" on type "Customer". Did you mean "name"? (rule: FieldsOnCorrectType)`,
		}},
		{"folded operation quotes its own position", gqlTool + `    operation: >
      query Q {
        customer(id: "c1") { nam }
      }
`, []string{
			`c.yaml:11:16: tools[0] (t).operation: Cannot query field "nam" on type "Customer". Did you mean "name"? (at line 2, column 24 of the operation) (rule: FieldsOnCorrectType)`,
		}},
		// Operation files.
		{"two operations in a file", gqlTool + "    operation_file: testdata/ops/two.graphql\n", []string{
			`testdata/ops/two.graphql:2:1: tools[0] (t).operation_file: the document has 2 operations (A, B); a tool runs exactly one, so name the one to use (rule: SingleOperation)`,
		}},
		{"no such operation name", gqlTool + "    operation_file: testdata/ops/two.graphql\n    operation_name: C\n", []string{
			`c.yaml:11:21: tools[0] (t).operation_file: the document has no operation named "C"; it has A, B (rule: SingleOperation)`,
		}},
		{"error in an operation file", gqlTool + "    operation_file: testdata/ops/bad_field.graphql\n", []string{
			`testdata/ops/bad_field.graphql:4:5: tools[0] (t).operation_file: Cannot query field "emial" on type "Customer". Did you mean "email"? (rule: FieldsOnCorrectType)`,
		}},
		{"missing operation file", gqlTool + "    operation_file: testdata/ops/nope.graphql\n", []string{
			`c.yaml:11:21: tools[0] (t).operation_file: file testdata/ops/nope.graphql does not exist (relative paths start at the catalog's directory)`,
		}},
		{"operation and file", gqlTool + "    operation: 'query Q { orders { id } }'\n    operation_file: testdata/ops/two.graphql\n", []string{
			`c.yaml:12:5: tools[0] (t).operation_file: give operation or operation_file, not both`,
		}},
		// Fields that do not mix.
		{"REST fields on a GraphQL tool", gqlTool + "    method: POST\n    path: /graphql\n    operation: 'query Q { orders { id } }'\n", []string{
			`c.yaml:11:5: tools[0] (t).method: a GraphQL tool has no method: its operation defines the request, arguments and result`,
			`c.yaml:12:5: tools[0] (t).path: a GraphQL tool has no path: its operation defines the request, arguments and result`,
		}},
		{"operation on a REST upstream", "version: 1\nupstreams:\n  r: {base_url: http://h}\ntools:\n  - {name: t, description: d, upstream: r, operation: 'query Q { a }', pagination: {connection: a}}\n", []string{
			`c.yaml:5:41: tools[0] (t).upstream: upstream r is of kind rest; operation and operation_file are for graphql upstreams`,
		}},
		{"GraphQL field on a REST tool", "version: 1\nupstreams:\n  r: {base_url: http://h}\ntools:\n  - {name: t, description: d, upstream: r, method: GET, path: /x, payload_errors: a}\n", []string{
			`c.yaml:5:67: tools[0] (t).payload_errors: only tools on graphql upstreams have payload_errors`,
		}},
		{"no description anywhere", gqlHead + "  - {name: t, upstream: crm, operation: 'query Q { orders { id } }'}\n", []string{
			`c.yaml:8:5: tools[0] (t).description: required field is missing (the operation has no description string to use instead)`,
		}},
		// Upstream schema.
		{"no schema", "version: 1\nupstreams:\n  g: {kind: graphql, endpoint: http://h/graphql}\n", []string{
			`c.yaml:3:3: upstreams.g.schema: required field is missing: give schema: {file: schema.graphql} or schema: {introspect: true, cache: schema.graphql}`,
		}},
		{"no endpoint", "version: 1\nupstreams:\n  g: {kind: graphql, schema: {file: ../examples/crmgraphql/schema.graphql}}\n", []string{
			`c.yaml:3:3: upstreams.g.endpoint: required field is missing`,
		}},
		{"schema file and introspection", "version: 1\nupstreams:\n  g: {kind: graphql, endpoint: http://h/g, schema: {file: x.graphql, introspect: true}}\n", []string{
			`c.yaml:3:52: upstreams.g.schema: give file or introspect: true, not both`,
		}},
		{"schema on a REST upstream", "version: 1\nupstreams:\n  r: {base_url: http://h, schema: {file: x.graphql}}\n", []string{
			`c.yaml:3:27: upstreams.r.schema: only graphql upstreams have schema (this upstream is of kind rest)`,
		}},
		{"invalid schema file", "version: 1\nupstreams:\n  g: {kind: graphql, endpoint: http://h/g, schema: {file: testdata/ops/two.graphql}}\n", []string{
			`testdata/ops/two.graphql:1:1: upstreams.g.schema.file: Unexpected Name "query"`,
		}},
		// Pagination and payload errors.
		{"pagination of a mutation", gqlTool + `    operation: 'mutation M($in: CustomerInput!) { createCustomer(input: $in) { userErrors { message } } }'
    pagination: {connection: createCustomer}
`, []string{
			`c.yaml:12:17: tools[0] (t).pagination: only queries can be paginated; operation M is a mutation`,
		}},
		{"pagination without pageInfo", gqlTool + `    operation: 'query Q($after: String) { customers(after: $after) { nodes { id } } }'
    pagination: {connection: customers, mode: follow, max_pages: 3}
`, []string{
			`c.yaml:12:30: tools[0] (t).pagination.connection: pagination along "customers": the connection must select pageInfo { hasNextPage endCursor } (rule: RelayConnection)`,
		}},
		{"pagination limits", gqlTool + `    operation: 'query Q($after: String) { customers(after: $after) { nodes { id } pageInfo { hasNextPage endCursor } } }'
    pagination: {connection: customers, mode: all, max_pages: 0, max_items: -1}
`, []string{
			`c.yaml:12:47: tools[0] (t).pagination.mode: unknown mode "all": want follow (request and merge pages) or cursor (return the cursor to the model)`,
			`c.yaml:12:63: tools[0] (t).pagination.max_pages: must be between 1 and 1000, got 0`,
			`c.yaml:12:77: tools[0] (t).pagination.max_items: must be between 1 and 100000, got -1`,
		}},
		{"payload errors not selected", gqlTool + `    operation: 'mutation M($in: CustomerInput!) { createCustomer(input: $in) { customer { id } } }'
    payload_errors: createCustomer.userErrors
`, []string{
			`c.yaml:12:21: tools[0] (t).payload_errors: operation M must select userErrors { field message } (or errors) under createCustomer`,
		}},
		{"payload errors path unknown", gqlTool + `    operation: 'mutation M($in: CustomerInput!) { createCustomer(input: $in) { userErrors { message } } }'
    payload_errors: placeOrder
`, []string{
			`c.yaml:12:21: tools[0] (t).payload_errors: operation M selects no field "placeOrder" at data`,
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

// gqlCatalog is a valid GraphQL catalog over the example CRM.
const gqlCatalog = gqlHead + `  - name: get_customer
    upstream: crm
    operation_file: testdata/ops/get_customer.graphql
  - name: list_customers
    description: List customers.
    upstream: crm
    operation: |
      query List($first: Int = 2, $after: String) {
        customers(first: $first, after: $after) {
          edges { cursor node { id name } }
          pageInfo { hasNextPage endCursor }
        }
      }
    pagination: {connection: customers, max_pages: 3, max_items: 4}
  - name: create_customer
    description: Create a customer.
    upstream: crm
    operation: |
      mutation Create($input: CustomerInput!) {
        createCustomer(input: $input) {
          customer { id }
          userErrors { field message }
        }
      }
    payload_errors: createCustomer.userErrors
  - name: safe_create
    description: Create a customer, idempotently.
    upstream: crm
    operation: 'mutation Create($input: CustomerInput!) { createCustomer(input: $input) { customer { id } } }'
    annotations: {destructive: false, idempotent: true}
`

func TestGraphQLTools(t *testing.T) {
	cat, err := Parse("c.yaml", []byte(gqlCatalog), testOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	type summary struct {
		Description                       string
		Kind                              string
		Mutating                          bool
		ReadOnly, Destructive, Idempotent bool
		Pagination                        *Pagination
		PayloadErrors                     string
		Required                          []string
	}
	got := map[string]summary{}
	for _, tool := range cat.Tools {
		g := tool.GraphQL
		var in struct{ Required []string }
		if err := json.Unmarshal(tool.InputSchema, &in); err != nil {
			t.Fatal(err)
		}
		got[tool.Name] = summary{
			Description: tool.Description, Kind: string(g.Operation.Kind()), Mutating: tool.Mutating(),
			ReadOnly: *tool.Annotations.ReadOnly, Destructive: *tool.Annotations.Destructive, Idempotent: *tool.Annotations.Idempotent,
			Pagination: g.Pagination, PayloadErrors: g.PayloadErrors, Required: in.Required,
		}
	}
	want := map[string]summary{
		"get_customer": {Description: "Finds one customer by id.", Kind: "query", ReadOnly: true, Idempotent: true, Required: []string{"id"}},
		"list_customers": {Description: "List customers.", Kind: "query", ReadOnly: true, Idempotent: true,
			Pagination: &Pagination{Connection: gqlop.Connection{Path: "customers"}, Mode: PaginateFollow, MaxPages: 3, MaxItems: 4}},
		"create_customer": {Description: "Create a customer.", Kind: "mutation", Mutating: true, Destructive: true,
			PayloadErrors: "createCustomer", Required: []string{"input"}},
		"safe_create": {Description: "Create a customer, idempotently.", Kind: "mutation", Mutating: true, Idempotent: true, Required: []string{"input"}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("tools (-want +got):\n%s", diff)
	}
	if u := cat.Upstreams["crm"]; u.BaseURL.String() != "http://h/graphql" || u.GraphQL.SchemaFile != "../examples/crmgraphql/schema.graphql" {
		t.Errorf("upstream: endpoint %s, schema file %q", u.BaseURL, u.GraphQL.SchemaFile)
	}
	// The arguments are validated against the schema from the variables.
	tool, _ := cat.Tool("create_customer")
	_, err = tool.ValidateArguments([]byte(`{"input":{"name":"Bob","tier":"GOLD"}}`))
	if err == nil || !strings.Contains(err.Error(), "input/email") || !strings.Contains(err.Error(), "input/tier") {
		t.Errorf("ValidateArguments = %v, want problems with input/email and input/tier", err)
	}
}

// exampleSchemaFile is the demo GraphQL upstream's schema, which the test
// catalogs read where it is kept (examples/crmgraphql) rather than a copy.
const exampleSchemaFile = "../examples/crmgraphql/schema.graphql"

// An embedded catalog reads its operation and schema files from its FS.
func TestGraphQLWithFS(t *testing.T) {
	src := strings.NewReplacer("../examples/crmgraphql/schema.graphql", "crm.graphql", "testdata/", "").Replace(gqlCatalog)
	ops, err := os.ReadFile("testdata/ops/get_customer.graphql")
	if err != nil {
		t.Fatal(err)
	}
	fsys := fstest.MapFS{
		"crm.graphql":              &fstest.MapFile{Data: []byte(crmgraphql.Schema)},
		"ops/get_customer.graphql": &fstest.MapFile{Data: ops},
	}
	cat, err := Parse("embedded/catalog.yaml", []byte(src), WithFS(fsys))
	if err != nil {
		t.Fatal(err)
	}
	if len(cat.Tools) != 4 {
		t.Errorf("got %d tools, want 4", len(cat.Tools))
	}
	escape := strings.Replace(src, "ops/get_customer.graphql", "../secret.graphql", 1)
	_, err = Parse("embedded/catalog.yaml", []byte(escape), WithFS(fsys))
	want := `embedded/catalog.yaml:10:21: tools[0] (get_customer).operation_file: "../secret.graphql" must be a relative path inside the catalog's directory (the catalog is embedded)`
	if err == nil || err.Error() != want {
		t.Errorf("escaping the FS: %v\nwant %s", err, want)
	}
}

// Introspection happens only in ResolveGraphQLSchemas, which caches the
// schema; the next Load reads the cache and does no network I/O.
func TestResolveGraphQLSchemas(t *testing.T) {
	srv := httptest.NewServer(crmgraphql.NewHandler())
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	path := filepath.Join(dir, "catalog.yaml")
	src := strings.NewReplacer(
		"http://h/graphql", srv.URL,
		"schema: {file: ../examples/crmgraphql/schema.graphql}", "schema: {introspect: true, cache: crm.cache.graphql}",
		"testdata/ops/", "",
	).Replace(gqlCatalog)
	getCustomer, err := os.ReadFile("testdata/ops/get_customer.graphql")
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{path: []byte(src), filepath.Join(dir, "get_customer.graphql"): getCustomer} {
		if err := os.WriteFile(name, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	cat, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"crm"}, cat.PendingGraphQLSchemas()); diff != "" {
		t.Errorf("pending (-want +got):\n%s", diff)
	}
	if len(cat.Tools) != 0 {
		t.Errorf("tools of a pending upstream are served: %d", len(cat.Tools))
	}

	resolved, err := ResolveGraphQLSchemas(context.Background(), cat, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	if len(resolved.Tools) != 4 || len(resolved.PendingGraphQLSchemas()) != 0 {
		t.Errorf("resolved: %d tools, pending %v", len(resolved.Tools), resolved.PendingGraphQLSchemas())
	}
	if _, err := os.Stat(filepath.Join(dir, "crm.cache.graphql")); err != nil {
		t.Errorf("schema not cached: %v", err)
	}

	srv.Close() // the cache must be enough from now on
	again, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(again.Tools) != 4 || len(again.PendingGraphQLSchemas()) != 0 {
		t.Errorf("reloaded from cache: %d tools, pending %v", len(again.Tools), again.PendingGraphQLSchemas())
	}
	if same, err := ResolveGraphQLSchemas(context.Background(), again, nil); err != nil || same != again {
		t.Errorf("ResolveGraphQLSchemas with nothing pending = %p, %v; want the same catalog", same, err)
	}
}

func TestResolveGraphQLSchemasRefused(t *testing.T) {
	srv := httptest.NewServer(crmgraphql.NewHandlerWithoutIntrospection())
	t.Cleanup(srv.Close)
	src := "version: 1\nupstreams:\n  crm: {kind: graphql, endpoint: " + srv.URL + ", schema: {introspect: true}}\n"
	cat, err := Parse("c.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	_, err = ResolveGraphQLSchemas(context.Background(), cat, srv.Client())
	want := "catalog: schema of upstream crm: introspection is disabled or refused by " + srv.URL
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error = %v\nwant it to start with %s", err, want)
	}
}
