package gqlop

import (
	"os"
	"testing"

	"github.com/toolbus/toolbus/examples/crmgraphql"
)

const crmFile = "testdata/crm.graphql"

func crmSchema(t testing.TB) *Schema {
	t.Helper()
	sdl, err := os.ReadFile(crmFile)
	if err != nil {
		t.Fatal(err)
	}
	s, err := LoadSDL(crmFile, string(sdl))
	if err != nil {
		t.Fatalf("LoadSDL: %v", err)
	}
	return s
}

func mustParse(t testing.TB, s *Schema, src string) *Operation {
	t.Helper()
	op, err := ParseOperation(s, "op.graphql", src, "")
	if err != nil {
		t.Fatalf("ParseOperation:\n%v", err)
	}
	return op
}

// The example server serves the schema these tests check against.
func TestTestdataIsTheExampleSchema(t *testing.T) {
	sdl, err := os.ReadFile(crmFile)
	if err != nil {
		t.Fatal(err)
	}
	if string(sdl) != crmgraphql.Schema {
		t.Errorf("%s differs from examples/crmgraphql/schema.graphql; copy it over", crmFile)
	}
}
