package gqlop

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCheckConnection(t *testing.T) {
	schema := crmSchema(t)
	tests := []struct {
		name     string
		give     string
		giveConn Connection
		want     string
	}{
		{name: "edges", give: opCustomers, giveConn: Connection{Path: "customers"}},
		{
			name:     "aliased, nodes, own cursor name",
			give:     `query Q($cursor: String) { all: customers(after: $cursor) { nodes { id } pageInfo { endCursor hasNextPage } } }`,
			giveConn: Connection{Path: "all", CursorVariable: "cursor"},
		},
		{
			name:     "pageInfo through a fragment",
			give:     `query Q($after: String) { customers(after: $after) { nodes { id } ...Paging } } fragment Paging on CustomerConnection { pageInfo { hasNextPage endCursor } }`,
			giveConn: Connection{Path: "customers"},
		},
		{
			name:     "no pageInfo",
			give:     "query Q($after: String) {\n  customers(after: $after) { nodes { id } }\n}",
			giveConn: Connection{Path: "customers"},
			want:     `op.graphql:2:3: pagination along "customers": the connection must select pageInfo { hasNextPage endCursor } (rule: RelayConnection)`,
		},
		{
			name:     "no endCursor",
			give:     "query Q($after: String) {\n  customers(after: $after) {\n    nodes { id }\n    pageInfo { hasNextPage }\n  }\n}",
			giveConn: Connection{Path: "customers"},
			want:     `op.graphql:4:5: pagination along "customers": pageInfo must select endCursor (it selects hasNextPage and endCursor to page on) (rule: RelayConnection)`,
		},
		{
			name:     "no cursor variable",
			give:     "query Q {\n  customers { nodes { id } pageInfo { hasNextPage endCursor } }\n}",
			giveConn: Connection{Path: "customers"},
			want:     `op.graphql:1:1: pagination along "customers": the operation declares no $after variable for the cursor (rule: RelayConnection)`,
		},
		{
			name:     "cursor variable not passed",
			give:     "query Q($after: String) {\n  customers(filter: {nameContains: $after}) { nodes { id } pageInfo { hasNextPage endCursor } }\n}",
			giveConn: Connection{Path: "customers"},
			want:     `op.graphql:2:3: pagination along "customers": $after is not passed to the connection field (for example customers(after: $after)) (rule: RelayConnection)`,
		},
		{
			name:     "required cursor",
			give:     "query Q($after: String!) {\n  customers(after: $after) { nodes { id } pageInfo { hasNextPage endCursor } }\n}",
			giveConn: Connection{Path: "customers"},
			want:     `op.graphql:1:9: pagination along "customers": $after must be optional (nullable): the first page has no cursor (rule: RelayConnection)`,
		},
		{
			name:     "path not selected",
			give:     opCustomers,
			giveConn: Connection{Path: "viewer.customers"},
			want:     `op.graphql:1:1: pagination along "viewer.customers": Query selects no field "viewer" (rule: RelayConnection)`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			op := mustParse(t, schema, tt.give)
			if diff := cmp.Diff(tt.want, errString(op.CheckConnection(tt.giveConn))); diff != "" {
				t.Errorf("CheckConnection mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNextCursor(t *testing.T) {
	tests := []struct {
		name        string
		give        string
		givePath    string
		wantCursor  string
		wantHasNext bool
		wantErr     string
	}{
		{name: "next page", give: `{"customers":{"pageInfo":{"hasNextPage":true,"endCursor":"abc"}}}`, givePath: "customers", wantCursor: "abc", wantHasNext: true},
		{name: "last page", give: `{"customers":{"pageInfo":{"hasNextPage":false,"endCursor":"abc"}}}`, givePath: "customers"},
		{name: "nested", give: `{"viewer":{"repos":{"pageInfo":{"hasNextPage":true,"endCursor":"x"}}}}`, givePath: "viewer.repos", wantCursor: "x", wantHasNext: true},
		{name: "malformed", give: `{"customers":`, givePath: "customers",
			wantErr: "next cursor: data is not a JSON object: unexpected end of JSON input"},
		{name: "missing path", give: `{"orders":[]}`, givePath: "customers", wantErr: `next cursor: data has no field "customers"`},
		{name: "null connection", give: `{"customers":null}`, givePath: "customers", wantErr: "next cursor: connection customers is null"},
		{name: "through a list", give: `{"viewer":[{"repos":{}}]}`, givePath: "viewer.repos",
			wantErr: "next cursor: data.viewer is not a JSON object: json: cannot unmarshal array into Go value of type map[string]json.RawMessage"},
		{name: "no pageInfo", give: `{"customers":{"nodes":[]}}`, givePath: "customers", wantErr: "next cursor: connection customers has no pageInfo"},
		{name: "no cursor", give: `{"customers":{"pageInfo":{"hasNextPage":true,"endCursor":null}}}`, givePath: "customers",
			wantErr: "next cursor: pageInfo of customers says hasNextPage but gives no endCursor"},
		{name: "empty path key", give: `{}`, givePath: "a..b", wantErr: `next cursor: path "a..b" has an empty key`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cursor, hasNext, err := NextCursor(json.RawMessage(tt.give), tt.givePath)
			if diff := cmp.Diff(tt.wantErr, errString(err)); diff != "" {
				t.Fatalf("error mismatch (-want +got):\n%s", diff)
			}
			if cursor != tt.wantCursor || hasNext != tt.wantHasNext {
				t.Errorf("NextCursor = %q, %v; want %q, %v", cursor, hasNext, tt.wantCursor, tt.wantHasNext)
			}
		})
	}
}

func TestMergePages(t *testing.T) {
	tests := []struct {
		name     string
		give     []string
		givePath string
		want     string
		wantErr  string
	}{
		{
			name: "edges and nodes",
			give: []string{
				`{"customers":{"edges":[{"cursor":"a"}],"nodes":[{"id":1}],"pageInfo":{"hasNextPage":true,"endCursor":"a"},"totalCount":3}}`,
				`{"customers":{"edges":[{"cursor":"b"}],"nodes":[{"id":2}],"pageInfo":{"hasNextPage":true,"endCursor":"b"},"totalCount":3}}`,
				`{"customers":{"edges":[{"cursor":"c"}],"nodes":[{"id":3}],"pageInfo":{"hasNextPage":false,"endCursor":"c"},"totalCount":3}}`,
			},
			givePath: "customers",
			want:     `{"customers":{"edges":[{"cursor":"a"},{"cursor":"b"},{"cursor":"c"}],"nodes":[{"id":1},{"id":2},{"id":3}],"pageInfo":{"hasNextPage":false,"endCursor":"c"},"totalCount":3}}`,
		},
		{
			name: "nested path keeps siblings",
			give: []string{
				`{"viewer":{"login":"ada","repos":{"nodes":[1,2],"pageInfo":{"hasNextPage":true,"endCursor":"x"}}}}`,
				`{"viewer":{"login":"ada","repos":{"nodes":[],"pageInfo":{"hasNextPage":false,"endCursor":null}}}}`,
			},
			givePath: "viewer.repos",
			want:     `{"viewer":{"login":"ada","repos":{"nodes":[1,2],"pageInfo":{"hasNextPage":false,"endCursor":null}}}}`,
		},
		{
			name:     "one page",
			give:     []string{`{"c":{"nodes":[12345678901234567890]}}`},
			givePath: "c",
			want:     `{"c":{"nodes":[12345678901234567890]}}`,
		},
		{name: "no pages", givePath: "c", wantErr: "merge pages: no page to merge"},
		{name: "malformed page", give: []string{`{"c":{"nodes":[]}}`, `{"c":`}, givePath: "c",
			wantErr: "merge pages: page 2: data is not a JSON object: unexpected end of JSON input"},
		{name: "nodes not a list", give: []string{`{"c":{"nodes":{}}}`}, givePath: "c",
			wantErr: "merge pages: page 1: c.nodes is not a list: json: cannot unmarshal object into Go value of type []json.RawMessage"},
		{name: "null connection", give: []string{`{"c":null}`}, givePath: "c", wantErr: "merge pages: page 1: connection c is null"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var pages []json.RawMessage
			for _, p := range tt.give {
				pages = append(pages, json.RawMessage(p))
			}
			got, err := MergePages(pages, tt.givePath)
			if diff := cmp.Diff(tt.wantErr, errString(err)); diff != "" {
				t.Fatalf("error mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.want, string(got)); diff != "" {
				t.Errorf("MergePages mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// Walk every page of the real server's connection with the helpers.
func TestPaginateRealServer(t *testing.T) {
	url := startCRM(t)
	op := mustParse(t, crmSchema(t), opCustomers)
	if err := op.CheckConnection(Connection{Path: "customers"}); err != nil {
		t.Fatal(err)
	}
	var pages []json.RawMessage
	vars := map[string]any{"first": 2}
	for range 10 {
		resp := postGraphQL(t, url, op.Text(), vars)
		if resp.Outcome != Success {
			t.Fatal(resp.ErrorText())
		}
		pages = append(pages, resp.Data)
		cursor, more, err := NextCursor(resp.Data, "customers")
		if err != nil {
			t.Fatal(err)
		}
		if !more {
			break
		}
		vars["after"] = cursor
	}
	merged, err := MergePages(pages, "customers")
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Customers struct {
			Edges []struct{ Node struct{ ID string } }
		}
	}
	if err := json.Unmarshal(merged, &got); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range got.Customers.Edges {
		ids = append(ids, e.Node.ID)
	}
	if diff := cmp.Diff([]string{"c1", "c2", "c3", "c4", "c5"}, ids); diff != "" {
		t.Errorf("merged ids (-want +got):\n%s (from %d pages)", diff, len(pages))
	}
}
