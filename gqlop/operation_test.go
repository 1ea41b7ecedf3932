package gqlop

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseOperationErrors(t *testing.T) {
	schema := crmSchema(t)
	tests := []struct {
		name     string
		give     string
		giveName string
		want     string
	}{
		{
			name: "unknown field",
			give: "query Q {\n  customer(id: \"c1\") {\n    nam\n  }\n}",
			want: `op.graphql:3:5: Cannot query field "nam" on type "Customer". Did you mean "name"? (rule: FieldsOnCorrectType)`,
		},
		{
			name: "wrong variable type",
			give: "query Q($id: Int!) {\n  customer(id: $id) { name }\n}",
			want: `op.graphql:2:16: Variable "$id" of type "Int!" used in position expecting type "ID!". (rule: VariablesInAllowedPosition)`,
		},
		{
			name: "missing required argument",
			give: "query Q {\n  customer { name }\n}",
			want: `op.graphql:2:3: Field "customer" argument "id" of type "ID!" is required, but it was not provided. (rule: ProvidedRequiredArguments)`,
		},
		{
			name: "syntax error",
			give: "query Q {\n  customer(id: \"c1\") { name \n}",
			want: `op.graphql:3:2: Expected Name, found <EOF>`,
		},
		{
			name: "subscription",
			give: "subscription OnOrder {\n  orderPlaced { id }\n}",
			want: `op.graphql:1:1: subscriptions are not supported as tools: operation OnOrder is a subscription; use a query or a mutation (rule: NoSubscriptions)`,
		},
		{
			name: "two operations",
			give: "query A { customer(id: \"c1\") { name } }\nquery B { orders { id } }",
			want: `op.graphql:2:1: the document has 2 operations (A, B); a tool runs exactly one, so name the one to use (rule: SingleOperation)`,
		},
		{
			name:     "no such operation",
			give:     "query A { customer(id: \"c1\") { name } }",
			giveName: "C",
			want:     `op.graphql: the document has no operation named "C"; it has A (rule: SingleOperation)`,
		},
		{
			name: "unknown fragment",
			give: "query Q {\n  customer(id: \"c1\") { ...Card }\n}",
			want: `op.graphql:2:27: Unknown fragment "Card". (rule: KnownFragmentNames)`,
		},
		{
			name: "two problems",
			give: "query Q($unused: Int) {\n  orders(status: LOST) { id }\n}",
			want: "op.graphql:1:9: Variable \"$unused\" is never used in operation \"Q\". (rule: NoUnusedVariables)\n" +
				`op.graphql:2:18: Value "LOST" does not exist in "OrderStatus" enum. (rule: ValuesOfCorrectType)`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseOperation(schema, "op.graphql", tt.give, tt.giveName)
			if err == nil {
				t.Fatal("ParseOperation succeeded, want an error")
			}
			if diff := cmp.Diff(tt.want, err.Error()); diff != "" {
				t.Errorf("error mismatch (-want +got):\n%s", diff)
			}
			var list Errors
			if !errors.As(err, &list) || len(list) == 0 {
				t.Errorf("error %T is not a non-empty Errors", err)
			}
		})
	}
}

func TestOperationText(t *testing.T) {
	schema := crmSchema(t)
	const src = `
"Finds a customer."
query Card($id: ID!) { customer(id: $id) { ...Who } }
mutation Make($in: CustomerInput!) { createCustomer(input: $in) { customer { ...Who ...Where } } }
fragment Who on Customer { id name }
fragment Where on Customer { address { city } }
`
	tests := []struct {
		give     string
		wantKind Kind
		wantText string
	}{
		{
			give:     "Card",
			wantKind: KindQuery,
			wantText: "query Card ($id: ID!) {\n  customer(id: $id) {\n    ... Who\n  }\n}\nfragment Who on Customer {\n  id\n  name\n}\n",
		},
		{
			give:     "Make",
			wantKind: KindMutation,
			wantText: "mutation Make ($in: CustomerInput!) {\n  createCustomer(input: $in) {\n    customer {\n      ... Who\n      ... Where\n    }\n  }\n}\nfragment Who on Customer {\n  id\n  name\n}\nfragment Where on Customer {\n  address {\n    city\n  }\n}\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			op, err := ParseOperation(schema, "op.graphql", src, tt.give)
			if err != nil {
				t.Fatal(err)
			}
			if op.Name() != tt.give || op.Kind() != tt.wantKind {
				t.Errorf("Name, Kind = %q, %q; want %q, %q", op.Name(), op.Kind(), tt.give, tt.wantKind)
			}
			if diff := cmp.Diff(tt.wantText, op.Text()); diff != "" {
				t.Errorf("Text mismatch (-want +got):\n%s", diff)
			}
			// The text sent must itself be a valid one-operation document.
			if _, err := ParseOperation(schema, "sent.graphql", op.Text(), ""); err != nil {
				t.Errorf("Text does not parse back: %v", err)
			}
		})
	}
}

func TestLoadSDLError(t *testing.T) {
	_, err := LoadSDL("bad.graphql", "type Query {\n  a: Nope\n}\n")
	want := `bad.graphql:2:6: Undefined type Nope.`
	if err == nil || err.Error() != want {
		t.Errorf("LoadSDL error = %v, want %s", err, want)
	}
}
