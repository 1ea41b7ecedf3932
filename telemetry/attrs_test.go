package telemetry

import (
	"testing"

	"go.opentelemetry.io/otel/attribute"

	toolbusv1 "github.com/toolbus/toolbus/gen/toolbus/v1"
)

func TestCallerAttrsNeverTheToken(t *testing.T) {
	got := CallerAttrs(&toolbusv1.Caller{Subject: "alice", Tenant: "acme", Scopes: []string{"a", "b"}, Token: "tok-secret-123"})
	want := []attribute.KeyValue{AttrCallerSubject.String("alice"), AttrCallerTenant.String("acme"), AttrCallerScopes.StringSlice([]string{"a", "b"})}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for i := range want {
		if got[i] != want[i] && got[i].Value.Emit() != want[i].Value.Emit() {
			t.Errorf("attr %d = %v, want %v", i, got[i], want[i])
		}
		if got[i].Value.Emit() == "tok-secret-123" {
			t.Errorf("token in %v", got[i])
		}
	}
	if a := CallerAttrs(&toolbusv1.Caller{Subject: "bob"}); len(a) != 1 || a[0].Key != AttrCallerSubject {
		t.Errorf("subject only: %v", a)
	}
	if a := CallerAttrs(nil); a != nil {
		t.Errorf("no caller: %v", a)
	}
}
