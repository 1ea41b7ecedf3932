package gqlop

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseResponse(t *testing.T) {
	tests := []struct {
		name        string
		give        string
		wantOutcome Outcome
		wantData    string
		wantText    string // ErrorText
		wantErr     string // Err on a Failure, or ParseResponse's error
	}{
		{name: "success", give: `{"data":{"customer":{"id":"c1"}}}`, wantOutcome: Success, wantData: `{"customer":{"id":"c1"}}`},
		{name: "empty errors list", give: `{"data":{"a":1},"errors":[]}`, wantOutcome: Success, wantData: `{"a":1}`},
		{
			name:        "failure",
			give:        `{"errors":[{"message":"not authorized","path":["customer","orders",2],"extensions":{"code":"FORBIDDEN"}}]}`,
			wantOutcome: Failure,
			wantText:    "GraphQL error at customer.orders[2]: not authorized (code: FORBIDDEN)",
			wantErr:     "GraphQL error at customer.orders[2]: not authorized (code: FORBIDDEN)",
		},
		{
			name:        "failure with null data and two errors",
			give:        `{"data":null,"errors":[{"message":"a is broken","path":["a"]},{"message":"rate limited"}]}`,
			wantOutcome: Failure,
			wantText:    "2 GraphQL errors: GraphQL error at a: a is broken; GraphQL error: rate limited",
			wantErr:     "2 GraphQL errors: GraphQL error at a: a is broken; GraphQL error: rate limited",
		},
		{
			name:        "partial",
			give:        `{"errors":[{"message":"not authorized to read the notes of customer c3","path":["customers","nodes",2,"notes"],"locations":[{"line":1,"column":3}]}],"data":{"customers":{"nodes":[{},{},{"notes":null}]}}}`,
			wantOutcome: Partial,
			wantData:    `{"customers":{"nodes":[{},{},{"notes":null}]}}`,
			wantText:    "GraphQL error at customers.nodes[2].notes: not authorized to read the notes of customer c3",
		},
		{name: "not JSON", give: `<html>502 Bad Gateway</html>`,
			wantErr: `malformed GraphQL response: invalid character '<' looking for beginning of value (body starts "<html>502 Bad Gateway</html>")`},
		{name: "truncated", give: `{"data":{"a":`,
			wantErr: `malformed GraphQL response: unexpected end of JSON input (body starts "{\"data\":{\"a\":")`},
		{name: "neither", give: `{"extensions":{}}`,
			wantErr: `malformed GraphQL response: neither data nor errors (body starts "{\"extensions\":{}}")`},
		{name: "data not an object", give: `{"data":[1]}`,
			wantErr: `malformed GraphQL response: data is not an object (starts "[1]")`},
		{name: "errors not a list", give: `{"errors":"boom"}`,
			wantErr: "malformed GraphQL response: errors is not a list of error objects: json: cannot unmarshal string into Go value of type []gqlop.wireError"},
		{name: "array body", give: `[]`,
			wantErr: `malformed GraphQL response: json: cannot unmarshal array into Go value of type gqlop.wireResponse (body starts "[]")`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseResponse([]byte(tt.give))
			if err != nil {
				if !errors.Is(err, ErrMalformedResponse) {
					t.Errorf("error %v does not wrap ErrMalformedResponse", err)
				}
				if diff := cmp.Diff(tt.wantErr, err.Error()); diff != "" {
					t.Errorf("error mismatch (-want +got):\n%s", diff)
				}
				return
			}
			if got.Outcome != tt.wantOutcome {
				t.Errorf("Outcome = %s, want %s", got.Outcome, tt.wantOutcome)
			}
			if diff := cmp.Diff(tt.wantData, string(got.Data)); diff != "" {
				t.Errorf("Data mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantText, got.ErrorText()); diff != "" {
				t.Errorf("ErrorText mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantErr, errString(got.Err())); diff != "" {
				t.Errorf("Err mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// A field that fails on the real server gives partial data.
func TestParseResponsePartialFromServer(t *testing.T) {
	url := startCRM(t)
	resp := postGraphQL(t, url, `{ customers { nodes { id notes } } }`, nil)
	if resp.Outcome != Partial {
		t.Fatalf("Outcome = %s, want partial", resp.Outcome)
	}
	want := "GraphQL error at customers.nodes[2].notes: not authorized to read the notes of customer c3"
	if diff := cmp.Diff(want, resp.ErrorText()); diff != "" {
		t.Errorf("ErrorText mismatch (-want +got):\n%s", diff)
	}
}

func TestPayloadErrors(t *testing.T) {
	tests := []struct {
		name     string
		give     string
		givePath string
		want     FieldErrors
		wantText string
		wantErr  string
	}{
		{
			name:     "userErrors",
			give:     `{"createCustomer":{"customer":null,"userErrors":[{"field":["input","email"],"message":"\"bob\" is not a valid e-mail address"}]}}`,
			givePath: "createCustomer",
			want:     FieldErrors{{Field: []string{"input", "email"}, Message: `"bob" is not a valid e-mail address`}},
			wantText: `invalid argument input.email: "bob" is not a valid e-mail address`,
		},
		{
			name:     "errors with string field and code",
			give:     `{"shop":{"update":{"errors":[{"field":"title","message":"is too long","code":"TOO_LONG"},{"field":null,"message":"try later"}]}}}`,
			givePath: "shop.update",
			want: FieldErrors{
				{Field: []string{"title"}, Message: "is too long", Code: "TOO_LONG"},
				{Message: "try later"},
			},
			wantText: "invalid argument title: is too long (code: TOO_LONG); try later",
		},
		{name: "none", give: `{"createCustomer":{"customer":{"id":"c6"},"userErrors":[]}}`, givePath: "createCustomer"},
		{name: "null payload", give: `{"createCustomer":null}`, givePath: "createCustomer"},
		{name: "no error list", give: `{"createCustomer":{"customer":{"id":"c6"}}}`, givePath: "createCustomer"},
		{name: "malformed", give: `{"createCustomer":{`, givePath: "createCustomer",
			wantErr: "payload errors: data is not a JSON object: unexpected end of JSON input"},
		{name: "missing path", give: `{}`, givePath: "createCustomer", wantErr: `payload errors: data has no field "createCustomer"`},
		{name: "list is not a list", give: `{"p":{"userErrors":{"message":"x"}}}`, givePath: "p",
			wantErr: "payload errors: the error list of p: json: cannot unmarshal object into Go value of type []gqlop.wireFieldError"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := PayloadErrors(json.RawMessage(tt.give), tt.givePath)
			if diff := cmp.Diff(tt.wantErr, errString(err)); diff != "" {
				t.Fatalf("error mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("PayloadErrors mismatch (-want +got):\n%s", diff)
			}
			text := ""
			if len(got) > 0 {
				text = got.Error()
			}
			if diff := cmp.Diff(tt.wantText, text); diff != "" {
				t.Errorf("text mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func FuzzParseResponse(f *testing.F) {
	for _, seed := range []string{
		`{"data":{"a":1}}`,
		`{"errors":[{"message":"x","path":["a",1,"b"]}]}`,
		`{"data":{"a":null},"errors":[{"message":"x","path":[0.5,{"k":1}],"locations":[{"line":1}],"extensions":{"code":3}}]}`,
		`{"data":null}`,
		`{"errors":[null,1,"s"]}`,
		`{"data":{"p":{"userErrors":[{"field":[1,null],"message":"m"}]}}}`,
		`<html>`,
		``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := ParseResponse(body)
		if err != nil {
			return
		}
		_ = r.ErrorText()
		_ = r.Err()
		if r.Outcome != Failure && r.Data == nil {
			t.Errorf("outcome %s without data", r.Outcome)
		}
		if r.Data != nil {
			_, _ = PayloadErrors(r.Data, "p")
			_, _, _ = NextCursor(r.Data, "c")
		}
	})
}
