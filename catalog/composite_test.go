package catalog

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const compositeSrc = `version: 1
upstreams:
  crm: {base_url: http://h, timeout: 2s}
tools:
  - name: get_customer
    description: d
    upstream: crm
    method: GET
    path: /customers/{id}
    input_schema: {type: object, properties: {id: {type: string}}, required: [id]}
  - name: list_orders
    description: d
    upstream: crm
    method: GET
    path: /orders
    timeout: 3s
    input_schema: {type: object, properties: {customer: {type: string}, limit: {type: integer}}}
  - name: dashboard
    description: Customer dashboard.
    input_schema: {type: object, properties: {id: {type: string}}, required: [id]}
    steps:
      - name: customer
        tool: get_customer
        args: {id: "{{ .input.id }}"}
      - name: orders
        tool: list_orders
        args_jq: '{customer: .steps.customer.id, limit: 5}'
      - name: again
        tool: get_customer
        args: {id: "c-{{ .input.id }}"}
        optional: true
        after: [customer]
    merge: {profile: customer, orders: orders}
  - name: get_customers
    description: Many customers.
    batch: {tool: get_customer, argument: id, max_parallel: 4, max_items: 50}
`

func TestCompositeTool(t *testing.T) {
	cat, err := Parse("c.yaml", []byte(compositeSrc), testOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := cat.Tool("dashboard")
	if d.Upstream != nil || !d.IsVirtual() {
		t.Fatalf("dashboard: upstream %v, virtual %v", d.Upstream, d.IsVirtual())
	}
	var after [][]string
	for _, s := range d.Composite.Steps {
		after = append(after, s.After)
	}
	if diff := cmp.Diff([][]string{nil, {"customer"}, {"customer"}}, after); diff != "" {
		t.Errorf("dependencies (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]MergeEntry{{"profile", "customer"}, {"orders", "orders"}}, d.Composite.Merge); diff != "" {
		t.Errorf("merge (-want +got):\n%s", diff)
	}
	// Critical path: customer (2s) then orders (3s).
	if d.Timeout != 5*time.Second {
		t.Errorf("timeout = %s, want 5s", d.Timeout)
	}
	if !*d.Annotations.ReadOnly || *d.Annotations.Destructive {
		t.Errorf("annotations: read-only %v destructive %v, want read-only", *d.Annotations.ReadOnly, *d.Annotations.Destructive)
	}
	args, err := d.Composite.Steps[1].Args.Eval(map[string]any{"input": map[string]any{"id": "7"},
		"steps": map[string]any{"customer": map[string]any{"id": "7", "name": "Ada"}}})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]any{"customer": "7", "limit": 5}, args); diff != "" {
		t.Errorf("args_jq (-want +got):\n%s", diff)
	}
	args, err = d.Composite.Steps[2].Args.Eval(map[string]any{"input": map[string]any{"id": 7}})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]any{"id": "c-7"}, args); diff != "" {
		t.Errorf("args template (-want +got):\n%s", diff)
	}

	b, _ := cat.Tool("get_customers")
	var schema map[string]any
	if err := json.Unmarshal(b.InputSchema, &schema); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"type": "object", "required": []any{"ids"}, "properties": map[string]any{"ids": map[string]any{
		"type": "array", "items": map[string]any{"type": "string"}, "minItems": 1.0, "maxItems": 50.0,
		"description": "The ids; each gets its own result or error."}}}
	if diff := cmp.Diff(want, schema); diff != "" {
		t.Errorf("batch input schema (-want +got):\n%s", diff)
	}
	if _, err := b.ValidateArguments([]byte(`{"ids": []}`)); err == nil {
		t.Error("an empty id list was accepted")
	}
}

func TestCompositeRules(t *testing.T) {
	head := `version: 1
upstreams:
  crm: {base_url: http://h}
tools:
  - name: a
    description: d
    upstream: crm
    method: GET
    path: /a
    input_schema: {type: object, properties: {ids: {type: array}, q: {type: string}}}
`
	tests := []struct {
		name string
		give string
		want string
	}{
		{"cycle", `  - name: c
    description: d
    steps:
      - {name: x, tool: a, args_jq: '{q: .steps.y.q}'}
      - {name: y, tool: a, after: [x]}
`, "cycle: x → y → x"},
		{"unknown tool", `  - name: c
    description: d
    steps: [{name: x, tool: nope}]
`, `unknown tool "nope"`},
		{"unknown step reference", `  - name: c
    description: d
    steps: [{name: x, tool: a, args: {q: "{{ .steps.z.q }}"}}]
`, "there is no step z"},
		{"bad jq", `  - name: c
    description: d
    steps: [{name: x, tool: a, args_jq: '{q: .input.'}]
`, "invalid jq expression"},
		{"nested composite", `  - name: c
    description: d
    steps: [{name: x, tool: a}]
  - name: c2
    description: d
    steps: [{name: y, tool: c}]
`, "itself a composite or batch tool"},
		{"composite with upstream", `  - name: c
    description: d
    upstream: crm
    steps: [{name: x, tool: a}]
`, "a composite or batch tool has no upstream"},
		{"batch join needs string", `  - name: b
    description: d
    batch: {tool: a, argument: ids, mode: upstream, join: ","}
`, "must be a string"},
		{"batch parallel has no join", `  - name: b
    description: d
    batch: {tool: a, argument: q, join: ","}
`, "only mode: upstream has join"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("c.yaml", []byte(head+tt.give), testOptions()...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}
