package catalog

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const orderCatalog = head + `tools:
  - name: create_order
    description: Create an order.
    upstream: crm
    method: POST
    path: /orders
    input_schema:
      type: object
      additionalProperties: false
      required: [email, items]
      properties:
        email: {type: string, format: email}
        site: {type: string, format: uri}
        at: {type: string, format: date-time}
        id: {type: string, format: uuid}
        tier: {enum: [free, pro]}
        count: {type: integer, minimum: 1}
        big: {type: integer}
        note: {type: [string, "null"], maxLength: 5}
        extra: {type: object}
        items:
          type: array
          items:
            type: object
            required: [sku, qty]
            properties:
              sku: {type: string}
              qty: {type: integer, minimum: 1}
`

func orderTool(t testing.TB) *Tool {
	t.Helper()
	cat, err := Parse("c.yaml", []byte(orderCatalog))
	if err != nil {
		t.Fatal(err)
	}
	tl, _ := cat.Tool("create_order")
	return tl
}

func nested(depth int) string {
	return `{"email":"a@b.co","items":[],"extra":` + strings.Repeat(`{"a":`, depth) + `1` + strings.Repeat(`}`, depth) + `}`
}

func TestValidateArgumentsValid(t *testing.T) {
	tl := orderTool(t)
	tests := []struct {
		name string
		give string
		want map[string]any
	}{
		{"minimal", `{"email":"a@b.co","items":[]}`, map[string]any{"email": "a@b.co", "items": []any{}}},
		{"all formats", `{"email":"a@b.co","items":[{"sku":"x","qty":2}],"site":"https://x.example/a","at":"2024-05-01T10:00:00Z","id":"123e4567-e89b-12d3-a456-426614174000","tier":"pro","note":null}`,
			map[string]any{"email": "a@b.co", "items": []any{map[string]any{"sku": "x", "qty": json.Number("2")}}, "site": "https://x.example/a", "at": "2024-05-01T10:00:00Z", "id": "123e4567-e89b-12d3-a456-426614174000", "tier": "pro", "note": nil}},
		{"big integer keeps its digits", `{"email":"a@b.co","items":[],"big":123456789012345678901234567890}`,
			map[string]any{"email": "a@b.co", "items": []any{}, "big": json.Number("123456789012345678901234567890")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tl.ValidateArguments(json.RawMessage(tt.give))
			if err != nil {
				t.Fatalf("ValidateArguments: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("arguments (-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidateArgumentsInvalid(t *testing.T) {
	tl := orderTool(t)
	tests := []struct {
		name string
		give string
		want string
	}{
		{"empty means {}", ``, "email: missing required property; items: missing required property"},
		{"null means {}", `null`, "email: missing required property; items: missing required property"},
		{"type", `{"email":5,"items":[]}`, "email: got number, want string"},
		{"enum", `{"email":"a@b.co","items":[],"tier":"gold"}`, "tier: value must be one of 'free', 'pro'"},
		{"email format", `{"email":"bob","items":[]}`, "email: 'bob' is not valid email"},
		{"uri format", `{"email":"a@b.co","items":[],"site":"not a uri"}`, "site: 'not a uri' is not valid uri"},
		{"date-time format", `{"email":"a@b.co","items":[],"at":"yesterday"}`, "at: 'yesterday' is not valid date-time"},
		{"uuid format", `{"email":"a@b.co","items":[],"id":"1234"}`, "id: '1234' is not valid uuid"},
		{"minimum", `{"email":"a@b.co","items":[],"count":0}`, "count: minimum: got 0, want 1"},
		{"nested", `{"email":"a@b.co","items":[{"sku":"a","qty":1},{"sku":"b","qty":1},{"sku":"c","qty":0}]}`, "items/2/qty: minimum: got 0, want 1"},
		{"nested required", `{"email":"a@b.co","items":[{"qty":1}]}`, "items/0/sku: missing required property"},
		{"additionalProperties false", `{"email":"a@b.co","items":[],"color":"red"}`, "color: unknown property"},
		{"many errors at once", `{"email":"bob","tier":"gold","count":"x","color":1,"items":[{"sku":1}]}`,
			"color: unknown property; count: got string, want integer; email: 'bob' is not valid email; items/0/qty: missing required property; items/0/sku: got number, want string; tier: value must be one of 'free', 'pro'"},
		{"array", `[1]`, "arguments must be a JSON object, got an array"},
		{"string", `"x"`, "arguments must be a JSON object, got a string"},
		{"number", ` 5`, "arguments must be a JSON object, got a number"},
		{"malformed", `{"email":`, "arguments are not valid JSON: unexpected EOF"},
		{"trailing data", `{} {}`, "arguments are not valid JSON: invalid character after top-level value"},
		{"too deep", nested(64), "arguments are nested deeper than 64 levels"},
		{"too big", `{"email":"` + strings.Repeat("a", MaxArgumentBytes) + `"}`, fmt.Sprintf("arguments are %d bytes, the limit is 1048576 bytes (1 MiB)", MaxArgumentBytes+12)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tl.ValidateArguments(json.RawMessage(tt.give))
			if !errors.Is(err, ErrInvalidArguments) {
				t.Fatalf("error %v does not match ErrInvalidArguments", err)
			}
			var ae *ArgumentError
			if !errors.As(err, &ae) || ae.Tool != "create_order" {
				t.Fatalf("error %#v is not an *ArgumentError for create_order", err)
			}
			if diff := cmp.Diff("invalid arguments for tool create_order: "+tt.want, err.Error()); diff != "" {
				t.Errorf("message (-want +got):\n%s", diff)
			}
		})
	}
}

func TestArgumentDepthLimitIsInclusive(t *testing.T) {
	// The object itself is level 1, so nested(63) reaches level 64.
	if _, err := orderTool(t).ValidateArguments(json.RawMessage(nested(63))); err != nil {
		t.Errorf("64 levels: %v", err)
	}
}

func TestArgumentErrorProblems(t *testing.T) {
	tl := orderTool(t)
	_, err := tl.ValidateArguments(json.RawMessage(`{"email":"bob"}`))
	var ae *ArgumentError
	if !errors.As(err, &ae) {
		t.Fatalf("error = %v", err)
	}
	want := []FieldProblem{
		{Path: "email", Message: "'bob' is not valid email"},
		{Path: "items", Message: "missing required property"},
	}
	if diff := cmp.Diff(want, ae.Problems); diff != "" {
		t.Errorf("Problems (-want +got):\n%s", diff)
	}
}

func TestValidateArgumentsWithoutSchema(t *testing.T) {
	tl := &Tool{Name: "handmade"}
	got, err := tl.ValidateArguments(json.RawMessage(`{"n":1}`))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]any{"n": json.Number("1")}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func BenchmarkValidateArguments(b *testing.B) {
	tl := orderTool(b)
	raw := json.RawMessage(`{"email":"a@b.co","tier":"pro","count":3,"items":[{"sku":"x","qty":2}]}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tl.ValidateArguments(raw); err != nil {
			b.Fatal(err)
		}
	}
}
