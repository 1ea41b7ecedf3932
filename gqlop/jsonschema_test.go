package gqlop

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// asJSON round-trips v through JSON so that schemas compare as the JSON a
// client receives.
func asJSON(t testing.TB, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func parseJSON(t testing.TB, s string) any {
	t.Helper()
	var out any
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		t.Fatalf("bad JSON in test: %v\n%s", err, s)
	}
	return out
}

const (
	opCustomer = `query Customer($id: ID!) { customer(id: $id) { name } }`
	opOrders   = `query Orders("Only orders in this state." $status: OrderStatus, $limit: Int = 5) {
  orders(status: $status, limit: $limit) { id }
}`
	opCreate = `mutation Create($input: CustomerInput!) {
  createCustomer(input: $input) { customer { id } userErrors { field message } }
}`
	opPlace = `mutation Place($customerId: ID!, $lines: [OrderLineInput!]!, $note: String) {
  placeOrder(input: {customerId: $customerId, lines: $lines, note: $note}) { order { id } userErrors { field message } }
}`
	opCustomers = `query Customers($first: Int = 2, $after: String, $filter: CustomerFilter) {
  customers(first: $first, after: $after, filter: $filter) {
    edges { cursor node { id } }
    pageInfo { hasNextPage endCursor }
  }
}`
	opCard = `query Card($id: ID!, $full: Boolean!) {
  who: customer(id: $id) {
    id
    ...Basics
    tags
    createdAt
    address @include(if: $full) { city }
  }
}
fragment Basics on Customer { name tier orders { status total } }`
	opSearch = `query Search($text: String!) {
  search(text: $text) { __typename ... on Customer { name } ... on Order { id total } }
}`
	opNode = `query Node($id: ID!) { node(id: $id) { id __typename } }`
)

// opsForComparison are the operations that the introspection test checks
// against both schemas.
var opsForComparison = []string{opCustomer, opOrders, opCreate, opPlace, opCustomers, opCard, opSearch, opNode}

const addressInputSchema = `{
  "type": ["object", "null"],
  "additionalProperties": false,
  "properties": {
    "city": {"type": "string"},
    "country": {"type": "string"},
    "postalCode": {"type": ["string", "null"]},
    "street": {"type": "string"}
  },
  "required": ["city", "country", "street"]
}`

func TestInputSchema(t *testing.T) {
	schema := crmSchema(t)
	tests := []struct {
		name string
		give string
		want string
	}{
		{
			name: "required scalar",
			give: opCustomer,
			want: `{"type": "object", "additionalProperties": false,
				"properties": {"id": {"type": "string"}}, "required": ["id"]}`,
		},
		{
			name: "nullable enum and default",
			give: opOrders,
			want: `{"type": "object", "additionalProperties": false, "properties": {
				"limit": {"type": ["integer", "null"], "default": 5},
				"status": {
					"type": ["string", "null"],
					"enum": ["PENDING", "PAID", "SHIPPED", "CANCELLED", null],
					"description": "Only orders in this state.\nWhere an order is in its life.\nPENDING: Placed, not paid yet."
				}
			}}`,
		},
		{
			name: "input object",
			give: opCreate,
			want: `{"type": "object", "additionalProperties": false, "required": ["input"], "properties": {
				"input": {
					"type": "object", "additionalProperties": false,
					"description": "Fields of a new customer.",
					"required": ["email", "name"],
					"properties": {
						"address": ` + addressInputSchema + `,
						"email": {"type": "string", "description": "Must be a valid e-mail address."},
						"name": {"type": "string"},
						"signupAt": {"type": ["string", "null"],
							"description": "custom scalar DateTime: pass its string form. An instant in RFC 3339 form, for example \"2024-05-01T09:30:00Z\"."},
						"tags": {"type": ["array", "null"], "items": {"type": "string"}},
						"tier": {"type": ["string", "null"], "enum": ["FREE", "PRO", "ENTERPRISE", null],
							"default": "FREE", "description": "The customer's plan."}
					}
				}
			}}`,
		},
		{
			name: "list of input objects with a defaulted field",
			give: opPlace,
			want: `{"type": "object", "additionalProperties": false, "required": ["customerId", "lines"], "properties": {
				"customerId": {"type": "string"},
				"lines": {"type": "array", "items": {
					"type": "object", "additionalProperties": false,
					"required": ["sku", "unitPrice"],
					"properties": {
						"quantity": {"type": "integer", "default": 1},
						"sku": {"type": "string"},
						"unitPrice": {"type": "number"}
					}
				}},
				"note": {"type": ["string", "null"]}
			}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			op := mustParse(t, schema, tt.give)
			if diff := cmp.Diff(parseJSON(t, tt.want), asJSON(t, op.InputSchema())); diff != "" {
				t.Errorf("InputSchema mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// A recursive input type is described a fixed number of times along a path,
// then left open.
func TestInputSchemaRecursionIsCut(t *testing.T) {
	op := mustParse(t, crmSchema(t), opCustomers)
	s := op.InputSchema()
	filter := s["properties"].(map[string]any)["filter"].(map[string]any)
	described := 0
	for {
		props, ok := filter["properties"].(map[string]any)
		if !ok {
			break
		}
		filter = props["not"].(map[string]any)
		described++
	}
	if described != maxInputRepeat {
		t.Errorf("the not chain is described %d times, want %d", described, maxInputRepeat)
	}
	want := map[string]any{
		"type":        []string{"object", "null"},
		"description": "CustomerFilter again, as described above; nested this deep its fields are not repeated here, but the upstream checks them",
	}
	if diff := cmp.Diff(want, filter); diff != "" {
		t.Errorf("cut schema mismatch (-want +got):\n%s", diff)
	}
	b, _ := json.Marshal(s)
	if len(b) > 16<<10 {
		t.Errorf("the input schema is %d bytes; recursion should keep it small", len(b))
	}
}

func compileSchema(t testing.TB, s map[string]any) *jsonschema.Schema {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("input.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("input.json")
	if err != nil {
		t.Fatalf("the schema is not valid JSON Schema: %v\n%s", err, b)
	}
	return sch
}

func TestInputSchemaValidates(t *testing.T) {
	schema := crmSchema(t)
	deep := `{"filter": {"not": {"not": {"not": {"not": {"not": {"not": {"not": {"anything": 1}}}}}}}}}`
	tests := []struct {
		name string
		op   string
		give string
		want bool
	}{
		{name: "id given", op: opCustomer, give: `{"id": "c1"}`, want: true},
		{name: "id missing", op: opCustomer, give: `{}`, want: false},
		{name: "id not a string", op: opCustomer, give: `{"id": 1}`, want: false},
		{name: "unknown variable", op: opCustomer, give: `{"id": "c1", "x": 1}`, want: false},
		{name: "all optional", op: opOrders, give: `{}`, want: true},
		{name: "explicit nulls", op: opOrders, give: `{"status": null, "limit": null}`, want: true},
		{name: "enum value", op: opOrders, give: `{"status": "PAID", "limit": 3}`, want: true},
		{name: "unknown enum value", op: opOrders, give: `{"status": "LOST"}`, want: false},
		{name: "float for Int", op: opOrders, give: `{"limit": 2.5}`, want: false},
		{name: "minimal input", op: opCreate, give: `{"input": {"name": "Bob", "email": "bob@example.com"}}`, want: true},
		{name: "full input", op: opCreate, give: `{"input": {"name": "Bob", "email": "b@example.com", "tier": "PRO",
			"tags": ["a"], "signupAt": "2024-01-01T00:00:00Z", "address": {"street": "s", "city": "c", "country": "GB"}}}`, want: true},
		{name: "input field missing", op: opCreate, give: `{"input": {"name": "Bob"}}`, want: false},
		{name: "unknown input field", op: opCreate, give: `{"input": {"name": "Bob", "email": "b@example.com", "age": 3}}`, want: false},
		{name: "nested required missing", op: opCreate, give: `{"input": {"name": "B", "email": "e", "address": {"city": "c"}}}`, want: false},
		{name: "list item not null", op: opCreate, give: `{"input": {"name": "B", "email": "e", "tags": [null]}}`, want: false},
		{name: "lines", op: opPlace, give: `{"customerId": "c1", "lines": [{"sku": "A", "unitPrice": 1.5}]}`, want: true},
		{name: "line without price", op: opPlace, give: `{"customerId": "c1", "lines": [{"sku": "A"}]}`, want: false},
		{name: "lines not a list", op: opPlace, give: `{"customerId": "c1", "lines": {"sku": "A", "unitPrice": 1}}`, want: false},
		{name: "recursive filter", op: opCustomers, give: `{"filter": {"or": [{"tierIn": ["PRO"]}, {"not": {"nameContains": "a"}}]}}`, want: true},
		{name: "bad field in recursive filter", op: opCustomers, give: `{"filter": {"or": [{"tier": "PRO"}]}}`, want: false},
		{name: "beyond the cut anything goes", op: opCustomers, give: deep, want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sch := compileSchema(t, mustParse(t, schema, tt.op).InputSchema())
			inst, err := jsonschema.UnmarshalJSON(strings.NewReader(tt.give))
			if err != nil {
				t.Fatal(err)
			}
			err = sch.Validate(inst)
			if got := err == nil; got != tt.want {
				t.Errorf("valid = %v, want %v (%v)", got, tt.want, err)
			}
		})
	}
}

func TestOutputSchema(t *testing.T) {
	schema := crmSchema(t)
	const customerDoc = "A person or company that buys from us."
	tests := []struct {
		name string
		give string
		want string
	}{
		{
			name: "alias, fragment, skip and custom scalar",
			give: opCard,
			want: `{"type": "object", "additionalProperties": false, "required": ["who"], "properties": {
				"who": {
					"type": ["object", "null"], "additionalProperties": false,
					"description": "The customer with this id, or null when there is none.\n` + customerDoc + `",
					"required": ["createdAt", "id", "name", "orders", "tags", "tier"],
					"properties": {
						"address": {"type": ["object", "null"], "additionalProperties": false, "description": "A postal address.",
							"properties": {"city": {"type": "string"}}, "required": ["city"]},
						"createdAt": {"description": "An instant in RFC 3339 form, for example \"2024-05-01T09:30:00Z\".\ncustom scalar DateTime"},
						"id": {"type": "string"},
						"name": {"type": "string"},
						"orders": {"type": "array", "description": "The customer's orders, optionally only those with one status.",
							"items": {"type": "object", "additionalProperties": false, "required": ["status", "total"], "properties": {
								"status": {"type": "string", "enum": ["PENDING", "PAID", "SHIPPED", "CANCELLED"], "description": "Where an order is in its life."},
								"total": {"type": "number", "description": "Sum of the lines, in euros."}
							}}},
						"tags": {"type": "array", "items": {"type": "string"}},
						"tier": {"type": "string", "enum": ["FREE", "PRO", "ENTERPRISE"], "description": "The customer's plan."}
					}
				}
			}}`,
		},
		{
			name: "union with type-dependent selections",
			give: opSearch,
			want: `{"type": "object", "additionalProperties": false, "required": ["search"], "properties": {
				"search": {"type": "array", "description": "Customers whose name and orders whose line SKUs contain the text.",
					"items": {"anyOf": [
						{"type": "object", "additionalProperties": false, "required": ["__typename", "name"], "properties": {
							"__typename": {"type": "string", "enum": ["Customer"]},
							"name": {"type": "string"}}},
						{"type": "object", "additionalProperties": false, "required": ["__typename", "id", "total"], "properties": {
							"__typename": {"type": "string", "enum": ["Order"]},
							"id": {"type": "string"},
							"total": {"type": "number", "description": "Sum of the lines, in euros."}}}
					]}}
			}}`,
		},
		{
			name: "interface with one shape",
			give: opNode,
			want: `{"type": "object", "additionalProperties": false, "required": ["node"], "properties": {
				"node": {"type": ["object", "null"], "additionalProperties": false,
					"description": "Any object by its global id.\nAn object with a global id.",
					"required": ["__typename", "id"], "properties": {
						"__typename": {"type": "string", "enum": ["Customer", "Order"]},
						"id": {"type": "string"}}}
			}}`,
		},
		{
			name: "mutation payload",
			give: opCreate,
			want: `{"type": "object", "additionalProperties": false, "required": ["createCustomer"], "properties": {
				"createCustomer": {"type": "object", "additionalProperties": false,
					"description": "Creates a customer. Input problems come back in userErrors.",
					"required": ["customer", "userErrors"], "properties": {
						"customer": {"type": ["object", "null"], "additionalProperties": false, "description": "` + customerDoc + `",
							"required": ["id"], "properties": {"id": {"type": "string"}}},
						"userErrors": {"type": "array", "items": {"type": "object", "additionalProperties": false,
							"description": "A problem with the input of a mutation.",
							"required": ["field", "message"], "properties": {
								"field": {"type": ["array", "null"], "items": {"type": "string"},
									"description": "Path to the input field at fault, for example [\"input\", \"email\"]."},
								"message": {"type": "string"}}}}
					}}
			}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			op := mustParse(t, schema, tt.give)
			got := op.OutputSchema()
			if diff := cmp.Diff(parseJSON(t, tt.want), asJSON(t, got)); diff != "" {
				t.Errorf("OutputSchema mismatch (-want +got):\n%s", diff)
			}
			compileSchema(t, got)
		})
	}
}

// The output schema must accept what the real server answers.
func TestOutputSchemaAcceptsServerData(t *testing.T) {
	schema := crmSchema(t)
	url := startCRM(t)
	tests := []struct {
		op   string
		vars map[string]any
	}{
		{op: opCard, vars: map[string]any{"id": "c1", "full": true}},
		{op: opCard, vars: map[string]any{"id": "c5", "full": false}},
		{op: opCard, vars: map[string]any{"id": "nobody", "full": true}},
		{op: opSearch, vars: map[string]any{"text": "a"}},
		{op: opNode, vars: map[string]any{"id": "o2"}},
		{op: opCustomers, vars: map[string]any{"first": 2}},
		{op: opCreate, vars: map[string]any{"input": map[string]any{"name": "X", "email": "nope"}}},
	}
	for _, tt := range tests {
		op := mustParse(t, schema, tt.op)
		t.Run(op.Name(), func(t *testing.T) {
			resp := postGraphQL(t, url, op.Text(), tt.vars)
			if resp.Outcome != Success {
				t.Fatalf("outcome %s: %s", resp.Outcome, resp.ErrorText())
			}
			inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(resp.Data))
			if err != nil {
				t.Fatal(err)
			}
			if err := compileSchema(t, op.OutputSchema()).Validate(inst); err != nil {
				t.Errorf("data %s does not match the output schema: %v", resp.Data, err)
			}
		})
	}
}
