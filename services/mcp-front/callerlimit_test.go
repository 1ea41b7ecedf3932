package mcpfront

import (
	"testing"

	"github.com/toolbus/toolbus/mcpauth"
)

func TestCallerLimiter(t *testing.T) {
	l := newCallerLimiter(2)
	r1, ok1 := l.acquire("a")
	_, ok2 := l.acquire("a")
	_, ok3 := l.acquire("a")
	_, okB := l.acquire("b")
	if !ok1 || !ok2 || ok3 || !okB {
		t.Fatalf("acquire a, a, a, b = %v %v %v %v, want true true false true", ok1, ok2, ok3, okB)
	}
	r1()
	if _, ok := l.acquire("a"); !ok {
		t.Error("a released slot was not given back")
	}
	if _, ok := l.acquire(""); !ok {
		t.Error("an unidentified caller was limited")
	}
	if newCallerLimiter(-1) != nil || newCallerLimiter(0).max != DefaultMaxCallsPerCaller {
		t.Error("-1 must disable the limit and 0 mean the default")
	}
	var off *callerLimiter
	if _, ok := off.acquire("a"); !ok {
		t.Error("a nil limiter refused a call")
	}
}

func TestLimitKey(t *testing.T) {
	tests := []struct {
		give callRequest
		want string
	}{
		{give: callRequest{caller: &mcpauth.Identity{Subject: "u1", Tenant: "acme"}, sessionID: "s1"}, want: "sub:acme/u1"},
		{give: callRequest{caller: &mcpauth.Identity{Subject: "u1"}}, want: "sub:/u1"},
		{give: callRequest{sessionID: "s1"}, want: "session:s1"},
		{give: callRequest{}, want: ""},
	}
	for _, tt := range tests {
		if got := limitKey(tt.give); got != tt.want {
			t.Errorf("limitKey(%+v) = %q, want %q", tt.give, got, tt.want)
		}
	}
}
