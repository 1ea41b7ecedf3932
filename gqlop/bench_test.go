package gqlop

import "testing"

func BenchmarkParseOperationAndInputSchema(b *testing.B) {
	schema := crmSchema(b)
	b.ReportAllocs()
	for b.Loop() {
		op, err := ParseOperation(schema, "op.graphql", opCreate, "")
		if err != nil {
			b.Fatal(err)
		}
		_ = op.InputSchema()
	}
}

func BenchmarkInputSchemaRecursive(b *testing.B) {
	op := mustParse(b, crmSchema(b), opCustomers)
	b.ReportAllocs()
	for b.Loop() {
		_ = op.InputSchema()
	}
}

func BenchmarkParseResponse(b *testing.B) {
	body := []byte(`{"errors":[{"message":"not authorized to read the notes of customer c3","path":["customers","nodes",2,"notes"]}],` +
		`"data":{"customers":{"nodes":[{"id":"c1","notes":"Prefers e-mail."},{"id":"c2","notes":"Ask about COBOL."},{"id":"c3","notes":null}],` +
		`"pageInfo":{"hasNextPage":true,"endCursor":"Y3VzdG9tZXI6Mw"}}}}`)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseResponse(body); err != nil {
			b.Fatal(err)
		}
	}
}
