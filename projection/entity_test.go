package projection

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestEncodeKey(t *testing.T) {
	tests := []struct{ give, want string }{
		{"cus_123", "cus_123"},
		{"acme/app#42", "acme=2Fapp=2342"},
		{"a.b c=d", "a=2Eb=20c=3Dd"},
		{"é", "=C3=A9"},
	}
	for _, tt := range tests {
		got := EncodeKey(tt.give)
		back, err := DecodeKey(got)
		if got != tt.want || back != tt.give || err != nil {
			t.Errorf("EncodeKey(%q) = %q (back %q, %v), want %q", tt.give, got, back, err, tt.want)
		}
	}
}

func TestCompareVersions(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"9", "10", -1},
		{"1717171717", "1717171717", 0},
		{"18446744073709551617", "18446744073709551616", 1},
		{"2024-05-01T10:00:00Z", "2024-05-01T11:00:00+02:00", 1},
		{"b", "a", 1},
	}
	for _, tt := range tests {
		if got := CompareVersions(tt.a, tt.b); got != tt.want {
			t.Errorf("CompareVersions(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

// TestMergeOrderIndependent: every arrival order of the same events gives
// the same entity.
func TestMergeOrderIndependent(t *testing.T) {
	type in struct {
		c  candidate
		ev Event
	}
	evs := []in{
		{candidate{key: "k", value: "v1", version: "1"}, Event{ID: "e1", Sequence: 1}},
		{candidate{key: "k", value: "v3", version: "3"}, Event{ID: "e3", Sequence: 2}},
		{candidate{key: "k", version: "2", deleted: true}, Event{ID: "e2", Sequence: 3}},
		{candidate{key: "k", value: "v3b", version: "3"}, Event{ID: "e3b", Sequence: 4}},
	}
	var want *Entity
	for _, order := range [][]int{{0, 1, 2, 3}, {3, 2, 1, 0}, {1, 3, 0, 2, 0, 3}, {2, 0, 3, 1}} {
		var e *Entity
		for _, i := range order {
			e, _ = merge(e, evs[i].c, evs[i].ev, 3)
		}
		if want == nil {
			want = e
			if e.EventID != "e3b" || e.Value != "v3b" || len(e.History) != 3 {
				t.Fatalf("final entity %+v", e)
			}
			continue
		}
		if diff := cmp.Diff(want, e, cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })); diff != "" {
			t.Errorf("order %v (-first +this):\n%s", order, diff)
		}
	}
}
