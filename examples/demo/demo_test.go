package demo_test

import (
	"os"
	"testing"

	"github.com/toolbus/toolbus/catalog"
	"github.com/toolbus/toolbus/examples/crmgraphql"
	"github.com/toolbus/toolbus/examples/demo"
)

func TestDemoCatalogLoads(t *testing.T) {
	// As `toolbus demo` loads it: embedded, files from demo.Files.
	cat, err := catalog.Parse(demo.CatalogFile, demo.Catalog, catalog.WithFS(demo.Files))
	if err != nil {
		t.Fatalf("demo catalog is invalid:\n%v", err)
	}
	if got := cat.Upstreams["crm"].BaseURL.Host; got != demo.UpstreamAddr {
		t.Errorf("demo catalog points at %s, but the demo upstream listens on %s", got, demo.UpstreamAddr)
	}
	if got := cat.Upstreams["crmgraphql"].BaseURL.Host; got != demo.GraphQLAddr {
		t.Errorf("demo catalog points at %s for GraphQL, but the demo GraphQL upstream listens on %s", got, demo.GraphQLAddr)
	}
	for _, name := range []string{"list_customers", "get_customer", "create_customer", "delete_customer", "lookup",
		"gql_get_customer", "gql_list_customers", "gql_orders", "gql_create_customer"} {
		if _, ok := cat.Tool(name); !ok {
			t.Errorf("demo catalog lacks tool %s", name)
		}
	}
	// From the file system too (make run, catalog validate).
	if _, err := catalog.Load("catalog.yaml"); err != nil {
		t.Errorf("catalog.yaml does not load from disk:\n%v", err)
	}
}

func TestDemoSchemaIsTheExampleSchema(t *testing.T) {
	b, err := os.ReadFile("crm.graphql")
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != crmgraphql.Schema {
		t.Error("examples/demo/crm.graphql differs from examples/crmgraphql/schema.graphql; copy it over")
	}
}
