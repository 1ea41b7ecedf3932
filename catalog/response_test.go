package catalog

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestShapingRules(t *testing.T) {
	tests := []struct {
		name string
		give string
		want []string
	}{
		{"jq syntax error", tool + "    response: {jq: '.data | map('}\n", []string{
			`c.yaml:10:20: tools[0] (t).response.jq: invalid jq expression ".data | map(": unexpected EOF`,
		}},
		{"empty drop segment", tool + "    response: {drop: [a..b]}\n", []string{
			`c.yaml:10:23: tools[0] (t).response.drop[0]: path "a..b" has an empty segment: write keys separated by dots, * for every element`,
		}},
		{"both caps", tool + "    response: {max_bytes: 1000, max_tokens: 500}\n", []string{
			`c.yaml:10:33: tools[0] (t).response.max_tokens: give max_bytes or max_tokens, not both`,
		}},
		{"cap too small", tool + "    response: {max_bytes: 10}\n", []string{
			`c.yaml:10:27: tools[0] (t).response.max_bytes: must be between 256 and 16777216 bytes`,
		}},
		{"cache on a writing tool", head + "tools:\n  - {name: t, description: d, upstream: crm, method: POST, path: /x, cache: {ttl: 1s}}\n", []string{
			`c.yaml:5:77: tools[0] (t).cache: only read-only tools can be cached: a cached answer would skip the tool's effect`,
		}},
		{"cache without ttl", tool + "    cache: {per_caller: maybe}\n", []string{
			`c.yaml:10:12: tools[0] (t).cache.ttl: required field is missing: how long an answer is reused, such as 30s`,
			`c.yaml:10:25: tools[0] (t).cache.per_caller: must be auto, true or false, got "maybe"`,
		}},
		{"cache ttl too long", tool + "    cache: {ttl: 2h}\n", []string{
			`c.yaml:10:18: tools[0] (t).cache.ttl: must be at most 10m, got 2h`,
		}},
		{"continue name taken", head + "tools:\n  - {name: t, description: d, upstream: crm, method: GET, path: /x, response: {max_bytes: 1000}}\n  - {name: t_continue, description: d, upstream: crm, method: GET, path: /x}\n", []string{
			`c.yaml:6:5: tool t_continue: t_continue is the generated companion of the capped tool t (response.max_bytes); rename one of them`,
		}},
		{"pagination unknown style", tool + "    pagination: {style: relay}\n", []string{
			`c.yaml:10:25: tools[0] (t).pagination.style: unknown style "relay": want cursor, page, offset or link`,
		}},
		{"pagination on POST", head + "tools:\n  - {name: t, description: d, upstream: crm, method: POST, path: /x, pagination: {style: page}}\n", []string{
			`c.yaml:5:82: tools[0] (t).pagination: only GET tools can be paginated (page parameters go in the query), not POST`,
		}},
		{"cursor argument taken", tool + "    input_schema: {type: object, properties: {cursor: {type: string}}}\n    pagination: {style: cursor, mode: cursor}\n", []string{
			`c.yaml:10:47: tools[0] (t).pagination: mode cursor adds the argument cursor; rename the property or set cursor_argument`,
		}},
		{"undeclared widget", head + "widgets:\n  card: {file: testdata/widget.html}\ntools:\n  - {name: t, description: d, upstream: crm, method: GET, path: /x, meta: {openai/outputTemplate: 'ui://widget/nope.html'}}\n", []string{
			`c.yaml:7:5: tool t.meta.openai/outputTemplate: "ui://widget/nope.html" names no declared widget (declared: [ui://widget/card.html])`,
		}},
		{"widget file missing", head + "widgets:\n  card: {file: testdata/nope.html}\n", []string{
			`c.yaml:5:16: widgets.card.file: file testdata/nope.html does not exist (relative paths start at the catalog's directory)`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, problems(t, tt.give)); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

func TestShapingParsed(t *testing.T) {
	src := head + `widgets:
  card: {file: testdata/widget.html}
tools:
  - name: t
    description: d
    upstream: crm
    method: GET
    path: /x
    input_schema: {type: object, properties: {limit: {type: integer}}, additionalProperties: false}
    response: {jq: '.data', drop: [x.*.secret], max_tokens: 500}
    cache: {ttl: 30s}
    result_meta: {openai/widgetDescription: card}
    meta: {openai/outputTemplate: ui://widget/card.html}
    pagination: {style: cursor, mode: cursor, results_path: data.items}
`
	cat, err := Parse("c.yaml", []byte(src), testOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	tl, _ := cat.Tool("t")
	if tl.Response.MaxBytes != 500*BytesPerToken || tl.Response.JQSource != ".data" {
		t.Errorf("response = %+v", tl.Response)
	}
	if d := cmp.Diff([][]string{{"x", "*", "secret"}}, tl.Response.Drop); d != "" {
		t.Errorf("drop: %s", d)
	}
	if tl.Cache.TTL != 30*time.Second || tl.Cache.PerCaller {
		t.Errorf("cache = %+v", tl.Cache)
	}
	if d := cmp.Diff([]string{"data", "items"}, tl.Paging.ResultsPath); d != "" {
		t.Errorf("results path: %s", d)
	}
	if tl.ResultMeta["openai/widgetDescription"] != "card" {
		t.Errorf("result_meta = %v", tl.ResultMeta)
	}
	if cat.Widgets["card"].URI != "ui://widget/card.html" || cat.Widgets["card"].MIME != WidgetMIME {
		t.Errorf("widget = %+v", cat.Widgets["card"])
	}
	// Mode cursor adds the cursor argument, accepted despite
	// additionalProperties: false.
	if _, err := tl.ValidateArguments([]byte(`{"limit": 2, "cursor": "abc"}`)); err != nil {
		t.Errorf("cursor argument refused: %v", err)
	}
}

func TestCachePerCallerAuto(t *testing.T) {
	src := "version: 1\nupstreams:\n  crm:\n    base_url: http://h\n    auth: {type: forward}\ntools:\n  - {name: t, description: d, upstream: crm, method: GET, path: /x, cache: {ttl: 1s}}\n  - {name: u, description: d, upstream: crm, method: GET, path: /y, cache: {ttl: 1s, per_caller: false}}\n"
	cat, err := Parse("c.yaml", []byte(src), testOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	tt, _ := cat.Tool("t")
	tu, _ := cat.Tool("u")
	if !tt.Cache.PerCaller || tu.Cache.PerCaller {
		t.Errorf("per_caller: auto with forward auth = %v (want true); false = %v (want false)", tt.Cache.PerCaller, tu.Cache.PerCaller)
	}
}

func TestShape(t *testing.T) {
	src := tool + "    response: {jq: '.data[] | select(.active) | {id, tags}', drop: ['*.tags.*.internal']}\n"
	cat, err := Parse("c.yaml", []byte(src), testOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	tl, _ := cat.Tool("t")
	body := `{"data":[{"id":12345678901234567890,"active":true,"tags":[{"n":"a","internal":1}]},{"id":2,"active":false},{"id":3,"active":true,"tags":[]}]}`
	out, err := tl.Response.Shape(context.Background(), []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	// Several outputs become one array; big numbers keep their digits.
	want := `[{"id":12345678901234567890,"tags":[{"n":"a"}]},{"id":3,"tags":[]}]`
	if d := cmp.Diff(want, string(out)); d != "" {
		t.Errorf("shaped (-want +got):\n%s", d)
	}
	if !json.Valid(out) {
		t.Error("shaped output is not JSON")
	}
}
