package events_test

import (
	"testing"

	"github.com/toolbus/toolbus/events"
)

func TestShorten(t *testing.T) {
	tests := []struct {
		give string
		n    int
		want string
	}{
		{give: "short", n: 10, want: "short"},
		{give: "exactly10!", n: 10, want: "exactly10!"},
		{give: "a longer message", n: 8, want: "a longer…"},
		// Never cuts a multi-byte rune in half: "é" is 2 bytes.
		{give: "caféé", n: 4, want: "caf…"},
	}
	for _, tt := range tests {
		if got := events.Shorten(tt.give, tt.n); got != tt.want {
			t.Errorf("Shorten(%q, %d) = %q, want %q", tt.give, tt.n, got, tt.want)
		}
	}
}

func TestPublishWithoutConnectionIsANoOp(t *testing.T) {
	if err := events.Publish(nil, events.SubjectCall, &events.Call{Tool: "x"}); err != nil {
		t.Fatal(err)
	}
}
