package console

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func span(id, parent, op, pid string, start, dur int64, tags ...jaegerKV) jaegerSpan {
	s := jaegerSpan{SpanID: id, OperationName: op, ProcessID: pid, StartTime: start, Duration: dur, Tags: tags}
	if parent != "" {
		s.References = append(s.References, struct {
			RefType string `json:"refType"`
			SpanID  string `json:"spanID"`
		}{"CHILD_OF", parent})
	}
	return s
}

// TestLayoutTrace: spans come out as a tree, children in start order under
// their parent; a span whose parent is missing is a root; bars stay on the
// 0–1000 scale; error spans are marked; a reference cycle does not loop.
func TestLayoutTrace(t *testing.T) {
	spans := []jaegerSpan{
		span("c2", "b", "GET attempt 2", "p2", 1600, 300, jaegerKV{"span.kind", "client"}),
		span("b", "a", "process", "p2", 1100, 800, jaegerKV{"span.kind", "consumer"}),
		span("a", "", "tools/call get_customer", "p1", 1000, 1000, jaegerKV{"span.kind", "server"}),
		span("c1", "b", "GET attempt 1", "p2", 1200, 300, jaegerKV{"span.kind", "client"}, jaegerKV{"otel.status_code", "ERROR"}),
		span("orphan", "gone", "notify payments", "p1", 2500, 0),
		span("x", "y", "cycle x", "p1", 3000, 10),
		span("y", "x", "cycle y", "p1", 3000, 10),
	}
	v := layoutTrace(spans, map[string]string{"p1": "mcp-front", "p2": "rest-worker"})
	type row struct {
		Op    string
		Depth int
		Err   bool
	}
	var got []row
	for _, s := range v.Spans {
		got = append(got, row{s.Operation, s.Depth, s.Error})
		if s.X < 0 || s.X > 1000 || s.W < 2 || s.X+s.W > 1002 {
			t.Errorf("%s: bar at %v width %v is off the 0–1000 scale", s.Operation, s.X, s.W)
		}
	}
	want := []row{
		{"tools/call get_customer", 0, false},
		{"process", 1, false},
		{"GET attempt 1", 2, true},
		{"GET attempt 2", 2, false},
		{"notify payments", 0, false},
		// No root reaches the cycle: it is drawn from its first span.
		{"cycle x", 0, false},
		{"cycle y", 1, false},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
	if v.DurationMS != 2.01 || !cmp.Equal(v.Services, []string{"mcp-front", "rest-worker"}) {
		t.Errorf("duration %v ms, services %v", v.DurationMS, v.Services)
	}
	if first := v.Spans[0]; first.Kind != "server" || first.StartMS != 0 || first.X != 0 {
		t.Errorf("root row %+v", first)
	}
}
