package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/toolbus/toolbus/bus"
	"github.com/toolbus/toolbus/bus/bustest"
)

const applyV1 = `version: 1
upstreams:
  crm: {base_url: "http://127.0.0.1:9/api"}
tools:
  - {name: get_customer, description: One customer., upstream: crm, method: GET, path: /customers/1}
  - {name: old_report, description: A report., upstream: crm, method: GET, path: /report}
`

const applyV2 = `version: 1
upstreams:
  crm: {base_url: "http://127.0.0.1:9/api"}
  billing: {base_url: "http://127.0.0.1:9/billing"}
auth:
  resource: http://127.0.0.1:8080/mcp
  api_keys:
    - {name: ops, sha256: 0000000000000000000000000000000000000000000000000000000000000000, scopes: ["*"]}
tools:
  - {name: get_customer, description: One customer., upstream: crm, method: GET, path: /customers/1}
  - {name: get_invoice, description: One invoice., upstream: billing, method: GET, path: /invoices/1}
`

// TestCatalogApplySaysWhatChanged: `toolbus catalog apply` names what the
// catalog adds and removes against the one applied before.
func TestCatalogApplySaysWhatChanged(t *testing.T) {
	ns := bustest.Server(t)
	_, js := bustest.Connect(t, ns)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := bus.DefaultTopology().Ensure(ctx, js); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "catalog.yaml")
	apply := func(src string) string {
		t.Helper()
		if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		var out, errs bytes.Buffer
		if err := runCatalogApply(ctx, []string{path, "--nats", ns.ClientURL()}, &out, &errs); err != nil {
			t.Fatalf("apply: %v\n%s", err, errs.String())
		}
		return out.String()
	}
	if out := apply(applyV1); strings.Count(out, "\n") != 1 || !strings.Contains(out, "applied (revision 1") {
		t.Errorf("first apply printed %q: want only the applied line (nothing to compare with)", out)
	}
	out := apply(applyV2)
	for _, want := range []string{
		"  tools: +get_invoice -old_report\n",
		"  upstreams: +billing\n",
		"  auth: changed",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("second apply printed:\n%s\nwant a line %q", out, want)
		}
	}
	if strings.Contains(out, "sources:") || strings.Contains(out, "projections:") {
		t.Errorf("second apply reports sources or projections that did not change:\n%s", out)
	}
	if out := apply(applyV2); !strings.Contains(out, "no change: the same catalog was applied before") {
		t.Errorf("applying the same catalog again printed:\n%s", out)
	}
}
