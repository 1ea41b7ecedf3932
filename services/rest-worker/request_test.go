package restworker

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/toolbus/toolbus/catalog"
	toolbusv1 "github.com/toolbus/toolbus/gen/toolbus/v1"
	"github.com/toolbus/toolbus/toolerr"
	"github.com/toolbus/toolbus/upstream"
)

const secret = "sk_test_0123456789abcdef"

// loadCatalog loads testdata/catalog.yaml with the given upstream URLs.
func loadCatalog(t testing.TB, crmURL, deadURL, demoURL string) *catalog.Catalog {
	t.Helper()
	env := map[string]string{"CRM_URL": crmURL, "DEAD_URL": deadURL, "DEMO_URL": demoURL, "CRM_API_KEY": secret}
	cat, err := catalog.Load("testdata/catalog.yaml", catalog.WithLookupEnv(func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}))
	if err != nil {
		t.Fatalf("load catalog: %v", err)
	}
	return cat
}

// testRoutes compiles every tool of the test catalog against fixed hosts.
func testRoutes(t testing.TB) map[string]*route {
	t.Helper()
	cat := loadCatalog(t, "http://crm.test:8080", "http://dead.test", "https://demo.test")
	var ups []*catalog.Upstream
	for _, u := range cat.Upstreams {
		ups = append(ups, u)
	}
	h, err := newHandler(cat, ups, upstream.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return h.routes
}

type builtRequest struct {
	Method string
	URL    string
	Header http.Header
	Body   string
}

func TestBuildRequest(t *testing.T) {
	routes := testRoutes(t)
	const base = "http://crm.test:8080/api/v1"
	std := http.Header{"User-Agent": {"toolbus/dev"}, "Accept": {acceptHeader}}
	with := func(kv ...string) http.Header {
		h := std.Clone()
		for i := 0; i < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return h
	}
	tests := []struct {
		name     string
		giveTool string
		giveArgs string
		want     *builtRequest
		wantErr  string // message of the INVALID_ARGUMENT tool error
	}{
		{
			name: "get with path, query and header", giveTool: "get_customer",
			giveArgs: `{"id":"42","expand":["orders","notes"],"limit":10,"active":true,"filter":{"tier":"pro"},"trace":"t-1","undeclared":"x"}`,
			want: &builtRequest{Method: "GET", Header: with("X-Trace", "t-1"),
				URL: base + "/customers/42?expand%5B%5D=orders&expand%5B%5D=notes&limit=10&active=true&filter=%7B%22tier%22%3A%22pro%22%7D"},
		},
		{name: "dot-dot slash", giveTool: "get_customer", giveArgs: `{"id":"../admin"}`,
			want: &builtRequest{Method: "GET", Header: std, URL: base + "/customers/..%2Fadmin"}},
		{name: "slash", giveTool: "get_customer", giveArgs: `{"id":"a/b"}`,
			want: &builtRequest{Method: "GET", Header: std, URL: base + "/customers/a%2Fb"}},
		{name: "query in value", giveTool: "get_customer", giveArgs: `{"id":"a?b=c"}`,
			want: &builtRequest{Method: "GET", Header: std, URL: base + "/customers/a%3Fb=c"}},
		{name: "fragment in value", giveTool: "get_customer", giveArgs: `{"id":"a#frag"}`,
			want: &builtRequest{Method: "GET", Header: std, URL: base + "/customers/a%23frag"}},
		{name: "escaped dots stay literal", giveTool: "get_customer", giveArgs: `{"id":"%2e%2e"}`,
			want: &builtRequest{Method: "GET", Header: std, URL: base + "/customers/%252e%252e"}},
		{name: "semicolon", giveTool: "get_customer", giveArgs: `{"id":"a;b,c"}`,
			want: &builtRequest{Method: "GET", Header: std, URL: base + "/customers/a%3Bb%2Cc"}},
		{name: "unicode", giveTool: "get_customer", giveArgs: `{"id":"café ☕"}`,
			want: &builtRequest{Method: "GET", Header: std, URL: base + "/customers/caf%C3%A9%20%E2%98%95"}},
		{name: "three dots are a name", giveTool: "get_customer", giveArgs: `{"id":"..."}`,
			want: &builtRequest{Method: "GET", Header: std, URL: base + "/customers/..."}},
		{name: "number in path", giveTool: "delete_customer", giveArgs: `{"id":1e3}`,
			want: &builtRequest{Method: "DELETE", Header: with("Idempotency-Key", "idem-1"), URL: base + "/customers/1000"}},
		{name: "big integer keeps its digits", giveTool: "delete_customer", giveArgs: `{"id":123456789012345678901234567890}`,
			want: &builtRequest{Method: "DELETE", Header: with("Idempotency-Key", "idem-1"), URL: base + "/customers/123456789012345678901234567890"}},
		{name: "numbers in query", giveTool: "get_customer", giveArgs: `{"id":"1","limit":2.0,"filter":null}`,
			want: &builtRequest{Method: "GET", Header: std, URL: base + "/customers/1?limit=2"}},
		{
			name: "post body in declaration order", giveTool: "create_customer",
			giveArgs: `{"tags":["vip"],"email":"ada@example.com","name":"Ada <Lovelace>","age":36,"dry_run":false}`,
			want: &builtRequest{Method: "POST", URL: base + "/customers?dryRun=false",
				Header: with("Content-Type", "application/json", "Idempotency-Key", "idem-1"),
				Body:   `{"name":"Ada <Lovelace>","email":"ada@example.com","age":36,"tags":["vip"]}`},
		},
		{
			name: "post without body arguments sends an empty object", giveTool: "create_customer", giveArgs: `{}`,
			want: &builtRequest{Method: "POST", URL: base + "/customers",
				Header: with("Content-Type", "application/json", "Idempotency-Key", "idem-1"), Body: `{}`},
		},
		{name: "dot-dot", giveTool: "get_customer", giveArgs: `{"id":".."}`,
			wantErr: `invalid argument id for get_customer: must not be ".." (it is part of the URL path); fix the argument and call again`},
		{name: "dot", giveTool: "get_customer", giveArgs: `{"id":"."}`,
			wantErr: `invalid argument id for get_customer: must not be "." (it is part of the URL path); fix the argument and call again`},
		{name: "empty", giveTool: "get_customer", giveArgs: `{"id":""}`,
			wantErr: `invalid argument id for get_customer: must not be empty (it is part of the URL path); fix the argument and call again`},
		{name: "missing", giveTool: "get_customer", giveArgs: `{}`,
			wantErr: `invalid argument id for get_customer: is required (it is part of the URL path); fix the argument and call again`},
		{name: "NUL in path", giveTool: "get_customer", giveArgs: `{"id":"a\u0000b"}`,
			wantErr: `invalid argument id for get_customer: must not contain control characters; fix the argument and call again`},
		{name: "C1 control in path", giveTool: "get_customer", giveArgs: `{"id":"a\u0085"}`,
			wantErr: `invalid argument id for get_customer: must not contain control characters; fix the argument and call again`},
		{name: "object in path", giveTool: "get_customer", giveArgs: `{"id":{"a":1}}`,
			wantErr: `invalid argument id for get_customer: must be a string, number or boolean, not an object; fix the argument and call again`},
		{name: "CRLF in header", giveTool: "get_customer", giveArgs: `{"id":"1","trace":"x\r\nX-Admin: 1"}`,
			wantErr: `invalid argument trace for get_customer: must not contain line breaks, NUL or other control characters (it is sent as a header); fix the argument and call again`},
		{name: "LF in header", giveTool: "get_customer", giveArgs: `{"id":"1","trace":"x\ny"}`,
			wantErr: `invalid argument trace for get_customer: must not contain line breaks, NUL or other control characters (it is sent as a header); fix the argument and call again`},
		{name: "array in header with object", giveTool: "get_customer", giveArgs: `{"id":"1","trace":[{}]}`,
			wantErr: `invalid argument trace for get_customer: must be a string, number or boolean, not an object; fix the argument and call again`},
		{name: "not an object", giveTool: "get_customer", giveArgs: `[1]`,
			wantErr: `invalid argument arguments for get_customer: must be one JSON object; fix the argument and call again`},
		{name: "trailing data", giveTool: "get_customer", giveArgs: `{"id":"1"} {}`,
			wantErr: `invalid argument arguments for get_customer: must be one JSON object, with nothing after it; fix the argument and call again`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := routes[tt.giveTool]
			req, err := buildFromJSON(r, tt.giveTool, tt.giveArgs)
			if tt.wantErr != "" {
				te, ok := toolerr.As(err)
				if !ok || te.Class != toolbusv1.ErrorClass_ERROR_CLASS_INVALID_ARGUMENT {
					t.Fatalf("err = %v, want an INVALID_ARGUMENT tool error", err)
				}
				if te.Message != tt.wantErr {
					t.Errorf("message:\n got %s\nwant %s", te.Message, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := &builtRequest{Method: req.Method, URL: req.URL.String(), Header: req.Header}
			if req.Body != nil {
				b, _ := io.ReadAll(req.Body)
				got.Body = string(b)
				if req.ContentLength != int64(len(b)) || req.GetBody == nil {
					t.Errorf("ContentLength %d for %d bytes, GetBody set %v", req.ContentLength, len(b), req.GetBody != nil)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("request (-want +got):\n%s", diff)
			}
			if req.Host != "crm.test:8080" {
				t.Errorf("Host = %q", req.Host)
			}
		})
	}
}

func buildFromJSON(r *route, tool, args string) (*http.Request, error) {
	m, err := decodeArguments(tool, []byte(args))
	if err != nil {
		return nil, err
	}
	return r.build(context.Background(), m, "idem-1")
}

func TestFormatNumber(t *testing.T) {
	tests := []struct {
		give    string
		want    string
		wantErr bool
	}{
		{give: "0", want: "0"},
		{give: "-12", want: "-12"},
		{give: "1e3", want: "1000"},
		{give: "1E+2", want: "100"},
		{give: "2.0", want: "2"},
		{give: "-0.0", want: "0"},
		{give: "1.5", want: "1.5"},
		{give: "0.10", want: "0.10"},
		{give: "1.5e-7", want: "0.00000015"},
		{give: "1e21", want: "1000000000000000000000"},
		{give: "99999999999999999999", want: "99999999999999999999"},
		{give: "1e400", wantErr: true},
		{give: "1e", wantErr: true},
		{give: "01", wantErr: true},
		{give: "1&x=2", wantErr: true},
		{give: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			got, err := formatNumber(json.Number(tt.give))
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("formatNumber(%s) = %q, %v; want %q, error %v", tt.give, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

// FuzzBuildRequest checks the request-building guarantees for any path
// argument values: the URL keeps the base URL's scheme, host and port,
// starts with the base path, has exactly the template's number of
// segments, and each argument arrives as exactly one segment.
func FuzzBuildRequest(f *testing.F) {
	for _, seed := range [][2]string{
		{"../admin", "b"}, {"a/b", "c"}, {"a?b=c", "d"}, {"a#frag", "e"}, {"%2e%2e", ".."}, {".", "x"},
		{"x\r\nHost: evil", "y"}, {"café", "☕"}, {"//evil.example", "@evil"}, {"a;b", "c,d"}, {"\x00", "\xff"},
		{"http://evil.example/", "%"}, {"\\..\\", "~"},
	} {
		f.Add(seed[0], seed[1], "t")
	}
	routes := testRoutes(f)
	r := routes["pair"]
	f.Fuzz(func(t *testing.T, a, b, trace string) {
		req, err := r.build(context.Background(), map[string]any{"a": a, "b": b}, "k")
		if err != nil {
			te, ok := toolerr.As(err)
			if !ok || te.Class != toolbusv1.ErrorClass_ERROR_CLASS_INVALID_ARGUMENT {
				t.Fatalf("error is not an invalid-argument tool error: %v", err)
			}
			if checkSegment(a) == "" && checkSegment(b) == "" {
				t.Fatalf("refused acceptable values %q, %q: %v", a, b, err)
			}
			return
		}
		// Parse what goes on the wire, not our own struct.
		wire, err := url.Parse(req.URL.String())
		if err != nil {
			t.Fatalf("built URL does not parse: %v", err)
		}
		if wire.Scheme != "http" || wire.Host != "crm.test:8080" || wire.User != nil {
			t.Fatalf("origin changed: %s", req.URL)
		}
		if wire.RawQuery != "" || wire.Fragment != "" || wire.ForceQuery {
			t.Fatalf("query or fragment appeared: %s", req.URL)
		}
		ep := wire.EscapedPath()
		if !strings.HasPrefix(ep, "/api/v1/pairs/") {
			t.Fatalf("path %q does not start with the base path", ep)
		}
		segs := strings.Split(ep, "/")
		if len(segs) != r.segments+1 || r.segments != 6 {
			t.Fatalf("path %q has %d segments, want %d", ep, len(segs)-1, r.segments)
		}
		for i, want := range map[int]string{4: a, 6: b} {
			got, err := url.PathUnescape(segs[i])
			if err != nil || got != want {
				t.Fatalf("segment %d = %q (%v), want %q", i, got, err, want)
			}
			if segs[i] == "." || segs[i] == ".." {
				t.Fatalf("dot segment on the wire: %q", ep)
			}
		}
		if segs[5] != "x" {
			t.Fatalf("literal segment changed: %q", ep)
		}
		if req.URL.RequestURI() != ep {
			t.Fatalf("request URI %q differs from the escaped path %q", req.URL.RequestURI(), ep)
		}
		// Header values must never carry line breaks to the wire.
		if !utf8.ValidString(trace) {
			return
		}
		hr := routes["get_customer"]
		hreq, err := hr.build(context.Background(), map[string]any{"id": "1", "trace": trace}, "k")
		if err == nil && strings.ContainsAny(hreq.Header.Get("X-Trace"), "\r\n\x00") {
			t.Fatalf("header value with a line break accepted: %q", trace)
		}
	})
}

func BenchmarkBuildRequest(b *testing.B) {
	routes := testRoutes(b)
	r := routes["get_customer"]
	args, err := decodeArguments("get_customer", []byte(`{"id":"cus_42/x","expand":["orders","notes"],"limit":10,"active":true,"trace":"t-1"}`))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.build(ctx, args, "idem"); err != nil {
			b.Fatal(err)
		}
	}
}
