package graphqlworker_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// Schemas written out by hand from examples/crmgraphql/schema.graphql: what
// a model must see for the operations of testdata/catalog.yaml.
const (
	getCustomerInput = `{
	  "type": "object", "additionalProperties": false, "required": ["id"],
	  "properties": {
	    "id": {"type": "string"},
	    "status": {"type": ["string", "null"], "enum": ["PENDING", "PAID", "SHIPPED", "CANCELLED", null],
	      "description": "Where an order is in its life.\nPENDING: Placed, not paid yet."}
	  }
	}`
	getCustomerOutput = `{
	  "type": "object", "additionalProperties": false, "required": ["customer"],
	  "properties": {
	    "customer": {
	      "type": ["object", "null"], "additionalProperties": false,
	      "description": "The customer with this id, or null when there is none.\nA person or company that buys from us.",
	      "required": ["address", "id", "name", "orders", "tags", "tier"],
	      "properties": {
	        "id": {"type": "string"},
	        "name": {"type": "string"},
	        "tier": {"type": "string", "enum": ["FREE", "PRO", "ENTERPRISE"], "description": "The customer's plan."},
	        "tags": {"type": "array", "items": {"type": "string"}},
	        "address": {
	          "type": ["object", "null"], "additionalProperties": false, "description": "A postal address.",
	          "required": ["city", "country"],
	          "properties": {
	            "city": {"type": "string"},
	            "country": {"type": "string", "description": "ISO 3166-1 alpha-2 country code."}
	          }
	        },
	        "orders": {
	          "type": "array", "description": "The customer's orders, optionally only those with one status.",
	          "items": {
	            "type": "object", "additionalProperties": false, "required": ["id", "status", "total"],
	            "properties": {
	              "id": {"type": "string"},
	              "status": {"type": "string", "enum": ["PENDING", "PAID", "SHIPPED", "CANCELLED"], "description": "Where an order is in its life."},
	              "total": {"type": "number", "description": "Sum of the lines, in euros."}
	            }
	          }
	        }
	      }
	    }
	  }
	}`
	createCustomerInput = `{
	  "type": "object", "additionalProperties": false, "required": ["input"],
	  "properties": {
	    "input": {
	      "type": "object", "additionalProperties": false, "description": "Fields of a new customer.",
	      "required": ["email", "name"],
	      "properties": {
	        "name": {"type": "string"},
	        "email": {"type": "string", "description": "Must be a valid e-mail address."},
	        "tier": {"type": ["string", "null"], "enum": ["FREE", "PRO", "ENTERPRISE", null], "default": "FREE", "description": "The customer's plan."},
	        "tags": {"type": ["array", "null"], "items": {"type": "string"}},
	        "address": {
	          "type": ["object", "null"], "additionalProperties": false, "required": ["city", "country", "street"],
	          "properties": {
	            "street": {"type": "string"},
	            "city": {"type": "string"},
	            "country": {"type": "string"},
	            "postalCode": {"type": ["string", "null"]}
	          }
	        },
	        "signupAt": {"type": ["string", "null"],
	          "description": "custom scalar DateTime: pass its string form. An instant in RFC 3339 form, for example \"2024-05-01T09:30:00Z\"."}
	      }
	    }
	  }
	}`
)

// The tool listing carries the schemas derived from the operations and the
// annotations derived from their kind.
func TestListTools(t *testing.T) {
	r := newRig(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := r.session.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	type hints struct {
		Description                       string
		ReadOnly, Idempotent, Destructive bool
	}
	gotHints := map[string]hints{}
	schemas := map[string]any{}
	for _, tool := range res.Tools {
		a := tool.Annotations
		gotHints[tool.Name] = hints{tool.Description, a.ReadOnlyHint, a.IdempotentHint, *a.DestructiveHint}
		in, _ := json.Marshal(tool.InputSchema)
		out, _ := json.Marshal(tool.OutputSchema)
		schemas[tool.Name+" input"] = parseJSON(t, string(in))
		schemas[tool.Name+" output"] = parseJSON(t, string(out))
	}
	query := func(d string) hints { return hints{Description: d, ReadOnly: true, Idempotent: true} }
	wantHints := map[string]hints{
		"get_customer":          query("Fetch one customer by id, with their address and recent orders."),
		"customer_notes":        query("Read the notes of two customers."),
		"list_customers":        query("List customers, all pages."),
		"list_customers_capped": query("List customers, at most two pages."),
		"browse_customers":      query("List customers one page at a time."),
		"create_customer":       {Description: "Create a customer.", Destructive: true},
	}
	if diff := cmp.Diff(wantHints, gotHints); diff != "" {
		t.Errorf("descriptions and annotations (-want +got):\n%s", diff)
	}
	for name, want := range map[string]string{
		"get_customer input":    getCustomerInput,
		"get_customer output":   getCustomerOutput,
		"create_customer input": createCustomerInput,
	} {
		if diff := cmp.Diff(parseJSON(t, want), schemas[name]); diff != "" {
			t.Errorf("%s schema (-want +got):\n%s", name, diff)
		}
	}
}

func TestCalls(t *testing.T) {
	r := newRig(t)
	tests := []struct {
		name         string
		tool         string
		args         string
		want         outcome
		wantRequests int64
	}{
		{
			name: "query with nested objects, lists and an enum",
			tool: "get_customer", args: `{"id": "c1"}`,
			want: outcome{Structured: `{"customer": {"id": "c1", "name": "Ada Lovelace", "tier": "ENTERPRISE", "tags": ["vip", "eu"],
				"address": {"city": "London", "country": "GB"},
				"orders": [{"id": "o2", "status": "SHIPPED", "total": 42}, {"id": "o1", "status": "PAID", "total": 25}]}}`},
			wantRequests: 1,
		},
		{
			name: "enum argument",
			tool: "get_customer", args: `{"id": "c1", "status": "PAID"}`,
			want: outcome{Structured: `{"customer": {"id": "c1", "name": "Ada Lovelace", "tier": "ENTERPRISE", "tags": ["vip", "eu"],
				"address": {"city": "London", "country": "GB"}, "orders": [{"id": "o1", "status": "PAID", "total": 25}]}}`},
			wantRequests: 1,
		},
		{
			name: "null is data too",
			tool: "get_customer", args: `{"id": "c404"}`,
			want:         outcome{Structured: `{"customer": null}`},
			wantRequests: 1,
		},
		{
			name: "partial data is returned with its errors marked",
			tool: "customer_notes", args: `{"a": "c2", "b": "c3"}`,
			want: outcome{
				Structured: `{"a": {"id": "c2", "notes": "Ask about COBOL."}, "b": {"id": "c3", "notes": null}}`,
				Notes: []string{"PARTIAL RESULT: upstream crm answered with data and errors, so the fields named below are null or missing: " +
					"GraphQL error at b.notes: not authorized to read the notes of customer c3"},
			},
			wantRequests: 1,
		},
		{
			name: "errors and no data",
			tool: "list_customers", args: `{"first": 100}`,
			want: outcome{IsError: true, Notes: []string{"upstream crm answered list_customers with no data: " +
				"GraphQL error at customers: first must be between 0 and 50; fix the arguments if they are at fault, retrying the same call will not help"}},
			wantRequests: 1,
		},
		{
			name: "mutation payload errors",
			tool: "create_customer", args: `{"input": {"name": "Bob", "email": "bob-at-example"}}`,
			want:         outcome{IsError: true, Notes: []string{`upstream crm refused create_customer: invalid argument input.email: "bob-at-example" is not a valid e-mail address; fix the arguments and call again`}},
			wantRequests: 1,
		},
		{
			name: "mutation",
			tool: "create_customer", args: `{"input": {"name": "Barbara Liskov", "email": "barbara@example.com", "tier": "PRO"}}`,
			want:         outcome{Structured: `{"createCustomer": {"customer": {"id": "c6", "name": "Barbara Liskov", "tier": "PRO"}, "userErrors": []}}`},
			wantRequests: 1,
		},
		{
			name: "follow pages to the end",
			tool: "list_customers", args: `{}`,
			want: outcome{Structured: `{"customers": {
				"edges": [
					{"cursor": "Y3VzdG9tZXI6MQ", "node": {"id": "c1", "name": "Ada Lovelace"}},
					{"cursor": "Y3VzdG9tZXI6Mg", "node": {"id": "c2", "name": "Grace Hopper"}},
					{"cursor": "Y3VzdG9tZXI6Mw", "node": {"id": "c3", "name": "Alan Turing"}},
					{"cursor": "Y3VzdG9tZXI6NA", "node": {"id": "c4", "name": "Katherine Johnson"}},
					{"cursor": "Y3VzdG9tZXI6NQ", "node": {"id": "c5", "name": "Edsger Dijkstra"}},
					{"cursor": "Y3VzdG9tZXI6Ng", "node": {"id": "c6", "name": "Barbara Liskov"}}
				],
				"pageInfo": {"hasNextPage": false, "endCursor": "Y3VzdG9tZXI6Ng"}}}`},
			wantRequests: 3,
		},
		{
			name: "follow with a filter and a bigger page",
			tool: "list_customers", args: `{"first": 5, "filter": {"tierIn": ["PRO"]}}`,
			want: outcome{Structured: `{"customers": {
				"edges": [
					{"cursor": "Y3VzdG9tZXI6Mg", "node": {"id": "c2", "name": "Grace Hopper"}},
					{"cursor": "Y3VzdG9tZXI6NA", "node": {"id": "c4", "name": "Katherine Johnson"}},
					{"cursor": "Y3VzdG9tZXI6Ng", "node": {"id": "c6", "name": "Barbara Liskov"}}
				],
				"pageInfo": {"hasNextPage": false, "endCursor": "Y3VzdG9tZXI6Ng"}}}`},
			wantRequests: 1,
		},
		{
			name: "follow up to the page limit",
			tool: "list_customers_capped", args: `{}`,
			want: outcome{
				Structured: `{"customers": {"nodes": [{"id": "c1"}, {"id": "c2"}, {"id": "c3"}, {"id": "c4"}],
					"pageInfo": {"hasNextPage": true, "endCursor": "Y3VzdG9tZXI6NA"}}}`,
				Notes: []string{`INCOMPLETE: 2 pages (4 items) returned; the tool's limit of 2 pages was reached. Call list_customers_capped again with after: "Y3VzdG9tZXI6NA" to continue.`},
			},
			wantRequests: 2,
		},
		{
			name: "cursor mode, first page",
			tool: "browse_customers", args: `{}`,
			want: outcome{
				Structured: `{"customers": {"nodes": [{"id": "c1", "name": "Ada Lovelace"}, {"id": "c2", "name": "Grace Hopper"}],
					"pageInfo": {"hasNextPage": true, "endCursor": "Y3VzdG9tZXI6Mg"}}}`,
				Notes: []string{`MORE RESULTS: this is one page; call browse_customers again with after: "Y3VzdG9tZXI6Mg" for the next one.`},
			},
			wantRequests: 1,
		},
		{
			name: "cursor mode, the model passes the cursor back",
			tool: "browse_customers", args: `{"after": "Y3VzdG9tZXI6NA", "first": 5}`,
			want: outcome{Structured: `{"customers": {"nodes": [{"id": "c5", "name": "Edsger Dijkstra"}, {"id": "c6", "name": "Barbara Liskov"}],
				"pageInfo": {"hasNextPage": false, "endCursor": "Y3VzdG9tZXI6Ng"}}}`},
			wantRequests: 1,
		},
	}
	// The cases run in order: the mutation adds c6, which later lists see.
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := r.upstream.requests.Load()
			got := r.call(t, tt.tool, json.RawMessage(tt.args))
			want := tt.want
			if want.Structured != nil {
				want.Structured = parseJSON(t, want.Structured.(string))
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
			if n := r.upstream.requests.Load() - before; n != tt.wantRequests {
				t.Errorf("upstream got %d requests, want %d", n, tt.wantRequests)
			}
		})
	}
}
