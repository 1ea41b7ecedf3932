package shape

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestPartKeepsCharacters(t *testing.T) {
	text := []byte(strings.Repeat("é", 10)) // 2 bytes each
	tests := []struct {
		give     string
		from     int
		max      int
		wantText string
		wantNext int
	}{
		{give: "cut inside a character backs off", from: 0, max: 5, wantText: "éé", wantNext: 4},
		{give: "exact fit", from: 4, max: 4, wantText: "éé", wantNext: 8},
		{give: "last part", from: 16, max: 100, wantText: "éé", wantNext: 20},
		{give: "past the end", from: 20, max: 4, wantText: "", wantNext: 20},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			got, next := Part(text, tt.from, tt.max)
			if string(got) != tt.wantText || next != tt.wantNext || !utf8.Valid(got) {
				t.Errorf("Part(%d, %d) = %q, %d; want %q, %d", tt.from, tt.max, got, next, tt.wantText, tt.wantNext)
			}
		})
	}
}

func TestHandleRoundTrip(t *testing.T) {
	id, off, ok := ParseHandle(Handle("abc123", 4096))
	if !ok || id != "abc123" || off != 4096 {
		t.Errorf("ParseHandle(Handle) = %q, %d, %v", id, off, ok)
	}
	for _, bad := range []string{"", "abc", ":12", "abc:-1", "abc:x"} {
		if _, _, ok := ParseHandle(bad); ok {
			t.Errorf("ParseHandle(%q) accepted", bad)
		}
	}
}
