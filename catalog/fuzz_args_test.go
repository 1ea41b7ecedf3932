package catalog

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// fuzzArgsCatalog has one tool whose schema uses every keyword family the
// validator must handle on hostile input: nesting, arrays, enums,
// patterns, formats, numeric bounds, $ref and additionalProperties.
const fuzzArgsCatalog = `version: 1
upstreams:
  crm:
    base_url: http://127.0.0.1:8081/api
tools:
  - name: t
    description: d
    upstream: crm
    method: POST
    path: /x/{id}
    input_schema:
      type: object
      properties:
        id: {type: integer, minimum: 1, maximum: 1000000000000}
        name: {type: string, maxLength: 64, pattern: "^[A-Za-z ]+$"}
        email: {type: string, format: email}
        status: {type: string, enum: [active, churned]}
        amount: {type: number, multipleOf: 0.01}
        tags: {type: array, items: {type: string}, maxItems: 8, uniqueItems: true}
        address: {$ref: "#/$defs/address"}
        extra: {type: object, additionalProperties: {type: boolean}}
      required: [id]
      additionalProperties: false
      $defs:
        address:
          type: object
          properties:
            city: {type: string}
            next: {$ref: "#/$defs/address"}
`

// FuzzValidateArguments feeds hostile argument documents to a compiled
// schema: validation never panics, either returns arguments or an
// *ArgumentError matching ErrInvalidArguments, refuses what is over the
// size and depth limits, and accepts its own output again.
func FuzzValidateArguments(f *testing.F) {
	cat, err := Parse("f.yaml", []byte(fuzzArgsCatalog), testOptions()...)
	if err != nil {
		f.Fatal(err)
	}
	tl := cat.Tools[0]
	for _, s := range []string{
		``, `null`, `{}`, `[]`, `"x"`, `{"id":1}`, `{"id":1e400}`, `{"id":-0}`, `{"id":1.0}`, `{"id":99999999999999999999999}`,
		`{"id":1,"name":"Ada Lovelace","email":"ada@example.com","status":"active","amount":12.34,"tags":["a","b"]}`,
		`{"id":1,"tags":["a","a"]}`, `{"id":1,"name":"\u0000"}`, `{"id":1,"email":"a@b@c"}`, `{"id":1,"x":1}`,
		`{"id":1,"address":{"city":"x","next":{"next":{"next":{"city":1}}}}}`, `{"id":1,"extra":{"a":true,"b":"no"}}`,
		`{"id":1,"id":2}`, `{"id":1}{"id":2}`, `{"id":1,}`, "{\"id\":1,\"name\":\"\xff\"}",
		strings.Repeat(`{"a":`, 70) + `1` + strings.Repeat(`}`, 70),
		`{"id":1,"tags":` + strings.Repeat(`[`, 70) + strings.Repeat(`]`, 70) + `}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		args, err := tl.ValidateArguments(raw)
		if err != nil {
			var ae *ArgumentError
			if !errors.As(err, &ae) || !errors.Is(err, ErrInvalidArguments) || args != nil {
				t.Fatalf("error %v (%T) with args %v: want an *ArgumentError and no arguments", err, err, args)
			}
			return
		}
		if args == nil {
			t.Fatal("no error and no arguments")
		}
		if len(raw) > MaxArgumentBytes || exceedsDepth(raw, MaxArgumentDepth) {
			t.Fatalf("accepted arguments over the limits (%d bytes)", len(raw))
		}
		if _, ok := args["id"]; !ok {
			t.Fatalf("accepted arguments without the required id: %s", raw)
		}
		again, err := json.Marshal(args)
		if err != nil {
			t.Fatalf("accepted arguments do not encode: %v", err)
		}
		if _, err := tl.ValidateArguments(again); err != nil {
			t.Fatalf("accepted %s but refused its re-encoding %s: %v", raw, again, err)
		}
		for k := range args {
			if !strings.Contains(" id name email status amount tags address extra ", " "+k+" ") {
				t.Fatalf("additionalProperties: false let %q through: %s", k, again)
			}
		}
	})
}
