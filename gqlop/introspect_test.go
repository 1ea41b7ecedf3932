package gqlop

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/toolbus/toolbus/examples/crmgraphql"
)

func TestIntrospect(t *testing.T) {
	url := startCRM(t)
	got, err := Introspect(context.Background(), nil, url, http.Header{"Authorization": {"Bearer test"}})
	if err != nil {
		t.Fatalf("Introspect: %v", err)
	}
	want := crmSchema(t)

	// The same operations, and the same mistakes, give the same results
	// against the introspected schema as against the SDL.
	docs := append([]string{
		"query Q {\n  customer(id: \"c1\") {\n    nam\n  }\n}",
		"query Q($id: Int!) {\n  customer(id: $id) { name }\n}",
		"query Q {\n  customer { name }\n}",
		"query Q {\n  customer(id: \"c1\") { ...Card }\n}",
		"query Q { orders(status: LOST) { id } }",
	}, opsForComparison...)
	for _, doc := range docs {
		a, errA := ParseOperation(want, "op.graphql", doc, "")
		b, errB := ParseOperation(got, "op.graphql", doc, "")
		if diff := cmp.Diff(errString(errA), errString(errB)); diff != "" {
			t.Errorf("validation of %q differs (-sdl +introspected):\n%s", doc, diff)
			continue
		}
		if errA != nil {
			continue
		}
		if diff := cmp.Diff(a.InputSchema(), b.InputSchema()); diff != "" {
			t.Errorf("InputSchema of %q differs (-sdl +introspected):\n%s", doc, diff)
		}
		if diff := cmp.Diff(a.OutputSchema(), b.OutputSchema()); diff != "" {
			t.Errorf("OutputSchema of %q differs (-sdl +introspected):\n%s", doc, diff)
		}
	}

	// The SDL it rebuilt loads again: that is how start-up skips introspection.
	again, err := LoadSDL("cache.graphql", got.SDL())
	if err != nil {
		t.Fatalf("reloading the introspected SDL: %v", err)
	}
	if diff := cmp.Diff(got.SDL(), again.SDL()); diff != "" {
		t.Errorf("SDL round trip (-first +second):\n%s", diff)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestIntrospectRefused(t *testing.T) {
	disabled := httptest.NewServer(crmgraphql.NewHandlerWithoutIntrospection())
	t.Cleanup(disabled.Close)
	withErrors := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"errors":[{"message":"GraphQL introspection is not allowed","extensions":{"code":"INTROSPECTION_DISABLED"}}]}`))
	}))
	t.Cleanup(withErrors.Close)
	forbidden := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "forbidden", http.StatusForbidden)
	}))
	t.Cleanup(forbidden.Close)

	tests := []struct {
		name string
		give string
		want string
	}{
		{
			name: "no __schema",
			give: disabled.URL,
			want: "introspection is disabled or refused by " + disabled.URL + ": the answer has no __schema",
		},
		{
			name: "errors",
			give: withErrors.URL,
			want: "introspection is disabled or refused by " + withErrors.URL +
				": GraphQL error: GraphQL introspection is not allowed (code: INTROSPECTION_DISABLED)",
		},
		{
			name: "HTTP 403",
			give: forbidden.URL,
			want: "introspection is disabled or refused by " + forbidden.URL + `: HTTP 403: "forbidden\n"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Introspect(context.Background(), nil, tt.give, nil)
			if diff := cmp.Diff(tt.want, errString(err)); diff != "" {
				t.Errorf("error mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestIntrospectUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	_, err := Introspect(context.Background(), nil, url, nil)
	if err == nil || !strings.HasPrefix(err.Error(), "introspect "+url+": ") {
		t.Errorf("error = %v, want one starting with %q", err, "introspect "+url+": ")
	}
}
