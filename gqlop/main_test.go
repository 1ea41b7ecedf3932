package gqlop

import (
	"testing"

	"github.com/toolbus/toolbus/examples/crmgraphql"
)

// crmFile names the schema the example server serves (crmgraphql.Schema),
// which these tests check against.
const crmFile = "crm.graphql"

func crmSchema(t testing.TB) *Schema {
	t.Helper()
	s, err := LoadSDL(crmFile, crmgraphql.Schema)
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
