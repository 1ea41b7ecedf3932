package demo_test

import (
	"testing"

	"github.com/toolbus/toolbus/catalog"
	"github.com/toolbus/toolbus/examples/demo"
)

func TestDemoCatalogLoads(t *testing.T) {
	cat, err := catalog.Parse(demo.CatalogFile, demo.Catalog)
	if err != nil {
		t.Fatalf("demo catalog is invalid:\n%v", err)
	}
	if got := cat.Upstreams["crm"].BaseURL.Host; got != demo.UpstreamAddr {
		t.Errorf("demo catalog points at %s, but the demo upstream listens on %s", got, demo.UpstreamAddr)
	}
	for _, name := range []string{"list_customers", "get_customer", "create_customer", "delete_customer", "lookup"} {
		if _, ok := cat.Tool(name); !ok {
			t.Errorf("demo catalog lacks tool %s", name)
		}
	}
}
