package crmgraphql_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/toolbus/toolbus/examples/crmgraphql"
)

func post(t *testing.T, url, query string, vars map[string]any) map[string]any {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	resp, err := http.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("answer %s: %v", raw, err)
	}
	return out
}

func TestHandler(t *testing.T) {
	srv := httptest.NewServer(crmgraphql.NewHandler())
	t.Cleanup(srv.Close)

	tests := []struct {
		name string
		give string
		vars map[string]any
		want string
	}{
		{
			name: "customer",
			give: `{ customer(id: "c1") { name tier address { city } orders(status: PAID) { id total } } }`,
			want: `{"data":{"customer":{"name":"Ada Lovelace","tier":"ENTERPRISE","address":{"city":"London"},"orders":[{"id":"o1","total":25}]}}}`,
		},
		{
			name: "partial data",
			give: `{ a: customer(id: "c2") { notes } b: customer(id: "c3") { notes } }`,
			want: `{"errors":[{"message":"not authorized to read the notes of customer c3","path":["b","notes"]}],"data":{"a":{"notes":"Ask about COBOL."},"b":{"notes":null}}}`,
		},
		{
			name: "bad email",
			give: `mutation($in: CustomerInput!) { createCustomer(input: $in) { customer { id } userErrors { field message } } }`,
			vars: map[string]any{"in": map[string]any{"name": "Bob", "email": "bob-at-example"}},
			want: `{"data":{"createCustomer":{"customer":null,"userErrors":[{"field":["input","email"],"message":"\"bob-at-example\" is not a valid e-mail address"}]}}}`,
		},
		{
			name: "create",
			give: `mutation($in: CustomerInput!) { createCustomer(input: $in) { customer { id tier createdAt } userErrors { message } } }`,
			vars: map[string]any{"in": map[string]any{"name": "Bob", "email": "bob@example.com", "signupAt": "2024-02-01T10:00:00Z"}},
			want: `{"data":{"createCustomer":{"customer":{"id":"c6","tier":"FREE","createdAt":"2024-02-01T10:00:00Z"},"userErrors":[]}}}`,
		},
		{
			name: "filter",
			give: `{ customers(filter: {or: [{tierIn: [PRO]}, {nameContains: "ada"}], not: {nameContains: "grace"}}) { nodes { id } totalCount } }`,
			want: `{"data":{"customers":{"nodes":[{"id":"c1"},{"id":"c4"}],"totalCount":2}}}`,
		},
		{
			name: "search union",
			give: `{ search(text: "book") { __typename ... on Order { id } } }`,
			want: `{"data":{"search":[{"__typename":"Order","id":"o1"},{"__typename":"Order","id":"o2"},{"__typename":"Order","id":"o4"}]}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := post(t, srv.URL, tt.give, tt.vars)
			var want map[string]any
			if err := json.Unmarshal([]byte(tt.want), &want); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("answer mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPagination(t *testing.T) {
	srv := httptest.NewServer(crmgraphql.NewHandler())
	t.Cleanup(srv.Close)
	const q = `query($after: String) { customers(first: 2, after: $after) { nodes { id } pageInfo { hasNextPage endCursor } } }`
	var ids []any
	var after any
	for range 10 {
		res := post(t, srv.URL, q, map[string]any{"after": after})
		conn := res["data"].(map[string]any)["customers"].(map[string]any)
		for _, n := range conn["nodes"].([]any) {
			ids = append(ids, n.(map[string]any)["id"])
		}
		pi := conn["pageInfo"].(map[string]any)
		if pi["hasNextPage"] != true {
			break
		}
		after = pi["endCursor"]
	}
	want := []any{"c1", "c2", "c3", "c4", "c5"}
	if diff := cmp.Diff(want, ids); diff != "" {
		t.Errorf("ids (-want +got):\n%s", diff)
	}
}

func TestMethodNotAllowed(t *testing.T) {
	srv := httptest.NewServer(crmgraphql.NewHandler())
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: status %d, want 405", resp.StatusCode)
	}
}
