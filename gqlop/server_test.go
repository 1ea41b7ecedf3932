package gqlop

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/toolbus/toolbus/examples/crmgraphql"
)

// startCRM serves the example CRM, the real upstream of these tests.
func startCRM(t testing.TB) string {
	t.Helper()
	srv := httptest.NewServer(crmgraphql.NewHandler())
	t.Cleanup(srv.Close)
	return srv.URL
}

func postGraphQL(t testing.TB, url, query string, vars map[string]any) Response {
	t.Helper()
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r, err := ParseResponse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
