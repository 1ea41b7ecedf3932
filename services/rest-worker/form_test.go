package restworker

import (
	"context"
	"encoding/json"
	"io"
	"net/url"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/toolbus/toolbus/catalog"
)

// formRoute compiles a hand-built tool on https://shop.test/v1.
func formRoute(t testing.TB, method string, params []catalog.Param, fixed map[string]any) *route {
	t.Helper()
	base, _ := url.Parse("https://shop.test/v1")
	tool := &catalog.Tool{Name: "t", Upstream: &catalog.Upstream{Name: "shop", BaseURL: base}, Method: method,
		Path: "/customers/{id}", Params: params, BodyEncoding: catalog.BodyForm, Fixed: fixed}
	r, err := compileRoute(tool, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

var formParams = []catalog.Param{
	{Name: "id", In: catalog.InPath, WireName: "id", Required: true},
	{Name: "expand", In: catalog.InQuery, WireName: "expand", Deep: true},
	{Name: "created", In: catalog.InQuery, WireName: "created", Deep: true},
	{Name: "limit", In: catalog.InQuery, WireName: "limit"},
	{Name: "session", In: catalog.InCookie, WireName: "session"},
	{Name: "email", In: catalog.InBody, WireName: "email"},
	{Name: "metadata", In: catalog.InBody, WireName: "metadata"},
	{Name: "items", In: catalog.InBody, WireName: "items"},
	{Name: "tax_exempt", In: catalog.InBody, WireName: "tax_exempt"},
	{Name: "balance", In: catalog.InBody, WireName: "balance"},
	{Name: "body_id", In: catalog.InBody, WireName: "id"},
}

func TestFormEncoding(t *testing.T) {
	tests := []struct {
		name      string
		giveMeth  string
		giveArgs  string
		giveFixed map[string]any
		wantURL   string
		wantBody  string
		wantCT    string
		wantCook  string
		wantErr   string
	}{
		{
			name: "nested objects and arrays like Stripe", giveMeth: "POST",
			giveArgs: `{"id":"cus_1","email":"a+b@example.com","metadata":{"order_id":"6735","z":"last","a b":"x&y=z"},` +
				`"items":[{"price":"price_1","quantity":2},{"price":"price_2","tax_rates":["txr_1","txr_2"]}],"tax_exempt":false,"balance":123456789012345678901234567890,"body_id":"x"}`,
			wantURL: "https://shop.test/v1/customers/cus_1",
			wantBody: "email=a%2Bb%40example.com" +
				"&metadata%5Ba+b%5D=x%26y%3Dz&metadata%5Border_id%5D=6735&metadata%5Bz%5D=last" +
				"&items%5B0%5D%5Bprice%5D=price_1&items%5B0%5D%5Bquantity%5D=2" +
				"&items%5B1%5D%5Bprice%5D=price_2&items%5B1%5D%5Btax_rates%5D%5B0%5D=txr_1&items%5B1%5D%5Btax_rates%5D%5B1%5D=txr_2" +
				"&tax_exempt=false&balance=123456789012345678901234567890&id=x",
			wantCT: "application/x-www-form-urlencoded",
		},
		{
			name: "empty values unset, empty containers send nothing", giveMeth: "POST",
			giveArgs: `{"id":"c","email":"","metadata":{},"items":[],"tax_exempt":null}`,
			wantURL:  "https://shop.test/v1/customers/c", wantBody: "email=&tax_exempt=", wantCT: "application/x-www-form-urlencoded",
		},
		{
			name: "post without body arguments sends an empty body", giveMeth: "POST", giveArgs: `{"id":"c"}`,
			wantURL: "https://shop.test/v1/customers/c", wantBody: "", wantCT: "application/x-www-form-urlencoded",
		},
		{
			name: "get with deepObject query and a cookie, no body", giveMeth: "GET",
			giveArgs: `{"id":"c","expand":["data.customer","sources"],"created":{"gte":10,"lt":20},"limit":3,"session":"a b;c"}`,
			wantURL:  "https://shop.test/v1/customers/c?expand%5B0%5D=data.customer&expand%5B1%5D=sources&created%5Bgte%5D=10&created%5Blt%5D=20&limit=3",
			wantCook: "session=a+b%3Bc",
		},
		{
			name: "fixed arguments replace the caller's", giveMeth: "POST", giveArgs: `{"id":"c","email":"mine@example.com"}`,
			giveFixed: map[string]any{"email": "fixed@example.com", "limit": json.Number("50")},
			wantURL:   "https://shop.test/v1/customers/c?limit=50", wantBody: "email=fixed%40example.com", wantCT: "application/x-www-form-urlencoded",
		},
		{
			name: "an object where a scalar goes", giveMeth: "POST", giveArgs: `{"id":"c","session":{"a":1}}`,
			wantErr: "invalid argument session for t: must be a string, number or boolean, not an object; fix the argument and call again",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := formRoute(t, tt.giveMeth, formParams, tt.giveFixed)
			args, err := decodeArguments("t", []byte(tt.giveArgs))
			if err != nil {
				t.Fatal(err)
			}
			req, err := r.build(context.Background(), args, "")
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err = %v, want %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var body string
			if req.Body != nil {
				b, _ := io.ReadAll(req.Body)
				body = string(b)
			}
			got := []string{req.URL.String(), body, req.Header.Get("Content-Type"), req.Header.Get("Cookie")}
			want := []string{tt.wantURL, tt.wantBody, tt.wantCT, tt.wantCook}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("url, body, content type, cookie (-want +got):\n%s", diff)
			}
			if body != "" {
				if _, err := url.ParseQuery(body); err != nil {
					t.Errorf("body does not parse as a form: %v", err)
				}
			}
		})
	}
}

// FuzzFormBody checks that any metadata key and value arrive intact as
// metadata[key]=value, and that nothing else appears in the body.
func FuzzFormBody(f *testing.F) {
	for _, seed := range [][2]string{{"order_id", "6735"}, {"a]b", "c[d"}, {"&=", "=&"}, {"", ""}, {"☕", "\x00"}, {"x%20", "+"}} {
		f.Add(seed[0], seed[1])
	}
	r := formRoute(f, "POST", formParams, nil)
	f.Fuzz(func(t *testing.T, k, v string) {
		body, err := r.buildFormBody(map[string]any{"metadata": map[string]any{k: v}})
		if err != nil {
			t.Fatal(err)
		}
		got, err := url.ParseQuery(string(body))
		if err != nil {
			t.Fatalf("body %q does not parse: %v", body, err)
		}
		want := url.Values{"metadata[" + k + "]": {v}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("body %q (-want +got):\n%s", body, diff)
		}
	})
}
